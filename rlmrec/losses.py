"""Loss pieces shared by every backbone and alignment (docs/protocol.md §6)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from rlmrec import gemm


def bpr_loss(anc: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``mean_b softplus(s(u,j) - s(u,i))`` with ``s`` the dot product."""
    return F.softplus((anc * neg).sum(-1) - (anc * pos).sum(-1)).mean()


def l2_reg(params: Iterable[Tensor]) -> Tensor:
    """Sum of squared Frobenius norms of all given parameters (not batch-averaged)."""
    return torch.stack([_SquaredNorm.apply(p) for p in params]).sum()


class _SquaredNorm(torch.autograd.Function):
    """``||p||^2`` as one read of ``p`` forward and one write of ``2 g p`` backward.

    ``p.square().sum()`` makes a squared copy forward, and its backward three more
    passes (``p^1``, ``2 p``, ``g * 2p``); for the ID tables of every backbone that is
    a few MB of memory traffic per batch, several percent of a base-model epoch.
    Equal to ``p.square().sum()`` up to float summation order."""

    @staticmethod
    def forward(ctx, p: Tensor) -> Tensor:
        ctx.save_for_backward(p)
        flat = p.reshape(-1)
        return torch.dot(flat, flat)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (p,) = ctx.saved_tensors
        return p * (2 * grad)


def _unit_rows(x: Tensor) -> Tensor:
    # The reference's normalization: eps inside the square root, not a clamp.
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + 1e-8)


def info_nce(
    a: Tensor,
    b: Tensor,
    pool: Tensor,
    temperature: float,
    counts: Tensor | None = None,
    pool_counts: Tensor | None = None,
) -> Tensor:
    """``sum_rows [ -a.b/t + log sum_p exp(a.p/t) ]`` over L2-normalized rows.

    A SUM over rows: callers divide by the batch size, as the reference does. The
    log-sum-exp is the stable (max-shifted) form; it equals the reference's direct
    ``log(sum(exp))`` to about 1e-6 and cannot overflow at small temperatures.

    ``counts`` / ``pool_counts`` say how many times each row of ``a``/``b`` and of
    ``pool`` stands for identical rows: passing distinct rows with their counts gives
    the value and gradients of the full, repeated input, with less work.
    """
    a, b, pool = _unit_rows(a), _unit_rows(b), _unit_rows(pool)
    rows = (a * b).sum(-1)
    positive = (rows if counts is None else rows * counts).sum() / temperature
    row_w = None if counts is None else counts.to(a.dtype)
    pool_logw = None if pool_counts is None else pool_counts.to(a.dtype).log()
    return summed_pool_logsumexp(a, pool, temperature, row_w, pool_logw, unit_rows=True) - positive


# Logits are made in blocks of about this many elements per CPU thread: 2 MB of
# float32 for each thread's share of the rows, small enough to stay in cache from
# the matmul that writes a block to the reductions and matmuls that read it (each
# logit costs only d ~ 32 FMAs, so memory traffic, not arithmetic, sets the speed).
# Measured on SimGCL's Amazon-book epoch: with 2 threads 4 MB blocks beat 2 MB ones
# by 5-7%, with 1 thread 2 MB blocks beat 4 MB ones by 7%. On a GPU, few large
# blocks instead: there the cost is kernel launches, and 256 MB is nothing.
_BLOCK_ELEMENTS = 1 << 19
_MAX_BLOCK_ELEMENTS = 1 << 22
_BLOCK_ELEMENTS_GPU = 1 << 26


def rows_per_block(width: int, device: torch.device) -> int:
    """How many rows of a ``rows x width`` logits matrix make one block."""
    if device.type == "cpu":
        block = min(_BLOCK_ELEMENTS * max(torch.get_num_threads(), 1), _MAX_BLOCK_ELEMENTS)
    else:
        block = _BLOCK_ELEMENTS_GPU
    return max(16, block // max(width, 1))


def recon_row_factor(numerator: Tensor, denominator: Tensor, n: int) -> Tensor:
    """The reconstruction contrast's ``g_i = dL/dr_i * r_i`` for its ratios
    ``r_i = num_i / (den_i + 1e-8)`` (the loss is ``mean -log(r_i + 1e-8)``)."""
    ratio = numerator / (denominator + 1e-8)
    return -ratio / (n * (ratio + 1e-8))


def summed_pool_logsumexp(
    a: Tensor,
    pool: Tensor,
    temperature: float,
    row_w: Tensor | None = None,
    pool_logw: Tensor | None = None,
    unit_rows: bool = False,
) -> Tensor:
    """``sum_i w_i logsumexp_k(a_i.p_k / t + log c_k)``, block by block (weights default 1).

    The result is a scalar, so its gradient is known up to one factor while the
    logits are still in cache: the forward pass computes the softmax-weighted
    gradients at once, and the backward pass only scales them. One exp per logit,
    and no ``rows x pool`` matrix (180 MB for Amazon's user term) ever exists.

    The max-shift (two passes over every block of logits) is skipped when it cannot
    matter: every logit lies in ``[-B, B]`` with ``B = max|a_i| max|p_k| / t``
    (Cauchy-Schwarz; ``unit_rows`` says both norms are at most 1, so ``B = 1/t``),
    plus ``log c_k``; when ``exp`` of that range summed over the pool can neither
    overflow nor fall below float32's normal range, the unshifted sum is as exact as
    the shifted one. Same value to rounding.
    """
    if not (torch.is_grad_enabled() and (a.requires_grad or pool.requires_grad)):
        return _blocked_lse_sum(a, pool, temperature, row_w, pool_logw, unit_rows, with_grad=False)[0]
    out: Tensor = _SummedPoolLogSumExp.apply(a, pool, temperature, row_w, pool_logw, unit_rows)
    return out


def _unshifted_exp_is_safe(a: Tensor, pool: Tensor, t: float, pool_logw: Tensor | None, unit_rows: bool) -> bool:
    """Whether ``exp`` of every logit ``a_i.p_k / t + log c_k`` is safe unshifted:
    the largest possible row sum stays far below float32's max (e^88) and the
    smallest possible term far above its smallest normal number (e^-87)."""
    if a.numel() == 0 or pool.numel() == 0:
        return True
    if a.device.type != "cpu":
        # Reading the bound back would stall a GPU's queue on every call, and there the
        # shift's extra passes cost little: only the unit-row rule, which needs no sync.
        return unit_rows and pool_logw is None and 1.0 / t + math.log(pool.shape[0]) < 80.0
    if unit_rows:
        bound = 1.0 / t
    else:  # |a_i . p_k| <= |a_i| |p_k|: two passes over thin matrices, not rows x pool.
        bound = float(torch.linalg.vector_norm(a, dim=1).max() * torch.linalg.vector_norm(pool, dim=1).max()) / t
    low, high = -bound, bound
    if pool_logw is not None:
        low, high = low + float(pool_logw.min()), high + float(pool_logw.max())
    return high + math.log(pool.shape[0]) < 80.0 and low > -80.0


def _blocked_lse_sum(
    a: Tensor,
    pool: Tensor,
    t: float,
    row_w: Tensor | None,
    pool_logw: Tensor | None,
    unit_rows: bool,
    with_grad: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    a, pool = a.detach(), pool.detach()
    unshifted = _unshifted_exp_is_safe(a, pool, t, pool_logw, unit_rows)
    n_rows, n_pool = a.shape[0], pool.shape[0]
    a, pool, row_w, pool_logw = _stable_shapes(a, pool, row_w, pool_logw)
    # Logits come out multiplied by the exp's scale (gemm.exp_scale), offsets too.
    base = gemm.exp_scale(a)
    scaled = a / (t / base)
    if pool_logw is not None and base != 1.0:
        pool_logw = pool_logw * base
    total = a.new_zeros(())
    grad_a = torch.empty_like(a) if with_grad else a.new_empty(0)
    # Accumulated transposed: a^T W reads the block row-major, a quarter faster on
    # CPU (MKL, one thread) than W^T a, and the same sums.
    grad_pool_t = pool.new_zeros((pool.shape[1], pool.shape[0])) if with_grad else a.new_empty(0)
    # Blocks of whole row groups (16 on oneDNN, where rows are padded to 16s; else 1),
    # so the last block, too, has one of few shapes.
    group = gemm.stable_size(1, a, multiple=16)
    step = max(group, rows_per_block(pool.shape[0], a.device) // group * group)
    for s in range(0, a.shape[0], step):
        e = slice(s, s + step)
        logits = gemm.linear(scaled[e], pool, pool_logw)  # + log c_k, fused
        if unshifted:
            weights = gemm.exp_(logits)  # in place: the block is reused as exp
            norm = weights.sum(dim=1, keepdim=True)
            lse = norm.log().squeeze(1)
        else:
            shift = logits.amax(dim=1, keepdim=True)
            weights = gemm.exp_(logits.sub_(shift))
            norm = weights.sum(dim=1, keepdim=True)
            lse = (norm.log() + shift / base).squeeze(1)
        total = total + (lse if row_w is None else lse * row_w[e]).sum()
        if with_grad:
            # softmax = weights / norm; d lse_i / d a_i = softmax_i @ pool / t and
            # d lse_i / d pool = softmax_i^T a_i / t. Row factors go on thin operands.
            inv = 1.0 / (norm * t)
            if row_w is not None:
                inv.mul_(row_w[e].unsqueeze(1))
            grad_a[e] = gemm.mm(weights, pool).mul_(inv)
            gemm.add_mm_(grad_pool_t, (a[e] * inv).T, weights)
    if not with_grad:
        return total, grad_a, grad_pool_t
    return total, grad_a[:n_rows], grad_pool_t[:, :n_pool].T.contiguous()


def _stable_shapes(
    a: Tensor, pool: Tensor, row_w: Tensor | None, pool_logw: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Rows and pool padded to the sizes :func:`rlmrec.gemm.stable_size` asks for (a
    no-op unless oneDNN runs the products). Exact: a padded pool entry is a zero row
    with log-weight ``-inf``, so ``exp`` makes it 0 in every sum and gradient; a padded
    row has weight 0 in the total and its gradient is cut off."""
    n_rows, n_pool = a.shape[0], pool.shape[0]
    rows, size = gemm.stable_size(n_rows, a, multiple=16), gemm.stable_size(n_pool, a)
    if size != n_pool:
        pool = F.pad(pool, (0, 0, 0, size - n_pool))
        logw = pool_logw if pool_logw is not None else pool.new_zeros(n_pool)
        pool_logw = F.pad(logw, (0, size - n_pool), value=-math.inf)
    if rows != n_rows:
        a = F.pad(a, (0, 0, 0, rows - n_rows))
        row_w = F.pad(row_w if row_w is not None else a.new_ones(n_rows), (0, rows - n_rows))
    return a, pool, row_w, pool_logw


class _SummedPoolLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        a: Tensor,
        pool: Tensor,
        temperature: float,
        row_w: Tensor | None,
        pool_logw: Tensor | None,
        unit_rows: bool,
    ) -> Tensor:
        total, grad_a, grad_pool = _blocked_lse_sum(a, pool, temperature, row_w, pool_logw, unit_rows, with_grad=True)
        ctx.save_for_backward(grad_a, grad_pool)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None, None, None]:
        grad_a, grad_pool = ctx.saved_tensors
        return grad_a * grad, grad_pool * grad, None, None, None, None


def reconstruction_contrast(x: Tensor, y: Tensor, temperature: float, y_normalized: bool = False) -> Tensor:
    """The generative alignment's contrast, exactly as the reference writes it:
    ``mean_rows -log( exp(x.y/t) / (sum_{y'} exp(x.y'/t) + 1e-8) + 1e-8 )``
    over L2-normalized rows (``F.normalize``). Pass ``y_normalized`` when ``y``
    already has unit rows (constant profiles can be normalized once).

    The 1e-8 terms are kept (they change the value when a row is near-perfect), so
    the exponentials are not max-shifted, as in the reference. Computed block by
    block with the gradient in the same pass, like :func:`summed_pool_logsumexp`,
    and with ``x``'s normalization folded in: neither the ``masked x masked``
    similarity matrix nor a normalized copy of ``x`` is ever made. On CPU each such
    full pass over a ``[masked, 1536]`` tensor costs more than the FLOPs it saves.
    """
    if not y_normalized:
        y = F.normalize(y)
    if not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        return _blocked_recon(x, y, temperature, need_x=False, need_y=False)[0]
    out: Tensor = _ReconstructionContrast.apply(x, y, temperature)
    return out


def _blocked_recon(x: Tensor, y: Tensor, t: float, need_x: bool, need_y: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Loss and gradients for RAW ``x`` and unit-row ``y``.

    With u_i = x_i / max(|x_i|, 1e-12) (``F.normalize``), w_ik = exp(u_i.y_k / t),
    r_i = num_i / (den_i + 1e-8) and g_i = dL/dr_i * r_i = -r_i / (n (r_i + 1e-8)):
        dL/du_i = g_i / t * (y_i - sum_k w_ik y_k / (den_i + 1e-8))
        dL/dx_i = (dL/du_i - u_i (u_i . dL/du_i)) / max(|x_i|, 1e-12)   (the norm's Jacobian;
                  for a clamped norm it is just 1 / 1e-12)
        dL/dy_k = g_k / t * u_k - sum_i g_i w_ik u_i / (t (den_i + 1e-8))
    """
    x, y = x.detach(), y.detach()
    n = x.shape[0]
    norm = torch.linalg.vector_norm(x, dim=1)
    clamped = norm < 1e-12
    inv_norm = 1.0 / norm.clamp_min(1e-12)
    # The numerator as the reference computes it: from the row-wise product u_i . y_i.
    numerator = torch.exp((x * y).sum(-1) * inv_norm / t)
    denominator = torch.empty(n, device=x.device, dtype=x.dtype)
    grad_x = torch.empty_like(x) if need_x else x.new_empty(0)
    weighted_u = torch.zeros_like(y) if need_y else y.new_empty(0)
    step = rows_per_block(n, x.device)
    base = gemm.exp_scale(x)
    for s in range(0, n, step):
        e = slice(s, s + step)
        inv = inv_norm[e].unsqueeze(1)
        weights = gemm.exp_(gemm.linear(x[e], y).mul_(inv / (t / base)))
        den = weights.sum(dim=1)
        denominator[e] = den
        if not (need_x or need_y):
            continue
        g = recon_row_factor(numerator[e], den, n)
        c = (g / (t * (den + 1e-8))).unsqueeze(1)
        u = x[e] * inv
        if need_x:
            grad_u = y[e] * (g / t).unsqueeze(1) - gemm.mm(weights, y).mul_(c)
            radial = (u * grad_u).sum(1, keepdim=True)
            projected = torch.where(clamped[e].unsqueeze(1), grad_u, grad_u - u * radial)
            grad_x[e] = projected.mul_(inv)
        if need_y:
            gemm.add_mm_(weighted_u, weights.T, u * c)
    loss = -torch.log(numerator / (denominator + 1e-8) + 1e-8).mean()
    grad_y = y.new_empty(0)
    if need_y:
        g = recon_row_factor(numerator, denominator, n)
        grad_y = x * (inv_norm * g / t).unsqueeze(1) - weighted_u
    return loss, grad_x, grad_y


class _ReconstructionContrast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, temperature: float) -> Tensor:
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        loss, grad_x, grad_y = _blocked_recon(x, y, temperature, need_x, need_y)
        ctx.save_for_backward(grad_x, grad_y)
        ctx.need = (need_x, need_y)
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        grad_x, grad_y = ctx.saved_tensors
        need_x, need_y = ctx.need
        return (grad_x * grad if need_x else None), (grad_y * grad if need_y else None), None
