"""GCCF / LR-GCCF (Chen et al., AAAI 2020) as the RLMRec reference trains it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Self

import torch
from torch import Tensor, nn

from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.models.base import IDBackbone
from rlmrec.models.configs import GCCFConfig

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset


class GCCF(IDBackbone[GCCFConfig]):
    """Propagation on the self-loop-normalized graph; final = CONCAT of ``E_0..E_L``.

    Loss: BPR + reg. The reference keeps one ``32x32`` weight matrix per layer but
    never applies it ("performs better without W"); the matrices are kept here too
    because they count in the regularizer, which sums over all parameters.
    No edge dropout.
    """

    def __init__(self, cfg: GCCFConfig, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        d = cfg.embedding_size
        self.layer_weights = nn.ParameterList(
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, d))) for _ in range(cfg.layer_num)
        )
        # "reference" is the plain model's choice here; for_variant() resolves it for Con/Gen.
        loops = cfg.self_loops != "never"
        self.graph = Graph.from_scipy(normalized_adjacency(dataset.train, self_loops=loops), device)

    @classmethod
    def for_variant(cls, cfg: GCCFConfig, dataset: Dataset, device: torch.device, variant: str) -> Self:
        # Reference QUIRK: plain GCCF propagates with self-loops, its Con/Gen variants without.
        if cfg.self_loops == "reference" and variant != "base":
            cfg = replace(cfg, self_loops="never")
        return cls(cfg, dataset, device)

    @property
    def out_dim(self) -> int:
        return self.embedding_size * (self.cfg.layer_num + 1)

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        op = self.graph.operator()
        layers = [ego]
        for _ in range(self.cfg.layer_num):
            layers.append(op(layers[-1]))
        return torch.cat(layers, dim=-1)
