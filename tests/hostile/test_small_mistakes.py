"""Small mistakes with one-line answers: a mistyped ``--db`` for a command that only
reads, an empty id range, a bad argument value; and honest logs: a fresh retry is not
called a resume, and epochs redone after a resume are listed once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_checks import Invoke, one_line_error

from rlmrec.store import RunInfo, RunSpec, Store
from rlmrec.worker.pool import Worker, WorkerOptions

NEEDS_A_STORE = [
    ["ls"], ["show", "1"], ["logs", "1"], ["workers"], ["report"], ["compare", "1", "2"],
    ["plot", "1"], ["cancel", "1"], ["retry", "1"], ["rm", "1", "--yes"], ["priority", "2", "1"],
]  # fmt: skip


@pytest.mark.parametrize("args", NEEDS_A_STORE, ids=lambda a: a[0])
@pytest.mark.parametrize("form", ["path", "url", "env"])
def test_a_mistyped_db_is_one_line_and_creates_nothing(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], form: str
) -> None:
    missing = tmp_path / "rnus.db"
    db = {"path": str(missing), "url": f"sqlite:///{missing}", "env": None}[form]
    if db is None:
        monkeypatch.setenv("RLMREC_DB", str(missing))
    result = cli(*args, *(["--db", db] if db else []))
    one_line_error(result, f"no run store at {missing}")
    assert not missing.exists() and not list(tmp_path.glob("rnus*"))


def test_commands_that_write_runs_still_create_the_store(cli: Invoke, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    assert cli("queue", "lightgcn", "base", "demo", "--db", fresh).exit_code == 0
    assert fresh.is_file() and cli("ls", "--db", fresh).exit_code == 0


@pytest.mark.parametrize("command", ["cancel", "retry", "rm", "priority"])
def test_an_empty_range_is_an_error(cli: Invoke, command: str) -> None:
    store = Store()
    store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn"}) for _ in range(6)])
    args = {"priority": ["priority", "3", "5-3"], "rm": ["rm", "5-3", "--yes"]}.get(command, [command, "5-3"])
    one_line_error(cli(*args), "run id range '5-3' is empty", "3-5")
    assert [(r.status, r.priority) for r in store.runs()] == [("queued", 0)] * 6


BAD_VALUES = [
    ["show", "abc"], ["logs", "abc"], ["compare", "1", "x"], ["plot", "x"], ["priority", "high", "1"],
    ["ls", "--last", "x"], ["queue", "lightgcn", "base", "demo", "--seeds", "x"], ["show"],
    ["ls", "--bogus"], ["data", "show", "demo", "--user", "x"],
]  # fmt: skip


@pytest.mark.parametrize("args", BAD_VALUES, ids=" ".join)
def test_bad_argument_values_are_one_line(cli: Invoke, args: list[str]) -> None:
    line = one_line_error(cli(*args))
    assert "╭" not in line and "Usage" not in line


def test_the_installed_command_answers_bad_values_in_one_line_too(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "rlmrec"
    done = subprocess.run([command, "show", "abc"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == "", done
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr


# -- the worker's log of a retried run ---------------------------------------------------


class _Child:
    pid = 1

    def poll(self) -> None:
        return None


def _claim_with_a_worker(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    said: list[str] = []
    worker = Worker(store, WorkerOptions(slots=["cpu"]), say=said.append)
    monkeypatch.setattr(worker, "_spawn", lambda run, device: _Child())
    worker._fill()
    return said


def _fail_and_retry(store: Store, times: int) -> None:
    for _ in range(times):
        run = store.claim("w", "h", 1, "cpu")
        assert run is not None
        store.finish(run.id, run.attempt, "failed", error="boom")
        store.retry([run.id])


def test_a_fresh_retry_is_not_logged_as_resuming(store_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    store = Store(store_url, tmp_path / "runs")
    store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn"})])
    _fail_and_retry(store, 3)
    [line] = _claim_with_a_worker(store, monkeypatch)
    assert "attempt 4 ->" in line and "resum" not in line, line


def test_a_lost_run_with_a_checkpoint_is_logged_as_resuming(store_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    store = Store(store_url, tmp_path / "runs")
    store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn"})])
    run = store.claim("w", "h", 1, "cpu")
    assert run is not None
    store.mark_lost(run.id, run.attempt, "killed")
    store.run_dir(1).mkdir(parents=True)
    (store.run_dir(1) / "state.pt").write_bytes(b"checkpoint")
    [line] = _claim_with_a_worker(store, monkeypatch)
    assert "attempt 2 (resuming from its checkpoint) ->" in line, line


# -- logs after a resume -------------------------------------------------------------------


def _epochs(store: Store, run: RunInfo, epochs: range) -> None:
    for epoch in epochs:
        store.record_epoch(run.id, run.attempt, epoch, {"bpr": 0.5}, 0.1, 0.1, f"epoch {epoch:>4}  bpr 0.5")
        if epoch % 3 == 0:
            metrics = {"recall@20": 0.1}
            store.record_eval(run.id, run.attempt, epoch, metrics, 0.1, None, f"valid {epoch:>4}  recall@20 0.1")


@pytest.mark.parametrize("checkpoint", [3, None], ids=["resumed at 3", "restarted"])
def test_epochs_redone_after_a_resume_are_logged_once(cli: Invoke, store_url: str, checkpoint: int | None) -> None:
    store = Store(store_url)
    store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn"})])
    first = store.claim("w", "h", 1, "cpu")
    assert first is not None
    store.begin_attempt(1, first.attempt, pid=1, code_version="x", resume_epoch=None)
    _epochs(store, first, range(6))  # the checkpoint is at epoch 3; epochs 4 and 5 are lost
    store.mark_lost(1, first.attempt, "child process killed by signal 9")
    second = store.claim("w", "h", 1, "cpu")
    assert second is not None
    store.begin_attempt(1, second.attempt, pid=1, code_version="x", resume_epoch=checkpoint)
    start = 0 if checkpoint is None else checkpoint + 1
    _epochs(store, second, range(start, 8))
    lines = [line.split(" ", 1)[1] for line in cli("logs", 1, "--db", store_url).stdout.splitlines()]
    epoch_lines = [line for line in lines if line.split()[1] in ("epoch", "valid")]
    numbers = [int(line.split()[2]) for line in epoch_lines]
    assert sorted(numbers) == [0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7], lines  # each epoch (and validation) once
    kept = 6 if checkpoint is not None else 0  # attempt 1's lines of epochs 0-3 (and validations 0, 3)
    assert [line.split()[0] for line in epoch_lines] == ["[1]"] * kept + ["[2]"] * (len(epoch_lines) - kept)
    assert any("[1] child process killed by signal 9" in line for line in lines)  # what happened stays


def test_a_retried_run_gets_max_attempts_afresh(store_url: str, tmp_path: Path) -> None:
    """A retry starts afresh: its first loss is a loss to resume from, not the 4th of 3."""
    store = Store(store_url, tmp_path / "runs")
    store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn"})])
    _fail_and_retry(store, 3)
    for expected in ("lost", "lost", "failed"):
        run = store.claim("w", "h", 1, "cpu")
        assert run is not None
        assert store.mark_lost(run.id, run.attempt, "killed", max_attempts=3) == expected, run.attempt
    assert store.get(1).error == "killed; gave up after 3 attempts"
