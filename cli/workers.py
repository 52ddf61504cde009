"""``rlmrec worker`` (run queued runs) and ``rlmrec workers`` (who is working)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlmrec.worker.gpus import parse_gpus, slots
from rlmrec.worker.pool import Worker, WorkerOptions

from .common import ArtifactsOption, DbOption, JsonOption, duration, open_store, table_console, when


def worker(
    gpus: Annotated[str, typer.Option(help="auto (all visible, else CPU), none, or indices such as 0,1")] = "auto",
    per_gpu: Annotated[int, typer.Option(help="Concurrent runs per GPU (or CPU slots without GPUs)")] = 1,
    max_runs: Annotated[int | None, typer.Option(help="Claim at most N runs, then exit when they finish")] = None,
    until_empty: Annotated[bool, typer.Option(help="Exit when the queue is empty and nothing runs")] = False,
    stale_after: Annotated[float, typer.Option(help="Seconds without heartbeat before a run counts as lost")] = 60.0,
    max_attempts: Annotated[int, typer.Option(help="A run lost this many times is marked failed")] = 3,
    grace: Annotated[
        float | None,
        typer.Option(
            help="On SIGTERM/Ctrl-C, running runs get SECONDS to finish, then go back to the queue "
            "(resumed from their checkpoint) instead of finishing or being cancelled; for batch jobs",
            metavar="SECONDS",
            min=0,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads its slots share, split evenly (default: the cores this process may use, by "
            "affinity and cgroup quota; an RLMREC_THREADS already set is each slot's)",
            min=1,
        ),
    ] = None,
    status: Annotated[bool, typer.Option("--status", help="Show live workers instead (as rlmrec workers)")] = False,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Claim queued runs (priority, then age) and run each in a child process.

    Ctrl-C once: finish running runs, claim nothing more. Twice: stop them now
    (recorded as cancelled). With --grace: stop them after the grace, back in the
    queue. A run whose worker dies is requeued and resumes from its last validation
    checkpoint.
    """
    if status:
        workers(db=db, json_=False)
        return
    store = open_store(db, artifacts)
    options = WorkerOptions(
        slots=slots(parse_gpus(gpus), per_gpu),
        max_runs=max_runs,
        until_empty=until_empty,
        stale_after_s=stale_after,
        max_attempts=max_attempts,
        grace_s=grace,
        threads=threads,
    )
    console = Console(stderr=True, highlight=False)
    console.soft_wrap = not console.is_terminal  # a log file (Slurm's, nohup's) gets whole lines

    def say(message: str) -> None:  # messages carry user text (paths, run errors): never markup
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {escape(message)}")

    code = Worker(store, options, say=say).run()
    raise typer.Exit(code=code)


def workers(db: DbOption = None, json_: JsonOption = False) -> None:
    """Live workers, their slots and the runs they are running."""
    store = open_store(db, existing=True)
    found = store.workers()
    if json_:
        typer.echo(json.dumps([w.__dict__ for w in found]))
        return
    console = table_console()
    if not found:
        console.print("no live workers (start one: rlmrec worker)")
        return
    table = Table(box=None, header_style="bold")
    slurm = any(w.slurm_job for w in found)  # a column only where some worker is a Slurm job
    for name in ("worker", "status", "slots", "runs", "up since", "uptime", "last beat", *(["slurm job"] * slurm)):
        table.add_column(name)
    now = time.time()
    for w in found:
        cells = [w.id, w.status, ", ".join(w.slots), ", ".join(map(str, w.runs)) or "idle", when(w.started_at)]
        cells += [duration(now - w.started_at), f"{now - w.heartbeat_at:.0f}s ago", *([w.slurm or ""] * slurm)]
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
