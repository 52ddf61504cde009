"""``rlmrec worker --grace`` without Slurm (any host): the worker of a batch job hands
its running runs back to the queue instead of cancelling them, whether its own
SIGTERM comes first (Slurm's warning before the time limit) or its children's
(``scancel`` signals every process of the job); the Slurm job and task it runs in,
read from Slurm's environment, are recorded with the worker and the attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rlmrec.cli.main import app
from typer.testing import CliRunner

from rlmrec.store import Store

LONG = ["--max-epochs", "3000", "--set", "patience=3000", "--set", "test_step=2"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"RLMREC_DB": f"sqlite:///{tmp_path / 'runs.db'}", "RLMREC_ARTIFACTS": str(tmp_path / "runs"),
              "RLMREC_HEARTBEAT_S": "0.2"}  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return {**clean, **values}


def _queue() -> int:
    result = CliRunner().invoke(app, ["queue", "lightgcn", "base", "demo", *LONG, "--json"])
    assert result.exit_code == 0, result.output
    [run_id] = json.loads(result.stdout)["ids"]
    return int(run_id)


def _worker(env: dict[str, str], grace: float) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "rlmrec", "worker", "--gpus", "none", "--until-empty", "--grace", str(grace)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(what: Callable[[], bool], worker: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert worker.poll() is None, f"worker exited early:\n{worker.communicate()[0]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _past_a_checkpoint(store: Store, run_id: int) -> Callable[[], bool]:
    return lambda: (store.get(run_id, with_config=False).epoch or 0) >= 3


def test_after_the_grace_the_running_run_goes_back_to_the_queue(env: dict[str, str]) -> None:
    run_id = _queue()
    worker = _worker({**env, "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "4245"}, 1)
    store = Store()
    try:
        _wait(_past_a_checkpoint(store, run_id), worker)
        worker.send_signal(signal.SIGTERM)  # Slurm's warning, --grace before the time limit
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    run = store.get(run_id)
    assert (run.status, run.attempt, run.slurm_job, run.slurm_task) == ("lost", 1, "4242", 3)
    assert run.error == "handed back to the queue: its Slurm job 4242_3 is ending; resumes from its last checkpoint"
    assert (store.run_dir(run_id) / "state.pt").is_file()
    assert "running runs get 1s to finish" in output and "handing 1 running run(s) back to the queue" in output
    [w] = store.workers(include_stopped=True)
    assert (w.status, w.slurm) == ("stopped", "4242_3")


def test_a_sigterm_to_the_runs_own_process_hands_it_back_at_once(env: dict[str, str]) -> None:
    run_id = _queue()
    worker = _worker(env, 600)  # a grace it never waits out: the run's process stops by itself
    store = Store()
    try:
        _wait(_past_a_checkpoint(store, run_id), worker)
        pid = store.get(run_id, with_config=False).pid
        assert pid is not None and pid != worker.pid
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)  # as scancel does: every process of the job at once
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0 and time.monotonic() - started < 30, output
    run = store.get(run_id)
    assert (run.status, run.slurm_job) == ("lost", None)
    assert run.error == "handed back to the queue: its worker shut down; resumes from its last checkpoint"
    assert "handing" not in output  # the worker had nothing left to hand back
