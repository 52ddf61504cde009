"""Shared loss pieces vs the reference's formulas (docs/protocol.md §6)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rlmrec.losses as losses
from rlmrec.losses import bpr_loss, info_nce, l2_reg, reconstruction_contrast, summed_pool_logsumexp

F64 = torch.float64


def _randn(*shape: int, seed: int, grad: bool = True) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=F64).requires_grad_(grad)


def test_bpr_loss_formula() -> None:
    anc, pos, neg = (_randn(7, 4, seed=s) for s in range(3))
    got = bpr_loss(anc, pos, neg)
    s_pos = (anc * pos).sum(-1)
    s_neg = (anc * neg).sum(-1)
    expected = torch.log1p(torch.exp(s_neg - s_pos)).mean()  # softplus, written out
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_bpr_loss_hand_value() -> None:
    # One triple: s_pos = 1*2 = 2, s_neg = 1*0 = 0 -> softplus(-2) = log(1 + e^-2) = 0.126928
    one = torch.tensor([[1.0]], dtype=F64)
    got = bpr_loss(one, torch.tensor([[2.0]], dtype=F64), torch.tensor([[0.0]], dtype=F64))
    assert got.item() == pytest.approx(0.1269280110429725, abs=1e-12)


def test_l2_reg_is_sum_of_squared_norms() -> None:
    params = [_randn(3, 4, seed=0), _randn(5, seed=1), _randn(2, 2, 2, seed=2)]
    expected = sum(p.norm() ** 2 for p in params)
    torch.testing.assert_close(l2_reg(params), expected, rtol=1e-12, atol=1e-12)
    # Hand value: ||[1, 2]||^2 + ||[[3]]||^2 = 1 + 4 + 9 = 14 (a sum, not a mean).
    hand = l2_reg([torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([[3.0]], dtype=F64)])
    assert hand.item() == 14.0
    # Generators work too (model.parameters()).
    torch.testing.assert_close(l2_reg(p for p in params), expected)


def test_l2_reg_gradient_is_twice_the_parameter() -> None:
    """The hand-written backward (one pass) against autograd of square().sum()."""
    params = [_randn(6, 3, seed=3), _randn(4, seed=4)]
    weight = torch.tensor(0.37, dtype=F64)
    (weight * l2_reg(params)).backward()
    got = [p.grad.clone() for p in params]  # type: ignore[union-attr]
    for p in params:
        p.grad = None
    (weight * torch.stack([p.square().sum() for p in params]).sum()).backward()
    for p, g in zip(params, got, strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-14, atol=0)
        torch.testing.assert_close(g, 2 * 0.37 * p.detach(), rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------
# InfoNCE
# ---------------------------------------------------------------------------


def _reference_info_nce(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor, t: float) -> torch.Tensor:
    """The reference's direct form: eps inside the sqrt, log(sum(exp)) not logsumexp."""

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(1e-8 + (x * x).sum(-1, keepdim=True))

    a, b, pool = unit(a), unit(b), unit(pool)
    positive = (a * b).sum(-1) / t
    pool_term = torch.log(torch.exp(a @ pool.T / t).sum(-1))
    return (-positive + pool_term).sum()


def _compare_info_nce(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor, t: float) -> None:
    leaves = [x for x in (a, b, pool) if x.is_leaf]
    got = info_nce(a, b, pool, t)
    grads = torch.autograd.grad(got, leaves)
    expected = _reference_info_nce(a, b, pool, t)
    grads_ref = torch.autograd.grad(expected, leaves)
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-8)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("t", [0.1, 0.2, 1.0])
def test_info_nce_matches_reference_values_and_grads(t: float) -> None:
    a, b, pool = _randn(6, 8, seed=0), _randn(6, 8, seed=1), _randn(11, 8, seed=2)
    _compare_info_nce(a, b, pool, t)


def test_info_nce_is_a_sum_over_rows() -> None:
    a, b, pool = _randn(5, 4, seed=3), _randn(5, 4, seed=4), _randn(9, 4, seed=5)
    whole = info_nce(a, b, pool, 0.5)
    parts = sum(info_nce(a[i : i + 1], b[i : i + 1], pool, 0.5) for i in range(5))
    torch.testing.assert_close(whole, parts, rtol=1e-10, atol=1e-10)


def test_info_nce_several_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # pool of 10 rows -> step = max(16, 64 // 10) = 16 rows per block: 70 rows = 5 blocks.
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 64)
    a, b, pool = _randn(70, 6, seed=6), _randn(70, 6, seed=7), _randn(10, 6, seed=8)
    _compare_info_nce(a, b, pool, 0.2)


def test_info_nce_pool_shared_with_b(monkeypatch: pytest.MonkeyPatch) -> None:
    # The usual call: b is rows of the pool (e.g. a batch's users among all users),
    # so gradients from both uses must add up.
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 64)
    a, pool = _randn(40, 5, seed=9), _randn(30, 5, seed=10)
    idx = torch.randint(0, 30, (40,), generator=torch.Generator().manual_seed(0))
    got = info_nce(a, pool[idx], pool, 0.3)
    ga, gp = torch.autograd.grad(got, [a, pool])
    expected = _reference_info_nce(a, pool[idx], pool, 0.3)
    ra, rp = torch.autograd.grad(expected, [a, pool])
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(ga, ra, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(gp, rp, rtol=1e-8, atol=1e-8)


def test_info_nce_non_leaf_inputs_and_upstream_scale() -> None:
    # Inputs produced by other ops (an MLP in practice), and a loss scaled afterwards.
    w = _randn(4, 4, seed=11)
    x, y, z = _randn(8, 4, seed=12, grad=False), _randn(8, 4, seed=13), _randn(12, 4, seed=14)
    got = 0.37 * info_nce(x @ w, y, z @ w, 0.2)
    expected = 0.37 * _reference_info_nce(x @ w, y, z @ w, 0.2)
    g = torch.autograd.grad(got, [w, y])
    r = torch.autograd.grad(expected, [w, y])
    for a, b in zip(g, r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_info_nce_only_pool_requires_grad() -> None:
    a, b = _randn(5, 3, seed=15, grad=False), _randn(5, 3, seed=16, grad=False)
    pool = _randn(7, 3, seed=17)
    (g,) = torch.autograd.grad(info_nce(a, b, pool, 0.5), [pool])
    (r,) = torch.autograd.grad(_reference_info_nce(a, b, pool, 0.5), [pool])
    torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-8)


def test_info_nce_under_no_grad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 64)
    a, b, pool = _randn(50, 6, seed=18), _randn(50, 6, seed=19), _randn(9, 6, seed=20)
    with torch.no_grad():
        got = info_nce(a, b, pool, 0.2)
        expected = _reference_info_nce(a, b, pool, 0.2)
    assert not got.requires_grad
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-8)


def test_info_nce_hand_value() -> None:
    # a = b = [1, 0], pool = {[1, 0], [0, 1]}, t = 1:
    # -1 + log(e^1 + e^0) = -1 + 1.3132617 = 0.3132617 (up to the 1e-8 eps)
    a = torch.tensor([[1.0, 0.0]], dtype=F64)
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    assert info_nce(a, a, pool, 1.0).item() == pytest.approx(0.31326168751822286, abs=1e-7)


def test_info_nce_float32_small_temperature_is_finite() -> None:
    # The stable logsumexp cannot overflow where exp(1/t) does in float32 (t = 0.01: e^100).
    a = torch.randn(8, 4, requires_grad=True)
    pool = torch.randn(20, 4)
    out = info_nce(a, a.detach(), pool, 0.01)
    assert torch.isfinite(out)
    (g,) = torch.autograd.grad(out, [a])
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("t", [0.05, 0.2, 1.0])
def test_unit_row_logsumexp_without_shift_equals_the_shifted_one(t: float) -> None:
    # Unit rows bound the logits by 1/t, so the unshifted exp is exact to rounding
    # (float32, a pool of 3,000 rows as in Amazon-sized batches).
    gen = torch.Generator().manual_seed(5)
    a = F.normalize(torch.randn(300, 32, generator=gen)).requires_grad_()
    pool = F.normalize(torch.randn(3000, 32, generator=gen)).requires_grad_()
    w = torch.rand(300, generator=gen)
    fast = summed_pool_logsumexp(a, pool, t, w, unit_rows=True)
    safe = summed_pool_logsumexp(a, pool, t, w, unit_rows=False)
    exact = summed_pool_logsumexp(a.double(), pool.double(), t, w.double(), unit_rows=False)
    torch.testing.assert_close(fast.double(), exact, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(fast, safe, rtol=1e-6, atol=0.0)
    grads = [torch.autograd.grad(x, (a, pool)) for x in (fast, safe, exact)]
    for g_fast, g_safe, g_exact in zip(*grads, strict=True):
        # Both float32 paths are as close to float64 as each other.
        err_fast, err_safe = (g_fast.double() - g_exact).abs().max(), (g_safe.double() - g_exact).abs().max()
        assert err_fast <= 2 * err_safe + 1e-9 and err_fast < 1e-6 * g_exact.abs().max() * 10


@pytest.mark.parametrize(
    ("scale", "logw", "unshifted"),
    [(0.5, False, True), (1.5, True, True), (8.0, False, False), (0.5, True, True)],
)
def test_raw_rows_skip_the_shift_only_where_the_norm_bound_allows(scale: float, logw: bool, unshifted: bool) -> None:
    """AutoCF's raw dot products and Con's log-count offsets: the shift is skipped
    where the Cauchy-Schwarz bound keeps exp in float32's normal range, and either
    way the float32 result matches float64's logsumexp of the same logits."""
    gen = torch.Generator().manual_seed(6)
    a = (torch.randn(300, 32, generator=gen) * scale / 32**0.5).requires_grad_()
    pool = (torch.randn(3000, 32, generator=gen) * scale / 32**0.5 * 2).requires_grad_()
    w = torch.rand(300, generator=gen)
    pool_logw = torch.randint(1, 50, (3000,), generator=gen).float().log() if logw else None
    assert losses._unshifted_exp_is_safe(a.detach(), pool.detach(), 1.0, pool_logw, False) == unshifted
    got = summed_pool_logsumexp(a, pool, 1.0, w, pool_logw)
    logits = a.double() @ pool.double().T + (0.0 if pool_logw is None else pool_logw.double())
    exact = (torch.logsumexp(logits, dim=1) * w.double()).sum()
    torch.testing.assert_close(got.double(), exact, rtol=2e-6, atol=0.0)
    grads = torch.autograd.grad(got, (a, pool))
    for g, r in zip(grads, torch.autograd.grad(exact, (a, pool)), strict=True):
        torch.testing.assert_close(g.double(), r.double(), rtol=1e-4, atol=1e-4 * float(r.abs().max()))


def test_unshifted_bound_is_refused_for_large_norms() -> None:
    # |a| |p| = 100 > 80: exp(100) overflows float32, so the shift must stay.
    a, pool = torch.full((2, 4), 5.0), torch.full((3, 4), 5.0)
    assert not losses._unshifted_exp_is_safe(a, pool, 1.0, None, False)
    assert torch.isfinite(summed_pool_logsumexp(a, pool, 1.0))


# ---------------------------------------------------------------------------
# Reconstruction contrast
# ---------------------------------------------------------------------------


def _reference_recon(x: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
    x, y = F.normalize(x), F.normalize(y)
    pos = torch.exp((x * y).sum(-1) / t)
    total = torch.exp(x @ y.T / t).sum(-1)
    return -torch.log(pos / (total + 1e-8) + 1e-8).mean()


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_reconstruction_contrast_values_and_grads(t: float) -> None:
    x, y = _randn(9, 5, seed=21), _randn(9, 5, seed=22)
    got = reconstruction_contrast(x, y, t)
    expected = _reference_recon(x, y, t)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    g = torch.autograd.grad(got, [x, y])
    r = torch.autograd.grad(expected, [x, y])
    for a, b in zip(g, r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_reconstruction_contrast_is_a_mean_and_keeps_eps() -> None:
    # One row: softmax over a single column is 1, so the loss is -log(1/(1+1e-8 e^-1/t) + 1e-8)
    # ~ -1e-8 (negative!) rather than 0: the 1e-8 terms are kept as the reference has them.
    x = torch.tensor([[1.0, 0.0]], dtype=F64)
    got = reconstruction_contrast(x, x, 1.0).item()
    e = torch.e
    expected = -torch.log(torch.tensor(e / (e + 1e-8) + 1e-8, dtype=F64)).item()
    assert got == pytest.approx(expected, abs=1e-15)
    assert got < 0
    # Mean over rows: duplicating the batch changes the denominators, so instead check
    # against per-row values from the written-out formula.
    xs, ys = _randn(4, 3, seed=23, grad=False), _randn(4, 3, seed=24, grad=False)
    xn, yn = F.normalize(xs), F.normalize(ys)
    logits = xn @ yn.T / 0.5
    rows = -torch.log(torch.exp(logits.diagonal()) / (torch.exp(logits).sum(-1) + 1e-8) + 1e-8)
    torch.testing.assert_close(reconstruction_contrast(xs, ys, 0.5), rows.mean(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("need_y", [True, False])
def test_reconstruction_contrast_blocked_matches_formula(monkeypatch: pytest.MonkeyPatch, need_y: bool) -> None:
    # Several row blocks (block of 64 elements over 40 columns -> 16-row blocks), with
    # and without a gradient for y (the profiles are constant in training).
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 64)
    x, y = _randn(40, 6, seed=31), _randn(40, 6, seed=32, grad=need_y)
    got = reconstruction_contrast(x, y, 0.3)
    expected = _reference_recon(x, y, 0.3)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    inputs = [x, y] if need_y else [x]
    for a, b in zip(torch.autograd.grad(got, inputs), torch.autograd.grad(expected, inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)
