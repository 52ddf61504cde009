"""The alignments' profile mapper: the reference's 2-layer MLP, run block by block.

The parameters are an ordinary ``nn.Sequential(Linear, LeakyReLU, Linear)`` (same
state-dict keys as the reference); :func:`apply_mlp` evaluates it in row blocks with
a hand-written backward. Same math; the difference is memory traffic: Con maps all
11,000 user profiles every batch, and the default autograd path makes five full
passes over ``[11000, 784]`` intermediates (bias copy, activation, its gradient,
the activation's backward, the bias gradient), each ~35 MB, while here the hidden
layer is produced, activated and consumed while a block is still in cache.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Hidden-layer elements per block (~4 MB of float32); GPUs take everything at once.
_BLOCK_ELEMENTS = 1 << 20


def profile_mlp(d_in: int, d_out: int) -> nn.Sequential:
    """The reference's mapper ``d_in -> (d_in + d_out) // 2 -> d_out`` (LeakyReLU).

    Weights are Xavier-uniform as in the reference; biases keep PyTorch's default
    initialization, which the reference also leaves untouched.
    """
    hidden = (d_in + d_out) // 2
    mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(), nn.Linear(hidden, d_out))
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
    return mlp


def apply_mlp(mlp: nn.Sequential, x: Tensor) -> Tensor:
    """``mlp(x)`` for a :func:`profile_mlp`, computed block by block on CPU."""
    first, act, second = mlp
    assert isinstance(first, nn.Linear) and isinstance(act, nn.LeakyReLU) and isinstance(second, nn.Linear)
    if x.device.type != "cpu":
        return mlp(x)
    out: Tensor = _BlockedMLP.apply(x, first.weight, first.bias, second.weight, second.bias, act.negative_slope)
    return out


def _rows_per_block(hidden: int) -> int:
    return max(64, _BLOCK_ELEMENTS // hidden)


class _BlockedMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, slope: float) -> Tensor:
        x = x.contiguous()
        n, hidden = x.shape[0], w1.shape[0]
        act = x.new_empty(n, hidden)
        out = x.new_empty(n, w2.shape[0])
        step = _rows_per_block(hidden)
        for s in range(0, n, step):
            e = slice(s, s + step)
            block = torch.addmm(b1, x[e], w1.T, out=act[e])
            torch.nn.functional.leaky_relu_(block, slope)
            torch.addmm(b2, block, w2.T, out=out[e])
        ctx.save_for_backward(x, w1, w2, act)
        ctx.slope = slope
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, w1, w2, act = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2, _ = ctx.needs_input_grad
        grad = grad.contiguous()
        grad_w2 = grad.T @ act if need_w2 else None
        grad_b2 = grad.sum(0) if need_b2 else None
        # d hidden = (grad @ W2) * leaky'(pre-activation); act > 0 exactly where the
        # pre-activation is (slope > 0), so the saved activation decides the branch.
        d_hidden = torch.empty_like(act)
        one, slope = act.new_ones(()), act.new_full((), ctx.slope)
        step = _rows_per_block(act.shape[1])
        for s in range(0, act.shape[0], step):
            e = slice(s, s + step)
            block = torch.mm(grad[e], w2, out=d_hidden[e])
            block.mul_(torch.where(act[e] > 0, one, slope))
        grad_w1 = d_hidden.T @ x if need_w1 else None
        grad_b1 = d_hidden.sum(0) if need_b1 else None
        grad_x = d_hidden @ w1 if need_x else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, None
