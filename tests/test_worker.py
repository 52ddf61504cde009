"""Workers end to end: real child processes training on the demo, recording into
a SQLite store; the same numbers as training directly; a kill -9 mid-run resumes
to the same result; cancel and shutdown signals behave as documented."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from rlmrec.cli.main import app
from typer.testing import CliRunner

from rlmrec.data import Dataset, load_dataset
from rlmrec.store import RunInfo, Store
from rlmrec.trainer import train
from rlmrec.worker.execute import config_of


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh store in tmp_path; fast heartbeats so cancels land quickly."""
    values = {
        "RLMREC_DB": f"sqlite:///{tmp_path / 'runs.db'}",
        "RLMREC_DATA": str(tmp_path / "data"),
        "RLMREC_HEARTBEAT_S": "0.2",
        "RLMREC_ARTIFACTS": str(tmp_path / "runs"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield {**os.environ, **values}


def _queue(*args: str) -> list[int]:
    result = CliRunner().invoke(app, ["queue", *args, "--json"])
    assert result.exit_code == 0, result.output
    ids: list[int] = __import__("json").loads(result.stdout)["ids"]
    return ids


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "rlmrec", "worker", "--gpus", "none", "--stale-after", "5", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(what: Callable[[], bool], worker: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if worker.poll() is not None:
            raise AssertionError(f"worker exited early:\n{worker.communicate()[0]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_queue_then_worker_until_empty_matches_direct_training(env: dict[str, str]) -> None:
    ids = _queue("lightgcn", "gene", "demo", "--seeds", "2", "--max-epochs", "4")
    result = CliRunner().invoke(app, ["worker", "--gpus", "none", "--until-empty", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "1 slot(s) on cpu, 1 CPU thread each" in result.output
    store = Store()
    demo = load_dataset("demo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the children trained: the same numbers, whatever the summation order
    try:
        _check_against_direct_training(store, ids, demo)
    finally:
        torch.set_num_threads(threads)


def _check_against_direct_training(store: Store, ids: list[int], demo: Dataset) -> None:
    for run_id, seed in zip(ids, (2023, 2024), strict=True):
        run = store.get(run_id)
        assert (run.status, run.seed, run.attempt, run.epoch) == ("succeeded", seed, 1, 3)
        assert run.code_version and run.host and run.device == "cpu"
        # The child applied the worker's --threads: torch counted one thread as it trained.
        assert any(
            re.match(r"started on cpu with 1 thread, gemm (onednn|blas): ", log.message) for log in store.logs(run_id)
        )
        epochs = store.epochs(run_id)
        assert [e.epoch for e in epochs] == [0, 1, 2, 3] and epochs[3].valid is not None
        assert {"bpr", "reg", "recon"} <= set(epochs[0].losses)
        direct = train(config_of(run), demo)  # the same config, trained in this process
        assert run.test_metrics == pytest.approx(direct.test_metrics, abs=1e-6)
        for recorded, expected in zip(epochs, direct.history, strict=True):
            assert recorded.losses == pytest.approx(expected["losses"], abs=1e-6)
        per_user = store.user_metrics(run_id)
        assert per_user is not None and len(per_user["users"]) == len(direct.test.users)
        assert (store.run_dir(run_id) / "best.pt").is_file()
        assert not (store.run_dir(run_id) / "state.pt").exists()  # spent once the run succeeded


def test_kill_9_mid_run_is_lost_requeued_and_resumes_to_the_same_result(env: dict[str, str]) -> None:
    settings = ["--max-epochs", "40", "--set", "test_step=2", "--set", "patience=100"]
    baseline, victim = _queue("lightgcn", "gen", "demo", "--seed", "7", "--seed", "7", *settings)
    worker = _worker(env, "--until-empty")
    store = Store()
    try:

        def victim_midway() -> bool:
            run = store.get(victim, with_config=False)
            return run.status == "running" and (run.epoch or 0) >= 7

        _wait(victim_midway, worker, timeout=120)
        first = store.get(victim, with_config=False)
        assert first.pid is not None and first.attempt == 1
        os.kill(first.pid, signal.SIGKILL)
        output, _ = worker.communicate(timeout=120)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert "killed by signal 9; marked lost" in output
    a, b = store.get(baseline), store.get(victim)
    assert (b.status, b.attempt) == ("succeeded", 2)
    assert a.test_metrics == b.test_metrics  # exactly: same seed, restored RNG states
    assert [e.losses for e in store.epochs(victim)] == [e.losses for e in store.epochs(baseline)]
    assert [e.epoch for e in store.epochs(victim)] == list(range(40))
    messages = [line.message for line in store.logs(victim)]
    assert any("child process killed by signal 9" in m for m in messages)
    assert any(m.startswith("resumed at epoch") for m in messages)


def _long(*extra: str) -> list[str]:
    return ["--max-epochs", "3000", "--set", "patience=1000", *extra]


def _status(store: Store, run_id: int) -> RunInfo:
    return store.get(run_id, with_config=False)


def test_cancel_stops_a_running_run_and_a_queued_one_never_starts(env: dict[str, str]) -> None:
    running, queued = _queue("lightgcn", "base", "demo", "--seeds", "2", *_long())
    worker = _worker(env, "--max-runs", "1")  # claims the first only, exits when it ends
    store = Store()
    try:
        _wait(lambda: (_status(store, running).epoch or 0) >= 1, worker)
        result = CliRunner().invoke(app, ["cancel", str(running), str(queued)])
        assert result.exit_code == 0 and "stopping" in result.output and "cancelled" in result.output
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    run = _status(store, running)
    assert run.status == "cancelled" and "cancel" in (run.error or "")
    assert _status(store, queued).status == "cancelled" and _status(store, queued).attempt == 0


def test_first_signal_drains_second_stops(env: dict[str, str]) -> None:
    running, waiting = _queue("lightgcn", "base", "demo", "--seeds", "2", *_long())
    worker = _worker(env)
    store = Store()
    try:
        _wait(lambda: (_status(store, running).epoch or 0) >= 1, worker)
        worker.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        epoch = _status(store, running).epoch or 0
        _wait(lambda: (_status(store, running).epoch or 0) > epoch + 2, worker)  # still training
        assert worker.poll() is None and _status(store, waiting).status == "queued"
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert "no new runs" in output and "stopping running runs" in output
    assert _status(store, running).status == "cancelled"
    assert "worker shut down" in (_status(store, running).error or "")
    assert _status(store, waiting).status == "queued"  # never claimed
    assert [w.status for w in store.workers(include_stopped=True)] == ["stopped"]
