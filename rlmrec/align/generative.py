"""RLMRec-Gen: masked-node reconstruction of profile embeddings from CF embeddings
(paper eq. 9; reference ``*_gene`` models; docs/protocol.md §8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec.align.base import Alignment, profile_mlp
from rlmrec.align.configs import GenConfig
from rlmrec.align.gen_logits import linear_reconstruction_contrast
from rlmrec.losses import reconstruction_contrast
from rlmrec.models.base import Batch


class GenerativeAlignment(Alignment):
    """Each batch, ``mask_ratio`` of all nodes, drawn uniformly without replacement,
    get one learnable mask token (zeros at start) as layer-0 embedding; an MLP maps
    their final embeddings to profile space, scored by a contrast over the masked set:

    ``recon_weight * reconstruction_contrast(MLP(e_masked), s_masked, re_temperature)``.

    That is the definition; it is computed with the MLP's last linear layer fused into
    the contrast (:func:`~rlmrec.align.gen_logits.linear_reconstruction_contrast`), which
    forms the logits in the MLP's hidden space when that costs fewer multiply-adds.
    """

    prf: Tensor

    def __init__(self, cfg: GenConfig, user_prf: Tensor, item_prf: Tensor, out_dim: int, embedding_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        # Reconstruction targets: normalized once here instead of every batch (row-wise,
        # so normalizing the chosen rows later would give the same values).
        self.register_buffer("prf", F.normalize(torch.cat([user_prf, item_prf])), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, embedding_size))
        self.mlp: nn.Sequential = profile_mlp(out_dim, int(self.prf.shape[1]))

    def prepare(self, ego: Tensor) -> tuple[Tensor, Tensor]:
        n = ego.shape[0]
        n_masked = max(int(n * self.cfg.mask_ratio), 1)  # the reference's count
        seeds = torch.randperm(n, device=ego.device)[:n_masked]
        masked = torch.zeros(n, 1, dtype=torch.bool, device=ego.device)
        masked[seeds] = True
        return torch.where(masked, self.mask_token, ego), seeds

    def loss(self, final: Tensor, batch: Batch, state: Tensor) -> dict[str, Tensor]:
        seeds = state
        *body, last = self.mlp
        hidden = final.index_select(0, seeds)
        for layer in body:
            hidden = layer(hidden)
        target = self.prf.index_select(0, seeds)
        t = self.cfg.re_temperature
        if isinstance(last, nn.Linear):
            # = reconstruction_contrast(last(hidden), target, t): the same value and
            # gradients to rounding, in whichever space is cheaper for this count.
            recon = linear_reconstruction_contrast(hidden, last.weight, last.bias, target, t)
        else:
            recon = reconstruction_contrast(last(hidden), target, t, y_normalized=True)
        return {"recon": self.cfg.recon_weight * recon}
