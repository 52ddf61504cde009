"""Uniform negative sampling over the items a user has not interacted with."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlmrec.errors import DataError


class NegativeSampler:
    """One negative item per training interaction, drawn uniformly among the items
    outside the user's training set, by vectorized rejection sampling: draw for
    everyone, redraw only the collisions (the reference loops in Python instead).
    """

    def __init__(self, train: sp.csr_matrix) -> None:
        train = train.tocsr()
        train.sort_indices()
        self.n_items = int(train.shape[1])
        degree = np.diff(train.indptr)
        if degree.size and degree.max() >= self.n_items:
            user = int(np.argmax(degree))
            raise DataError(f"user {user} has interacted with every item; no negative item can be sampled for them")
        self.users = np.repeat(np.arange(train.shape[0], dtype=np.int64), degree)
        self.items = train.indices.astype(np.int64)
        # CSR with sorted indices enumerates (user, item) in lexicographic order, so
        # these keys are sorted and membership is one binary search.
        self._keys = self.users * self.n_items + self.items

    def __len__(self) -> int:
        return int(self.users.size)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each ``(users[k], items[k])`` is a training interaction."""
        keys = users * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos[pos == self._keys.size] = 0
        return self._keys[pos] == keys

    def sample(self, rng: np.random.Generator, users: np.ndarray | None = None) -> np.ndarray:
        """Negatives for ``users`` (default: the user of every training interaction)."""
        users = self.users if users is None else users
        negs = rng.integers(0, self.n_items, size=users.size, dtype=np.int64)
        todo = np.flatnonzero(self.contains(users, negs))
        while todo.size:
            negs[todo] = rng.integers(0, self.n_items, size=todo.size, dtype=np.int64)
            todo = todo[self.contains(users[todo], negs[todo])]
        return negs
