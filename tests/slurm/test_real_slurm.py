"""Workers as jobs of a real Slurm (``.ci/slurm.sh``: one node, this host, two CPUs)
against a real PostgreSQL store: two array tasks drain the queue; a task cancelled
mid-run hands its run back and the other resumes it to the numbers of an
uninterrupted run; a task at its time limit drains cleanly.

Skipped where no Slurm answers, unless ``CI`` or ``RLMREC_TEST_SLURM`` is set: there
a missing Slurm is a failure. The store and artifacts are local to this host, hence
``--force`` (a one-node cluster)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rlmrec.cli.main import app
from typer.testing import CliRunner, Result

from rlmrec.slurm.commands import queued
from rlmrec.slurm.jobs import ACTIVE
from rlmrec.store import RunInfo, Store

# One group: the one-node test cluster runs one test's jobs at a time (pytest-xdist --dist loadgroup).
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

PG_ADMIN = os.environ.get("RLMREC_TEST_PG", "postgresql+psycopg://rlmrec:rlmrec@localhost:5432/rlmrec")
REQUIRED = bool(os.environ.get("CI") or os.environ.get("RLMREC_TEST_SLURM"))


def _unavailable(why: str) -> None:
    if REQUIRED:
        pytest.fail(f"{why} (CI / RLMREC_TEST_SLURM: run .ci/slurm.sh first)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def slurm() -> None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        _unavailable("no Slurm here (sinfo/sbatch not found)")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        _unavailable(f"sinfo failed: {error}")
    states = out.stdout.split()
    if out.returncode != 0 or not any(s in ("idle", "mix", "alloc") for s in states):
        _unavailable(f"no Slurm node takes jobs (sinfo: {out.stdout.strip() or out.stderr.strip()})")


@pytest.fixture
def pg_store(slurm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A fresh PostgreSQL database as the store (password in the URL, as users do), the
    artifacts and working folder in tmp_path; dropped afterwards."""
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        admin.connect().close()
    except Exception as error:
        _unavailable(f"no PostgreSQL at {PG_ADMIN}: {error}")
    # Its own role with a password found nowhere else, so that a leak cannot hide.
    name, password = f"rlmrec_slurm_{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
    url = admin.url.set(database=name, username=name, password=password).render_as_string(hide_password=False)
    monkeypatch.setenv("RLMREC_DB", url)
    monkeypatch.setenv("RLMREC_ARTIFACTS", str(tmp_path / "runs"))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    store = Store()
    jobs: list[str] = []
    store.add_slurm_job = _recording(store.add_slurm_job, jobs)  # type: ignore[method-assign]
    try:
        yield store
    finally:
        if jobs:  # never leave a job running on the shared node
            subprocess.run(["scancel", *jobs], capture_output=True)
            _until(lambda: not _active(jobs), timeout=60)
        store.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


def _recording(add: Callable[..., None], jobs: list[str]) -> Callable[..., None]:
    def add_and_remember(job_id: str, **kw: object) -> None:
        jobs.append(job_id)
        add(job_id, **kw)

    return add_and_remember


def _cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _queue(*args: str) -> list[int]:
    ids: list[int] = json.loads(_cli("queue", *args, "--json").stdout)["ids"]
    return ids


def _submit(*args: str) -> str:
    out = _cli("slurm", "submit", "--force", *args).stdout
    match = re.search(r"submitted Slurm job (\d+)", out)
    assert match, out
    return match[1]


def _active(jobs: list[str]) -> bool:
    return any(s.state in ACTIVE for s in queued(jobs))


def _until(what: Callable[[], bool], timeout: float, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


def _job_log(store: Store, job: str, task: int) -> str:
    return (store.artifacts / "slurm" / f"{job}_{task}.out").read_text()


def _task_states(job: str) -> dict[int | None, str]:
    [view] = json.loads(_cli("slurm", "status", job, "--json").stdout)
    return {t["task"]: t["state"] for t in view["tasks"]}


def test_two_array_tasks_drain_four_queued_runs(pg_store: Store) -> None:
    ids = _queue("lightgcn", "base", "demo", "--seeds", "4", "--max-epochs", "6")
    job = _submit("--jobs", "2")
    _until(lambda: not _active([job]), timeout=300)
    runs = [pg_store.get(i) for i in ids]
    assert [r.status for r in runs] == ["succeeded"] * 4, [(r.status, r.error) for r in runs]
    assert {r.slurm_job for r in runs} == {job} and {r.slurm_task for r in runs} == {0, 1}
    workers = pg_store.workers(include_stopped=True)
    assert sorted((w.slurm, w.status) for w in workers) == [(f"{job}_0", "stopped"), (f"{job}_1", "stopped")]
    assert _task_states(job) == {0: "COMPLETED", 1: "COMPLETED"}
    assert f"{job}_0" in _cli("ls").stdout and f"slurm job  {runs[0].slurm}" in _cli("show", str(ids[0])).stdout
    # What Slurm keeps of the job (its stored script) holds no password.
    stored = subprocess.run(["scontrol", "write", "batch_script", job, "-"], capture_output=True, text=True)
    password = sa.engine.make_url(pg_store.url).password
    assert stored.returncode == 0 and "rlmrec worker --until-empty" in stored.stdout
    assert password and password.startswith("pw-") and password not in stored.stdout
    assert password not in pg_store.slurm_jobs()[0].script + json.dumps(pg_store.slurm_jobs()[0].options)


def test_a_cancelled_task_hands_its_run_back_and_the_other_resumes_it_to_the_same_result(pg_store: Store) -> None:
    settings = ["--max-epochs", "100", "--set", "test_step=2", "--set", "patience=1000"]
    baseline, victim = _queue("lightgcn", "base", "demo", "--seed", "9", "--seed", "9", *settings)
    job = _submit("--jobs", "2")

    def both_running_victim_past_a_checkpoint() -> bool:
        a, b = pg_store.get(baseline, with_config=False), pg_store.get(victim, with_config=False)
        return a.status == b.status == "running" and (b.epoch or 0) >= 4

    _until(both_running_victim_past_a_checkpoint, timeout=240, poll=0.2)  # polls: generous costs nothing
    task = pg_store.get(victim).slurm_task
    assert task in (0, 1)
    out = _cli("slurm", "cancel", f"{job}_{task}", "--wait", "30").stdout
    assert f"cancelled Slurm job(s) {job}_{task}" in out and f"back in the queue: run(s) {victim}" in out
    _until(lambda: not _active([job]), timeout=300)
    a, b = pg_store.get(baseline), pg_store.get(victim)
    assert (a.status, b.status, b.attempt) == ("succeeded", "succeeded", 2), (b.status, b.error)
    assert b.slurm_task == 1 - task and a.slurm_task == 1 - task  # the other task ran both in the end
    assert a.test_metrics == b.test_metrics  # exactly: resumed from the checkpoint with its RNG states
    assert [e.losses for e in pg_store.epochs(victim)] == [e.losses for e in pg_store.epochs(baseline)]
    messages = [line.message for line in pg_store.logs(victim)]
    # The run's own process heard scancel's SIGTERM and gave the run back (no stale-heartbeat wait).
    assert f"handed back to the queue: its Slurm job {job}_{task} is ending; resumes from its last checkpoint" in (
        messages
    )
    assert any(m.startswith("resumed at epoch") for m in messages)
    assert _task_states(job) == {task: "CANCELLED", 1 - task: "COMPLETED"}


def test_a_task_at_its_time_limit_drains_cleanly(pg_store: Store) -> None:
    [run_id] = _queue("lightgcn", "base", "demo", "--max-epochs", "3000", "--set", "patience=3000")
    # Slurm's warning comes 20 s (up to 50 s, by its 30 s timer) before the 1-minute limit.
    job = _submit("--jobs", "1", "--time", "00:01:00", "--grace", "20")
    _until(lambda: not _active([job]), timeout=300, poll=1.0)
    run: RunInfo = pg_store.get(run_id)
    assert (run.status, run.attempt, run.slurm) == ("lost", 1, f"{job}_0"), run.error
    assert run.error == f"handed back to the queue: its Slurm job {job}_0 is ending; resumes from its last checkpoint"
    assert (pg_store.run_dir(run_id) / "state.pt").is_file() and (run.epoch or 0) > 0  # resumable
    assert _task_states(job) == {0: "COMPLETED"}  # ended by itself before the limit: not TIMEOUT
    [worker] = pg_store.workers(include_stopped=True)
    assert worker.status == "stopped"
    log = _job_log(pg_store, job, 0)
    assert "running runs get 14s to finish" in log and "handing 1 running run(s) back to the queue" in log
