"""LightGCN as the reference trains it (docs/protocol.md §2, §3, §6, §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from helpers import dense_normalized, random_batch, random_interactions, train_only

from rlmrec.models.lightgcn import LightGCN, LightGCNConfig
from rlmrec.recommender import Recommender

CPU = torch.device("cpu")
F64 = torch.float64


def _model(train: sp.csr_matrix, d: int = 16, layers: int = 2, keep_rate: float = 0.8) -> LightGCN:
    cfg = LightGCNConfig(embedding_size=d, layer_num=layers, keep_rate=keep_rate)
    return LightGCN(cfg, train_only(train), CPU)


def _dense_lightgcn(adj: np.ndarray, ego: torch.Tensor, layers: int) -> torch.Tensor:
    a = torch.from_numpy(adj).to(ego.dtype)
    out, layer = ego, ego
    for _ in range(layers):
        layer = a @ layer
        out = out + layer
    return out


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_output_shape_is_embedding_size(layers: int) -> None:
    train = random_interactions(0, 12, 10, 0.35)
    model = _model(train, d=16, layers=layers)
    assert model.out_dim == 16
    for training in (False, True):
        out = model.propagate(model.layer0(), training=training)
        assert out.shape == (12 + 10, 16)


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_propagate_eval_equals_dense_layer_sum(layers: int) -> None:
    train = random_interactions(1, 12, 10, 0.35)
    model = _model(train, layers=layers)
    ego = model.layer0().detach()
    got = model.propagate(ego, training=False)
    expected = _dense_lightgcn(dense_normalized(train), ego.double(), layers)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # SUM, not mean: with L layers the mean would be expected / (L + 1).
    if layers:
        assert not torch.allclose(got.double(), expected / (layers + 1), atol=1e-4)


def test_graph_has_no_self_loops_whether_wrapped_or_not() -> None:
    train = random_interactions(2, 12, 10, 0.35)
    for variant in ("base", "con", "gen"):
        model = LightGCN.for_variant(LightGCNConfig(embedding_size=8), train_only(train), CPU, variant)
        dense = model.graph.operator()(torch.eye(22))  # A @ I = A
        np.testing.assert_allclose(dense.numpy(), dense_normalized(train), rtol=1e-6, atol=1e-7)


def test_training_passes_drop_edges_and_eval_passes_do_not() -> None:
    train = random_interactions(3, 12, 10, 0.35)
    model = _model(train)
    ego = model.layer0().detach()
    torch.manual_seed(0)
    t1 = model.propagate(ego, training=True)
    t2 = model.propagate(ego, training=True)
    e1 = model.propagate(ego, training=False)
    e2 = model.propagate(ego, training=False)
    assert torch.equal(e1, e2)
    assert not torch.allclose(t1, t2)
    assert not torch.allclose(t1, e1)
    # torch's seed determines the dropout.
    torch.manual_seed(0)
    torch.testing.assert_close(model.propagate(ego, training=True), t1, rtol=0, atol=0)


def test_keep_rate_one_means_no_dropout() -> None:
    train = random_interactions(3, 12, 10, 0.35)
    model = _model(train, keep_rate=1.0)
    ego = model.layer0().detach()
    torch.testing.assert_close(model.propagate(ego, training=True), model.propagate(ego, training=False))


def test_edge_dropout_keeps_about_keep_rate_of_entries_unrescaled() -> None:
    # One layer on identity layer-0 embeddings reads the dropped matrix off: out - I = A_dropped.
    train = random_interactions(4, 120, 100, 0.08)
    n = 220
    model = LightGCN(LightGCNConfig(embedding_size=n, layer_num=1, keep_rate=0.8), train_only(train), CPU)
    full = dense_normalized(train)
    torch.manual_seed(1)
    dropped = (model.propagate(torch.eye(n), training=True) - torch.eye(n)).double().numpy()
    stored = full != 0
    assert not (dropped[~stored]).any()  # no new edges
    kept = dropped[stored] != 0
    # Survivors keep their normalized value (no 1/keep_rate rescaling).
    np.testing.assert_allclose(dropped[stored][kept], full[stored][kept], rtol=1e-6)
    assert abs(kept.mean() - 0.8) < 0.03, kept.mean()
    # Each direction is dropped independently (the reference drops stored entries).
    assert not np.array_equal(dropped != 0, (dropped != 0).T)


def test_only_the_id_tables_are_parameters_with_xavier_bounds() -> None:
    torch.manual_seed(0)
    train = random_interactions(5, 300, 200, 0.05)
    model = LightGCN(LightGCNConfig(embedding_size=32), train_only(train), CPU)
    names = {n for n, _ in model.named_parameters()}
    assert names == {"user_embeds", "item_embeds"}
    for table, rows in ((model.user_embeds, 300), (model.item_embeds, 200)):
        assert table.shape == (rows, 32)
        bound = math.sqrt(6.0 / (rows + 32))  # xavier_uniform: fan_in = 32, fan_out = rows
        values = table.detach().abs()
        assert float(values.max()) <= bound
        assert float(values.max()) > 0.95 * bound  # uniform over the whole range, not a smaller one
        assert abs(float(table.detach().mean())) < 0.05 * bound


def test_bpr_term_of_train_losses_equals_the_formula() -> None:
    train = random_interactions(6, 12, 10, 0.35)
    model = _model(train)
    batch = random_batch(train, 9)
    ego = model.layer0()
    torch.manual_seed(7)
    losses, final = model.train_losses(ego, batch)
    assert set(losses) == {"bpr"}
    # `final` is the training (edge-dropped) pass ...
    torch.manual_seed(7)
    torch.testing.assert_close(final, model.propagate(ego, training=True), rtol=0, atol=0)
    # ... and the BPR term is mean softplus(s(u, j) - s(u, i)) on its rows.
    u, i, j = final[batch.users], final[12 + batch.pos], final[12 + batch.neg]
    expected = torch.log1p(torch.exp((u * j).sum(-1) - (u * i).sum(-1))).mean()
    torch.testing.assert_close(losses["bpr"], expected, rtol=1e-6, atol=1e-7)


def test_recommender_losses_and_gradients_match_a_dense_reimplementation() -> None:
    train = random_interactions(7, 12, 10, 0.35)
    model = _model(train, layers=2, keep_rate=1.0)  # keep_rate 1: the training pass is deterministic
    rec = Recommender(model, None, reg_weight=1e-3)
    batch = random_batch(train, 11, seed=1)
    losses = rec.train_losses(batch)
    assert set(losses) == {"bpr", "reg"}
    sum(losses.values()).backward()

    user = model.user_embeds.detach().double().requires_grad_()
    item = model.item_embeds.detach().double().requires_grad_()
    final = _dense_lightgcn(dense_normalized(train), torch.cat([user, item]), 2)
    u, i, j = final[batch.users], final[12 + batch.pos], final[12 + batch.neg]
    bpr = F.softplus((u * j).sum(-1) - (u * i).sum(-1)).mean()
    reg = 1e-3 * (user.square().sum() + item.square().sum())
    (bpr + reg).backward()

    torch.testing.assert_close(losses["bpr"].double(), bpr, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["reg"].double(), reg, rtol=1e-5, atol=1e-9)
    assert model.user_embeds.grad is not None and model.item_embeds.grad is not None
    assert model.user_embeds.grad.abs().sum() > 0 and model.item_embeds.grad.abs().sum() > 0
    torch.testing.assert_close(model.user_embeds.grad.double(), user.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(model.item_embeds.grad.double(), item.grad, rtol=1e-4, atol=1e-7)


def test_gradients_reach_embeddings_through_dropped_training_pass() -> None:
    train = random_interactions(8, 12, 10, 0.35)
    model = _model(train)
    rec = Recommender(model, None, reg_weight=0.0)
    torch.manual_seed(3)
    rec.train_losses(random_batch(train, 16))["bpr"].backward()
    for table in (model.user_embeds, model.item_embeds):
        assert table.grad is not None
        assert torch.isfinite(table.grad).all()
        assert table.grad.abs().sum() > 0
