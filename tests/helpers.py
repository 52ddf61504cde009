"""Small fixtures shared by several test files (importable: tests/ is on pytest's path)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from rlmrec.data import Dataset
from rlmrec.models.base import Batch


def random_interactions(seed: int, n_users: int, n_items: int, density: float) -> sp.csr_matrix:
    """A binary users x items matrix in which every user has at least one item."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density).astype(np.float32)
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    return sp.csr_matrix(dense)


def dense_normalized(r: sp.spmatrix | np.ndarray, self_loops: bool = False) -> np.ndarray:
    """D^-1/2 A D^-1/2 with A = [[0, R], [R^T, 0]] (+ I), written out densely in float64."""
    b = ((r.toarray() if sp.issparse(r) else np.asarray(r)) != 0).astype(np.float64)
    u, i = b.shape
    a = np.zeros((u + i, u + i))
    a[:u, u:] = b
    a[u:, :u] = b.T
    if self_loops:
        a += np.eye(u + i)
    deg = a.sum(1)
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    return inv[:, None] * a * inv[None, :]


def train_only(train: sp.csr_matrix) -> Dataset:
    """A dataset of training interactions alone: all that a backbone reads."""
    empty = sp.csr_matrix(train.shape, dtype=np.float32)
    return Dataset("train-only", train, empty, empty)


def tiny_dataset(seed: int, n_users: int, n_items: int, emb_dim: int) -> Dataset:
    """Training interactions plus random profile embeddings; empty valid/test splits."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.35).astype(np.float32)
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    empty = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    user_emb = rng.standard_normal((n_users, emb_dim)).astype(np.float32)
    item_emb = rng.standard_normal((n_items, emb_dim)).astype(np.float32)
    return Dataset("tiny", sp.csr_matrix(dense), empty, empty, user_emb, item_emb)


def random_batch(train: sp.csr_matrix, size: int, seed: int = 0) -> Batch:
    """``size`` training interactions drawn with replacement, each with a uniform item as negative."""
    rng = np.random.default_rng(seed)
    coo = train.tocoo()
    pick = rng.integers(0, coo.nnz, size)
    neg = rng.integers(0, train.shape[1], size)
    return Batch(
        torch.from_numpy(coo.row[pick].astype(np.int64)),
        torch.from_numpy(coo.col[pick].astype(np.int64)),
        torch.from_numpy(neg.astype(np.int64)),
    )


def amazon_root() -> Path | None:
    """The data root holding the published Amazon-book splits (``amazon/trn_mat.pkl``):
    ``$RLMREC_DATA`` when it has them, else ``../shared/data`` beside the clone; None
    when neither does (the tests that need them skip). Read at import time, before any
    fixture points ``RLMREC_DATA`` at a temporary root."""
    candidates = [os.environ.get("RLMREC_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"]
    for root in candidates:
        if root and (Path(root) / "amazon" / "trn_mat.pkl").is_file():
            return Path(root)
    return None


AMAZON_ROOT = amazon_root()
