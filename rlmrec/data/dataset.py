"""The loader of the in-memory :class:`Dataset` every model trains on.

A dataset is a folder in the RLMRec layout: ``trn_mat.pkl``/``val_mat.pkl``/
``tst_mat.pkl`` (scipy sparse users x items matrices) and, optionally,
``usr_emb_np.pkl``/``itm_emb_np.pkl`` (profile embeddings) and
``usr_prf.pkl``/``itm_prf.pkl`` (LLM-generated profiles). Every file goes
through :func:`safe_load` and is validated here, so models can trust a
:class:`Dataset` and the user gets a one-line :class:`DataError` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlmrec.data.container import Dataset  # defined apart so the demo generator needs no loader
from rlmrec.data.layout import EMB_FILES, SPLIT_FILES, dataset_folder
from rlmrec.data.safe_pickle import safe_load
from rlmrec.errors import DataError


def _type_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _load_split(file: Path) -> sp.csr_matrix:
    """One interaction split as a canonical binary float32 CSR matrix."""
    obj: Any = safe_load(file)
    if not sp.issparse(obj):
        raise DataError(
            f"{file}: expected a scipy sparse users x items matrix, got {_type_name(obj)}; "
            "save it as a scipy.sparse coo/csr matrix"
        )
    if obj.ndim != 2:
        raise DataError(f"{file}: expected a 2-D users x items matrix, got shape {obj.shape}")
    mat = sp.csr_matrix(obj)  # also turns csr/coo *arrays* into the matrix type
    mat.sum_duplicates()
    if mat.dtype.kind not in "biuf":
        raise DataError(f"{file}: interaction values have dtype {mat.dtype}; expected numbers")
    # Checked before the float32 cast, which would turn huge finite values into inf.
    if not np.isfinite(mat.data).all():
        raise DataError(f"{file}: non-finite values (NaN/inf) among the stored interactions")
    # Implicit feedback: any non-zero (rating, count, duplicate) is one interaction.
    mat.data = (mat.data != 0).astype(np.float32)
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat


def _load_embedding(file: Path, rows: int, what: str) -> np.ndarray:
    """A ``[rows, dim]`` float32 C-contiguous embedding table."""
    obj = safe_load(file)
    if not isinstance(obj, np.ndarray):
        raise DataError(f"{file}: expected a numpy array [n_{what}s, dim], got {_type_name(obj)}")
    if obj.ndim != 2:
        raise DataError(f"{file}: expected a 2-D array [n_{what}s, dim], got shape {obj.shape}")
    if obj.dtype.kind not in "iuf":
        raise DataError(f"{file}: expected float values, got dtype {obj.dtype}")
    emb = np.ascontiguousarray(obj, dtype=np.float32)
    if not np.isfinite(emb).all():
        raise DataError(f"{file}: non-finite values (NaN/inf, or too large for float32); regenerate it")
    if emb.shape[0] != rows:
        raise DataError(
            f"{file}: {emb.shape[0]} rows but the interaction matrices have {rows} {what}s; "
            "the embeddings belong to a different dataset or id mapping"
        )
    return emb


def load_splits(path: Path) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """The three interaction splits of a dataset folder, checked as :func:`load_folder` does."""
    path = Path(path)
    for fname in SPLIT_FILES:
        if not (path / fname).is_file():
            raise DataError(f"{path / fname}: missing; a dataset folder needs {', '.join(SPLIT_FILES)}")
    trn_file = path / SPLIT_FILES[0]
    train, valid, test = (_load_split(path / fname) for fname in SPLIT_FILES)
    for fname, mat in zip(SPLIT_FILES[1:], (valid, test), strict=True):
        if mat.shape != train.shape:
            raise DataError(
                f"{path / fname}: shape {mat.shape} differs from {trn_file.name} shape "
                f"{train.shape}; all splits must index the same users and items"
            )
    if train.nnz == 0:
        raise DataError(f"{trn_file}: zero training interactions; nothing to train on")
    return train, valid, test


def load_embeddings(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """``usr_emb_np.pkl``/``itm_emb_np.pkl`` for ``shape`` = (users, items), or None when
    neither exists; checked as :func:`load_folder` does."""
    usr_file, itm_file = (Path(path) / fname for fname in EMB_FILES)
    if not (usr_file.exists() or itm_file.exists()):
        return None
    missing, present = (itm_file, usr_file) if usr_file.exists() else (usr_file, itm_file)
    if not missing.exists():
        raise DataError(f"{missing}: missing but {present.name} exists; provide both embeddings or neither")
    user_emb = _load_embedding(usr_file, shape[0], "user")
    item_emb = _load_embedding(itm_file, shape[1], "item")
    if user_emb.shape[1] != item_emb.shape[1]:
        raise DataError(
            f"{itm_file}: embedding dim {item_emb.shape[1]} differs from {usr_file.name} "
            f"dim {user_emb.shape[1]}; both must come from the same text encoder"
        )
    return user_emb, item_emb


def load_folder(path: Path, name: str | None = None) -> Dataset:
    """Load and validate one dataset folder (see the module docstring for the layout)."""
    path = Path(path)
    train, valid, test = load_splits(path)
    embeddings = load_embeddings(path, train.shape)
    user_emb, item_emb = embeddings if embeddings is not None else (None, None)
    return Dataset(
        name=name or path.name, train=train, valid=valid, test=test,
        user_emb=user_emb, item_emb=item_emb, path=path,
    )  # fmt: skip


def load_dataset(name: str, data_root: str | Path | None = None) -> Dataset:
    """The dataset folder ``name`` resolves to (:func:`~rlmrec.data.layout.dataset_folder`)."""
    return load_folder(dataset_folder(name, data_root), name)


def load_profiles(path: Path) -> dict[int, dict[str, str]]:
    """``usr_prf.pkl``/``itm_prf.pkl``: ``{index: {"profile": str, "reasoning": str}}``.

    ``reasoning`` is optional (``""`` when absent); other keys are dropped.
    """
    path = Path(path)
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict index -> profile, got {_type_name(obj)}")
    profiles: dict[int, dict[str, str]] = {}
    for key, value in obj.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise DataError(f"{path}: key {key!r} is not an integer user/item index")
        if not isinstance(value, dict) or not isinstance(value.get("profile"), str):
            raise DataError(f"{path}: entry {key} has no string 'profile' field")
        reasoning = value.get("reasoning", "")
        if not isinstance(reasoning, str):
            raise DataError(f"{path}: entry {key} has a non-string 'reasoning' field")
        profiles[int(key)] = {"profile": value["profile"], "reasoning": reasoning}
    return profiles
