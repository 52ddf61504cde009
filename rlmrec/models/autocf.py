"""AutoCF (Xia et al., WWW 2023) as the RLMRec reference trains it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec import sparse
from rlmrec.graph import Graph, Propagation, normalized_adjacency
from rlmrec.losses import summed_pool_logsumexp
from rlmrec.models.base import Backbone, Batch
from rlmrec.models.configs import AutoCFConfig


@dataclass
class MaskedGraphs:
    """One resampling's graphs: the encoder's (seed neighbourhoods removed,
    re-normalized) and the decoder's edge list (sorted by row, then column)."""

    encoder: Propagation
    decoder_rows: Tensor
    decoder_cols: Tensor
    kept_edges: Tensor  # bool per edge of the full graph: still in the encoder graph
    mask_nodes: Tensor  # seeds, their neighbourhoods and the random extra nodes


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

    def forward(self, embeds: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        n, d = embeds.shape
        h = self.head_num
        # The reference projects the gathered end of every edge; projecting the n
        # nodes first gives the same rows, with ~E/n times fewer multiplications.
        q = (embeds @ self.q).index_select(0, rows).view(-1, h, d // h)
        k = (embeds @ self.k).index_select(0, cols).view(-1, h, d // h)
        v = (embeds @ self.v).index_select(0, cols).view(-1, h, d // h)
        att = (q * k).sum(-1).clamp(-10.0, 10.0).exp()
        norm = sparse.scatter_sum(att, rows, n).index_select(0, rows)
        att = att / (norm + 1e-8)
        return sparse.scatter_sum((att.unsqueeze(-1) * v).view(-1, d), rows, n)


class AutoCF(Backbone):
    """Masked graph autoencoder with learned subgraph seeds.

    Every ``fix_steps`` batches (from each epoch's first) :meth:`before_batch` scores
    every node by how similar it is to its 2-hop neighbourhood (plus Gumbel noise),
    takes the top ``seed_num`` as seeds, removes every edge within ``mask_depth``
    hops of them from the encoder graph, and builds a decoder graph of random pairs
    among the masked nodes, self-loops and the kept edges; the step adds the seed
    term ``-mean(scores)``. Forward: GCN layers on the encoder graph, then
    graph-transformer layers on the decoder graph; final = SUM of all layers.
    Loss (no negatives): ``-mean(u . i)`` + uniformity terms
    ``ssl_reg * [lse(distinct users vs all users) + lse(distinct positives vs all
    items)] + lse(batch users vs all items)``, raw dot products, no temperature.
    Evaluation runs both stages on the full graph (the decoder without self-loops,
    as the reference).
    """

    uses_negatives = False
    cfg: AutoCFConfig
    rows: Tensor
    cols: Tensor
    degree: Tensor
    second_order_count: Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        cfg: AutoCFConfig,
        train: sp.csr_matrix,
        device: torch.device,
        wrapped: bool = False,
    ) -> None:
        super().__init__(n_users, n_items, cfg.embedding_size)
        self.cfg = cfg
        adj = normalized_adjacency(train)
        self.graph = Graph.from_scipy(adj, device)
        # The unweighted graph (same pattern): sums over neighbourhoods for seed scores.
        self.ones = Graph(
            self.graph.crow, self.graph.col, torch.ones_like(self.graph.values), self.graph.perm, adj.shape[0]
        )
        rows = np.repeat(np.arange(adj.shape[0]), np.diff(adj.indptr))
        self.register_buffer("rows", torch.from_numpy(rows).to(device), persistent=False)
        self.register_buffer("cols", torch.from_numpy(adj.indices.astype(np.int64)).to(device), persistent=False)
        degree = torch.from_numpy(np.diff(adj.indptr).astype(np.float32)).to(device).unsqueeze(1)
        self.register_buffer("degree", degree, persistent=False)
        # Counts of the seed score's second-order neighbourhood: constant, so once here.
        second = (self.ones.operator()(degree) - degree) - degree
        self.register_buffer("second_order_count", second, persistent=False)
        self.gt_layers = nn.ModuleList(
            GraphTransformerLayer(cfg.embedding_size, cfg.head_num) for _ in range(cfg.gt_layer)
        )
        self.masked: MaskedGraphs | None = None

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    def seed_scores(self, ego: Tensor) -> tuple[Tensor, Tensor]:
        """Every node's noisy local-global score and the top ``seed_num`` nodes.

        The formula is the reference's, its oddities included: the first-order sum
        subtracts the node itself although the graph has no self-loops.
        """
        ones, order = self.ones.operator(), self.degree
        first = ones(ego) - ego
        second = (ones(first) - first) - order * ego
        subgraph = F.normalize((first + second) / (order + self.second_order_count + 1e-8))
        scores = torch.sigmoid((subgraph * F.normalize(ego)).sum(-1))
        gumbel = -torch.log(-torch.log(torch.rand(scores.shape, device=scores.device)))
        noisy = torch.log(scores) + gumbel
        seeds = torch.topk(noisy.detach(), min(self.cfg.seed_num, noisy.numel())).indices
        return noisy, seeds

    def mask(self, seeds: Tensor) -> MaskedGraphs:
        """The encoder and decoder graphs for ``seeds`` (RLMREC.md section 6)."""
        n, rows, cols = self.n_nodes, self.rows, self.cols
        kept = torch.ones_like(rows, dtype=torch.bool)
        mask_nodes, frontier = [seeds], seeds
        for depth in range(self.cfg.mask_depth):
            hit = torch.zeros(n, dtype=torch.bool, device=rows.device)
            hit[frontier] = True
            removed = kept & (hit[rows] | hit[cols])
            kept &= ~removed
            if depth < self.cfg.mask_depth - 1:
                # Next frontier: both ends of the edges removed at this depth.
                frontier = torch.unique(torch.cat([rows[removed], cols[removed]]))
                mask_nodes.append(frontier)
        extra = torch.randint(n, (int(n * self.cfg.keep_rate),), device=rows.device)
        nodes = torch.unique(torch.cat([*mask_nodes, extra]))

        enc_rows, enc_cols = rows[kept], cols[kept]
        inv_sqrt = (torch.bincount(enc_rows, minlength=n).float() + 1e-12).pow(-0.5)
        values = inv_sqrt[enc_rows] * inv_sqrt[enc_cols]
        encoder = Graph.from_edges(enc_rows, enc_cols, values, n).operator()

        # As many random pairs among the masked nodes as the full graph has entries,
        # both directions, plus self-loops and the kept edges; duplicates removed.
        pair_rows = nodes[torch.randint(len(nodes), (len(rows),), device=rows.device)]
        pair_cols = nodes[torch.randint(len(nodes), (len(rows),), device=rows.device)]
        everyone = torch.arange(n, device=rows.device)
        keys = torch.unique(
            torch.cat([pair_rows, pair_cols, everyone, enc_rows]) * n
            + torch.cat([pair_cols, pair_rows, everyone, enc_cols])
        )
        return MaskedGraphs(encoder, keys // n, keys % n, kept, nodes)

    def before_batch(self, ego: Tensor, step: int) -> dict[str, Tensor]:
        if step % self.cfg.fix_steps and self.masked is not None:
            return {}
        scores, seeds = self.seed_scores(ego)
        self.masked = self.mask(seeds)
        return {"infomax": -scores.mean()}

    def forward_graphs(self, ego: Tensor, encoder: Propagation, dec_rows: Tensor, dec_cols: Tensor) -> Tensor:
        out = layer = ego
        for _ in range(self.cfg.gcn_layer):
            layer = encoder(layer)
            out = out + layer
        for gt in self.gt_layers:
            layer = gt(layer, dec_rows, dec_cols)
            out = out + layer
        return out

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        if not training:
            return self.forward_graphs(ego, self.graph.operator(), self.rows, self.cols)
        if self.masked is None:
            raise RuntimeError("AutoCF trains on sampled graphs: call before_batch() first")
        m = self.masked
        return self.forward_graphs(ego, m.encoder, m.decoder_rows, m.decoder_cols)

    def uniformity(self, final: Tensor, batch: Batch) -> Tensor:
        users_all, items_all = final[: self.n_users], final[self.n_users :]
        users, user_n = torch.unique(batch.users, return_counts=True)
        pos = torch.unique(batch.pos)
        anchors = users_all.index_select(0, users)
        same_users = summed_pool_logsumexp(anchors, users_all, 1.0) / len(users)
        same_items = summed_pool_logsumexp(items_all.index_select(0, pos), items_all, 1.0) / len(pos)
        # Over the batch's users with repeats (the reference does not deduplicate it).
        cross = summed_pool_logsumexp(anchors, items_all, 1.0, row_w=user_n.to(final.dtype)) / len(batch)
        return self.cfg.ssl_reg * (same_users + same_items) + cross

    def train_losses(self, ego: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        final = self.propagate(ego, training=True)
        nodes = torch.cat([batch.users, batch.pos + self.n_users])
        anc, pos = final.index_select(0, nodes).split(len(batch))
        rec = -(anc * pos).sum(-1).mean()
        return {"rec": rec, "cl": self.uniformity(final, batch)}, final
