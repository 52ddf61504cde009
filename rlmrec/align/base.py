"""What an RLMRec alignment is: a module that may transform the layer-0 embeddings
before propagation and adds loss terms computed from the final embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rlmrec import gemm
from rlmrec.models.base import Batch


class ProfileMLP(nn.Sequential):
    """``Linear -> LeakyReLU -> Linear``: an ``nn.Sequential`` (the same parameters and
    state-dict keys), whose forward pass runs as one fused step when
    :mod:`rlmrec.gemm` uses oneDNN: the first product with its LeakyReLU in one call,
    and a hand-written backward (the same gradients as autograd's, to rounding), with
    the weight gradients, sums over all rows, kept on ``torch.mm``. Con maps all
    11,000 user profiles through it every batch; this is that step's biggest cost.
    """

    def forward(self, x: Tensor) -> Tensor:
        first, act, last = self
        if not (isinstance(first, nn.Linear) and isinstance(act, nn.LeakyReLU) and isinstance(last, nn.Linear)):
            return super().forward(x)
        if gemm.engine() != "onednn" or x.device.type != "cpu" or x.dtype != torch.float32:
            return super().forward(x)
        out: Tensor = _FusedMLP.apply(x, first.weight, first.bias, last.weight, last.bias, act.negative_slope)
        return out


_BACKWARD_ROWS = 2048


class _FusedMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, slope: float) -> Tensor:
        hidden = gemm.linear(x, w1, b1, leaky_slope=slope)
        ctx.save_for_backward(x, hidden, w1, w2)
        ctx.slope = slope
        return gemm.linear(hidden, w2, b2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, hidden, w1, w2 = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad[:5]
        grad = grad.contiguous()
        grad_w2 = grad.T @ hidden if need_w2 else None
        grad_b2 = grad.sum(0) if need_b2 else None
        grad_w1 = torch.zeros_like(w1) if need_w1 else None
        grad_b1 = torch.zeros_like(hidden[0]) if need_b1 else None
        grad_x = torch.empty_like(x) if need_x else None
        # Row blocks: each block's hidden-layer gradient (2048 x 784 for Con: 6 MB) is
        # made, masked and used while in cache; the whole one (34 MB for all users)
        # would be fresh pages every batch, past glibc's mmap threshold (5% slower).
        for start in range(0, x.shape[0], _BACKWARD_ROWS):
            e = slice(start, start + _BACKWARD_ROWS)
            # LeakyReLU's backward from its output: positive exactly where its input was.
            grad_h = torch.ops.aten.leaky_relu_backward(gemm.mm(grad[e], w2), hidden[e], ctx.slope, True)
            if grad_w1 is not None:
                # A sum over rows: torch's addmm (rlmrec.gemm); out= so FlopCounterMode sees it.
                torch.addmm(grad_w1, grad_h.T, x[e], out=grad_w1)
            if grad_b1 is not None:
                grad_b1.add_(grad_h.sum(0))
            if grad_x is not None:
                grad_x[e] = gemm.mm(grad_h, w1)
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, None


def profile_mlp(d_in: int, d_out: int) -> ProfileMLP:
    """The reference's mapper ``d_in -> (d_in + d_out) // 2 -> d_out`` (LeakyReLU).

    Weights are Xavier-uniform as in the reference; biases keep PyTorch's default
    initialization, which the reference also leaves untouched.
    """
    hidden = (d_in + d_out) // 2
    # In place: the first layer's output is used by nothing else, and LeakyReLU's
    # backward can read its own result; one [rows, hidden] tensor fewer per batch.
    mlp = ProfileMLP(nn.Linear(d_in, hidden), nn.LeakyReLU(inplace=True), nn.Linear(hidden, d_out))
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
    return mlp


class Alignment(nn.Module):
    """Base class: by default layer-0 embeddings pass through unchanged."""

    def prepare(self, ego: Tensor) -> tuple[Tensor, Any]:
        """Layer-0 embeddings to propagate this batch, and state for :meth:`loss`."""
        return ego, None

    def loss(self, final: Tensor, batch: Batch, state: Any) -> dict[str, Tensor]:
        raise NotImplementedError
