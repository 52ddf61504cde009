"""GCCF as the RLMRec reference trains it (docs/protocol.md §2, §6, §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from helpers import dense_normalized, random_batch, random_interactions, train_only

from rlmrec.align import ConConfig, GenConfig
from rlmrec.data import Dataset
from rlmrec.models.gccf import GCCF, GCCFConfig
from rlmrec.recommender import Recommender
from rlmrec.registry import build_model

CPU = torch.device("cpu")
NU, NI = 12, 10


def _dense_gccf(adj: np.ndarray, ego: torch.Tensor, layers: int) -> torch.Tensor:
    a = torch.from_numpy(adj).to(ego.dtype)
    out = [ego]
    for _ in range(layers):
        out.append(a @ out[-1])
    return torch.cat(out, dim=-1)


def _model(train: sp.csr_matrix, d: int = 8, layers: int = 2, variant: str = "base", **kw: object) -> GCCF:
    cfg = GCCFConfig(embedding_size=d, layer_num=layers, **kw)
    return GCCF.for_variant(cfg, train_only(train), CPU, variant)


def _graph_dense(model: GCCF) -> np.ndarray:
    n = model.n_users + model.n_items
    return model.graph.operator()(torch.eye(n)).double().numpy()  # A @ eye = A


def _dataset(train: sp.csr_matrix, dim: int = 16) -> Dataset:
    rng = np.random.default_rng(0)
    empty = sp.csr_matrix(train.shape, dtype=np.float32)
    return Dataset("tiny", train, empty, empty,
                   rng.standard_normal((train.shape[0], dim)).astype(np.float32),
                   rng.standard_normal((train.shape[1], dim)).astype(np.float32))  # fmt: skip


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_output_is_the_concatenation_of_all_layers(layers: int) -> None:
    model = _model(random_interactions(0, NU, NI, 0.35), d=8, layers=layers)
    assert model.out_dim == 8 * (layers + 1)
    for training in (False, True):
        assert model.propagate(model.layer0(), training=training).shape == (NU + NI, 8 * (layers + 1))


@pytest.mark.parametrize("variant", ["base", "con"])
@pytest.mark.parametrize("layers", [1, 3])
def test_propagate_eval_equals_dense_concat(layers: int, variant: str) -> None:
    train = random_interactions(1, NU, NI, 0.35)
    model = _model(train, layers=layers, variant=variant)
    ego = model.layer0().detach()
    got = model.propagate(ego, training=False)
    expected = _dense_gccf(dense_normalized(train, self_loops=variant == "base"), ego.double(), layers)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # The first block is the layer-0 embedding itself.
    assert torch.equal(got[:, :8], ego)


def test_no_dropout_training_equals_eval() -> None:
    model = _model(random_interactions(2, NU, NI, 0.35), layers=3)
    ego = model.layer0().detach()
    torch.manual_seed(0)
    t1 = model.propagate(ego, training=True)
    t2 = model.propagate(ego, training=True)
    e = model.propagate(ego, training=False)
    assert torch.equal(t1, t2)
    assert torch.equal(t1, e)
    assert not hasattr(model.cfg, "keep_rate")


@pytest.mark.parametrize(
    ("self_loops", "variant", "expected"),
    [
        ("reference", "base", True),  # plain GCCF: self-loops
        ("reference", "con", False),  # reference QUIRK: Con/Gen train without them
        ("reference", "gen", False),
        ("always", "base", True),
        ("always", "con", True),
        ("never", "base", False),
        ("never", "gen", False),
    ],
)
def test_self_loop_quirk_and_overrides(self_loops: str, variant: str, expected: bool) -> None:
    train = random_interactions(3, NU, NI, 0.35)
    model = _model(train, variant=variant, self_loops=self_loops)
    np.testing.assert_allclose(_graph_dense(model), dense_normalized(train, self_loops=expected), rtol=1e-6, atol=1e-7)
    assert (np.diag(_graph_dense(model)) > 0).all() == expected


@pytest.mark.parametrize(("variant", "align_cfg", "loops"), [("base", None, True), ("con", ConConfig(), False),
                                                              ("gen", GenConfig(), False)])  # fmt: skip
def test_registry_wraps_con_and_gen_without_self_loops(variant: str, align_cfg: object, loops: bool) -> None:
    train = random_interactions(4, NU, NI, 0.35)
    rec = build_model("gccf", variant, GCCFConfig(embedding_size=8, layer_num=2), align_cfg, _dataset(train), CPU)
    assert isinstance(rec.backbone, GCCF)
    np.testing.assert_allclose(_graph_dense(rec.backbone), dense_normalized(train, self_loops=loops), rtol=1e-6,
                               atol=1e-7)  # fmt: skip


def test_unused_layer_weights_exist_with_xavier_bounds_and_do_not_change_propagation() -> None:
    torch.manual_seed(0)
    model = _model(random_interactions(5, NU, NI, 0.35), d=32, layers=3)
    assert len(model.layer_weights) == 3
    bound = math.sqrt(6.0 / (32 + 32))
    for w in model.layer_weights:
        assert w.shape == (32, 32) and w.requires_grad
        assert float(w.detach().abs().max()) <= bound
        assert float(w.detach().abs().max()) > 0.9 * bound
    for table, rows in ((model.user_embeds, NU), (model.item_embeds, NI)):
        assert float(table.detach().abs().max()) <= math.sqrt(6.0 / (rows + 32))
    names = {n for n, _ in model.named_parameters()}
    assert names == {"user_embeds", "item_embeds", "layer_weights.0", "layer_weights.1", "layer_weights.2"}

    ego = model.layer0().detach()
    before = model.propagate(ego, training=False)
    with torch.no_grad():
        for w in model.layer_weights:
            w.mul_(5.0).add_(1.0)
    assert torch.equal(model.propagate(ego, training=False), before)


def test_layer_weights_count_in_the_regularizer_only() -> None:
    train = random_interactions(6, NU, NI, 0.35)
    model = _model(train, layers=2)
    rec = Recommender(model, None, reg_weight=0.01)
    losses = rec.train_losses(random_batch(train, 10))
    assert set(losses) == {"bpr", "reg"}
    params = [model.user_embeds, model.item_embeds, *model.layer_weights]
    expected = 0.01 * sum(float(p.detach().double().square().sum()) for p in params)
    assert float(losses["reg"].detach()) == pytest.approx(expected, rel=1e-5)
    without = 0.01 * sum(float(p.detach().double().square().sum()) for p in params[:2])
    assert float(losses["reg"].detach()) > without * (1 + 1e-3)

    sum(losses.values()).backward()
    for w in model.layer_weights:
        # Gradient 2 * reg_weight * W: only the regularizer touches them.
        assert w.grad is not None
        torch.testing.assert_close(w.grad, 2 * 0.01 * w.detach(), rtol=1e-5, atol=1e-8)


def test_bpr_and_gradients_match_a_dense_reimplementation() -> None:
    train = random_interactions(7, NU, NI, 0.35)
    model = _model(train, layers=2)
    batch = random_batch(train, 13, seed=2)
    losses, final = model.train_losses(model.layer0(), batch)
    assert set(losses) == {"bpr"}
    u, i, j = final[batch.users], final[NU + batch.pos], final[NU + batch.neg]
    expected = torch.log1p(torch.exp((u * j).sum(-1) - (u * i).sum(-1))).mean()
    torch.testing.assert_close(losses["bpr"], expected, rtol=1e-6, atol=1e-7)
    losses["bpr"].backward()

    user = model.user_embeds.detach().double().requires_grad_()
    item = model.item_embeds.detach().double().requires_grad_()
    dense = _dense_gccf(dense_normalized(train, self_loops=True), torch.cat([user, item]), 2)
    du, di, dj = dense[batch.users], dense[NU + batch.pos], dense[NU + batch.neg]
    bpr = F.softplus((du * dj).sum(-1) - (du * di).sum(-1)).mean()
    bpr.backward()
    torch.testing.assert_close(losses["bpr"].double(), bpr, rtol=1e-5, atol=1e-6)
    for table, ref in ((model.user_embeds, user), (model.item_embeds, item)):
        assert table.grad is not None and table.grad.abs().sum() > 0
        torch.testing.assert_close(table.grad.double(), ref.grad, rtol=1e-4, atol=1e-7)
    assert all(w.grad is None for w in model.layer_weights)  # BPR never touches them
