"""DCCF (Ren et al., SIGIR 2023) as the RLMRec reference trains it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec import sparse
from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.losses import bpr_loss, info_nce
from rlmrec.models.base import Batch, IDBackbone, pick_rows
from rlmrec.models.configs import DCCFConfig

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset


@dataclass
class Signals:
    """Per layer: graph message, intent signal, and the two adaptively weighted
    graph signals (from graph-message and from intent similarities)."""

    gnn: list[Tensor]
    intent: list[Tensor]
    gaa: list[Tensor]
    iaa: list[Tensor]
    final: Tensor


class DCCF(IDBackbone[DCCFConfig]):
    """Intent-aware, disentangled propagation with adaptive edge re-weighting.

    Per layer ``l`` four signals come from ``E_l``: ``Â E_l``; the intent signal
    ``softmax(E_l W) W^T`` (separate user and item intent matrices); and two graph
    signals whose edge weights are ``(cos(head, tail) + 1) / 2`` of the graph-message
    and of the intent embeddings, each row-normalized by its weighted degree.
    ``E_{l+1} = sum of the four + E_l``; final = SUM of ``E_0..E_L``. Loss: BPR + reg +
    ``cl_weight`` x an InfoNCE between the graph message and each other signal, per
    layer, on the batch's distinct users and distinct positive items, the pool being
    the same rows of the other signal. QUIRK kept: the item terms are divided by the
    number of distinct *users*, as the reference does.
    """

    def __init__(self, cfg: DCCFConfig, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        self.graph = Graph.from_scipy(normalized_adjacency(dataset.train), device)
        # Edge list in CSR order (both directions, as the reference's plain adjacency).
        heads, tails = self.graph.edges()
        self.register_buffer("heads", heads, persistent=False)
        self.register_buffer("tails", tails, persistent=False)
        d, k = cfg.embedding_size, cfg.intent_num
        self.user_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, k)))
        self.item_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, k)))

    heads: Tensor
    tails: Tensor

    def adaptive_weights(self, embeds: Tensor) -> Tensor:
        """``(cos(e_h, e_t) + 1) / 2`` per edge, divided by the sum over the head's edges."""
        unit = F.normalize(embeds, dim=1)
        alpha = ((unit.index_select(0, self.heads) * unit.index_select(0, self.tails)).sum(1) + 1) / 2
        degree = sparse.scatter_sum(alpha, self.heads, embeds.shape[0])
        inv = torch.where(degree > 0, 1.0 / degree, torch.zeros_like(degree))
        return alpha * inv.index_select(0, self.heads)

    def weighted_message(self, weights: Tensor, embeds: Tensor) -> Tensor:
        """``sum_t w_ht e_t`` for every head: a sparse product differentiable in the weights."""
        messages = weights.unsqueeze(1) * embeds.index_select(0, self.tails)
        return sparse.scatter_sum(messages, self.heads, embeds.shape[0])

    def signals(self, ego: Tensor) -> Signals:
        op = self.graph.operator()
        out = Signals([], [], [], [], ego)
        layer = ego
        for _ in range(self.cfg.layer_num):
            gnn = op(layer)
            users, items = layer[: self.n_users], layer[self.n_users :]
            intent = torch.cat([
                torch.softmax(users @ self.user_intent, dim=1) @ self.user_intent.T,
                torch.softmax(items @ self.item_intent, dim=1) @ self.item_intent.T,
            ])  # fmt: skip
            gaa = self.weighted_message(self.adaptive_weights(gnn), layer)
            iaa = self.weighted_message(self.adaptive_weights(intent), layer)
            layer = gnn + intent + gaa + iaa + layer
            out.gnn.append(gnn)
            out.intent.append(intent)
            out.gaa.append(gaa)
            out.iaa.append(iaa)
            out.final = out.final + layer
        return out

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        return self.signals(ego).final

    def contrast(self, s: Signals, batch: Batch) -> Tensor:
        users = torch.unique(batch.users)
        items = torch.unique(batch.pos) + self.n_users
        t, total = self.cfg.cl_temperature, s.final.new_zeros(())
        for gnn, *others in zip(s.gnn, s.intent, s.gaa, s.iaa, strict=True):
            for nodes in (users, items):
                anchor = gnn.index_select(0, nodes)
                for other in others:
                    rows = other.index_select(0, nodes)
                    total = total + info_nce(anchor, rows, rows, t)
        return total / users.numel()

    def train_losses(self, ego: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        s = self.signals(ego)
        anc, pos, neg = pick_rows(s.final, batch, self.n_users)
        return {"bpr": bpr_loss(anc, pos, neg), "cl": self.cfg.cl_weight * self.contrast(s, batch)}, s.final
