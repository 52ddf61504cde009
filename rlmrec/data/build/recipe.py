"""The dataset recipe of RLMRec, as small pure functions over NumPy columns.

The authors describe their preprocessing in one paragraph and never released it: keep
interactions rated 3 or more, sample users, keep a 10-core of users and items, split
each user's interactions 3:1:1 into train, validation and test. Each step here is one
function with its own tests; ``build.py`` chains them and records what each one kept.

Interactions are parallel arrays: ``users`` and ``items`` as dense codes (0..U-1,
0..I-1), ``ratings`` and ``times`` optional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2


@dataclass
class Interactions:
    users: np.ndarray  # int64 codes
    items: np.ndarray  # int64 codes
    ratings: np.ndarray | None = None  # float64
    times: np.ndarray | None = None  # int64 seconds

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Interactions:
        return Interactions(
            self.users[rows],
            self.items[rows],
            None if self.ratings is None else self.ratings[rows],
            None if self.times is None else self.times[rows],
        )

    def n_users(self) -> int:
        return int(np.count_nonzero(np.bincount(self.users))) if len(self) else 0

    def n_items(self) -> int:
        return int(np.count_nonzero(np.bincount(self.items))) if len(self) else 0


def filter_rating(data: Interactions, min_rating: float) -> Interactions:
    """Keep interactions rated ``min_rating`` or more (unrated rows never pass)."""
    assert data.ratings is not None
    return data.take(np.flatnonzero(data.ratings >= min_rating))


def deduplicate(data: Interactions) -> Interactions:
    """One row per (user, item) pair: the earliest one when there are times, else the
    first in file order. Repeated purchases are one interaction, as in the published data."""
    first_key = data.times if data.times is not None else np.arange(len(data))
    order = np.lexsort((first_key, data.items, data.users))
    users, items = data.users[order], data.items[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    # Back to file order, so later steps see rows as the file gave them.
    return data.take(np.sort(order[first]))


def sample_users(data: Interactions, amount: float, rng: np.random.Generator) -> Interactions:
    """Keep a random subset of users: a fraction when ``amount`` <= 1, else that many."""
    present = np.unique(data.users)
    n = round(amount * len(present)) if amount <= 1 else min(int(amount), len(present))
    chosen = rng.choice(present, size=n, replace=False) if n < len(present) else present
    keep = np.zeros(int(data.users.max()) + 1 if len(data) else 0, dtype=bool)
    keep[chosen] = True
    return data.take(np.flatnonzero(keep[data.users]))


def k_core(data: Interactions, k_users: int, k_items: int) -> tuple[Interactions, int]:
    """Iteratively drop users with fewer than ``k_users`` and items with fewer than
    ``k_items`` interactions until none is left to drop (the fixed point: every user and
    item that remains has at least k). Returns the core and the rounds it took."""
    rounds = 0
    while len(data):
        user_count = np.bincount(data.users)
        item_count = np.bincount(data.items)
        keep = (user_count[data.users] >= k_users) & (item_count[data.items] >= k_items)
        if keep.all():
            break
        data = data.take(np.flatnonzero(keep))
        rounds += 1
    return data, rounds


def split_sizes(counts: np.ndarray, ratio: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many of each user's ``counts`` interactions go to train, valid and test.

    Valid and test each get their share rounded half up; train gets the rest and always
    at least one (validation gives way first, then test). With 3:1:1: 1 -> 1/0/0,
    2 -> 2/0/0, 3 -> 1/1/1, 4 -> 2/1/1, 5 -> 3/1/1, 10 -> 6/2/2, 12 -> 8/2/2, 13 -> 7/3/3.
    """
    total = sum(ratio)
    valid = np.floor(counts * ratio[1] / total + 0.5).astype(np.int64)
    test = np.floor(counts * ratio[2] / total + 0.5).astype(np.int64)
    short = np.maximum(valid + test + 1 - counts, 0)
    cut = np.minimum(short, valid)
    valid -= cut
    test -= short - cut
    return counts - valid - test, valid, test


def split(
    data: Interactions, ratio: tuple[float, float, float], *, by_time: bool, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Assign each interaction to TRAIN, VALID or TEST, per user.

    ``by_time``: each user's earliest interactions train, the latest test (ties broken
    by item). Otherwise a seeded random order per user. Afterwards, an item left without
    a training interaction gets its first held-out interaction (in that same order)
    moved to train, so every user and every item keeps one. Returns the split per row
    and how many rows were moved.
    """
    n = len(data)
    key = rng.random(n)
    if by_time:
        assert data.times is not None
        order = np.lexsort((data.items, data.times, data.users))
    else:
        order = np.lexsort((key, data.users))
    users = data.users[order]
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(n) - starts[users]
    n_train, n_valid, _ = split_sizes(counts, ratio)
    sorted_split = np.full(n, TEST, dtype=np.int8)
    sorted_split[position < n_train[users] + n_valid[users]] = VALID
    sorted_split[position < n_train[users]] = TRAIN
    result = np.empty(n, dtype=np.int8)
    result[order] = sorted_split
    return result, _cover_items(data, result, order)


def _cover_items(data: Interactions, result: np.ndarray, order: np.ndarray) -> int:
    trained = np.bincount(data.items[result == TRAIN], minlength=int(data.items.max()) + 1)
    uncovered = trained == 0
    # Held-out rows of uncovered items, in the split's own order (random or by time).
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    rows = np.flatnonzero(uncovered[data.items])
    if not len(rows):
        return 0
    rows = rows[np.lexsort((rank[rows], data.items[rows]))]
    items = data.items[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = items[1:] != items[:-1]
    result[rows[first]] = TRAIN
    return int(first.sum())
