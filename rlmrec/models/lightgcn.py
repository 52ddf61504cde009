"""LightGCN (He et al., SIGIR 2020) as the RLMRec reference trains it."""

from __future__ import annotations

from torch import Tensor

from rlmrec.models.base import LayerSumBackbone
from rlmrec.models.configs import LightGCNConfig


class LightGCN(LayerSumBackbone[LightGCNConfig]):
    """Linear propagation ``E_{l+1} = Â E_l``; final embedding = SUM of ``E_0..E_L``.

    Loss: BPR + reg. As in the reference (docs/protocol.md §7), training passes use
    an edge-dropped ``Â`` (keep rate 0.8, values not rescaled); evaluation uses the
    full graph. The layer SUM (not mean) is also the reference's.
    """

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        op = self.graph.dropped(self.cfg.keep_rate) if training else self.graph.operator()
        return op.power_sum(ego, self.cfg.layer_num)
