"""SGL (Wu et al., SIGIR 2021), edge-drop variant, as the RLMRec reference trains it."""

from __future__ import annotations

import torch
from torch import Tensor

from rlmrec.losses import bpr_loss
from rlmrec.models.base import Batch, LayerSumBackbone, pick_rows
from rlmrec.models.configs import SGLConfig
from rlmrec.models.views import cross_view_nce


class SGL(LayerSumBackbone[SGLConfig]):
    """LightGCN propagation (layer SUM) with a self-supervised contrast.

    Each batch makes three passes: two over independently edge-dropped graphs (keep
    rate ``keep_rate``, values not rescaled) and one over the full graph. BPR uses
    the full pass (so do the alignments); the contrast is
    ``cl_weight * [InfoNCE(u1, u2, all users of view 2) + InfoNCE(i1, i2, all items
    of view 2) + InfoNCE(j1, j2, all items of view 2)] / B``. Evaluation: full graph.
    """

    def train_losses(self, ego: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        cfg, u = self.cfg, self.n_users
        view1 = self.graph.dropped(cfg.keep_rate).power_sum(ego, cfg.layer_num)
        view2 = self.graph.dropped(cfg.keep_rate).power_sum(ego, cfg.layer_num)
        final = self.propagate(ego, training=True)
        anc, pos, neg = pick_rows(final, batch, u)
        t = cfg.cl_temperature
        # The positive and negative terms share one pool (all items of view 2), and
        # an item's term does not depend on its role: one pass over the distinct
        # items of both, weighted by their counts, gives the sum of the two.
        items = torch.cat([batch.pos, batch.neg])
        cl = cross_view_nce(view1[:u], view2[:u], batch.users, t) + cross_view_nce(view1[u:], view2[u:], items, t)
        return {"bpr": bpr_loss(anc, pos, neg), "cl": cfg.cl_weight * cl / len(batch)}, final
