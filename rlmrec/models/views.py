"""The contrast between two augmented views that SGL and SimGCL add to BPR."""

from __future__ import annotations

import torch
from torch import Tensor

from rlmrec.losses import info_nce


def cross_view_nce(view1: Tensor, view2: Tensor, nodes: Tensor, temperature: float) -> Tensor:
    """``sum_b InfoNCE(view1[n_b], view2[n_b], pool = every row of view2)``.

    ``view1``/``view2`` hold one side (all users, or all items). Batches repeat
    nodes, so the term runs over the distinct nodes weighted by their counts: the
    same value and gradients as the reference's per-row sum, with less work.
    """
    distinct, counts = torch.unique(nodes, return_counts=True)
    return info_nce(view1.index_select(0, distinct), view2.index_select(0, distinct), view2, temperature, counts)
