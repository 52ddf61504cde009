"""RLMRec-Con: contrastive alignment of CF embeddings with mapped profile embeddings
(paper eq. 8; reference ``*_plus`` models; RLMREC.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rlmrec.align.base import Alignment, profile_mlp
from rlmrec.losses import info_nce
from rlmrec.models.base import Batch, pick_rows


@dataclass
class ConConfig:
    kd_weight: float = 0.01  # published common value; presets tune it per dataset
    kd_temperature: float = 0.2  # InfoNCE temperature of the alignment term


class ContrastiveAlignment(Alignment):
    """An MLP maps every profile embedding into CF space; InfoNCE pulls each batch
    node's final embedding towards its own mapped profile:

    ``kd_weight * [InfoNCE(e_u, p_u, p of ALL users) + InfoNCE(e_i, p_i, p of the
    batch's positives) + InfoNCE(e_j, p_j, p of the batch's negatives)] / B``.

    The reference maps all item profiles every batch but only ever reads the batch's
    rows; the MLP is row-wise, so mapping just the batch's distinct items gives the
    same numbers for less work. All users are needed: they are the user term's pool.
    """

    user_prf: Tensor
    item_prf: Tensor

    def __init__(self, cfg: ConConfig, user_prf: Tensor, item_prf: Tensor, out_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        # Fixed inputs, not parameters, and not worth a place in every checkpoint.
        self.register_buffer("user_prf", user_prf, persistent=False)
        self.register_buffer("item_prf", item_prf, persistent=False)
        self.mlp: nn.Sequential = profile_mlp(user_prf.shape[1], out_dim)

    def loss(self, final: Tensor, batch: Batch, state: Any) -> dict[str, Tensor]:
        anc, pos, neg = pick_rows(final, batch, int(self.user_prf.shape[0]))
        user_p = self.mlp(self.user_prf)
        distinct, where = torch.unique(torch.cat([batch.pos, batch.neg]), return_inverse=True)
        item_p = self.mlp(self.item_prf.index_select(0, distinct)).index_select(0, where)
        pos_p, neg_p = item_p.split(len(batch))

        t = self.cfg.kd_temperature
        anc_p = user_p.index_select(0, batch.users)
        kd = info_nce(anc, anc_p, user_p, t) + info_nce(pos, pos_p, pos_p, t) + info_nce(neg, neg_p, neg_p, t)
        return {"kd": self.cfg.kd_weight * kd / len(batch)}
