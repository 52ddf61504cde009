"""Rich markup in user text (``[/]``, ``[bold]``) is printed as typed by every command,
and ``queue`` is all-or-nothing even when printing its confirmation fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.sparse as sp
from cli_checks import Invoke
from hostile.crafted import MARKUP, coo_state, fill_with_markup, pickled, write_dataset
from typer.testing import Result

from rlmrec.store import RunSpec, Store


def _ok(result: Result) -> Result:
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("option", ["--group", "--tag", "--note"])
def test_queue_takes_markup_literally(cli: Invoke, option: str) -> None:
    out = _ok(cli("queue", "lightgcn", "base", "demo", option, MARKUP))
    [run] = Store().runs(with_config=True)
    assert {"--group": run.group, "--tag": run.tags and run.tags[0], "--note": run.note}[option] == MARKUP
    if option == "--group":
        assert f"group {MARKUP}" in out.stdout


def _store_with_markup() -> Store:
    """Run 1 failed with an error holding markup; run 2 queued; both with markup in
    group, tags and note; a worker whose id holds markup."""
    return fill_with_markup(Store(), (MARKUP, MARKUP))


def test_show_ls_logs_workers_print_markup_literally(cli: Invoke) -> None:
    _store_with_markup()
    shown = _ok(cli("show", 1)).stdout
    assert shown.count(MARKUP) >= 4  # group, tags, note, error, config
    _ok(cli("ls", "--group", MARKUP))
    assert [r["id"] for r in json.loads(_ok(cli("ls", "--group", MARKUP, "--json")).stdout)] == [1, 2]
    assert MARKUP in _ok(cli("logs", 1)).stdout
    assert MARKUP in _ok(cli("workers")).stdout


def test_compare_prints_config_values_literally(cli: Invoke) -> None:
    store = Store()
    for value in (MARKUP, "plain"):
        config = {"model": "lightgcn", "lr": 0.001, "augmentation": value}
        store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, config)])
    assert MARKUP in _ok(cli("compare", 1, 2)).stdout


def test_report_and_data_commands_print_paths_with_markup(cli: Invoke, root: Path, tmp_path: Path) -> None:
    """A folder named ``[`` holding one named ``]x`` spells ``[/]x`` in a path."""
    (tmp_path / "[").mkdir()
    out = tmp_path / "[" / "]report.md"
    _store_with_markup()
    result = _ok(cli("report", "--out", out))
    assert f"wrote {out}" in result.stderr and out.is_file()
    bracket_root = tmp_path / "[" / "]data"
    write_dataset(bracket_root, "toy")
    assert "toy" in _ok(cli("data", "ls", "--data-root", bracket_root)).stdout
    _ok(cli("data", "import", bracket_root / "toy", "--name", "copy"))
    assert (root / "copy" / "trn_mat.pkl").is_file()


def test_worker_survives_an_error_with_markup(cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child fails the run with an error naming ``.../[/]data/...``; the worker
    prints that line and goes on (it used to die on the markup)."""
    from rlmrec.queueing import Submission, plan

    bracket_root = tmp_path / "[" / "]data"
    write_dataset(bracket_root, "bad")
    monkeypatch.setenv("RLMREC_DATA", str(bracket_root))
    store = Store()
    store.add_runs(plan(Submission("lightgcn", "base", "bad", epochs=1, overrides=["topk=5"])))
    (bracket_root / "bad" / "trn_mat.pkl").write_bytes(pickled(sp.coo_matrix, coo_state([0, -1], [0, 1])))
    result = _ok(cli("worker", "--gpus", "none", "--until-empty"))
    assert "[/]data" in result.stderr
    assert store.get(1).status == "failed"


@pytest.mark.parametrize("json_", [False, True])
def test_queue_queues_nothing_when_its_output_fails(tmp_path: Path, json_: bool) -> None:
    """stdout is a pipe nobody reads (``rlmrec queue ... | true``): the write fails,
    and the runs it would have announced are not queued."""
    db = tmp_path / "q.db"
    Store(f"sqlite:///{db}").close()
    read, write = os.pipe()
    os.close(read)
    command = [sys.executable, "-m", "rlmrec", "queue", "lightgcn", "base", "demo", "--seeds", "3", "--db", str(db)]
    try:
        done = subprocess.run(command + (["--json"] if json_ else []), stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "nothing queued" in done.stderr, done.stderr
    assert Store(f"sqlite:///{db}").runs() == []


def test_queue_writes_its_runs_when_output_works(tmp_path: Path) -> None:
    """The control for the test above: the same command through a working pipe."""
    db = tmp_path / "q.db"
    command = [sys.executable, "-m", "rlmrec", "queue", "lightgcn", "base", "demo", "--seeds", "3", "--db", str(db)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0 and "queued 3 run(s)" in done.stdout, done.stderr
    assert len(Store(f"sqlite:///{db}").runs()) == 3
