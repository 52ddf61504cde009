"""safe_load: refuses code-running pickles, rebuilds numpy/scipy/plain data."""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from rlmrec.data.safe_pickle import safe_load
from rlmrec.errors import DataError


class _Shell:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"echo pwned > {self.marker}",))


class _Eval:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (builtins.eval, ("1 + 1",))


def _dump(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_shell_payload_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = _dump(tmp_path / "evil.pkl", _Shell(marker))
    with pytest.raises(DataError) as info:
        safe_load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: refusing to unpickle ")
    assert ".system: only numpy arrays, scipy sparse matrices" in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_eval_is_refused(tmp_path: Path) -> None:
    path = _dump(tmp_path / "eval.pkl", _Eval())
    with pytest.raises(DataError, match=r"refusing to unpickle builtins\.eval"):
        safe_load(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_sparse_round_trip(tmp_path: Path, protocol: int) -> None:
    dense = np.array([[0.0, 2.5, 0.0], [1.0, 0.0, 3.0]])
    objs = {
        "array": np.arange(12, dtype=np.int32).reshape(3, 4),
        "scalar": np.float32(1.5),
        "coo": sp.coo_matrix(dense),
        "csr": sp.csr_matrix(dense),
        "csc": sp.csc_matrix(dense),
        "csr_array": sp.csr_array(dense),
    }
    loaded = safe_load(_dump(tmp_path / "x.pkl", objs, protocol))
    assert isinstance(loaded, dict)
    np.testing.assert_array_equal(loaded["array"], objs["array"])
    assert loaded["scalar"] == np.float32(1.5)
    for key in ("coo", "csr", "csc", "csr_array"):
        assert type(loaded[key]) is type(objs[key])
        np.testing.assert_array_equal(loaded[key].toarray(), dense)


def test_profile_dict_and_builtins_round_trip(tmp_path: Path) -> None:
    obj = {
        0: {"profile": "likes jazz", "reasoning": "bought records"},
        1: {"profile": "p", "reasoning": "r"},
        "misc": (1j, b"raw", bytearray(b"ba"), {1, 2}, frozenset({3}), [True, 1.5]),
    }
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        assert safe_load(_dump(tmp_path / "p.pkl", obj, protocol)) == obj


def test_truncated_file(tmp_path: Path) -> None:
    data = pickle.dumps(np.arange(100.0))
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"not a readable pickle \(.+\); re-download or regenerate it"):
        safe_load(path)


def test_empty_and_garbage_files(tmp_path: Path) -> None:
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "junk.pkl").write_bytes(b"PK\x03\x04 this is a zip, not a pickle")
    for name in ("empty.pkl", "junk.pkl"):
        with pytest.raises(DataError, match=rf"{name}: not a readable pickle"):
            safe_load(tmp_path / name)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pkl"
    with pytest.raises(DataError, match=r"nope\.pkl: file not found"):
        safe_load(path)
