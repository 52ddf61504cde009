"""load_folder / load_dataset / load_profiles: binarization and one-line validation errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import AMAZON_ROOT

from rlmrec.data import (
    Dataset,
    load_dataset,
    load_folder,
    load_profiles,
    resolve_data_root,
)
from rlmrec.errors import DataError

AMAZON = AMAZON_ROOT / "amazon" if AMAZON_ROOT else None
SHAPE = (4, 5)


def _dump(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj))


def _split(rows: list[int], cols: list[int], shape: tuple[int, int] = SHAPE) -> sp.coo_matrix:
    return sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def _folder(root: Path, name: str = "toy", **files: object) -> Path:
    """A valid dataset folder; ``files`` (stem -> object, None deletes) override the defaults."""
    folder = root / name
    folder.mkdir(parents=True)
    defaults: dict[str, object] = {
        "trn_mat": _split([0, 1, 2, 3], [0, 1, 2, 3]),
        "val_mat": _split([0, 1], [4, 4]),
        "tst_mat": _split([2, 3], [0, 1]),
    }
    for stem, obj in {**defaults, **files}.items():
        if obj is not None:
            _dump(folder / f"{stem}.pkl", obj)
    return folder


def _error(folder: Path) -> str:
    with pytest.raises(DataError) as info:
        load_folder(folder)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_loads_and_binarizes(tmp_path: Path) -> None:
    # (0,0) stored twice (1 + 2), (1,1) = 3.0, (2,2) an explicit zero.
    trn = sp.coo_matrix(([1.0, 2.0, 3.0, 0.0, 1.0], ([0, 0, 1, 2, 3], [0, 0, 1, 2, 3])), shape=SHAPE)
    ds = load_folder(_folder(tmp_path, trn_mat=trn))
    assert isinstance(ds, Dataset) and ds.name == "toy" and ds.path == tmp_path / "toy"
    assert (ds.n_users, ds.n_items) == SHAPE and not ds.has_embeddings
    for mat in (ds.train, ds.valid, ds.test):
        assert isinstance(mat, sp.csr_matrix) and mat.dtype == np.float32
        assert mat.has_sorted_indices and np.all(mat.data == 1.0)
    assert ds.train.nnz == 3  # duplicate summed, explicit zero dropped
    np.testing.assert_array_equal(ds.train.toarray().diagonal(), [1, 1, 0, 1])


def test_embeddings_loaded_as_float32(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        usr_emb_np=np.arange(12, dtype=np.int64).reshape(4, 3),
        itm_emb_np=np.asfortranarray(np.ones((5, 3))),
    )
    ds = load_folder(folder, name="renamed")
    assert ds.name == "renamed" and ds.has_embeddings
    for emb in (ds.user_emb, ds.item_emb):
        assert emb is not None and emb.dtype == np.float32 and emb.flags.c_contiguous


def test_not_a_sparse_matrix(tmp_path: Path) -> None:
    msg = _error(_folder(tmp_path, val_mat=np.zeros(SHAPE)))
    assert "val_mat.pkl" in msg and "expected a scipy sparse" in msg and "numpy.ndarray" in msg


def test_shape_mismatch(tmp_path: Path) -> None:
    msg = _error(_folder(tmp_path, tst_mat=_split([0], [0], shape=(4, 6))))
    assert "tst_mat.pkl" in msg and "(4, 6)" in msg and "(4, 5)" in msg


def test_non_finite_split(tmp_path: Path) -> None:
    trn = sp.coo_matrix(([1.0, np.nan], ([0, 1], [0, 1])), shape=SHAPE)
    msg = _error(_folder(tmp_path, trn_mat=trn))
    assert "trn_mat.pkl" in msg and "non-finite" in msg


def test_zero_training_interactions(tmp_path: Path) -> None:
    msg = _error(_folder(tmp_path, trn_mat=sp.coo_matrix(SHAPE)))
    assert "trn_mat.pkl" in msg and "zero training interactions" in msg


def test_missing_split(tmp_path: Path) -> None:
    msg = _error(_folder(tmp_path, tst_mat=None))
    assert "tst_mat.pkl" in msg and "missing" in msg


@pytest.mark.parametrize(
    ("usr", "itm", "bad", "needles"),
    [
        (np.ones((3, 2)), np.ones((5, 2)), "usr_emb_np.pkl", ["3 rows", "4 users"]),
        (np.ones((4, 2)), np.ones((6, 2)), "itm_emb_np.pkl", ["6 rows", "5 items"]),
        (np.ones((4, 2)), np.ones((5, 3)), "itm_emb_np.pkl", ["dim 3", "dim 2"]),
        (np.ones(4), np.ones((5, 2)), "usr_emb_np.pkl", ["2-D", "(4,)"]),
        (np.full((4, 2), np.inf), np.ones((5, 2)), "usr_emb_np.pkl", ["non-finite"]),
        (np.ones((4, 2)), [[1.0]], "itm_emb_np.pkl", ["numpy array", "builtins.list"]),
        (np.ones((4, 2)), None, "itm_emb_np.pkl", ["missing", "usr_emb_np.pkl exists"]),
    ],
)
def test_bad_embeddings(tmp_path: Path, usr: object, itm: object, bad: str, needles: list[str]) -> None:
    msg = _error(_folder(tmp_path, usr_emb_np=usr, itm_emb_np=itm))
    assert bad in msg
    for needle in needles:
        assert needle in msg


def test_resolve_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLMREC_DATA", raising=False)
    assert resolve_data_root() == tmp_path / "data"
    monkeypatch.setenv("RLMREC_DATA", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root("rel") == tmp_path / "rel"


def test_load_dataset_by_name(tmp_path: Path) -> None:
    _folder(tmp_path, name="toy")
    ds = load_dataset("toy", data_root=tmp_path)
    assert ds.name == "toy" and ds.train.nnz == 4


def test_unknown_dataset_lists_available(tmp_path: Path) -> None:
    _folder(tmp_path, name="yelp")
    _folder(tmp_path, name="amazon")
    (tmp_path / "notes").mkdir()  # no trn_mat.pkl: not a dataset
    with pytest.raises(DataError) as info:
        load_dataset("foo", data_root=tmp_path)
    msg = str(info.value)
    assert f"unknown dataset 'foo' under {tmp_path} (available: amazon, yelp, demo)" in msg
    assert "rlmrec_data" in msg and "RLMREC_DATA" in msg and "\n" not in msg


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", ""])
def test_rejects_path_like_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="invalid dataset name"):
        load_dataset(name, data_root=tmp_path)


def test_demo_is_the_cached_folder(tmp_path: Path) -> None:
    # tests/data/test_demo_cache.py checks its content; here only that it is a folder like any other.
    ds = load_dataset("demo", data_root=tmp_path)
    assert ds.name == "demo" and ds.path is not None and ds.path.parent != tmp_path
    assert load_folder(ds.path).n_users == ds.n_users


def test_profiles(tmp_path: Path) -> None:
    path = tmp_path / "usr_prf.pkl"
    _dump(path, {0: {"profile": "likes jazz", "reasoning": "bought records"}, 1: {"profile": "p"}})
    assert load_profiles(path) == {
        0: {"profile": "likes jazz", "reasoning": "bought records"},
        1: {"profile": "p", "reasoning": ""},
    }


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ([{"profile": "p"}], "expected a dict"),
        ({"0": {"profile": "p"}}, "not an integer"),
        ({0: "just a string"}, "no string 'profile'"),
        ({0: {"profile": 3}}, "no string 'profile'"),
    ],
)
def test_bad_profiles(tmp_path: Path, obj: object, needle: str) -> None:
    path = tmp_path / "itm_prf.pkl"
    _dump(path, obj)
    with pytest.raises(DataError) as info:
        load_profiles(path)
    assert "itm_prf.pkl" in str(info.value) and needle in str(info.value)


def test_real_amazon_splits() -> None:
    if AMAZON is None:
        pytest.skip("Amazon-book splits absent (set RLMREC_DATA or ../shared/data)")
    ds = load_folder(AMAZON)
    assert ds.name == "amazon" and (ds.n_users, ds.n_items) == (11000, 9332)
    assert (ds.train.nnz, ds.valid.nnz, ds.test.nnz) == (120464, 40290, 40106)
