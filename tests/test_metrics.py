"""Recall@K / NDCG@K and the full-ranking Evaluator (docs/protocol.md §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rlmrec.errors import RLMRecError
from rlmrec.metrics import Evaluator, ranking_metrics

CPU = torch.device("cpu")
LOG2_3 = math.log2(3)  # 1.5849625...


def _csr(n_users: int, n_items: int, rows: dict[int, list[int]]) -> sp.csr_matrix:
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    for u, items in rows.items():
        dense[u, items] = 1.0
    return sp.csr_matrix(dense)


# ---------------------------------------------------------------------------
# ranking_metrics on hand-written hit vectors
# ---------------------------------------------------------------------------


def test_recall_is_not_capped_at_k() -> None:
    # 30 relevant items, all of the top 20 are hits.
    hits = torch.ones(1, 20, dtype=torch.float64)
    out = ranking_metrics(hits, torch.tensor([30]), (5, 20))
    # recall@5 = 5/30, recall@20 = 20/30 (a capped recall would give 1.0 at K=20).
    assert out["recall@5"].item() == pytest.approx(5 / 30, rel=1e-6)
    assert out["recall@20"].item() == pytest.approx(20 / 30, rel=1e-6)
    # IDCG is over min(K, 30) = K hits, which is exactly what we have: NDCG = 1.
    assert out["ndcg@5"].item() == pytest.approx(1.0, rel=1e-6)
    assert out["ndcg@20"].item() == pytest.approx(1.0, rel=1e-6)


def test_ndcg_hand_computed() -> None:
    hits = torch.tensor(
        [
            [1, 0, 1, 0, 0],  # user A: 2 relevant, hits at ranks 1 and 3
            [0, 0, 0, 1, 0],  # user B: 1 relevant, hit at rank 4
            [0, 1, 0, 0, 1],  # user C: 4 relevant, hits at ranks 2 and 5
        ],
        dtype=torch.float64,
    )
    n_rel = torch.tensor([2, 1, 4])
    out = ranking_metrics(hits, n_rel, (1, 2, 5))

    # user A
    #   K=1: recall 1/2; DCG = 1/log2(2) = 1, IDCG (min(1,2)=1 hit) = 1 -> 1
    #   K=2: recall 1/2; DCG = 1, IDCG (2 hits) = 1 + 1/log2(3) = 1.6309 -> 0.6131
    #   K=5: recall 2/2; DCG = 1 + 1/log2(4) = 1.5, IDCG = 1.6309 -> 0.9197
    # user B
    #   K=1, 2: nothing; K=5: recall 1/1, DCG = 1/log2(5) = 0.4307, IDCG = 1 -> 0.4307
    # user C
    #   K=1: 0, 0
    #   K=2: recall 1/4; DCG = 1/log2(3) = 0.6309; IDCG (2 hits) = 1.6309 -> 0.3869
    #   K=5: recall 2/4; DCG = 1/log2(3) + 1/log2(6) = 0.6309 + 0.3869 = 1.0178;
    #        IDCG (min(5,4) = 4 hits) = 1 + 1/log2(3) + 1/2 + 1/log2(5) = 2.5616 -> 0.39732
    idcg2 = 1 + 1 / LOG2_3
    idcg4 = 1 + 1 / LOG2_3 + 1 / 2 + 1 / math.log2(5)
    expected = {
        "recall@1": [1 / 2, 0, 0],
        "ndcg@1": [1, 0, 0],
        "recall@2": [1 / 2, 0, 1 / 4],
        "ndcg@2": [1 / idcg2, 0, (1 / LOG2_3) / idcg2],
        "recall@5": [1, 1, 2 / 4],
        "ndcg@5": [1.5 / idcg2, 1 / math.log2(5), (1 / LOG2_3 + 1 / math.log2(6)) / idcg4],
    }
    assert set(out) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(out[name].double().numpy(), values, rtol=1e-6, atol=1e-7, err_msg=name)
    # Spot check of the written-out arithmetic.
    assert out["ndcg@5"][0].item() == pytest.approx(0.919721, abs=1e-6)
    assert out["ndcg@5"][2].item() == pytest.approx(0.397322, abs=1e-6)


def test_idcg_uses_min_of_k_and_relevant() -> None:
    # 1 relevant item, found at rank 1: NDCG@5 = 1 (IDCG over min(5, 1) = 1 hit,
    # not over 5 hits, which would give 1 / 2.9485 = 0.339).
    hits = torch.tensor([[1, 0, 0, 0, 0]], dtype=torch.float64)
    out = ranking_metrics(hits, torch.tensor([1]), (5,))
    assert out["ndcg@5"].item() == pytest.approx(1.0, rel=1e-6)
    assert out["recall@5"].item() == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------------------
# Evaluator end to end: 5 users x 8 items with a known ranking
# ---------------------------------------------------------------------------
#
# 1-d embeddings: item i has embedding 8 - i, so users with embedding +1 rank the
# items 0, 1, 2, ..., 7 and the user with embedding -1 ranks them 7, 6, ..., 0.
#
#   user  emb  train    valid   test
#   0     +1   {0}      {}      {1, 3}
#   1     +1   {1, 2}   {0}     {5}
#   2     +1   {0}      {1}     {}         <- no test item: not evaluated on test
#   3     +1   {}       {}      {0,1,2,3,4,5}
#   4     -1   {7}      {6}     {0}

TRAIN = {0: [0], 1: [1, 2], 2: [0], 4: [7]}
VALID = {1: [0], 2: [1], 4: [6]}
TEST = {0: [1, 3], 1: [5], 3: [0, 1, 2, 3, 4, 5], 4: [0]}
KS = (1, 3, 5)


def _embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    users = torch.tensor([[1.0], [1.0], [1.0], [1.0], [-1.0]])
    items = torch.tensor([[8.0 - i] for i in range(8)])
    return users, items


def test_evaluator_end_to_end_reference_quirk() -> None:
    train, test = _csr(5, 8, TRAIN), _csr(5, 8, TEST)
    ev = Evaluator(test, train, KS, CPU)
    res = ev(*_embeddings())

    # Per evaluated user (0, 1, 3, 4), rankings after removing training items:
    #   u0: 1 2 3 4 5 ... -> hits at ranks 1, 3 (2 relevant)
    #       recall 1/2, 2/2, 2/2; ndcg 1, 1.5/1.6309, 1.5/1.6309
    #   u1: 0 3 4 5 6 7   -> item 0 is a VALIDATION item and stays rankable (quirk),
    #       so test item 5 is at rank 4: recall 0, 0, 1; ndcg 0, 0, 1/log2(5)
    #   u3: 0 1 2 3 4 5.. -> hits at ranks 1..5 (6 relevant)
    #       recall 1/6, 3/6, 5/6; ndcg 1, 1, 1
    #   u4: 6 5 4 3 2 1 0 -> item 0 at rank 7: all zero
    idcg2 = 1 + 1 / LOG2_3
    per_user = {
        "recall@1": [1 / 2, 0, 1 / 6, 0],
        "ndcg@1": [1, 0, 1, 0],
        "recall@3": [1, 0, 3 / 6, 0],
        "ndcg@3": [1.5 / idcg2, 0, 1, 0],
        "recall@5": [1, 1, 5 / 6, 0],
        "ndcg@5": [1.5 / idcg2, 1 / math.log2(5), 1, 0],
    }
    np.testing.assert_array_equal(res.users, [0, 1, 3, 4])  # user 2 has no test item
    assert set(res.metrics) == set(per_user)
    for name, values in per_user.items():
        np.testing.assert_allclose(res.per_user[name], values, rtol=1e-6, atol=1e-7, err_msg=name)
        # The mean is over the 4 evaluated users only, e.g. recall@1 = (1/2 + 1/6) / 4.
        assert res.metrics[name] == pytest.approx(sum(values) / 4, rel=1e-6)
    assert res.metrics["recall@1"] == pytest.approx((1 / 2 + 1 / 6) / 4, rel=1e-6)


def test_evaluator_masking_validation_items_too() -> None:
    # The corrected option (test_mask_valid): excluding train + valid moves u1's test
    # item 5 up to rank 3 (ranking 3 4 5 6 7): recall@3 = 1, ndcg@3 = 1/log2(4) = 0.5.
    train, valid, test = _csr(5, 8, TRAIN), _csr(5, 8, VALID), _csr(5, 8, TEST)
    res = Evaluator(test, train + valid, KS, CPU)(*_embeddings())
    u1 = list(res.users).index(1)
    assert res.per_user["recall@3"][u1] == pytest.approx(1.0)
    assert res.per_user["ndcg@3"][u1] == pytest.approx(0.5, rel=1e-6)
    # u4: ranking without 7 and 6 is 5 4 3 2 1 0 -> item 0 at rank 6: still nothing.
    assert res.per_user["recall@5"][list(res.users).index(4)] == 0.0


def test_evaluator_validation_split() -> None:
    # Validation: users 1, 2, 4, each with its one validation item at rank 1
    # (u1: 0 3 4..; u2: 1 2 3..; u4: 6 5 4..) -> every metric is 1.
    train, valid = _csr(5, 8, TRAIN), _csr(5, 8, VALID)
    res = Evaluator(valid, train, KS, CPU)(*_embeddings())
    np.testing.assert_array_equal(res.users, [1, 2, 4])
    for value in res.metrics.values():
        assert value == pytest.approx(1.0)


def test_training_items_are_never_ranked() -> None:
    # Item 0 has the best score for everybody, and for user 0 it is both a training
    # and (artificially) a test item. Excluded means scored -inf: it is never a hit.
    train = _csr(2, 4, {0: [0]})
    test = _csr(2, 4, {0: [0], 1: [0]})
    users = torch.tensor([[1.0], [1.0]])
    items = torch.tensor([[4.0], [3.0], [2.0], [1.0]])
    res = Evaluator(test, train, (1, 3), CPU)(users, items)
    # u0: ranking 1 2 3 (0 last) -> no hit; u1: item 0 at rank 1 -> hit.
    np.testing.assert_allclose(res.per_user["recall@3"], [0.0, 1.0])
    np.testing.assert_allclose(res.per_user["recall@1"], [0.0, 1.0])


# ---------------------------------------------------------------------------
# Chunking: a problem larger than one CPU chunk (128 users) vs a dense numpy version
# ---------------------------------------------------------------------------


def _naive(test: sp.csr_matrix, exclude: sp.csr_matrix, scores: np.ndarray, ks: tuple[int, ...]) -> dict:
    """The protocol written out densely, one user at a time."""
    test_d, excl_d = test.toarray() != 0, exclude.toarray() != 0
    users = np.flatnonzero(test_d.sum(1) > 0)
    out: dict[str, list[float]] = {f"{m}@{k}": [] for k in ks for m in ("recall", "ndcg")}
    for u in users:
        s = scores[u].astype(np.float64).copy()
        s[excl_d[u]] = -np.inf
        order = np.argsort(-s, kind="stable")
        rel = test_d[u]
        n_rel = rel.sum()
        for k in ks:
            top = rel[order[:k]].astype(np.float64)
            dcg = sum(top[r] / np.log2(r + 2) for r in range(k))
            idcg = sum(1 / np.log2(r + 2) for r in range(min(k, n_rel)))
            out[f"recall@{k}"].append(top.sum() / n_rel)
            out[f"ndcg@{k}"].append(dcg / idcg)
    return {"users": users, **{k: np.array(v) for k, v in out.items()}}


def test_chunked_evaluator_matches_dense_numpy() -> None:
    rng = np.random.default_rng(7)
    n_users, n_items, ks = 600, 50, (5, 10, 20)
    # Scores with no ties at all: every user's scores are a permutation of 0..49,
    # produced exactly by multiplying with an identity item embedding.
    scores = np.stack([rng.permutation(n_items) for _ in range(n_users)]).astype(np.float32)
    user_emb = torch.from_numpy(scores)
    item_emb = torch.eye(n_items)

    train_d = rng.random((n_users, n_items)) < 0.2
    test_d = (rng.random((n_users, n_items)) < 0.15) & ~train_d
    test_d[rng.random(n_users) < 0.1] = False  # some users have no test items
    train, test = sp.csr_matrix(train_d.astype(np.float32)), sp.csr_matrix(test_d.astype(np.float32))
    assert 0 < (test_d.sum(1) == 0).sum() < n_users

    ev = Evaluator(test, train, ks, CPU)
    assert len(ev._chunks) >= 2  # really more than one chunk
    res = ev(user_emb, item_emb)
    ref = _naive(test, train, scores, ks)

    np.testing.assert_array_equal(res.users, ref["users"])
    for name in res.per_user:
        np.testing.assert_allclose(res.per_user[name], ref[name], rtol=1e-6, atol=1e-7, err_msg=name)
        assert res.metrics[name] == pytest.approx(float(ref[name].mean()), rel=1e-6)


def test_evaluator_is_repeatable() -> None:
    # The score buffer is reused between calls and chunks; results must not leak.
    train, test = _csr(5, 8, TRAIN), _csr(5, 8, TEST)
    ev = Evaluator(test, train, KS, CPU)
    first = ev(*_embeddings()).metrics
    ev(torch.randn(5, 1), torch.randn(8, 1))
    assert ev(*_embeddings()).metrics == first


# ---------------------------------------------------------------------------
# Regressions: bugs found while writing these tests
# ---------------------------------------------------------------------------


def test_evaluator_accepts_float64_embeddings() -> None:
    train, test = _csr(5, 8, TRAIN), _csr(5, 8, TEST)
    ev = Evaluator(test, train, KS, CPU)
    users, items = _embeddings()
    expected = ev(users, items).metrics
    got = ev(users.double(), items.double()).metrics
    assert got == pytest.approx(expected)


def test_evaluator_on_empty_split() -> None:
    train = _csr(5, 8, TRAIN)
    empty = sp.csr_matrix((5, 8), dtype=np.float32)
    ev = Evaluator(empty, train, KS, CPU)
    try:
        res = ev(*_embeddings())
    except RLMRecError:
        return  # a clean, user-facing error is acceptable
    assert res.users.size == 0
