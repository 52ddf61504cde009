"""GCCF / LR-GCCF (Chen et al., AAAI 2020) as the RLMRec reference trains it."""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.models.base import Backbone
from rlmrec.models.configs import GCCFConfig


class GCCF(Backbone):
    """Propagation on the self-loop-normalized graph; final = CONCAT of ``E_0..E_L``.

    Loss: BPR + reg. The reference keeps one ``32x32`` weight matrix per layer but
    never applies it ("performs better without W"); the matrices are kept here too
    because they count in the regularizer, which sums over all parameters.
    No edge dropout.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        cfg: GCCFConfig,
        train: sp.csr_matrix,
        device: torch.device,
        wrapped: bool = False,
    ) -> None:
        super().__init__(n_users, n_items, cfg.embedding_size)
        self.cfg = cfg
        d = cfg.embedding_size
        self.layer_weights = nn.ParameterList(
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, d))) for _ in range(cfg.layer_num)
        )
        loops = {"reference": not wrapped, "always": True, "never": False}[cfg.self_loops]
        self.graph = Graph.from_scipy(normalized_adjacency(train, self_loops=loops), device)

    @property
    def out_dim(self) -> int:
        return self.embedding_size * (self.cfg.layer_num + 1)

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        op = self.graph.operator()
        layers = [ego]
        for _ in range(self.cfg.layer_num):
            layers.append(op(layers[-1]))
        return torch.cat(layers, dim=-1)
