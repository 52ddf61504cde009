"""Several processes on one store: no "database is locked", no run claimed twice."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

from rlmrec.store import RunSpec, Store

WRITERS = 4
WRITES = int(os.environ.get("RLMREC_STRESS_WRITES", "10000"))  # in total, over all writers


def _spec(seed: int) -> RunSpec:
    return RunSpec("lightgcn", "base", "demo", seed, {"seed": seed})


def _writer(url: str, run_id: int, writes: int, barrier: Any, errors: Any) -> None:
    store = Store(url, "/tmp/unused")
    barrier.wait()
    for i in range(writes):
        try:
            kind = i % 3
            if kind == 0:
                store.record_epoch(run_id, 1, i, {"bpr": 1.0 / (i + 1)}, 0.01, 0.01 * i, f"epoch {i}")
            elif kind == 1:
                store.heartbeat(run_id, 1)
            else:
                store.log(run_id, 1, f"line {i}")
        except Exception as error:  # counted, not raised: the test reports them all
            errors.put(f"{type(error).__name__}: {error}")


def _reader(url: str, stop: Any, errors: Any, reads: Any) -> None:
    store = Store(url, "/tmp/unused")
    while not stop.is_set():
        try:
            store.runs()
            for run in store.runs(status=["running"]):
                store.epochs(run.id)
            reads.value += 1
        except Exception as error:
            errors.put(f"reader {type(error).__name__}: {error}")
        time.sleep(0.005)


def test_four_writers_and_a_reader_never_see_a_locked_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = Store(url, tmp_path)
    ids = store.add_runs([_spec(i) for i in range(WRITERS)])
    for _ in ids:
        assert store.claim("w", "h", 1, "cpu") is not None
    ctx = mp.get_context("fork")
    barrier, errors, stop, reads = ctx.Barrier(WRITERS), ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    reader = ctx.Process(target=_reader, args=(url, stop, errors, reads))
    reader.start()
    writers = [ctx.Process(target=_writer, args=(url, i, WRITES // WRITERS, barrier, errors)) for i in ids]
    for p in writers:
        p.start()
    for p in writers:
        p.join(300)
    stop.set()
    reader.join(30)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert [p.exitcode for p in writers] == [0] * WRITERS
    assert reads.value > 0
    per_run = WRITES // WRITERS
    for run_id in ids:  # every write landed
        assert len(store.epochs(run_id)) == len(range(0, per_run, 3))
        assert len(store.logs(run_id)) == len(range(0, per_run, 3)) + len(range(2, per_run, 3))


def _claimer(url: str, barrier: Any, out: Any) -> None:
    store = Store(url, "/tmp/unused")
    barrier.wait()
    mine = []
    while (run := store.claim(f"w{os.getpid()}", "h", os.getpid(), "cpu")) is not None:
        mine.append(run.id)
        time.sleep(0.002)  # as a worker starts its run: the others get their turns, even on a loaded machine
    out.put(mine)


def test_concurrent_claims_never_claim_a_run_twice(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url, tmp_path)
    ids = store.add_runs([_spec(i) for i in range(200)])
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(store_url, barrier, out)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    flat = [run_id for part in claimed for run_id in part]
    assert sorted(flat) == ids  # each exactly once
    assert sum(1 for part in claimed if part) >= 2  # they really competed
    assert {r.attempt for r in store.runs()} == {1}
