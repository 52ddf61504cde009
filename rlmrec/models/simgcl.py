"""SimGCL (Yu et al., SIGIR 2022) as the RLMRec reference trains it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlmrec.losses import bpr_loss
from rlmrec.models.base import Batch, LayerSumBackbone, pick_rows
from rlmrec.models.configs import SimGCLConfig
from rlmrec.models.views import cross_view_nce


class SimGCL(LayerSumBackbone[SimGCLConfig]):
    """LightGCN propagation (layer SUM) with noise-perturbed contrastive views.

    A view adds ``eps * sign(E) * normalize(uniform noise)`` (row-normalized) to the
    output of every propagation layer; no edges are dropped anywhere. Each batch
    makes two perturbed passes and one clean pass; BPR (and the alignments) use the
    clean one. The contrast covers users and positive items only:
    ``cl_weight * [InfoNCE(u1, u2, all users of view 2) + InfoNCE(i1, i2, all items
    of view 2)] / B``.
    """

    def perturbed(self, ego: Tensor) -> Tensor:
        """One noisy view: the noise is a constant of the step (``sign`` has no gradient)."""
        op = self.graph.operator()
        out, layer = ego, ego
        for _ in range(self.cfg.layer_num):
            layer = op(layer)
            noise = F.normalize(torch.rand_like(layer), dim=1) * torch.sign(layer.detach())
            layer = layer + self.cfg.eps * noise
            out = out + layer
        return out

    def train_losses(self, ego: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        u = self.n_users
        view1, view2 = self.perturbed(ego), self.perturbed(ego)
        final = self.propagate(ego, training=True)
        anc, pos, neg = pick_rows(final, batch, u)
        t = self.cfg.cl_temperature
        cl = cross_view_nce(view1[:u], view2[:u], batch.users, t) + cross_view_nce(view1[u:], view2[u:], batch.pos, t)
        return {"bpr": bpr_loss(anc, pos, neg), "cl": self.cfg.cl_weight * cl / len(batch)}, final
