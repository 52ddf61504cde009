"""RLMRec-Con: contrastive alignment vs the reference's formula (docs/protocol.md §6, §8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_dataset
from torch import nn

from rlmrec.align import ConConfig, ContrastiveAlignment
from rlmrec.data import Dataset
from rlmrec.models.base import Batch
from rlmrec.models.gccf import GCCFConfig
from rlmrec.models.lightgcn import LightGCNConfig
from rlmrec.recommender import Recommender
from rlmrec.registry import build_model

CPU = torch.device("cpu")
NU, NI, D, E = 14, 11, 23, 8  # users, items, profile dim (odd: (D + out) // 2 floors), embedding size


def _dataset(seed: int = 0) -> Dataset:
    return tiny_dataset(seed, NU, NI, D)


def _build(model: str = "lightgcn", cfg: ConConfig | None = None, seed: int = 0, **model_kw: object) -> Recommender:
    torch.manual_seed(seed)
    model_cfg = (LightGCNConfig if model == "lightgcn" else GCCFConfig)(embedding_size=E, layer_num=2, **model_kw)
    return build_model(model, "con", model_cfg, cfg or ConConfig(kd_weight=0.3, kd_temperature=0.5), _dataset(), CPU)


def _batch() -> Batch:
    # Repeated users, repeated positives, negatives overlapping positives: the cases
    # the distinct-items optimization must get right.
    users = torch.tensor([0, 3, 3, 7, 13, 0, 5, 9])
    pos = torch.tensor([1, 4, 4, 10, 2, 1, 6, 4])
    neg = torch.tensor([4, 0, 9, 2, 2, 8, 1, 4])
    return Batch(users, pos, neg)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(1e-8 + (x * x).sum(-1, keepdim=True))


def _ref_info_nce(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor, t: float) -> torch.Tensor:
    a, b, pool = _unit(a), _unit(b), _unit(pool)
    return (-(a * b).sum(-1) / t + torch.log(torch.exp(a @ pool.T / t).sum(-1))).sum()


def _ref_kd(al: ContrastiveAlignment, final: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The reference: map ALL user and ALL item profiles, then index the batch's rows."""
    p_users = al.mlp(al.user_prf)
    p_items = al.mlp(al.item_prf)
    e_u, e_i, e_j = final[batch.users], final[NU + batch.pos], final[NU + batch.neg]
    p_u, p_i, p_j = p_users[batch.users], p_items[batch.pos], p_items[batch.neg]
    t = al.cfg.kd_temperature
    total = _ref_info_nce(e_u, p_u, p_users, t) + _ref_info_nce(e_i, p_i, p_i, t) + _ref_info_nce(e_j, p_j, p_j, t)
    return al.cfg.kd_weight * total / len(batch)


@pytest.mark.parametrize(("model", "out"), [("lightgcn", E), ("gccf", E * 3)])
def test_mlp_maps_profile_dim_to_final_dim(model: str, out: int) -> None:
    rec = _build(model)
    al = rec.alignment
    assert isinstance(al, ContrastiveAlignment)
    assert rec.backbone.out_dim == out
    hidden = (D + out) // 2
    layers = list(al.mlp)
    assert [type(m) for m in layers] == [nn.Linear, nn.LeakyReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (D, hidden)
    assert (layers[2].in_features, layers[2].out_features) == (hidden, out)
    assert al.mlp(al.user_prf).shape == (NU, out)


def test_kd_term_equals_naive_reference_value_and_gradients() -> None:
    al = _build().alignment
    assert isinstance(al, ContrastiveAlignment)
    al = al.double()  # float64 so the comparison is tight
    batch = _batch()
    final = torch.randn(NU + NI, E, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    params = [final, *al.mlp.parameters()]

    got = al.loss(final, batch, None)
    assert set(got) == {"kd"}
    expected = _ref_kd(al, final, batch)
    torch.testing.assert_close(got["kd"], expected, rtol=1e-9, atol=1e-12)
    got_grads = torch.autograd.grad(got["kd"], params)
    ref_grads = torch.autograd.grad(expected, params)
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-7, atol=1e-10)
    assert all(g.abs().sum() > 0 for g in got_grads)


def test_kd_is_linear_in_kd_weight() -> None:
    batch = _batch()
    final = torch.randn(NU + NI, E, generator=torch.Generator().manual_seed(2))
    one = _build(cfg=ConConfig(kd_weight=1.0, kd_temperature=0.2)).alignment
    half = _build(cfg=ConConfig(kd_weight=0.5, kd_temperature=0.2)).alignment  # same seed, same MLP
    assert one is not None and half is not None
    torch.testing.assert_close(half.loss(final, batch, None)["kd"], 0.5 * one.loss(final, batch, None)["kd"])


def test_user_pool_is_all_users_item_pools_are_the_batch() -> None:
    al = _build().alignment
    assert isinstance(al, ContrastiveAlignment)
    batch = _batch()
    final = torch.randn(NU + NI, E, generator=torch.Generator().manual_seed(3))
    base = al.loss(final, batch, None)["kd"]
    outside_user = sorted(set(range(NU)) - set(batch.users.tolist()))[0]
    outside_item = sorted(set(range(NI)) - set(batch.pos.tolist()) - set(batch.neg.tolist()))[0]
    with torch.no_grad():
        al.item_prf[outside_item] += 10.0
    assert torch.equal(al.loss(final, batch, None)["kd"], base)  # not in any item pool
    with torch.no_grad():
        al.user_prf[outside_user] += 10.0
    assert not torch.allclose(al.loss(final, batch, None)["kd"], base)  # in the user pool


def test_recommender_kd_uses_the_backbone_training_pass() -> None:
    rec = _build()
    batch = _batch()
    torch.manual_seed(11)
    losses = rec.train_losses(batch)
    assert set(losses) == {"bpr", "reg", "kd"}
    torch.manual_seed(11)  # same edge dropout as the training pass above
    final = rec.backbone.propagate(rec.backbone.layer0(), training=True)
    assert rec.alignment is not None
    torch.testing.assert_close(losses["kd"], _ref_kd(rec.alignment, final, batch), rtol=1e-5, atol=1e-7)  # type: ignore[arg-type]


def test_mlp_and_embeddings_receive_gradients_profiles_do_not() -> None:
    rec = _build()
    torch.manual_seed(0)
    losses = rec.train_losses(_batch())
    losses["kd"].backward()
    al = rec.alignment
    assert isinstance(al, ContrastiveAlignment)
    for name, p in al.mlp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert rec.backbone.user_embeds.grad is not None and rec.backbone.user_embeds.grad.abs().sum() > 0
    assert rec.backbone.item_embeds.grad is not None and rec.backbone.item_embeds.grad.abs().sum() > 0
    assert not al.user_prf.requires_grad and not al.item_prf.requires_grad


@pytest.mark.parametrize("model", ["lightgcn", "gccf"])
def test_regularization_covers_all_parameters(model: str) -> None:
    rec = _build(model)
    names = {n for n, _ in rec.named_parameters()}
    assert {"alignment.mlp.0.weight", "alignment.mlp.0.bias", "alignment.mlp.2.weight", "alignment.mlp.2.bias"} <= names
    torch.manual_seed(0)
    reg = rec.train_losses(_batch())["reg"].detach()
    expected = rec.reg_weight * sum(p.detach().double().square().sum() for p in rec.parameters())
    assert float(reg) == pytest.approx(float(expected), rel=1e-5)
    backbone_only = rec.reg_weight * sum(p.detach().double().square().sum() for p in rec.backbone.parameters())
    assert float(reg) > float(backbone_only) * (1 + 1e-3)


def test_profiles_are_buffers_outside_the_state_dict() -> None:
    ds = _dataset()
    rec = _build()
    buffers = dict(rec.named_buffers())
    np.testing.assert_array_equal(buffers["alignment.user_prf"].numpy(), ds.user_emb)
    np.testing.assert_array_equal(buffers["alignment.item_prf"].numpy(), ds.item_emb)
    state = rec.state_dict()
    assert not any(k.endswith("_prf") for k in state)
    assert not any("prf" in n for n, _ in rec.named_parameters())
    fresh = _build(seed=5)
    fresh.load_state_dict(state, strict=True)
    torch.testing.assert_close(fresh.alignment.user_prf, rec.alignment.user_prf)  # type: ignore[union-attr]
    for (n1, p1), (n2, p2) in zip(fresh.named_parameters(), rec.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
