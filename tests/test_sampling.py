"""Uniform negative sampling outside each user's training set (docs/protocol.md §3)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import chisquare

from rlmrec.errors import DataError
from rlmrec.sampling import NegativeSampler


def _random_train(seed: int = 0, n_users: int = 200, n_items: int = 60, density: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[:, 0] = False  # nobody has every item
    return dense


def test_never_returns_a_training_item() -> None:
    dense = _random_train()
    sampler = NegativeSampler(sp.csr_matrix(dense.astype(np.float32)))
    assert len(sampler) == dense.sum()
    rng = np.random.default_rng(1)
    for _ in range(20):
        negs = sampler.sample(rng)
        assert negs.shape == (len(sampler),)
        assert negs.dtype == np.int64
        assert ((negs >= 0) & (negs < dense.shape[1])).all()
        assert not dense[sampler.users, negs].any()


def test_one_negative_per_interaction_in_csr_order() -> None:
    dense = _random_train(seed=3, n_users=30, n_items=10, density=0.4)
    sampler = NegativeSampler(sp.csr_matrix(dense.astype(np.float32)))
    rows, cols = np.nonzero(dense)  # row-major, like sorted CSR
    np.testing.assert_array_equal(sampler.users, rows)
    np.testing.assert_array_equal(sampler.items, cols)


def test_explicit_users() -> None:
    dense = _random_train(seed=4, n_users=10, n_items=12)
    sampler = NegativeSampler(sp.csr_matrix(dense.astype(np.float32)))
    users = np.array([3, 3, 7, 0, 9] * 200, dtype=np.int64)
    negs = sampler.sample(np.random.default_rng(0), users)
    assert negs.shape == users.shape
    assert not dense[users, negs].any()


def test_uniform_over_non_training_items() -> None:
    n_items = 20
    train_items = [0, 3, 7, 8, 15]
    dense = np.zeros((2, n_items), dtype=np.float32)
    dense[0, train_items] = 1.0
    dense[1, [1, 2]] = 1.0
    sampler = NegativeSampler(sp.csr_matrix(dense))
    users = np.zeros(50_000, dtype=np.int64)
    negs = sampler.sample(np.random.default_rng(2023), users)

    counts = np.bincount(negs, minlength=n_items)
    assert counts[train_items].sum() == 0
    allowed = np.setdiff1d(np.arange(n_items), train_items)
    # 15 allowed items, 50k draws: expected 3333.3 each under uniformity.
    result = chisquare(counts[allowed])
    assert result.pvalue > 1e-3, (result, counts[allowed])


def test_seeded_generator_is_deterministic() -> None:
    sampler = NegativeSampler(sp.csr_matrix(_random_train().astype(np.float32)))
    a = sampler.sample(np.random.default_rng(42))
    b = sampler.sample(np.random.default_rng(42))
    c = sampler.sample(np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # A generator's stream moves on: two consecutive epochs differ.
    rng = np.random.default_rng(42)
    first, second = sampler.sample(rng), sampler.sample(rng)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)


def test_user_with_every_item_raises_data_error() -> None:
    dense = np.zeros((3, 5), dtype=np.float32)
    dense[0, :2] = 1.0
    dense[2, :] = 1.0  # user 2 interacted with all 5 items
    with pytest.raises(DataError, match="user 2"):
        NegativeSampler(sp.csr_matrix(dense))


def test_non_binary_values_count_as_interactions() -> None:
    dense = np.zeros((2, 4), dtype=np.float32)
    dense[0, [0, 2]] = [5.0, 2.0]
    dense[1, 3] = 1.0
    sampler = NegativeSampler(sp.csr_matrix(dense))
    negs = sampler.sample(np.random.default_rng(0), np.zeros(2000, dtype=np.int64))
    assert set(np.unique(negs)) == {1, 3}


def test_contains_matches_dense_lookup() -> None:
    dense = _random_train(seed=5, n_users=25, n_items=15, density=0.3)
    dense[4] = False  # a user without training items
    dense[-1, -1] = True  # the very last key (searchsorted past-the-end case)
    sampler = NegativeSampler(sp.csr_matrix(dense.astype(np.float32)))
    users, items = np.meshgrid(np.arange(25), np.arange(15), indexing="ij")
    got = sampler.contains(users.ravel().astype(np.int64), items.ravel().astype(np.int64))
    np.testing.assert_array_equal(got, dense.ravel())


def test_contains_with_unsorted_csr_input() -> None:
    # CSR indices given out of order: the sampler sorts them before building its keys.
    indptr = np.array([0, 3, 5])
    indices = np.array([4, 0, 2, 3, 1])
    train = sp.csr_matrix((np.ones(5, dtype=np.float32), indices, indptr), shape=(2, 6))
    assert not train.has_sorted_indices
    sampler = NegativeSampler(train)
    users, items = np.meshgrid(np.arange(2), np.arange(6), indexing="ij")
    got = sampler.contains(users.ravel(), items.ravel())
    np.testing.assert_array_equal(got, train.toarray().ravel() != 0)
