"""What an RLMRec alignment is: a module that may transform the layer-0 embeddings
before propagation and adds loss terms computed from the final embeddings."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rlmrec.models.base import Batch


class Alignment(nn.Module):
    """Base class: by default layer-0 embeddings pass through unchanged."""

    def prepare(self, ego: Tensor) -> tuple[Tensor, Any]:
        """Layer-0 embeddings to propagate this batch, and state for :meth:`loss`."""
        return ego, None

    def loss(self, final: Tensor, batch: Batch, state: Any) -> dict[str, Tensor]:
        raise NotImplementedError
