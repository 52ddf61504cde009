"""Sparse-matrix pickles whose internal arrays lie (a negative or out-of-range index,
a bad ``indptr``, lengths that disagree, NaN values) are refused while unpickling,
before SciPy touches them: one line naming the file, exit 1, from every command that
reads a dataset, and never a crash, a traceback or a silently dropped interaction."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from cli_checks import Invoke, one_line_error
from hostile.crafted import coo_state, csr_state, pickled, raw_sparse, write_dataset

from rlmrec.data.safe_pickle import safe_load
from rlmrec.errors import DataError
from rlmrec.store import Store

ROWS, COLS = [0, 1, 2, 3, 0], [0, 1, 2, 3, 4]  # the training split of the crafted datasets
COO, CSR = sp.coo_matrix, sp.csr_matrix


class _CallsTheClass:
    """Pickles as ``csr_matrix((data, indices, indptr))``: the constructor called on
    unchecked arrays (an index 9 in a 5-column matrix) instead of state being set."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        arrays = (np.ones(5), np.array([0, 9, 1, 2, 3]), np.array([0, 2, 3, 4, 5]))
        return (CSR, (arrays,))


def _state_twice() -> bytes:
    """A valid COO matrix whose pickle sets its state a second time, to a negative row."""
    first = pickle.dumps(COO((np.ones(5), (ROWS, COLS)), shape=(4, 5)), protocol=2)
    assert first.endswith(b"b.")  # BUILD, STOP
    again = pickle.dumps(coo_state([0, 1, -1, 3, 0], COLS), protocol=2)[2:-1]  # a dict, no PROTO/STOP
    return first[:-1] + again + b"b."


_case, coo, csr = pickled, coo_state, csr_state
CASES: dict[str, tuple[bytes, str]] = {
    "negative row": (_case(COO, coo([0, 1, -1, 3, 0], COLS)), "row index -1 outside 0..3"),
    "very negative row": (_case(COO, coo([0, 1, -3_000_000, 3, 0], COLS)), "row index -3000000 outside 0..3"),
    "row beyond the height": (_case(COO, coo([0, 1, 4, 3, 0], COLS)), "row index 4 outside 0..3"),
    "column beyond the width": (_case(COO, coo(ROWS, [0, 1, 2, 3, 9])), "column index 9 outside 0..4"),
    "negative column": (_case(COO, coo(ROWS, [0, -2, 2, 3, 4])), "column index -2 outside 0..4"),
    "fewer values than indices": (_case(COO, coo(ROWS, COLS, data=[1.0, 1.0, 1.0])), "3 values for 5 row indices"),
    "fewer columns than rows": (_case(COO, coo(ROWS, [0, 1, 2])), "3 column indices for 5 row indices"),
    "float indices": (_case(COO, coo(ROWS, COLS, index_dtype=np.float64)), "row indices of dtype float64"),
    "2-D index array": (
        _case(COO, {**coo(ROWS, COLS), "row": np.array(ROWS, dtype=np.int32).reshape(5, 1)}),
        "row indices: expected a 1-D array",
    ),
    "NaN value": (_case(COO, coo(ROWS, COLS, data=[1.0, np.nan, 1.0, 1.0, 1.0])), "non-finite values"),
    "object values": (_case(COO, coo(ROWS, COLS, data=np.array([1, "x", 1, 1, 1], dtype=object))), "dtype object"),
    "shape not a pair": (_case(COO, coo(ROWS, COLS, shape=(4,))), "shape (4,): expected (rows, columns)"),
    "negative shape": (_case(COO, coo(ROWS, COLS, shape=(-4, 5))), "shape (-4, 5)"),
    "missing row indices": (
        _case(COO, {k: v for k, v in coo(ROWS, COLS).items() if k != "row"}),
        "no row indices",
    ),
    "no state at all": (_case(COO, {}), "rebuilt without its arrays"),
    "indptr ends past the indices": (_case(CSR, csr(indptr=np.array([0, 2, 3, 4, 99]))), "indptr ends at 99"),
    "indptr decreasing": (_case(CSR, csr(indptr=np.array([0, 2, 1, 4, 5]))), "indptr decreases"),
    "indptr too short": (_case(CSR, csr(indptr=np.array([0, 2, 5]))), "indptr has 3 entries; expected 5"),
    "indptr not from 0": (_case(CSR, csr(indptr=np.array([1, 2, 3, 4, 5]))), "indptr starts at 1"),
    "csr column beyond the width": (_case(CSR, csr(indices=np.array([0, 9, 1, 2, 3]))), "column index 9 outside"),
    "csr negative column": (_case(CSR, csr(indices=np.array([0, -1, 1, 2, 3]))), "column index -1 outside"),
    "csc row beyond the height": (
        _case(sp.csc_matrix, {**csr(), "_shape": (4, 4)}),  # the CSR arrays read as 4 columns
        "row index 4 outside 0..3",
    ),
    "constructor called on unchecked arrays": (pickle.dumps(_CallsTheClass()), "rebuilt from their state only"),
    "state set twice": (_state_twice(), "state set twice"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_safe_load_refuses_inconsistent_sparse_arrays(tmp_path: Path, case: str) -> None:
    data, fragment = CASES[case]
    path = tmp_path / "trn_mat.pkl"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        safe_load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message and "\n" not in message, message


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_consistent_matrices_of_every_layout_still_load(tmp_path: Path, protocol: int) -> None:
    dense = COO((np.ones(5), (ROWS, COLS)), shape=(4, 5)).toarray()
    objs = {
        "published coo (row/col)": raw_sparse(COO, coo(ROWS, COLS)),
        "int64 uint8 mix": raw_sparse(COO, coo(ROWS, COLS, index_dtype=np.uint8)),
        "csr": CSR(dense),
        "csc": sp.csc_matrix(dense),
        "coo_array": sp.coo_array(dense),
        "csr_array int64": CSR(dense).astype(np.float32).tocsr(),
        "empty": COO((4, 5)),
    }
    objs["csr_array int64"].indices = objs["csr_array int64"].indices.astype(np.int64)
    objs["csr_array int64"].indptr = objs["csr_array int64"].indptr.astype(np.int64)
    loaded = safe_load(_write(tmp_path / "ok.pkl", pickle.dumps(objs, protocol=protocol)))
    assert isinstance(loaded, dict)
    for key, obj in objs.items():
        assert type(loaded[key]) is type(obj), key  # the real SciPy class, not a stand-in
        expected = np.zeros((4, 5)) if key == "empty" else dense
        np.testing.assert_array_equal(loaded[key].toarray(), expected, err_msg=key)


def test_flags_in_the_file_are_not_trusted(tmp_path: Path) -> None:
    """A file claiming sorted, canonical indices that are not: SciPy recomputes."""
    state = csr(indices=np.array([4, 0, 1, 2, 3]), _has_sorted_indices=True, _has_canonical_format=True)
    loaded: Any = safe_load(_write(tmp_path / "m.pkl", _case(CSR, state)))
    assert not loaded.has_sorted_indices
    np.testing.assert_array_equal(loaded.toarray()[0], [1, 0, 0, 0, 1])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- every command that reads a dataset ------------------------------------------------

COMMAND_CASES = ["negative row", "indptr ends past the indices", "column beyond the width"]


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_data_validate_is_one_finding_and_exit_1(cli: Invoke, root: Path, case: str) -> None:
    folder = write_dataset(root, "bad", trn_mat=CASES[case][0])
    result = cli("data", "validate", "bad")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    fail = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1 and f"{folder / 'trn_mat.pkl'}: corrupt sparse matrix" in fail[0], result.stdout
    assert CASES[case][1] in fail[0]
    assert result.stderr.splitlines() == ["error: bad: 1 error"]


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_data_ls_marks_the_broken_dataset_and_lists_the_rest(cli: Invoke, root: Path, case: str) -> None:
    write_dataset(root, "bad", val_mat=CASES[case][0])
    write_dataset(root, "good")
    result = cli("data", "ls", "--json")
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listed["good"]["error"] is None and listed["good"]["interactions"] == {"train": 5, "valid": 2, "test": 2}
    assert "val_mat.pkl: corrupt sparse matrix" in listed["bad"]["error"]
    table = cli("data", "ls")
    assert table.exit_code == 0 and "corrupt sparse matrix" in table.stdout, table.output
    assert "good" in table.stdout


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_data_import_refuses_and_writes_nothing(cli: Invoke, root: Path, tmp_path: Path, case: str) -> None:
    source = write_dataset(tmp_path / "elsewhere", "bad", tst_mat=CASES[case][0])
    one_line_error(cli("data", "import", source), "not imported", "tst_mat.pkl: corrupt sparse matrix")
    assert not (root / "bad").exists()


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_run_refuses_before_recording(cli: Invoke, root: Path, case: str) -> None:
    write_dataset(root, "bad", trn_mat=CASES[case][0])
    one_line_error(cli("run", "lightgcn", "base", "bad", "--max-epochs", "1"), "trn_mat.pkl: corrupt sparse")
    assert Store().runs() == []


def test_negative_index_never_crashes_the_process(root: Path) -> None:
    """Out of process: before the fix, SciPy wrote through the negative index (exit 139 or 134)."""
    write_dataset(root, "bad", trn_mat=CASES["very negative row"][0])
    for command in (["data", "validate", "bad"], ["data", "ls"]):
        done = subprocess.run(
            [sys.executable, "-m", "rlmrec", *command, "--data-root", str(root)], capture_output=True, text=True
        )
        assert done.returncode == (1 if command[1] == "validate" else 0), (done.returncode, done.stderr)
        assert "corrupt sparse matrix" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_worker_records_the_run_failed_with_the_line(cli: Invoke, root: Path) -> None:
    """Queued before the file went bad: the worker's child fails the run with the one
    line, and is never killed by a signal (which would retry it as lost)."""
    from rlmrec.queueing import Submission, plan

    write_dataset(root, "bad")
    store = Store()
    [run_id] = store.add_runs(plan(Submission("lightgcn", "base", "bad", epochs=1, overrides=["topk=5"])))
    (root / "bad" / "trn_mat.pkl").write_bytes(CASES["very negative row"][0])
    result = cli("worker", "--gpus", "none", "--until-empty")
    assert result.exit_code == 0, result.output
    run = store.get(run_id)
    assert (run.status, run.attempt) == ("failed", 1), (run.status, run.error)
    assert run.error is not None and "trn_mat.pkl: corrupt sparse matrix" in run.error
    assert "row index -3000000" in run.error
