"""The dataset recipe step by step, against results computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rlmrec.data.build.recipe import (
    TEST,
    TRAIN,
    VALID,
    Interactions,
    deduplicate,
    filter_rating,
    k_core,
    sample_users,
    split,
    split_sizes,
)


def _data(users: list[int], items: list[int], ratings=None, times=None) -> Interactions:
    return Interactions(
        np.array(users, dtype=np.int64),
        np.array(items, dtype=np.int64),
        None if ratings is None else np.array(ratings, dtype=np.float64),
        None if times is None else np.array(times, dtype=np.int64),
    )


def _pairs(data: Interactions) -> list[tuple[int, int]]:
    return list(zip(data.users.tolist(), data.items.tolist(), strict=True))


def test_rating_filter_keeps_three_and_up() -> None:
    data = _data([0, 0, 1, 1, 2], [0, 1, 0, 1, 2], ratings=[5, 2.5, 3, 1, -np.inf])
    assert _pairs(filter_rating(data, 3.0)) == [(0, 0), (1, 0)]


def test_duplicates_count_once_keeping_the_earliest() -> None:
    data = _data([0, 1, 0, 0, 1], [3, 2, 3, 1, 2], times=[50, 10, 20, 30, 5])
    kept = deduplicate(data)
    # (0,3) at 20 (not 50), (1,2) at 5 (not 10), (0,1) once; file order preserved.
    assert sorted(zip(_pairs(kept), kept.times.tolist(), strict=True)) == [((0, 1), 30), ((0, 3), 20), ((1, 2), 5)]
    assert kept.times.tolist() == [20, 30, 5]  # rows 2, 3 and 4 of the file, in that order
    # Without times the first in file order wins.
    assert _pairs(deduplicate(_data([0, 0, 0], [1, 1, 2]))) == [(0, 1), (0, 2)]


def test_sample_users_fraction_count_and_seed() -> None:
    users = np.repeat(np.arange(10), 3)
    data = Interactions(users, np.tile(np.arange(3), 10))
    half = sample_users(data, 0.5, np.random.default_rng(1))
    assert half.n_users() == 5 and len(half) == 15  # whole users, all their rows
    assert sample_users(data, 4, np.random.default_rng(1)).n_users() == 4
    again = sample_users(data, 0.5, np.random.default_rng(1))
    assert np.array_equal(half.users, again.users)
    assert sample_users(data, 1.0, np.random.default_rng(1)).n_users() == 10


def test_k_core_reaches_its_fixed_point() -> None:
    # 2-core by hand. Item 3 has one interaction (user 2) -> dropped; then user 2 has
    # one interaction left (item 0) -> dropped; then item 0 has users 0 and 1 (two) -> stays.
    data = _data([0, 0, 1, 1, 2, 2, 3], [0, 1, 0, 1, 0, 3, 1])
    core, rounds = k_core(data, 2, 2)
    # User 3 (one interaction) also goes in round one.
    assert sorted(_pairs(core)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert rounds == 2
    assert np.bincount(core.users).max() >= 2
    users, items = np.bincount(core.users), np.bincount(core.items)
    assert users[users > 0].min() >= 2 and items[items > 0].min() >= 2
    # Already a core: nothing changes, zero rounds.
    same, rounds = k_core(core, 2, 2)
    assert _pairs(same) == _pairs(core) and rounds == 0
    # Separate thresholds: users need 2, items 1.
    core, _ = k_core(_data([0, 0, 1], [0, 1, 2]), 2, 1)
    assert sorted(_pairs(core)) == [(0, 0), (0, 1)]


def test_k_core_can_empty_everything() -> None:
    core, _ = k_core(_data([0, 1], [0, 1]), 3, 3)
    assert len(core) == 0


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (4, (2, 1, 1)), (5, (3, 1, 1)), (10, (6, 2, 2)),
     (12, (8, 2, 2)), (13, (7, 3, 3)), (100, (60, 20, 20))],
)  # fmt: skip
def test_split_sizes_per_user(n: int, expected: tuple[int, int, int]) -> None:
    train, valid, test = split_sizes(np.array([n]), (3, 1, 1))
    assert (int(train[0]), int(valid[0]), int(test[0])) == expected


def test_split_sizes_never_leave_train_empty() -> None:
    # 1:1:1 with two interactions rounds to 1/1/1 of 2: validation gives way first.
    train, valid, test = split_sizes(np.array([2, 1]), (1, 1, 1))
    assert train.tolist() == [1, 1] and valid.tolist() == [0, 0] and test.tolist() == [1, 0]
    train, valid, test = split_sizes(np.arange(1, 200), (3, 1, 1))
    assert (train >= 1).all() and (train + valid + test == np.arange(1, 200)).all()


def _world(seed: int = 0, users: int = 300, items: int = 80) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 6000
    u = rng.integers(0, users, n)
    i = rng.integers(0, items, n)
    data = deduplicate(Interactions(u, i, None, rng.integers(0, 10**6, n)))
    return data


def test_random_split_ratios_and_coverage() -> None:
    data = _world()
    result, moved = split(data, (3, 1, 1), by_time=False, rng=np.random.default_rng(5))
    counts = np.bincount(data.users)
    for user in range(len(counts)):
        mine = result[data.users == user]
        train, valid, test = split_sizes(np.array([counts[user]]), (3, 1, 1))
        # Ratios as documented, except that moved rows can add to train.
        assert (mine == VALID).sum() <= valid[0] and (mine == TEST).sum() <= test[0]
        assert (mine == TRAIN).sum() >= train[0] >= 1
    assert (np.bincount(data.items[result == TRAIN], minlength=data.items.max() + 1) > 0).all()
    total_moved = sum(
        (result[data.users == u] == TRAIN).sum() - split_sizes(np.array([counts[u]]), (3, 1, 1))[0][0]
        for u in range(len(counts))
    )
    assert total_moved == moved
    # The same seed gives the same split; another seed another.
    again, _ = split(data, (3, 1, 1), by_time=False, rng=np.random.default_rng(5))
    other, _ = split(data, (3, 1, 1), by_time=False, rng=np.random.default_rng(6))
    assert np.array_equal(result, again) and not np.array_equal(result, other)


def test_an_item_only_held_out_is_moved_to_train() -> None:
    # User 0 has 5 interactions: 3/1/1. Item 9 is only seen by user 0; whatever the
    # random order, if it lands in valid or test, it must come back to train.
    data = _data([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], [1, 2, 3, 4, 9, 1, 2, 3, 4, 5])
    moves = []
    for seed in range(20):
        result, moved = split(data, (3, 1, 1), by_time=False, rng=np.random.default_rng(seed))
        assert set(data.items[result == TRAIN].tolist()) == {1, 2, 3, 4, 5, 9}
        assert (result == TRAIN).sum() == 6 + moved  # 3 + 3 by the ratio, plus the moves
        moves.append(moved)
    assert max(moves) > 0  # item 9 was held out for some seeds and came back


def test_time_split_puts_the_latest_last() -> None:
    # One user, 5 interactions at distinct times: earliest 3 train, then valid, then test.
    data = _data([0] * 5 + [1] * 5, [4, 3, 2, 1, 0] * 2, times=[50, 40, 30, 20, 10, 1, 2, 3, 4, 5])
    result, moved = split(data, (3, 1, 1), by_time=True, rng=np.random.default_rng(0))
    assert moved == 0
    assert result[:5].tolist() == [TEST, VALID, TRAIN, TRAIN, TRAIN]
    # User 1's items 1 and 0 are held out but user 0 trains on them: no move needed.
    assert result[5:].tolist() == [TRAIN, TRAIN, TRAIN, VALID, TEST]
