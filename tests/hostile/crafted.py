"""Builders of crafted hostile files: sparse-matrix pickles whose internal arrays lie,
and small dataset folders made of them (the tests import this as ``hostile.crafted``)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

SHAPE = (4, 5)
# 4 users x 5 items, every user and item in training, splits disjoint.
TRAIN = ([0, 1, 2, 3, 0], [0, 1, 2, 3, 4])
VALID = ([0, 1], [1, 4])
TEST = ([2, 3], [0, 1])


def raw_sparse(cls: type, state: dict[str, Any]) -> Any:
    """An instance of ``cls`` holding exactly ``state`` (no SciPy check ran on it), so
    pickling it writes that state as is, as a hand-edited file would hold it."""
    obj = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


def coo_state(
    rows: Any, cols: Any, data: Any = None, shape: Any = SHAPE, *, index_dtype: Any = np.int32
) -> dict[str, Any]:
    """A COO matrix's state in the published files' layout (``row``/``col``, scipy < 1.13)."""
    rows, cols = np.asarray(rows, dtype=index_dtype), np.asarray(cols, dtype=index_dtype)
    values = np.ones(len(rows)) if data is None else np.asarray(data)
    return {"_shape": shape, "maxprint": 50, "row": rows, "col": cols, "data": values, "has_canonical_format": False}


def csr_state(**changes: Any) -> dict[str, Any]:
    """The training split as a CSR matrix's state, with ``changes`` applied."""
    good = sp.csr_matrix((np.ones(len(TRAIN[0])), TRAIN), shape=SHAPE)
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in good.__dict__.items()}
    return {**state, **changes}


def pickled(cls: type, state: dict[str, Any]) -> bytes:
    return pickle.dumps(raw_sparse(cls, state))


def split(pairs: tuple[list[int], list[int]]) -> sp.coo_matrix:
    rows, cols = pairs
    return sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=SHAPE)


def write_dataset(root: Path, name: str, *, embeddings: bool = True, **files: object) -> Path:
    """A valid 4 x 5 dataset folder (with 8-d embeddings); ``files`` (stem -> object,
    or bytes written as they are) replace the defaults."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    defaults: dict[str, object] = {"trn_mat": split(TRAIN), "val_mat": split(VALID), "tst_mat": split(TEST)}
    if embeddings:
        defaults["usr_emb_np"] = rng.standard_normal((SHAPE[0], 8)).astype(np.float32)
        defaults["itm_emb_np"] = rng.standard_normal((SHAPE[1], 8)).astype(np.float32)
    for stem, obj in {**defaults, **files}.items():
        if obj is not None:
            (folder / f"{stem}.pkl").write_bytes(obj if isinstance(obj, bytes) else pickle.dumps(obj))
    return folder


# A stray closing tag (MarkupError) and an opening one (silently styled).
MARKUP = "a[/]b[bold]c"


def fill_with_markup(store: Any, augmentations: tuple[str, str]) -> Any:
    """Two runs with markup in group, tags, note and one config value each; the first
    claimed by a worker whose id holds markup and failed with markup in its log and
    error; the second left queued."""
    from rlmrec.store import RunSpec

    for value in augmentations:
        config = {"model": "lightgcn", "epochs": 3, "lr": 0.001, "augmentation": value}
        store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, config, group=MARKUP, tags=(MARKUP,), note=MARKUP)])
    run = store.claim(f"host{MARKUP}:1:0", "host", 1, "cpu")
    assert run is not None
    store.begin_attempt(run.id, run.attempt, pid=1, code_version="git:abc", resume_epoch=None)
    store.record_epoch(run.id, run.attempt, 0, {"bpr": 0.5}, 1.0, 1.0, f"epoch 0 {MARKUP}")
    store.finish(run.id, run.attempt, "failed", error=f"DataError: {MARKUP}")
    store.register_worker(f"host{MARKUP}:1:0", f"host{MARKUP}", 1, ["cpu"])
    return store
