"""The paper's "semantic embeddings only" baseline (Table 1, first row)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlmrec.models.configs import SemanticConfig


class Semantic(nn.Module):
    """Ranks items for a user by the similarity of their profile embeddings.

    No parameters, no training: the trainer sees nothing to optimize, validates
    once and tests. It exposes the part of the backbone interface that ranking
    uses (``layer0``/``propagate``, ``n_users``) so evaluation is shared code.
    """

    profiles: Tensor

    def __init__(self, user_prf: Tensor, item_prf: Tensor, cfg: SemanticConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_users, self.n_items = int(user_prf.shape[0]), int(item_prf.shape[0])
        profiles = torch.cat([user_prf, item_prf]).float()
        if cfg.similarity == "cosine":
            profiles = F.normalize(profiles, dim=1)
        self.register_buffer("profiles", profiles, persistent=False)

    @property
    def out_dim(self) -> int:
        return int(self.profiles.shape[1])

    def layer0(self) -> Tensor:
        return self.profiles

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        return ego
