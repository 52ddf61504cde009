"""The in-memory dataset every model trains on. Its own module so that the loader
(:mod:`rlmrec.data.dataset`) and the demo generator (:mod:`rlmrec.data.demo`) both
build it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Dataset:
    """Binarized interaction splits plus optional profile embeddings.

    ``train``/``valid``/``test`` are ``float32`` CSR matrices (users x items) with
    sorted indices and 1.0 entries. ``user_emb``/``item_emb`` are ``float32``
    arrays ``[n_users, d]`` / ``[n_items, d]`` or ``None`` when absent.
    """

    name: str
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    user_emb: np.ndarray | None = None
    item_emb: np.ndarray | None = None
    path: Path | None = None

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    @property
    def has_embeddings(self) -> bool:
        return self.user_emb is not None and self.item_emb is not None
