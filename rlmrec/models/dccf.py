"""DCCF (Ren et al., SIGIR 2023) as the RLMRec reference trains it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec import sparse
from rlmrec.graph import EdgePattern, Graph, normalized_adjacency
from rlmrec.losses import bpr_loss, info_nce
from rlmrec.models.base import Batch, IDBackbone, pick_rows
from rlmrec.models.configs import DCCFConfig

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset


def _kernels() -> bool:
    """Pattern kernels (SDDMM, CSR products) unless the ``pyg`` backend is active; that
    backend keeps the gather/scatter definition, its scatter through torch-scatter."""
    return sparse.active() != "pyg"


class _EdgeCosine(torch.autograd.Function):
    """``unit_h . unit_t`` for every edge (h, t): an SDDMM of ``unit`` with itself.

    Backward: edge (h, t) sends ``g_ht unit_t`` to h and ``g_ht unit_h`` to t, so
    ``grad = (A_g + A_g^T) unit``; the pattern is symmetric, so that is one CSR
    product with values ``g + g[perm]``.
    """

    @staticmethod
    def forward(ctx, unit: Tensor, pattern: EdgePattern) -> Tensor:
        ctx.save_for_backward(unit)
        ctx.pattern = pattern
        return pattern.sddmm(unit, unit)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (unit,) = ctx.saved_tensors
        pattern: EdgePattern = ctx.pattern
        return pattern.spmm(grad + grad.index_select(0, pattern.perm), unit), None


class _WeightedMessage(torch.autograd.Function):
    """``A_w x`` for the matrix with per-edge values ``w`` on the pattern.

    Backward: ``grad_x = A_w^T g`` (values ``w[perm]`` on the same pattern) and
    ``grad_w[h, t] = g_h . x_t``, an SDDMM.
    """

    @staticmethod
    def forward(ctx, weights: Tensor, x: Tensor, pattern: EdgePattern) -> Tensor:
        ctx.save_for_backward(weights, x)
        ctx.pattern = pattern
        return pattern.spmm(weights, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        weights, x = ctx.saved_tensors
        pattern: EdgePattern = ctx.pattern
        grad = grad.contiguous()
        grad_w = pattern.sddmm(grad, x) if ctx.needs_input_grad[0] else None
        grad_x = pattern.spmm(weights.index_select(0, pattern.perm), grad) if ctx.needs_input_grad[1] else None
        return grad_w, grad_x, None


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
        self.pattern = self.graph.pattern()
        d, k = cfg.embedding_size, cfg.intent_num
        self.user_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, k)))
        self.item_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, k)))

    heads: Tensor
    tails: Tensor

    def adaptive_weights(self, embeds: Tensor) -> Tensor:
        """``(cos(e_h, e_t) + 1) / 2`` per edge, divided by the sum over the head's edges.

        Definition (the ``pyg`` path): gather both ends' unit rows, multiply, sum."""
        unit = F.normalize(embeds, dim=1)
        if _kernels():
            cos: Tensor = _EdgeCosine.apply(unit, self.pattern)
        else:
            cos = (unit.index_select(0, self.heads) * unit.index_select(0, self.tails)).sum(1)
        alpha = (cos + 1) / 2
        degree = sparse.scatter_sum(alpha, self.heads, embeds.shape[0])
        inv = torch.where(degree > 0, 1.0 / degree, torch.zeros_like(degree))
        return alpha * inv.index_select(0, self.heads)

    def weighted_message(self, weights: Tensor, embeds: Tensor) -> Tensor:
        """``sum_t w_ht e_t`` for every head: a sparse product differentiable in the weights.

        Definition (the ``pyg`` path): gather the tails' rows, scale, scatter-add to heads."""
        if _kernels():
            out: Tensor = _WeightedMessage.apply(weights, embeds, self.pattern)
            return out
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
