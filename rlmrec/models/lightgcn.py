"""LightGCN (He et al., SIGIR 2020) as the RLMRec reference trains it."""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor

from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.models.base import Backbone
from rlmrec.models.configs import LightGCNConfig


class LightGCN(Backbone):
    """Linear propagation ``E_{l+1} = Â E_l``; final embedding = SUM of ``E_0..E_L``.

    Loss: BPR + reg. As in the reference (RLMREC.md section 6), training passes use
    an edge-dropped ``Â`` (keep rate 0.8, values not rescaled); evaluation uses the
    full graph. The layer SUM (not mean) is also the reference's.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        cfg: LightGCNConfig,
        train: sp.csr_matrix,
        device: torch.device,
        wrapped: bool = False,
    ) -> None:
        super().__init__(n_users, n_items, cfg.embedding_size)
        self.cfg = cfg
        self.graph = Graph.from_scipy(normalized_adjacency(train), device)

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        op = self.graph.dropped(self.cfg.keep_rate) if training else self.graph.operator()
        return op.power_sum(ego, self.cfg.layer_num)
