"""Store semantics on SQLite and PostgreSQL: claims, progress, ownership,
failure detection, steering and reading."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rlmrec.errors import StoreError
from rlmrec.store import RunSpec, Store, Superseded


def _spec(seed: int = 1, priority: int = 0, **kw: object) -> RunSpec:
    config = {"model": "lightgcn", "variant": "base", "dataset": "demo", "epochs": 9, "seed": seed}
    return RunSpec("lightgcn", "base", "demo", seed, config, priority=priority, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Store:
    return Store(store_url, tmp_path / "files")


def _running(store: Store, seed: int = 1) -> tuple[int, int]:
    store.add_runs([_spec(seed)])
    run = store.claim("w", "host-a", 1, "cpu")
    assert run is not None
    store.begin_attempt(run.id, run.attempt, pid=1, code_version="git:abc", resume_epoch=None)
    return run.id, run.attempt


def test_claims_go_by_priority_then_age_and_never_twice(store: Store) -> None:
    ids = store.add_runs([_spec(1), _spec(2, priority=5), _spec(3), _spec(4, priority=5)])
    order = []
    while (run := store.claim("w", "h", 1, "cpu")) is not None:
        order.append(run.id)
        assert run.status == "running" and run.attempt == 1 and run.worker_id == "w"
    assert order == [ids[1], ids[3], ids[0], ids[2]]


def test_progress_is_recorded_and_readable(store: Store) -> None:
    run_id, attempt = _running(store)
    store.record_epoch(run_id, attempt, 0, {"bpr": 0.69, "reg": 0.01}, 0.5, 0.6, "epoch 0")
    store.record_eval(run_id, attempt, 0, {"recall@20": 0.1}, 0.2, (0, 0.1, {"recall@20": 0.1}), "valid 0")
    store.record_epoch(run_id, attempt, 1, {"bpr": 0.5, "reg": 0.01}, 0.4, 1.1)
    per_user = {"users": np.array([3, 5, 9]), "recall@20": np.array([0.0, 0.5, 1.0])}
    store.finish(run_id, attempt, "succeeded", test_metrics={"recall@20": 0.2}, test_value=0.2, per_user=per_user)
    run = store.get(run_id)
    assert (run.status, run.epoch, run.best_epoch, run.best_valid, run.test_value) == ("succeeded", 1, 0, 0.1, 0.2)
    assert run.code_version == "git:abc" and run.finished_at is not None
    epochs = store.epochs(run_id)
    assert [(e.epoch, e.losses["bpr"], e.valid) for e in epochs] == [(0, 0.69, {"recall@20": 0.1}), (1, 0.5, None)]
    assert [line.message for line in store.logs(run_id)] == ["epoch 0", "valid 0"]
    stored = store.user_metrics(run_id)
    assert stored is not None and stored["users"].dtype == np.int32 and stored["recall@20"].dtype == np.float32
    np.testing.assert_array_equal(stored["users"], per_user["users"])
    np.testing.assert_allclose(stored["recall@20"], per_user["recall@20"])


def test_a_lost_attempt_cannot_write_and_resumes_with_its_epochs(store: Store) -> None:
    run_id, attempt = _running(store)
    for epoch in range(4):
        store.record_epoch(run_id, attempt, epoch, {"bpr": 1.0 - epoch / 10}, 0.1, 0.1 * (epoch + 1))
    assert store.mark_lost(run_id, attempt, "child died") == "lost"
    with pytest.raises(Superseded):
        store.record_epoch(run_id, attempt, 4, {"bpr": 0.0}, 0.1, 0.5)
    with pytest.raises(Superseded):
        store.heartbeat(run_id, attempt)
    again = store.claim("w2", "host-b", 2, "cpu")
    assert again is not None and again.id == run_id and again.attempt == 2
    store.begin_attempt(run_id, 2, pid=2, code_version=None, resume_epoch=2)  # checkpoint after epoch 2
    assert [e.epoch for e in store.epochs(run_id)] == [0, 1, 2]  # epoch 3 will be redone
    assert store.get(run_id).epoch == 2


def test_lost_too_often_is_failed(store: Store) -> None:
    run_id, attempt = _running(store)
    assert store.mark_lost(run_id, attempt, "boom", max_attempts=1) == "failed"
    assert "gave up after 1 attempts" in (store.get(run_id).error or "")
    assert store.claim("w", "h", 1, "cpu") is None
    assert store.mark_lost(run_id, attempt, "again") is None  # already ended


def test_reap_finds_silent_and_dead_runs(store: Store) -> None:
    stale_id, _ = _running(store, seed=1)
    dead_id, _ = _running(store, seed=2)
    alive_id, _ = _running(store, seed=3)
    other_host, _ = _running(store, seed=4)
    # Make the first silent for a minute; the others just beat.
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET heartbeat_at = heartbeat_at - 120 WHERE id = {stale_id}")
        conn.exec_driver_sql(f"UPDATE runs SET pid = 666 WHERE id = {dead_id}")
        conn.exec_driver_sql(f"UPDATE runs SET host = 'host-b', pid = 666 WHERE id = {other_host}")
    lost = store.reap(stale_after=60, host="host-a", alive=lambda pid: pid != 666)
    assert sorted(lost) == sorted([stale_id, dead_id])  # pid 666 on another host: not ours to judge
    assert {store.get(i).status for i in lost} == {"lost"}
    assert store.get(alive_id).status == "running" and store.get(other_host).status == "running"


def test_cancel_queued_and_running(store: Store) -> None:
    run_id, attempt = _running(store)
    queued = store.add_runs([_spec(7)])[0]
    assert store.cancel([queued, run_id]) == {queued: "cancelled", run_id: "stopping"}
    assert store.get(queued).status == "cancelled"
    assert store.claim("w", "h", 1, "cpu") is None  # the cancelled run never starts
    assert store.heartbeat(run_id, attempt) is True  # the running one learns at its next beat
    store.finish(run_id, attempt, "cancelled", error="cancelled by request")
    assert store.cancel([run_id]) == {run_id: "already cancelled"}


def test_retry_starts_afresh(store: Store) -> None:
    run_id, attempt = _running(store)
    store.record_epoch(run_id, attempt, 0, {"bpr": 0.5}, 0.1, 0.1)
    checkpoint = store.run_dir(run_id) / "state.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    store.finish(run_id, attempt, "failed", error="bad")
    done_id, done_attempt = _running(store, seed=2)
    store.finish(done_id, done_attempt, "succeeded", test_metrics={"recall@20": 0.1}, test_value=0.1)
    assert store.retry([run_id, done_id]) == {run_id: "queued", done_id: "not retried: succeeded"}
    run = store.get(run_id)
    assert (run.status, run.error, run.epoch) == ("queued", None, None)
    assert store.epochs(run_id) == [] and not checkpoint.exists()
    again = store.claim("w", "h", 1, "cpu")
    assert again is not None and again.id == run_id and again.attempt == 2


def test_remove_deletes_rows_and_files_but_not_running_runs(store: Store) -> None:
    running_id, _ = _running(store)
    queued = store.add_runs([_spec(2)])[0]
    store.log(queued, 0, "note")
    folder = store.run_dir(queued)
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(b"x")
    with pytest.raises(StoreError, match=f"run {running_id} is running"):
        store.remove([queued, running_id])
    assert folder.exists() and store.get(queued).status == "queued"  # nothing half-done
    assert store.remove([queued]) == [queued]
    assert not folder.exists() and store.logs(queued) == []
    with pytest.raises(StoreError, match="no run with id"):
        store.get(queued)


def test_listing_filters_and_limit(store: Store) -> None:
    ids = store.add_runs([_spec(i, group="g1" if i < 3 else "g2") for i in range(5)])
    assert [r.id for r in store.runs(group=["g1"])] == ids[:3]
    assert [r.id for r in store.runs(limit=2)] == ids[3:]  # the newest two, oldest first
    assert all(r.config is None for r in store.runs())  # listings skip the config
    assert store.get(ids[0]).config == _spec(0).config
    assert store.counts() == {"queued": 5}
    with pytest.raises(StoreError, match="no run with id 999"):
        store.cancel([999])


def test_workers_are_listed_with_their_runs(store: Store) -> None:
    store.register_worker("h:1:0", "h", 1, ["cpu", "cpu"])
    store.add_runs([_spec(1)])
    run = store.claim("h:1:0", "h", 1, "cpu")
    assert run is not None
    [worker] = store.workers()
    assert worker.slots == ["cpu", "cpu"] and worker.runs == [run.id] and worker.status == "running"
    store.worker_beat("h:1:0", "stopped")
    assert store.workers() == [] and len(store.workers(include_stopped=True)) == 1


def test_artifacts_default_next_to_the_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMREC_ARTIFACTS", raising=False)
    assert Store(f"sqlite:///{tmp_path / 'exp.db'}").artifacts == tmp_path / "exp"
    monkeypatch.setenv("RLMREC_ARTIFACTS", str(tmp_path / "shared"))
    assert Store(f"sqlite:///{tmp_path / 'exp.db'}").artifacts == tmp_path / "shared"


def test_heartbeat_moves_forward(store: Store) -> None:
    run_id, attempt = _running(store)
    before = store.get(run_id).heartbeat_at
    time.sleep(0.01)
    assert store.heartbeat(run_id, attempt) is False
    after = store.get(run_id).heartbeat_at
    assert before is not None and after is not None and after > before
