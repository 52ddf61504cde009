"""Loss pieces shared by every backbone and alignment (RLMREC.md section 5)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(anc: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``mean_b softplus(s(u,j) - s(u,i))`` with ``s`` the dot product."""
    return F.softplus((anc * neg).sum(-1) - (anc * pos).sum(-1)).mean()


def l2_reg(params: Iterable[Tensor]) -> Tensor:
    """Sum of squared Frobenius norms of all given parameters (not batch-averaged)."""
    return torch.stack([p.square().sum() for p in params]).sum()


def _unit_rows(x: Tensor) -> Tensor:
    # The reference's normalization: eps inside the square root, not a clamp.
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + 1e-8)


def info_nce(a: Tensor, b: Tensor, pool: Tensor, temperature: float) -> Tensor:
    """``sum_rows [ -a.b/t + log sum_p exp(a.p/t) ]`` over L2-normalized rows.

    A SUM over rows: callers divide by the batch size, as the reference does. The
    log-sum-exp is the stable (max-shifted) form; it equals the reference's direct
    ``log(sum(exp))`` to about 1e-6 and cannot overflow at small temperatures.
    """
    a, b, pool = _unit_rows(a), _unit_rows(b), _unit_rows(pool)
    positive = (a * b).sum() / temperature
    return summed_pool_logsumexp(a, pool, temperature) - positive


# Logits are made in blocks of about this many elements (4 MB of float32): small
# enough to stay in cache from the matmul that writes a block to the reductions and
# matmuls that read it. Each logit costs only d (~32) FMAs, so on CPU memory
# traffic, not arithmetic, sets the speed of this loss.
_BLOCK_ELEMENTS = 1 << 20


def summed_pool_logsumexp(a: Tensor, pool: Tensor, temperature: float) -> Tensor:
    """``logsumexp(a @ pool.T / t, dim=-1).sum()``, block by block.

    The result is a scalar, so its gradient is known up to one factor while the
    logits are still in cache: the forward pass computes the softmax-weighted
    gradients at once, and the backward pass only scales them. One exp per logit,
    and no ``rows x pool`` matrix (180 MB for Amazon's user term) ever exists.
    """
    if not (torch.is_grad_enabled() and (a.requires_grad or pool.requires_grad)):
        return _blocked_lse_sum(a, pool, temperature, with_grad=False)[0]
    out: Tensor = _SummedPoolLogSumExp.apply(a, pool, temperature)
    return out


def _blocked_lse_sum(a: Tensor, pool: Tensor, t: float, with_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    a, pool = a.detach(), pool.detach()
    scaled = a / t
    pool_t = pool.T.contiguous()
    total = a.new_zeros(())
    grad_a = torch.empty_like(a) if with_grad else a.new_empty(0)
    grad_pool = torch.zeros_like(pool) if with_grad else a.new_empty(0)
    step = max(16, _BLOCK_ELEMENTS // max(pool.shape[0], 1))
    for s in range(0, a.shape[0], step):
        e = slice(s, s + step)
        logits = scaled[e] @ pool_t
        shift = logits.amax(dim=1, keepdim=True)
        weights = logits.sub_(shift).exp_()  # in place: the block is reused as exp
        norm = weights.sum(dim=1, keepdim=True)
        total = total + (norm.log() + shift).sum()
        if with_grad:
            # softmax = weights / norm; d lse_i / d a_i = softmax_i @ pool / t and
            # d lse_i / d pool = softmax_i^T a_i / t. Row factors go on thin operands.
            inv = 1.0 / (norm * t)
            grad_a[e] = (weights @ pool).mul_(inv)
            grad_pool.addmm_(weights.T, a[e] * inv)
    return total, grad_a, grad_pool


class _SummedPoolLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, pool: Tensor, temperature: float) -> Tensor:
        total, grad_a, grad_pool = _blocked_lse_sum(a, pool, temperature, with_grad=True)
        ctx.save_for_backward(grad_a, grad_pool)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        grad_a, grad_pool = ctx.saved_tensors
        return grad_a * grad, grad_pool * grad, None


def reconstruction_contrast(x: Tensor, y: Tensor, temperature: float) -> Tensor:
    """The generative alignment's contrast, exactly as the reference writes it:
    ``mean_rows -log( exp(x.y/t) / (sum_{y'} exp(x.y'/t) + 1e-8) + 1e-8 )``.

    The 1e-8 terms are kept (they change the value when a row is near-perfect),
    so this is computed in the reference's direct form rather than as a logsumexp.
    """
    x, y = F.normalize(x), F.normalize(y)
    logits = x @ y.T / temperature
    numerator = torch.exp((x * y).sum(-1) / temperature)
    denominator = torch.exp(logits).sum(-1)
    return -torch.log(numerator / (denominator + 1e-8) + 1e-8).mean()
