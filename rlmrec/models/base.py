"""The backbone interface that RLMRec's alignments wrap.

A backbone turns layer-0 ID embeddings into final embeddings by graph propagation
and defines its own training loss. The alignments only see those two tensors, which
is what makes RLMRec model-agnostic (paper section 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

import torch
from torch import Tensor, nn

from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.losses import bpr_loss

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset

C = TypeVar("C")  # the backbone's config dataclass


@dataclass(frozen=True)
class Batch:
    """One batch of (user, positive item, negative item) triples, on the device.

    Item indices are item ids (``0..I-1``), not graph node ids.
    """

    users: Tensor
    pos: Tensor
    neg: Tensor

    def __len__(self) -> int:
        return int(self.users.numel())


def pick_rows(final: Tensor, batch: Batch, n_users: int) -> tuple[Tensor, Tensor, Tensor]:
    """The batch's user, positive and negative rows of the node matrix ``final``.

    One ``index_select`` instead of three advanced-indexing gathers through
    user/item slices: on CPU its backward (``index_add_``) is 3-4x faster than
    advanced indexing's ``index_put_``, and there is one zero-filled gradient
    buffer instead of three.
    """
    nodes = torch.cat([batch.users, batch.pos + n_users, batch.neg + n_users])
    anc, pos, neg = final.index_select(0, nodes).split(len(batch))
    return anc, pos, neg


class Backbone(nn.Module, Generic[C]):
    """Layer-0 embeddings in, final embeddings out, plus the backbone's own loss.

    Every backbone is built one way, ``Cls(cfg, dataset, device)``; the registry
    names the class and calls :meth:`for_variant`, so adding a model is one file and
    one registry line.
    """

    # Whether the training loss reads the batch's negatives (the contrastive
    # alignment's negative term follows it: AutoCF's reference has none).
    uses_negatives = True
    # Width of a layer-0 embedding (the generative alignment's mask token).
    embedding_size: int

    def __init__(self, cfg: C, dataset: Dataset, device: torch.device) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_users = dataset.n_users
        self.n_items = dataset.n_items

    @classmethod
    def for_variant(cls, cfg: C, dataset: Dataset, device: torch.device, variant: str) -> Self:
        """The backbone that ``variant`` ("base", "con", "gen") trains. The same
        model whatever wraps it, except where the reference's variants differ (GCCF)."""
        return cls(cfg, dataset, device)

    @property
    def out_dim(self) -> int:
        """Size of a final embedding (the alignments size their MLPs from it)."""
        return self.embedding_size

    def layer0(self) -> Tensor:
        """All nodes' layer-0 embeddings, users first: ``[U + I, embedding_size]``."""
        raise NotImplementedError

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        """Final embeddings ``[U + I, out_dim]`` from layer-0 embeddings ``ego``."""
        raise NotImplementedError

    def before_batch(self, ego: Tensor, step: int) -> dict[str, Tensor]:
        """Called before every training batch with the unmasked layer-0 embeddings
        and the batch's index within its epoch; returns extra loss terms. A hook for
        backbones with per-step state (AutoCF resamples its graphs here)."""
        return {}

    def train_losses(self, ego: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """The backbone's loss terms (without regularization) and the final
        embeddings of its main, unperturbed pass, which the alignments use.

        The default is BPR on one training pass; backbones with extra views
        (SGL, SimGCL, ...) override this.
        """
        final = self.propagate(ego, training=True)
        anc, pos, neg = pick_rows(final, batch, self.n_users)
        return {"bpr": bpr_loss(anc, pos, neg)}, final


class EmbeddingConfig(Protocol):
    embedding_size: int


E = TypeVar("E", bound=EmbeddingConfig)


class IDBackbone(Backbone[E]):
    """A backbone whose layer 0 is a learned ID embedding per user and item: all six
    collaborative-filtering backbones (the semantic baseline has fixed profiles)."""

    def __init__(self, cfg: E, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        self.embedding_size = cfg.embedding_size
        # Xavier-uniform, as the reference initializes every ID table. Created before
        # any subclass parameter: the creation order fixes the seeded initialization.
        self.user_embeds = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, self.embedding_size)))
        self.item_embeds = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, self.embedding_size)))

    def layer0(self) -> Tensor:
        return torch.cat([self.user_embeds, self.item_embeds], dim=0)


class LayerSumConfig(Protocol):
    embedding_size: int
    layer_num: int


L = TypeVar("L", bound=LayerSumConfig)


class LayerSumBackbone(IDBackbone[L]):
    """LightGCN-style propagation ``E_{l+1} = Â E_l`` on the symmetric-normalized
    graph, final = SUM of ``E_0..E_L`` (the reference's sum, not a mean), full graph.

    LightGCN, SGL and SimGCL share it and differ in their training passes.
    """

    def __init__(self, cfg: L, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        self.graph = Graph.from_scipy(normalized_adjacency(dataset.train), device)

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        return self.graph.operator().power_sum(ego, self.cfg.layer_num)
