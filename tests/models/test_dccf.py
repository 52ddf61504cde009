"""DCCF (docs/protocol.md §7): the four signals against a dense computation, the
adaptive weights' row normalization, the contrast's formula, gradients, training."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from helpers import dense_normalized, random_batch, random_interactions, tiny_dataset, train_only

from rlmrec.align import ConConfig, GenConfig
from rlmrec.config import resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.models import dccf as dccf_module
from rlmrec.models.base import Batch
from rlmrec.models.configs import DCCFConfig
from rlmrec.models.dccf import DCCF
from rlmrec.registry import build_model
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")
U, N_ITEMS = 14, 11


def _model(train: sp.csr_matrix, **kw: object) -> DCCF:
    torch.manual_seed(0)
    return DCCF(DCCFConfig(embedding_size=8, layer_num=2, intent_num=5, **kw), train_only(train), CPU)


def _dense_adaptive(embeds: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    unit = F.normalize(embeds, dim=1)
    alpha = (unit @ unit.T + 1) / 2 * torch.from_numpy(mask).to(embeds.dtype)
    return alpha / alpha.sum(1, keepdim=True).clamp_min(1e-300) * (alpha.sum(1, keepdim=True) > 0)


def _dense_signals(model: DCCF, train: sp.csr_matrix) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    adj = torch.from_numpy(dense_normalized(train))
    mask = (dense_normalized(train) != 0).astype(np.float64)
    wu, wi = model.user_intent.detach().double(), model.item_intent.detach().double()
    layer = model.layer0().detach().double()
    final, per_layer = layer, []
    for _ in range(2):
        gnn = adj @ layer
        intent = torch.cat([torch.softmax(layer[:U] @ wu, 1) @ wu.T, torch.softmax(layer[U:] @ wi, 1) @ wi.T])
        gaa = _dense_adaptive(gnn, mask) @ layer
        iaa = _dense_adaptive(intent, mask) @ layer
        per_layer.append([gnn, intent, gaa, iaa])
        layer = gnn + intent + gaa + iaa + layer
        final = final + layer
    return final, per_layer


def test_signals_and_final_match_a_dense_computation() -> None:
    train = random_interactions(0, U, N_ITEMS, 0.3)
    model = _model(train)
    s = model.signals(model.layer0())
    final, per_layer = _dense_signals(model, train)
    for got, want in zip(zip(s.gnn, s.intent, s.gaa, s.iaa, strict=True), per_layer, strict=True):
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(s.final.double(), final, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.propagate(model.layer0(), training=False), s.final)


def test_adaptive_weights_are_row_normalized_and_in_range() -> None:
    train = random_interactions(1, U, N_ITEMS, 0.3)
    model = _model(train)
    weights = model.adaptive_weights(torch.randn(U + N_ITEMS, 8))
    rows = torch.zeros(U + N_ITEMS).index_add(0, model.heads, weights)
    has_edges = torch.zeros(U + N_ITEMS).index_add(0, model.heads, torch.ones_like(weights)) > 0
    torch.testing.assert_close(rows[has_edges], torch.ones(int(has_edges.sum())))
    assert bool((weights >= 0).all() and (weights <= 1).all())


def test_contrast_matches_the_reference_formula() -> None:
    train = random_interactions(2, U, N_ITEMS, 0.3)
    model = _model(train, cl_weight=0.5, cl_temperature=0.3)
    batch = random_batch(train, 12)
    losses, _ = model.train_losses(model.layer0(), batch)
    _, per_layer = _dense_signals(model, train)
    users = torch.unique(batch.users)
    items = torch.unique(batch.pos) + U

    def nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        return (-(a * b).sum(1) / 0.3 + torch.log(torch.exp(a @ b.T / 0.3).sum(1))).sum()

    want = sum(nce(gnn[n], other[n]) for gnn, *others in per_layer for n in (users, items) for other in others)
    torch.testing.assert_close(losses["cl"].double(), 0.5 * want / len(users), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_gradients_reach_every_parameter(variant: str) -> None:
    data = tiny_dataset(3, 20, 16, 12)
    align = {"base": None, "con": ConConfig(), "gen": GenConfig(mask_ratio=0.3)}[variant]
    torch.manual_seed(0)
    rec = build_model("dccf", variant, DCCFConfig(embedding_size=8, layer_num=2, intent_num=4), align, data, CPU)
    torch.stack(list(rec.train_losses(random_batch(data.train, 16)).values())).sum().backward()
    for name, p in rec.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_presets() -> None:
    steam = resolve_config("dccf", "con", "steam").model_cfg
    assert (steam.layer_num, steam.reg_weight, steam.cl_temperature, steam.intent_num) == (3, 1e-3, 0.1, 128)


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_a_few_epochs_on_demo_lower_the_loss_and_repeat_exactly(demo: Dataset, variant: str) -> None:
    def run() -> list[dict[str, float]]:
        cfg = resolve_config("dccf", variant, "demo", {"epochs": 4, "batch_size": 2048}, device="cpu", seed=3)
        trainer = Trainer(cfg, demo)
        return [trainer.train_epoch() for _ in range(4)]

    first = run()
    assert first[-1]["bpr"] < first[0]["bpr"]
    assert run() == first


def _isolated_train() -> sp.csr_matrix:
    """A random bipartite graph in which user 3 and item 5 have no edges."""
    dense = random_interactions(4, U, N_ITEMS, 0.3).toarray()
    dense[3, :] = 0.0
    dense[:, 5] = 0.0
    return sp.csr_matrix(dense)


def _loss_and_grads(model: DCCF, batch: Batch, gather: bool, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The loss terms and every parameter's gradient, on the gather/scatter path or the kernels."""
    with monkeypatch.context() as m:
        m.setattr(dccf_module, "_kernels", lambda: not gather)
        model.zero_grad()
        losses, final = model.train_losses(model.layer0(), batch)
        (sum(losses.values()) + final.square().sum() * 1e-3).backward()
    return [*losses.values(), final, *(p.grad.clone() for p in model.parameters() if p.grad is not None)]


def test_kernels_equal_the_gather_definition_in_value_and_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    train = _isolated_train()
    model = _model(train, cl_weight=0.5).double()
    model.graph.values = model.graph.values.double()
    batch = random_batch(train, 12)
    want = _loss_and_grads(model, batch, True, monkeypatch)
    got = _loss_and_grads(model, batch, False, monkeypatch)
    assert len(got) == len(want) == 3 + 4  # bpr, cl, final; user and item embeddings and intents
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)

    # The two methods alone, with upstream gradients on both inputs; the isolated
    # nodes (user 3, item U + 5) have degree 0: no weights, a zero message, zero gradient.
    n = U + N_ITEMS
    grads = []
    for gather in (True, False):
        monkeypatch.setattr(dccf_module, "_kernels", lambda gather=gather: not gather)
        torch.manual_seed(5)
        a, b = (torch.randn(n, 8, dtype=torch.float64, requires_grad=True) for _ in range(2))
        out = model.weighted_message(model.adaptive_weights(a), b)
        grads.append([out, *torch.autograd.grad((out * torch.randn_like(out)).sum(), (a, b))])
    for g, w in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
        assert bool(g[[3, U + 5]].eq(0).all())


def test_kernels_train_like_the_gather_definition(demo: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(gather: bool) -> list[dict[str, float]]:
        monkeypatch.setattr(dccf_module, "_kernels", lambda: not gather)
        cfg = resolve_config("dccf", "base", "demo", {"epochs": 2, "batch_size": 2048}, device="cpu", seed=3)
        trainer = Trainer(cfg, demo)
        return [trainer.train_epoch() for _ in range(2)]

    for got, want in zip(run(False), run(True), strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-5), key
