"""The store's Slurm records on SQLite and PostgreSQL: the job and array task of a
worker and of each attempt, a run handed back to the queue, and submitted jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmrec.store import RunSpec, Store, Superseded


def _spec(seed: int = 1) -> RunSpec:
    config = {"model": "lightgcn", "variant": "base", "dataset": "demo", "epochs": 9, "seed": seed}
    return RunSpec("lightgcn", "base", "demo", seed, config)


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Store:
    return Store(store_url, tmp_path / "files")


def test_each_attempt_records_its_slurm_job_and_task_next_to_host_and_pid(store: Store) -> None:
    [run_id] = store.add_runs([_spec()])
    first = store.claim("w1", "node-a", 11, "cpu", slurm=("4242", 3))
    assert first is not None and (first.slurm_job, first.slurm_task, first.slurm) == ("4242", 3, "4242_3")
    assert store.mark_lost(run_id, first.attempt, "node died") == "lost"
    second = store.claim("w2", "login", 12, "cpu")  # a plain worker: no Slurm job left over from the last attempt
    assert second is not None and (second.host, second.slurm_job, second.slurm_task) == ("login", None, None)
    listed = store.runs(lean=True)[0]
    assert (listed.attempt, listed.slurm) == (2, None)


def test_workers_record_their_slurm_job(store: Store) -> None:
    store.register_worker("n:1:0", "n", 1, ["cpu"], slurm=("77", None))
    store.register_worker("n:2:0", "n", 2, ["cpu"])
    found = {w.id: w.slurm for w in store.workers()}
    assert found == {"n:1:0": "77", "n:2:0": None}


def test_a_released_run_is_claimable_and_not_counted_as_a_failed_attempt(store: Store) -> None:
    [run_id] = store.add_runs([_spec()])
    for _ in range(4):  # handed back more often than --max-attempts allows failures
        run = store.claim("w", "h", 1, "cpu", slurm=("9", 0))
        assert run is not None
        store.release(run_id, run.attempt, "handed back to the queue: its Slurm job 9_0 is ending")
        got = store.get(run_id)
        assert (got.status, got.error) == ("lost", "handed back to the queue: its Slurm job 9_0 is ending")
    run = store.claim("w", "h", 1, "cpu")
    assert run is not None and run.attempt == 5
    assert store.mark_lost(run_id, 5, "crashed", max_attempts=2) == "lost"  # one crash since the last hand-back
    assert [line.level for line in store.logs(run_id)][:4] == ["warning"] * 4
    with pytest.raises(Superseded):
        store.release(run_id, 5, "too late: this attempt is over")


def test_submitted_jobs_are_listed_and_marked_cancelled(store: Store) -> None:
    store.add_slurm_job("100", tasks=2, host="login", options={"jobs": 2}, script="#!/bin/bash\n")
    store.add_slurm_job("100", tasks=1, host="login", options={"jobs": 1}, script="#!/bin/bash\n")  # ids recur
    store.add_slurm_job("101", tasks=8, host="login", options={"jobs": 8}, script="#!/bin/bash\n")
    jobs = store.slurm_jobs()
    assert [(j.job_id, j.tasks) for j in jobs] == [("100", 2), ("100", 1), ("101", 8)]
    assert [j.job_id for j in store.slurm_jobs(["101"])] == ["101"]
    store.slurm_cancelled([jobs[2].id])
    assert [j.cancelled_at is not None for j in store.slurm_jobs()] == [False, False, True]
