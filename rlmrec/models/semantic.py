"""The paper's "semantic embeddings only" baseline (Table 1, first row)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from rlmrec.errors import ConfigError
from rlmrec.models.base import Backbone
from rlmrec.models.configs import SemanticConfig

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset


class Semantic(Backbone[SemanticConfig]):
    """Ranks items for a user by the similarity of their profile embeddings.

    No parameters, no training: the trainer sees nothing to optimize, validates
    once and tests. Layer 0 is the fixed profile matrix and propagation is the
    identity, so ranking is the shared evaluation code.
    """

    profiles: Tensor

    def __init__(self, cfg: SemanticConfig, dataset: Dataset, device: torch.device) -> None:
        super().__init__(cfg, dataset, device)
        if dataset.user_emb is None or dataset.item_emb is None:
            raise ConfigError(f"'semantic' ranks by profile embeddings, but dataset '{dataset.name}' has none")
        profiles = torch.cat([torch.from_numpy(dataset.user_emb), torch.from_numpy(dataset.item_emb)]).float()
        if cfg.similarity == "cosine":
            profiles = F.normalize(profiles, dim=1)
        self.register_buffer("profiles", profiles.to(device), persistent=False)
        self.embedding_size = int(profiles.shape[1])

    def layer0(self) -> Tensor:
        return self.profiles

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        return ego
