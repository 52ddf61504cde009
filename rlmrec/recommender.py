"""A backbone with an optional RLMRec alignment: the unit the trainer optimizes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rlmrec.align.base import Alignment
from rlmrec.losses import l2_reg
from rlmrec.models.base import Backbone, Batch


class Recommender(nn.Module):
    """Backbone + alignment. The training loss is the sum of the returned terms.

    Regularization is added here, over ALL parameters (alignment MLPs and mask token
    included), because the reference's ``reg_params`` sums over the whole model.
    """

    def __init__(self, backbone: Backbone, alignment: Alignment | None, reg_weight: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.alignment = alignment
        self.reg_weight = reg_weight

    def train_losses(self, batch: Batch, step: int = 0) -> dict[str, Tensor]:
        """Named loss terms for one batch (one full-graph forward, as the reference);
        ``step`` is the batch's index within its epoch."""
        ego = self.backbone.layer0()
        extra = self.backbone.before_batch(ego, step)
        state = None
        if self.alignment is not None:
            ego, state = self.alignment.prepare(ego)
        losses, final = self.backbone.train_losses(ego, batch)
        losses["reg"] = self.reg_weight * l2_reg(self.parameters())
        if self.alignment is not None:
            losses.update(self.alignment.loss(final, batch, state))
        losses.update(extra)
        return losses

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final user and item embeddings for ranking: full graph, no masking or
        dropout; profiles play no part at inference."""
        final = self.backbone.propagate(self.backbone.layer0(), training=False)
        return final[: self.backbone.n_users], final[self.backbone.n_users :]
