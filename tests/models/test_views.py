"""SGL and SimGCL (docs/protocol.md §7): propagation, each loss term against its
formula on a tiny graph, the augmentations, gradients, presets, and training."""

from __future__ import annotations

import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from helpers import dense_normalized, random_batch, random_interactions, tiny_dataset, train_only

from rlmrec.align import ConConfig, GenConfig
from rlmrec.config import resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.models.configs import SGLConfig, SimGCLConfig
from rlmrec.models.sgl import SGL
from rlmrec.models.simgcl import SimGCL
from rlmrec.models.views import cross_view_nce
from rlmrec.registry import build_model
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")


def _dense_sum(train: sp.csr_matrix, ego: torch.Tensor, layers: int) -> torch.Tensor:
    a = torch.from_numpy(dense_normalized(train)).to(ego.dtype)
    out, layer = ego, ego
    for _ in range(layers):
        layer = a @ layer
        out = out + layer
    return out


def _naive_nce(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor, t: float) -> torch.Tensor:
    """The reference's formula row by row: sum_rows [-a.b/t + log sum_p exp(a.p/t)]."""
    a, b, pool = F.normalize(a, dim=1), F.normalize(b, dim=1), F.normalize(pool, dim=1)
    return (-(a * b).sum(1) / t + torch.log(torch.exp(a @ pool.T / t).sum(1))).sum()


def test_cross_view_nce_over_distinct_nodes_equals_the_per_row_sum() -> None:
    gen = torch.Generator().manual_seed(0)
    v1 = torch.randn(9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    v2 = torch.randn(9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    nodes = torch.tensor([3, 1, 3, 3, 8, 1, 0])
    got = cross_view_nce(v1, v2, nodes, 0.3)
    want = _naive_nce(v1[nodes], v2[nodes], v2, 0.3)
    torch.testing.assert_close(got, want)
    g_got = torch.autograd.grad(got, (v1, v2))
    g_want = torch.autograd.grad(_naive_nce(v1[nodes], v2[nodes], v2, 0.3), (v1, v2))
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["sgl", "simgcl"])
def test_propagation_is_the_full_graph_layer_sum(kind: str) -> None:
    train = random_interactions(1, 14, 11, 0.3)
    model = _model(kind, train)
    ego = model.layer0().detach()
    for training in (False, True):
        got = model.propagate(ego, training=training)
        assert got.shape == (25, 8)
        torch.testing.assert_close(got.double(), _dense_sum(train, ego.double(), 2), rtol=1e-5, atol=1e-6)


def _model(kind: str, train: sp.csr_matrix, **kw: object) -> SGL | SimGCL:
    torch.manual_seed(0)
    if kind == "sgl":
        return SGL(SGLConfig(embedding_size=8, layer_num=2, **kw), train_only(train), CPU)
    return SimGCL(SimGCLConfig(embedding_size=8, layer_num=2, **kw), train_only(train), CPU)


@pytest.mark.parametrize("kind", ["sgl", "simgcl"])
def test_loss_terms_match_their_formulas_without_augmentation(kind: str) -> None:
    """keep_rate 1 / eps 0: both views equal the clean pass, so every term can be
    written down densely."""
    train = random_interactions(2, 14, 11, 0.3)
    kw = {"keep_rate": 1.0} if kind == "sgl" else {"eps": 0.0}
    model = _model(kind, train, cl_weight=0.7, cl_temperature=0.4, **kw)
    batch = random_batch(train, 13)
    losses, final = model.train_losses(model.layer0(), batch)
    e = _dense_sum(train, model.layer0().detach().double(), 2)
    users, items = e[:14], e[14:]
    u, i, j = users[batch.users], items[batch.pos], items[batch.neg]
    bpr = F.softplus((u * j).sum(1) - (u * i).sum(1)).mean()
    cl = _naive_nce(u, u, users, 0.4) + _naive_nce(i, i, items, 0.4)
    if kind == "sgl":
        cl = cl + _naive_nce(j, j, items, 0.4)  # SGL also contrasts the negatives; SimGCL does not
    torch.testing.assert_close(losses["bpr"].double(), bpr, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses["cl"].double(), 0.7 * cl / len(batch), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(final.double(), e, rtol=1e-5, atol=1e-7)


def test_sgl_views_drop_edges_independently() -> None:
    train = random_interactions(3, 30, 25, 0.3)
    model = _model("sgl", train, keep_rate=0.5)
    ego = model.layer0().detach()
    full = model.propagate(ego, training=True)
    view1 = model.graph.dropped(0.5).power_sum(ego, 2)
    view2 = model.graph.dropped(0.5).power_sum(ego, 2)
    assert not torch.allclose(view1, full) and not torch.allclose(view1, view2)


def test_simgcl_noise_has_norm_eps_per_row_and_the_sign_of_the_layer() -> None:
    train = random_interactions(4, 14, 11, 0.3)
    model = _model("simgcl", train, eps=0.3)
    model.cfg.layer_num = 1
    ego = model.layer0().detach()
    torch.manual_seed(5)
    view = model.perturbed(ego)
    clean_layer = model.graph.operator()(ego)
    noise = view - ego - clean_layer
    torch.testing.assert_close(noise.norm(dim=1), torch.full((25,), 0.3), rtol=1e-5, atol=1e-6)
    assert bool((torch.sign(noise) == torch.sign(clean_layer))[clean_layer != 0].all())
    torch.manual_seed(5)
    again = model.perturbed(ego)
    torch.testing.assert_close(again, view)  # the torch RNG decides every draw


@pytest.mark.parametrize("kind", ["sgl", "simgcl"])
@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_gradients_reach_every_parameter(kind: str, variant: str) -> None:
    data = tiny_dataset(5, 20, 16, 12)
    align = {"base": None, "con": ConConfig(), "gen": GenConfig(mask_ratio=0.3)}[variant]
    cfg = (SGLConfig if kind == "sgl" else SimGCLConfig)(embedding_size=8, layer_num=2)
    torch.manual_seed(0)
    rec = build_model(kind, variant, cfg, align, data, CPU)
    losses = rec.train_losses(random_batch(data.train, 16))
    assert "cl" in losses and ({"kd"} if variant == "con" else {"recon"} if variant == "gen" else set()) <= set(losses)
    torch.stack(list(losses.values())).sum().backward()
    for name, p in rec.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_presets_follow_the_reference_quirks() -> None:
    steam = resolve_config("sgl", "base", "steam")
    assert steam.model_cfg.layer_num == 3  # the per-dataset 2 is never read by the reference
    assert steam.model_cfg.cl_temperature == 0.5  # "temperature" in the base presets
    assert resolve_config("sgl", "base", "steam", {"layer_num": 2}).model_cfg.layer_num == 2  # --set still wins
    simgcl = resolve_config("simgcl", "con", "steam").model_cfg
    assert (simgcl.eps, simgcl.cl_temperature) == (0.2, 0.5) and not hasattr(simgcl, "keep_rate")


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


@pytest.mark.parametrize("kind", ["sgl", "simgcl"])
@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_a_few_epochs_on_demo_lower_every_loss_and_repeat_exactly(demo: Dataset, kind: str, variant: str) -> None:
    def run() -> list[dict[str, float]]:
        cfg = resolve_config(kind, variant, "demo", {"epochs": 4, "batch_size": 2048}, device="cpu", seed=7)
        trainer = Trainer(cfg, demo)
        return [trainer.train_epoch() for _ in range(4)]

    first = run()
    assert first[-1]["bpr"] < first[0]["bpr"] and first[-1]["cl"] < first[0]["cl"]
    assert run() == first  # same seed, same numbers
