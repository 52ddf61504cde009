"""AutoCF (Xia et al., WWW 2023) as the RLMRec reference trains it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec.graph import EdgePattern, Graph, Propagation, normalized_adjacency
from rlmrec.losses import summed_pool_logsumexp
from rlmrec.models.base import Batch, IDBackbone
from rlmrec.models.configs import AutoCFConfig
from rlmrec.models.graph_attention import GraphTransformerLayer

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset


@dataclass
class MaskedGraphs:
    """One resampling's graphs: the encoder's (seed neighbourhoods removed,
    re-normalized) and the decoder's edge list (sorted by row, then column)."""

    encoder: Propagation
    decoder: EdgePattern
    kept_edges: Tensor  # bool per edge of the full graph: still in the encoder graph
    mask_nodes: Tensor  # seeds, their neighbourhoods and the random extra nodes


class AutoCF(IDBackbone[AutoCFConfig]):
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
    rows: Tensor
    cols: Tensor
    degree: Tensor
    second_order_count: Tensor

    def __init__(self, cfg: AutoCFConfig, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        adj = normalized_adjacency(dataset.train)
        self.graph = Graph.from_scipy(adj, device)
        # The unweighted graph (same pattern): sums over neighbourhoods for seed scores.
        self.ones = Graph(
            self.graph.crow, self.graph.col, torch.ones_like(self.graph.values), self.graph.perm, adj.shape[0]
        )
        rows, cols = self.graph.edges()
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        degree = torch.from_numpy(np.diff(adj.indptr).astype(np.float32)).to(device).unsqueeze(1)
        self.register_buffer("degree", degree, persistent=False)
        # Counts of the seed score's second-order neighbourhood: constant, so once here.
        second = (self.ones.operator()(degree) - degree) - degree
        self.register_buffer("second_order_count", second, persistent=False)
        self.gt_layers = nn.ModuleList(
            GraphTransformerLayer(cfg.embedding_size, cfg.head_num) for _ in range(cfg.gt_layer)
        )
        self.masked: MaskedGraphs | None = None
        self.full_pattern: EdgePattern | None = None  # evaluation's decoder graph, built on first use

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
        # Deviation: uniforms are kept above 0. torch.rand returns exactly 0 about once
        # in 2^23 draws (a few times per 100 epochs on Amazon-book); the reference's
        # Gumbel noise is then -inf and the logged loss inf. Gradients are unaffected.
        uniform = torch.rand(scores.shape, device=scores.device).clamp_min_(torch.finfo(scores.dtype).tiny)
        gumbel = -torch.log(-torch.log(uniform))
        noisy = torch.log(scores) + gumbel
        seeds = torch.topk(noisy.detach(), min(self.cfg.seed_num, noisy.numel())).indices
        return noisy, seeds

    def mask(self, seeds: Tensor) -> MaskedGraphs:
        """The encoder and decoder graphs for ``seeds`` (docs/protocol.md §7)."""
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
        decoder = EdgePattern.from_sorted(keys // n, keys % n, n)
        return MaskedGraphs(encoder, decoder, kept, nodes)

    def before_batch(self, ego: Tensor, step: int) -> dict[str, Tensor]:
        if step % self.cfg.fix_steps and self.masked is not None:
            return {}
        scores, seeds = self.seed_scores(ego)
        self.masked = self.mask(seeds)
        return {"infomax": -scores.mean()}

    def forward_graphs(self, ego: Tensor, encoder: Propagation, decoder: EdgePattern) -> Tensor:
        out = layer = ego
        for _ in range(self.cfg.gcn_layer):
            layer = encoder(layer)
            out = out + layer
        for gt in self.gt_layers:
            layer = gt(layer, decoder)
            out = out + layer
        return out

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        if not training:
            if self.full_pattern is None:
                self.full_pattern = EdgePattern.from_sorted(self.rows, self.cols, self.n_nodes)
            return self.forward_graphs(ego, self.graph.operator(), self.full_pattern)
        if self.masked is None:
            raise RuntimeError("AutoCF trains on sampled graphs: call before_batch() first")
        return self.forward_graphs(ego, self.masked.encoder, self.masked.decoder)

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
