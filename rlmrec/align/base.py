"""What an RLMRec alignment is: a module that may transform the layer-0 embeddings
before propagation and adds loss terms computed from the final embeddings."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rlmrec.models.base import Batch


def profile_mlp(d_in: int, d_out: int) -> nn.Sequential:
    """The reference's mapper ``d_in -> (d_in + d_out) // 2 -> d_out`` (LeakyReLU).

    Weights are Xavier-uniform as in the reference; biases keep PyTorch's default
    initialization, which the reference also leaves untouched.
    """
    hidden = (d_in + d_out) // 2
    # In place: the first layer's output is used by nothing else, and LeakyReLU's
    # backward can read its own result; one [rows, hidden] tensor fewer per batch.
    mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(inplace=True), nn.Linear(hidden, d_out))
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
