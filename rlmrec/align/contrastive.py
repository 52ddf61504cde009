"""RLMRec-Con: contrastive alignment of CF embeddings with mapped profile embeddings
(paper eq. 8; reference ``*_plus`` models; docs/protocol.md §8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rlmrec import gemm
from rlmrec.align.base import Alignment, profile_mlp
from rlmrec.align.configs import ConConfig
from rlmrec.losses import info_nce
from rlmrec.models.base import Batch


class ContrastiveAlignment(Alignment):
    """An MLP maps every profile embedding into CF space; InfoNCE pulls each batch
    node's final embedding towards its own mapped profile:

    ``kd_weight * [InfoNCE(e_u, p_u, p of ALL users) + InfoNCE(e_i, p_i, p of the
    batch's positives) + InfoNCE(e_j, p_j, p of the batch's negatives)] / B``,
    without the last term for a backbone that trains without negatives (AutoCF).

    The reference maps all item profiles every batch but only ever reads the batch's
    rows; the MLP is row-wise, so mapping just the batch's distinct items gives the
    same numbers for less work. All users are needed: they are the user term's pool.
    Likewise each InfoNCE term runs over distinct rows weighted by their counts.
    """

    user_prf: Tensor
    item_prf: Tensor

    def __init__(
        self, cfg: ConConfig, user_prf: Tensor, item_prf: Tensor, out_dim: int, negatives: bool = True
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.negatives = negatives
        # Fixed inputs, not parameters, and not worth a place in every checkpoint.
        self.register_buffer("user_prf", user_prf, persistent=False)
        self.register_buffer("item_prf", item_prf, persistent=False)
        self.mlp: nn.Sequential = profile_mlp(user_prf.shape[1], out_dim)

    def loss(self, final: Tensor, batch: Batch, state: Any) -> dict[str, Tensor]:
        n_users = int(self.user_prf.shape[0])
        # A batch repeats users and items; repeated rows are identical terms (same CF
        # row, same mapped profile), so each distinct row is computed once and
        # weighted by its count, and repeated pool entries become log-count offsets.
        users, user_n = torch.unique(batch.users, return_counts=True)
        pos, pos_n = torch.unique(batch.pos, return_counts=True)
        # A backbone trained without negatives (AutoCF) has no negative term.
        neg, neg_n = torch.unique(batch.neg, return_counts=True) if self.negatives else (pos[:0], pos_n[:0])
        nodes = torch.cat([users, pos + n_users, neg + n_users])
        anc_e, pos_e, neg_e = final.index_select(0, nodes).split([len(users), len(pos), len(neg)])

        user_p = self.mlp(self.user_prf)  # all users: the pool of the user term
        distinct = torch.unique(torch.cat([pos, neg]))
        # Padded to a stable row count (repeats of one item, cut off again), so the GEMM
        # engine meets few shapes (rlmrec.gemm.stable_size); the MLP is row-wise.
        rows = gemm.stable_size(len(distinct), self.item_prf)
        padded = torch.cat([distinct, distinct[:1].expand(rows - len(distinct))])
        item_p = self.mlp(self.item_prf.index_select(0, padded))[: len(distinct)]
        pos_p = item_p.index_select(0, torch.searchsorted(distinct, pos))

        t = self.cfg.kd_temperature
        kd = info_nce(anc_e, user_p.index_select(0, users), user_p, t, counts=user_n) + info_nce(
            pos_e, pos_p, pos_p, t, counts=pos_n, pool_counts=pos_n
        )
        if self.negatives:
            neg_p = item_p.index_select(0, torch.searchsorted(distinct, neg))
            kd = kd + info_nce(neg_e, neg_p, neg_p, t, counts=neg_n, pool_counts=neg_n)
        return {"kd": self.cfg.kd_weight * kd / len(batch)}
