"""Run store benchmarks: queueing, listing, concurrent writes, and what recording
costs a training epoch. Writes the ``bench:store`` section of BENCHMARKS.md.

    python bench/bench_store.py [--no-write] [--pg URL]

Targets (issue 4): queue 1,000 runs < 2 s; ``ls`` over 10,000 runs < 0.5 s;
4 writers + a polling reader on one SQLite file, 10,000 writes, zero "database is
locked"; recording adds < 2% to a LightGCN epoch on Amazon-book.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import SHARED_AMAZON, amazon, machine, publish
from rich.console import Console

from rlmrec.queueing import Submission, plan
from rlmrec.store import RunSpec, Store

RLMREC = [sys.executable, "-m", "rlmrec"]


def _cli(args: list[str], env: dict[str, str]) -> float:
    tick = time.perf_counter()
    subprocess.run([*RLMREC, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - tick


def bench_queue_and_ls(url: str, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "RLMREC_DB": url, "RLMREC_ARTIFACTS": str(folder / "runs"), "COLUMNS": "120"}
    store = Store(url, folder / "runs")
    tick = time.perf_counter()
    specs = plan(Submission("lightgcn", "gen", "demo", n_seeds=1000))
    plan_s = time.perf_counter() - tick
    tick = time.perf_counter()
    store.add_runs(specs)
    insert_s = time.perf_counter() - tick
    cli_queue_s = _cli(["queue", "lightgcn", "gen", "demo", "--seeds", "1000"], env)
    # Fill to 10,000 runs, a tenth of them finished with metrics, as a real store would be.
    more = plan(Submission("all", "all", "demo", n_seeds=2000))[: 10_000 - 2000]
    store.add_runs(more)
    while (run := store.claim("w", "h", 1, "cpu")) is not None and run.id <= 1000:
        store.finish(run.id, run.attempt, "succeeded", test_metrics={"recall@20": 0.2}, test_value=0.2)
    n = sum(store.counts().values())
    from rlmrec.cli import runs as runs_cmd  # the real command, rendering to a null console

    best_query, best_render = float("inf"), float("inf")
    for _ in range(5):
        tick = time.perf_counter()
        listed = store.runs(lean=True)
        best_query = min(best_query, time.perf_counter() - tick)
        tick = time.perf_counter()
        console = Console(file=io.StringIO(), width=120)
        runs_cmd.render_runs(listed, console)
        best_render = min(best_render, time.perf_counter() - tick)
    cli_ls_s = min(_cli(["ls"], env) for _ in range(3))
    cli_startup_s = min(_cli(["--help"], env) for _ in range(3))
    return {
        "backend": store.backend,
        "queue_1000_plan_s": plan_s,
        "queue_1000_insert_s": insert_s,
        "queue_1000_cli_s": cli_queue_s,
        "ls_runs": n,
        "ls_query_s": best_query,
        "ls_render_s": best_render,
        "ls_cli_s": cli_ls_s,
        "cli_startup_s": cli_startup_s,
    }


def _writer(url: str, run_id: int, writes: int, barrier: Any, errors: Any) -> None:
    store = Store(url, "/tmp/unused")
    barrier.wait()
    for i in range(writes):
        try:
            if i % 3 == 0:
                store.record_epoch(run_id, 1, i, {"bpr": 0.5}, 0.01, 0.01 * i, f"epoch {i}")
            elif i % 3 == 1:
                store.heartbeat(run_id, 1)
            else:
                store.log(run_id, 1, f"line {i}")
        except Exception as error:
            errors.put(repr(error))


def _reader(url: str, stop: Any, reads: Any, errors: Any) -> None:
    store = Store(url, "/tmp/unused")
    while not stop.is_set():
        try:
            for run in store.runs():
                store.epochs(run.id)
            reads.value += 1
        except Exception as error:
            errors.put(repr(error))


def bench_concurrency(url: str, writes: int = 10_000, writers: int = 4) -> dict[str, Any]:
    store = Store(url, "/tmp/unused")
    ids = store.add_runs([RunSpec("lightgcn", "base", "demo", i, {}) for i in range(writers)])
    for _ in ids:
        store.claim("w", "h", 1, "cpu")
    ctx = mp.get_context("fork")
    barrier, errors, stop, reads = ctx.Barrier(writers), ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    reader = ctx.Process(target=_reader, args=(url, stop, reads, errors))
    reader.start()
    procs = [ctx.Process(target=_writer, args=(url, i, writes // writers, barrier, errors)) for i in ids]
    tick = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - tick
    stop.set()
    reader.join()
    found = []
    while not errors.empty():
        found.append(errors.get())
    return {"writes": writes, "seconds": seconds, "errors": len(found), "reads": reads.value, "first": found[:1]}


def bench_recording(folder: Path, epochs: int = 4) -> dict[str, Any] | None:
    """LightGCN base on Amazon-book: time inside the recorder (and the heartbeat
    thread's writes) per epoch, against the epoch's own time."""
    if not SHARED_AMAZON.exists() and not os.environ.get("RLMREC_AMAZON"):
        return None
    from rlmrec.config import resolve_config
    from rlmrec.events import EpochEnded, Event
    from rlmrec.store.recorder import Recorder
    from rlmrec.trainer import Trainer
    from rlmrec.worker.execute import Heartbeat

    data = amazon()
    store = Store(f"sqlite:///{folder / 'rec.db'}", folder / "rec")
    cfg = resolve_config("lightgcn", "base", "amazon", {"epochs": epochs, "test_step": 1000}, device="cpu")
    spec = RunSpec("lightgcn", "base", "amazon", cfg.train.seed, cfg.to_dict())
    run = store.start_direct(spec, host="bench", pid=os.getpid(), device="cpu")
    recorder = Recorder(store, run.id, run.attempt)
    spent: list[float] = []
    epoch_s: list[float] = []

    def timed_recorder(event: Event) -> None:
        tick = time.perf_counter()
        recorder(event)
        spent.append(time.perf_counter() - tick)
        if isinstance(event, EpochEnded):
            epoch_s.append(event.seconds)

    beat = Heartbeat(store, run.id, run.attempt, interval=0.25)  # 20x the default rate
    beat.start()
    try:
        Trainer(cfg, data, [timed_recorder], should_stop=beat.stop.is_set).fit()
    finally:
        beat.close()
    per_epoch = sum(spent) / epochs
    mean_epoch = sum(epoch_s[1:]) / max(len(epoch_s) - 1, 1)  # first epoch warms caches
    return {"epoch_s": mean_epoch, "recorder_ms_per_epoch": per_epoch * 1000, "share": per_epoch / mean_epoch}


def table(results: dict[str, Any]) -> str:
    lines = [f"Machine: {machine()}. Best of repeated runs where noted; `bench/bench_store.py`.", ""]
    lines += ["| measure | SQLite | PostgreSQL | target |", "|---|---:|---:|---|"]
    q = {r["backend"]: r for r in results["queue"]}

    def cell(backend: str, key: str, fmt: str = "{:.3f} s") -> str:
        return fmt.format(q[backend][key]) if backend in q else "not run"

    for label, key, target in [
        ("queue 1,000 runs: resolve + validate", "queue_1000_plan_s", ""),
        ("queue 1,000 runs: insert", "queue_1000_insert_s", ""),
        ("queue 1,000 runs: whole `rlmrec queue` command", "queue_1000_cli_s", "< 2 s"),
        ("`ls` over 10,000 runs: query", "ls_query_s", ""),
        ("`ls` over 10,000 runs: query + table rendering (best of 5)", "ls_render_s", ""),
        ("`ls` over 10,000 runs: whole `rlmrec ls` command (best of 3)", "ls_cli_s", "< 0.5 s"),
        ("CLI start-up alone (`rlmrec --help`)", "cli_startup_s", ""),
    ]:
        if key == "ls_render_s":
            value = {b: q[b]["ls_query_s"] + q[b]["ls_render_s"] for b in q}
            lines.append(
                f"| {label} | {value.get('sqlite', 0):.3f} s | "
                + (f"{value['postgresql']:.3f} s" if "postgresql" in value else "not run")
                + f" | {target} |"
            )
            continue
        lines.append(f"| {label} | {cell('sqlite', key)} | {cell('postgresql', key)} | {target} |")
    for c in results["concurrency"]:
        lines.append(
            f"| 4 writers + polling reader, {c['writes']:,} writes ({c['backend']}) | {c['seconds']:.1f} s, "
            f"{c['errors']} errors, {c['reads']} reader passes | | 0 errors |"
        )
    rec = results.get("recording")
    if rec:
        lines.append(
            f"| recording, LightGCN base epoch on Amazon-book | {rec['recorder_ms_per_epoch']:.1f} ms of a "
            f"{rec['epoch_s']:.2f} s epoch = {100 * rec['share']:.2f}% | | < 2% |"
        )
    else:
        lines.append("| recording overhead | needs ../shared/data/amazon | | |")
    return "\n".join(lines)


@contextlib.contextmanager
def scratch_pg(admin_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"rlmrec_bench_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--pg", help="PostgreSQL URL of an account that may create a scratch database")
    args = parser.parse_args()
    results: dict[str, Any] = {"queue": [], "concurrency": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["queue"].append(bench_queue_and_ls(f"sqlite:///{folder / 'runs.db'}", folder))
        conc = bench_concurrency(f"sqlite:///{folder / 'conc.db'}")
        results["concurrency"].append({**conc, "backend": "SQLite"})
        if args.pg:
            with scratch_pg(args.pg) as url:
                results["queue"].append(bench_queue_and_ls(url, folder))
            with scratch_pg(args.pg) as url:
                results["concurrency"].append({**bench_concurrency(url), "backend": "PostgreSQL"})
        results["recording"] = bench_recording(folder)
    for r in results["queue"]:
        print(r)
    publish("store", [results], table(results), write=not args.no_write)


if __name__ == "__main__":
    main()
