"""RLMRec-Gen: masked reconstruction vs the reference's formula (docs/protocol.md §6, §8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import tiny_dataset
from torch import nn

from rlmrec.align import GenConfig, GenerativeAlignment
from rlmrec.data import Dataset
from rlmrec.models.base import Batch
from rlmrec.models.gccf import GCCFConfig
from rlmrec.models.lightgcn import LightGCNConfig
from rlmrec.recommender import Recommender
from rlmrec.registry import build_model

CPU = torch.device("cpu")
NU, NI, D, E = 14, 11, 23, 8  # users, items, profile dim, embedding size
N = NU + NI


def _dataset(seed: int = 0) -> Dataset:
    return tiny_dataset(seed, NU, NI, D)


def _build(model: str = "gccf", cfg: GenConfig | None = None, seed: int = 0) -> Recommender:
    torch.manual_seed(seed)
    model_cfg = (LightGCNConfig if model == "lightgcn" else GCCFConfig)(embedding_size=E, layer_num=2)
    cfg = cfg or GenConfig(mask_ratio=0.3, recon_weight=0.7, re_temperature=0.4)
    return build_model(model, "gen", model_cfg, cfg, _dataset(), CPU)


def _align(rec: Recommender) -> GenerativeAlignment:
    assert isinstance(rec.alignment, GenerativeAlignment)
    return rec.alignment


def _batch() -> Batch:
    return Batch(torch.tensor([0, 3, 3, 7, 13]), torch.tensor([1, 4, 4, 10, 2]), torch.tensor([4, 0, 9, 2, 2]))


def _ref_recon(x: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
    """mean_rows -log( exp(x.y/t) / (sum_{y'} exp(x.y'/t) + 1e-8) + 1e-8 ), row by row."""
    x = x / x.norm(dim=-1, keepdim=True)
    y = y / y.norm(dim=-1, keepdim=True)
    terms = []
    for r in range(x.shape[0]):
        num = torch.exp(x[r] @ y[r] / t)
        den = sum(torch.exp(x[r] @ y[c] / t) for c in range(y.shape[0]))
        terms.append(-torch.log(num / (den + 1e-8) + 1e-8))
    return torch.stack(terms).mean()


@pytest.mark.parametrize(("model", "out"), [("lightgcn", E), ("gccf", E * 3)])
def test_mlp_maps_final_dim_to_profile_dim_and_mask_token_is_zero(model: str, out: int) -> None:
    rec = _build(model)
    al = _align(rec)
    assert rec.backbone.out_dim == out
    hidden = (D + out) // 2
    layers = list(al.mlp)
    assert [type(m) for m in layers] == [nn.Linear, nn.LeakyReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (out, hidden)
    assert (layers[2].in_features, layers[2].out_features) == (hidden, D)
    # One token of the layer-0 size (not the final size), zeros at init, trainable.
    assert isinstance(al.mask_token, nn.Parameter)
    assert al.mask_token.shape == (1, E)
    assert torch.equal(al.mask_token.detach(), torch.zeros(1, E))
    for layer in (layers[0], layers[2]):
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert float(layer.weight.detach().abs().max()) <= bound


@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.3, 0.5, 0.99])
def test_prepare_masks_exactly_the_reference_count_of_distinct_nodes(ratio: float) -> None:
    al = _align(_build(cfg=GenConfig(mask_ratio=ratio)))
    ego = torch.randn(N, E, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        al.mask_token.fill_(0.0)
    torch.manual_seed(1)
    masked, seeds = al.prepare(ego)
    n_masked = max(int(N * ratio), 1)
    assert seeds.shape == (n_masked,)
    assert len(set(seeds.tolist())) == n_masked
    assert int(seeds.min()) >= 0 and int(seeds.max()) < N
    is_masked = torch.zeros(N, dtype=torch.bool)
    is_masked[seeds] = True
    assert torch.equal(masked[is_masked], torch.zeros(n_masked, E))  # zeros at init
    assert torch.equal(masked[~is_masked], ego[~is_masked])  # the rest untouched


def test_prepare_uses_the_current_token_and_draws_fresh_nodes() -> None:
    al = _align(_build(cfg=GenConfig(mask_ratio=0.2)))
    ego = torch.randn(N, E, generator=torch.Generator().manual_seed(0))
    token = torch.arange(E, dtype=torch.float32).unsqueeze(0) + 1
    with torch.no_grad():
        al.mask_token.copy_(token)
    torch.manual_seed(2)
    draws = []
    for _ in range(5):
        masked, seeds = al.prepare(ego)
        assert torch.equal(masked[seeds], token.expand(len(seeds), E))
        draws.append(frozenset(seeds.tolist()))
    assert len(set(draws)) > 1
    torch.manual_seed(2)
    assert frozenset(al.prepare(ego)[1].tolist()) == draws[0]  # torch's seed decides


def test_recon_term_equals_reference_formula_on_the_masked_nodes() -> None:
    al = _align(_build()).double()
    final = torch.randn(N, E * 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    seeds = torch.tensor([3, 20, 0, 13, 14, 24, 7])  # users and items (node ids, users first)
    got = al.loss(final, _batch(), seeds)
    assert set(got) == {"recon"}
    ds = _dataset()
    profiles = torch.from_numpy(np.concatenate([ds.user_emb, ds.item_emb])).double()
    expected = 0.7 * _ref_recon(al.mlp(final[seeds]), profiles[seeds], 0.4)
    # The alignment normalizes the (float32) profiles once at construction; the formula
    # here normalizes them in float64, hence float32-level agreement.
    torch.testing.assert_close(got["recon"], expected, rtol=1e-6, atol=1e-9)
    params = [final, *al.mlp.parameters()]
    for g, r in zip(torch.autograd.grad(got["recon"], params), torch.autograd.grad(expected, params), strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-8)
    # Only the masked rows of `final` matter.
    grad_final = torch.autograd.grad(al.loss(final, _batch(), seeds)["recon"], final)[0]
    unmasked = torch.ones(N, dtype=torch.bool)
    unmasked[seeds] = False
    assert not grad_final[unmasked].any() and grad_final[seeds].abs().sum() > 0


@pytest.mark.parametrize("model", ["gccf", "lightgcn"])
def test_recommender_masks_before_the_forward_pass(model: str) -> None:
    rec = _build(model)
    al = _align(rec)
    with torch.no_grad():
        al.mask_token.normal_()  # a non-zero token makes the masking visible
    batch = _batch()
    torch.manual_seed(5)
    losses = rec.train_losses(batch)
    assert set(losses) == {"bpr", "reg", "recon"}

    # Replay: same RNG order (mask draw, then the backbone's training pass).
    torch.manual_seed(5)
    ego, seeds = al.prepare(rec.backbone.layer0())
    final = rec.backbone.propagate(ego, training=True)
    u, i, j = final[batch.users], final[NU + batch.pos], final[NU + batch.neg]
    bpr = torch.log1p(torch.exp((u * j).sum(-1) - (u * i).sum(-1))).mean()
    torch.testing.assert_close(losses["bpr"], bpr, rtol=1e-5, atol=1e-7)
    recon = 0.7 * _ref_recon(al.mlp(final[seeds]), al.prf[seeds], 0.4)
    torch.testing.assert_close(losses["recon"], recon, rtol=1e-5, atol=1e-6)
    # ... and it differs from the unmasked pass: BPR sees the masked embeddings.
    if model == "gccf":
        plain = rec.backbone.propagate(rec.backbone.layer0(), training=True)
        assert not torch.allclose(plain, final)


def test_mask_token_and_mlp_receive_gradients() -> None:
    rec = _build("lightgcn")
    torch.manual_seed(0)
    losses = rec.train_losses(_batch())
    losses["recon"].backward()
    al = _align(rec)
    assert al.mask_token.grad is not None and al.mask_token.grad.abs().sum() > 0
    for name, p in al.mlp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not al.prf.requires_grad


@pytest.mark.parametrize("model", ["lightgcn", "gccf"])
def test_regularization_covers_all_parameters_including_the_mask_token(model: str) -> None:
    rec = _build(model)
    with torch.no_grad():
        _align(rec).mask_token.fill_(3.0)  # large, so leaving it out would show
    names = {n for n, _ in rec.named_parameters()}
    assert {"alignment.mask_token", "alignment.mlp.0.weight", "alignment.mlp.2.bias"} <= names
    torch.manual_seed(0)
    reg = rec.train_losses(_batch())["reg"].detach()
    expected = rec.reg_weight * sum(p.detach().double().square().sum() for p in rec.parameters())
    assert float(reg) == pytest.approx(float(expected), rel=1e-5)
    no_token = expected - rec.reg_weight * 9.0 * E
    assert float(reg) > float(no_token) * (1 + 1e-3)


def test_profiles_are_a_buffer_outside_the_state_dict() -> None:
    ds = _dataset()
    rec = _build()
    al = _align(rec)
    # Stored once, already row-normalized (the reconstruction targets).
    raw = torch.from_numpy(np.concatenate([ds.user_emb, ds.item_emb]))
    torch.testing.assert_close(al.prf, torch.nn.functional.normalize(raw))
    assert "alignment.prf" in dict(rec.named_buffers())
    state = rec.state_dict()
    assert "alignment.prf" not in state
    assert "alignment.mask_token" in state
    fresh = _build(seed=9)
    fresh.load_state_dict(state, strict=True)
    for (n1, p1), (n2, p2) in zip(fresh.named_parameters(), rec.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
