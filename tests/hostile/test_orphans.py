"""A killed worker takes its children with it; the next worker on the host sees at
once that the worker and its runs are gone, resumes the runs, and a ``--until-empty``
worker waits for a run still running without its worker instead of leaving it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmrec.queueing import Submission, plan
from rlmrec.store import RunInfo, Store
from rlmrec.worker.pool import Worker, WorkerOptions, pid_alive


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    values = {
        "RLMREC_DB": f"sqlite:///{tmp_path / 'runs.db'}",
        "RLMREC_ARTIFACTS": str(tmp_path / "runs"),
        "RLMREC_DATA": str(tmp_path / "data"),
        "RLMREC_HEARTBEAT_S": "0.2",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield {**os.environ, **values}


def _wait(what: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"timed out: {why}"
        time.sleep(0.05)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_pid_alive_counts_a_zombie_as_dead() -> None:
    """An exited process nobody waited for (an orphan whose reaper, PID 1 in many
    containers, never reaps) is dead for the reaper, though ``kill(pid, 0)`` succeeds."""
    child = subprocess.Popen(["true"])
    _wait(lambda: Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", 5, "zombie")
    try:
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert pid_alive(os.getpid())


def test_a_dead_worker_on_this_host_is_reaped_at_once(env: dict[str, str]) -> None:
    store = Store()
    host = socket.gethostname()
    store.register_worker(f"{host}:dead", host, _dead_pid(), ["cpu"])  # heartbeat: just now
    store.register_worker("elsewhere:1:0", "elsewhere", _dead_pid(), ["cpu"])  # its pid means nothing here
    Worker(store, WorkerOptions(), say=lambda _: None)._reap()
    assert [w.id for w in store.workers()] == ["elsewhere:1:0"]
    assert {w.id: w.status for w in store.workers(include_stopped=True)}[f"{host}:dead"] == "died"


class _FinishingChild:
    """Stands in for a child process: records its run succeeded at once."""

    def __init__(self, store: Store, run: RunInfo) -> None:
        self.pid = os.getpid()
        store.begin_attempt(run.id, run.attempt, pid=self.pid, code_version="x", resume_epoch=None)
        store.finish(run.id, run.attempt, "succeeded", test_metrics={"recall@20": 0.2}, test_value=0.2)

    def poll(self) -> int:
        return 0


def test_until_empty_waits_for_an_orphan_then_resumes_its_run(env: dict[str, str], monkeypatch: Any) -> None:
    """A run whose worker died but whose process still runs (a child from before
    children died with their worker): the new worker waits, and once that process
    ends without reporting, claims the run again."""
    store = Store()
    host = socket.gethostname()
    [run_id] = store.add_runs(plan(Submission("lightgcn", "base", "demo")))
    dead = _dead_pid()
    store.register_worker(f"{host}:{dead}:0", host, dead, ["cpu"])
    run = store.claim(f"{host}:{dead}:0", host, dead, "cpu")
    assert run is not None
    orphan = subprocess.Popen(["sleep", "30"])
    store.begin_attempt(run.id, run.attempt, pid=orphan.pid, code_version="x", resume_epoch=None)

    def end_orphan() -> None:
        orphan.kill()
        orphan.wait()

    said: list[str] = []
    worker = Worker(store, WorkerOptions(until_empty=True, poll_s=0.05), say=said.append)
    monkeypatch.setattr(worker, "_spawn", lambda run, device: _FinishingChild(store, run))
    timer = threading.Timer(1.5, end_orphan)
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("worker hung")))
    signal.alarm(20)
    started = time.monotonic()
    timer.start()
    try:
        assert worker.run() == 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        timer.cancel()
        end_orphan()
    assert time.monotonic() - started >= 1.4, said  # it did not leave while the orphan ran
    done = store.get(run_id)
    assert (done.status, done.attempt) == ("succeeded", 2), said
    assert any(f"run {run_id} runs without its worker" in line for line in said), said


def test_kill_9_of_a_worker_kills_its_child_and_the_next_worker_resumes(env: dict[str, str]) -> None:
    """The real thing: a worker training the demo is killed with SIGKILL mid-run."""
    store = Store()
    settings = ["--max-epochs", "60", "--set", "test_step=2", "--set", "patience=100", "--json"]
    queued = subprocess.run([sys.executable, "-m", "rlmrec", "queue", "lightgcn", "gen", "demo", *settings], env=env)
    assert queued.returncode == 0
    command = [sys.executable, "-m", "rlmrec", "worker", "--gpus", "none", "--stale-after", "60"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    try:
        _wait(lambda: (store.get(1, with_config=False).epoch or 0) >= 5, 120, "the first worker trains")
        child = store.get(1, with_config=False).pid
        assert child is not None and child != first.pid and pid_alive(child)
        first.kill()
        first.wait()
        _wait(lambda: not pid_alive(child), 5, "the child dies with its worker")
    finally:
        first.kill()
        first.wait()
        if child is not None and pid_alive(child):  # failed: leave no orphan training behind
            os.kill(child, signal.SIGKILL)
    second = subprocess.run([*command, "--until-empty"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "its process is gone; marked lost" in second.stderr, second.stderr
    run = store.get(1)
    assert (run.status, run.attempt) == ("succeeded", 2), (run.status, run.error)
    assert [e.epoch for e in store.epochs(1)] == list(range(60))
    assert [w.status for w in store.workers(include_stopped=True)] == ["died", "stopped"]
