"""AutoCF's graph-transformer layer: multi-head attention restricted to a graph's edges.

Two implementations with the same numbers. The default computes every per-edge
quantity as sparse-pattern kernels (SDDMM for the logits, CSR SpMM for the
aggregation, and the same for the hand-written backward), so no ``edges x d``
tensor is ever gathered: on Amazon-book's ~700k-edge decoder graph that is about
10x less time than gather/scatter. The ``pyg`` backend keeps the gather/scatter
form, its reductions through torch-scatter.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rlmrec import sparse
from rlmrec.graph import EdgePattern


def _heads(x: Tensor, h: int) -> list[Tensor]:
    return [part.contiguous() for part in x.chunk(h, dim=1)]


class _PatternAttention(torch.autograd.Function):
    """out[r] = sum over r's edges of a[h, e] v[c] per head, where
    a = exp(clamp(q_r . k_c, -10, 10)) / (row sum + 1e-8). Per-edge tensors are
    ``heads x edges``, so each head's values are one contiguous CSR value array."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, pattern: EdgePattern, h: int) -> Tensor:
        qs, ks, vs = _heads(q, h), _heads(k, h), _heads(v, h)
        logits = torch.stack([pattern.sddmm(qs[i], ks[i]) for i in range(h)])
        # The clamp's gradient mask is needed only if some logit is outside [-10, 10]:
        # on CPU one cheap min/max pass here spares four passes in the backward when
        # none is. (On a GPU, reading it back would stall the queue: always masked.)
        clamped = True
        if logits.device.type == "cpu":
            low, high = torch.aminmax(logits)
            clamped = bool(low < -10.0) or bool(high > 10.0)
        p = logits.clamp(-10.0, 10.0).exp_()
        denom = pattern.row_sum(p).add_(1e-8).index_select(1, pattern.rows)
        att = p / denom
        out = torch.cat([pattern.spmm(att[i], vs[i]) for i in range(h)], dim=1)
        ctx.save_for_backward(q, k, v, logits if clamped else None, att)
        ctx.pattern, ctx.h = pattern, h
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None, None]:
        q, k, v, logits, att = ctx.saved_tensors
        pattern, h = ctx.pattern, ctx.h
        gs, qs, ks, vs = _heads(grad, h), _heads(q, h), _heads(k, h), _heads(v, h)
        # d v_c = sum over edges (r, c) of a * g_r: the transpose product.
        att_t = att.index_select(1, pattern.perm)
        grad_v = torch.cat([pattern.spmm(att_t[i], gs[i]) for i in range(h)], dim=1)
        grad_att = torch.stack([pattern.sddmm(gs[i], vs[i]) for i in range(h)])
        # Through the row normalization and the exp, d logit = (g_a - sum_row g_a a) a
        # (a = p / denom), then the clamp's mask if anything was clamped.
        row_dot = pattern.row_sum(grad_att * att).index_select(1, pattern.rows)
        grad_logits = grad_att.sub_(row_dot).mul_(att)
        if logits is not None:
            grad_logits.mul_((logits >= -10.0) & (logits <= 10.0))
        grad_q = torch.cat([pattern.spmm(grad_logits[i], ks[i]) for i in range(h)], dim=1)
        grad_t = grad_logits.index_select(1, pattern.perm)
        grad_k = torch.cat([pattern.spmm(grad_t[i], qs[i]) for i in range(h)], dim=1)
        return grad_q, grad_k, grad_v, None, None


def _gather_attention(q: Tensor, k: Tensor, v: Tensor, pattern: EdgePattern, h: int) -> Tensor:
    """The reference's per-edge formulation (gather, multiply, scatter)."""
    n, d = q.shape
    rows, cols = pattern.rows, pattern.cols
    qe = q.index_select(0, rows).view(-1, h, d // h)
    ke = k.index_select(0, cols).view(-1, h, d // h)
    ve = v.index_select(0, cols).view(-1, h, d // h)
    att = (qe * ke).sum(-1).clamp(-10.0, 10.0).exp()
    norm = sparse.scatter_sum(att, rows, n).index_select(0, rows)
    att = att / (norm + 1e-8)
    return sparse.scatter_sum((att.unsqueeze(-1) * ve).view(-1, d), rows, n)


class GraphTransformerLayer(nn.Module):
    """Multi-head attention over a graph's edges: each row node attends to its
    column neighbours; logits are clamped to [-10, 10] and normalized per row
    (``exp / (sum + 1e-8)``), the values summed into the row node."""

    def __init__(self, embedding_size: int, head_num: int) -> None:
        super().__init__()
        if embedding_size % head_num:
            raise ValueError(f"head_num {head_num} must divide embedding_size {embedding_size}")
        self.head_num = head_num
        d = embedding_size
        self.q = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, d)))
        self.k = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, d)))
        self.v = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, d)))

    def forward(self, embeds: Tensor, pattern: EdgePattern) -> Tensor:
        # The reference projects the gathered end of every edge; projecting the n
        # nodes first gives the same rows with ~edges/n times fewer multiplications.
        q, k, v = embeds @ self.q, embeds @ self.k, embeds @ self.v
        if sparse.active() == "pyg":
            return _gather_attention(q, k, v, pattern, self.head_num)
        out: Tensor = _PatternAttention.apply(q, k, v, pattern, self.head_num)
        return out
