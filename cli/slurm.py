"""``rlmrec slurm submit | status | cancel``: workers as Slurm jobs."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rlmrec.slurm.jobs import cancel as cancel_jobs
from rlmrec.slurm.jobs import status as job_status
from rlmrec.slurm.jobs import submit as submit_jobs
from rlmrec.slurm.script import SubmitOptions

from .common import ArtifactsOption, DbOption, HelpGroup, JsonOption, open_store, table_console, when

slurm_app = typer.Typer(
    name="slurm",
    cls=HelpGroup,  # reflowed help texts
    help="Workers as Slurm jobs: submit a job array of workers, follow it, cancel it.",
    no_args_is_help=True,
)
Jobs = Annotated[list[str] | None, typer.Argument(help="Slurm job ids (default: this store's live jobs)")]


@slurm_app.command("submit")
def submit(
    jobs: Annotated[int, typer.Option(help="Array tasks, one worker each")] = 1,
    gpus_per_job: Annotated[int, typer.Option(help="GPUs per task (0: CPU workers)")] = 0,
    per_gpu: Annotated[int, typer.Option(help="Runs at once per GPU (CPU slots per task without GPUs)")] = 1,
    partition: Annotated[str | None, typer.Option(help="Slurm partition")] = None,
    time: Annotated[str | None, typer.Option(help="Time limit per task, e.g. 12:00:00")] = None,
    mem: Annotated[str | None, typer.Option(help="Memory per task, e.g. 32G")] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="CPUs per task (shared by its runs)")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account to charge")] = None,
    qos: Annotated[str | None, typer.Option(help="Quality of service")] = None,
    constraint: Annotated[str | None, typer.Option(help="Node features, e.g. a100")] = None,
    grace: Annotated[
        int | None,
        typer.Option(help="Seconds of warning before the time limit (default: 120, at most half of --time)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the batch script; submit nothing")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Submit even if the store or artifacts folder is not shared")
    ] = False,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Submit one Slurm job array whose tasks each run `rlmrec worker --until-empty`.

    The jobs work on this run store: queue runs first (rlmrec queue), then submit.
    Slurm's SIGTERM before the time limit, or scancel, hands unfinished runs back to
    the queue; they resume from their checkpoint. The store URL in the script never
    holds a password: the jobs inherit PGPASSWORD (or ~/.pgpass) from this shell.
    """
    options = SubmitOptions(jobs, gpus_per_job, per_gpu, partition, time, mem, cpus_per_task, account, qos,
                            constraint, grace)  # fmt: skip
    store = open_store(db, artifacts)
    done = submit_jobs(store, options, force=force, dry_run=dry_run)
    waiting = store.waiting(["cpu"] if not gpus_per_job else ["cuda:0"])
    if done.job is None:
        typer.echo(done.script, nl=False)
        return
    typer.echo(f"submitted Slurm job {done.job}: {jobs} worker task(s), {waiting} run(s) waiting")
    typer.echo(f"follow: rlmrec slurm status   logs: {store.artifacts.absolute() / 'slurm'}/{done.job}_*.out")


@slurm_app.command("status")
def status(jobs: Jobs = None, db: DbOption = None, json_: JsonOption = False) -> None:
    """This store's Slurm jobs: each task's state (squeue, else scontrol/sacct), its worker and runs."""
    store = open_store(db, existing=True)
    views = job_status(store, jobs or [])
    if json_:
        out = [{"job": v.job.job_id, "submitted_at": v.job.submitted_at, "cancelled_at": v.job.cancelled_at,
                "tasks": [dataclasses.asdict(t) for t in v.tasks]} for v in views]  # fmt: skip
        typer.echo(json.dumps(out))
        return
    console = table_console()
    if not views:
        console.print("no Slurm jobs submitted with this store (rlmrec slurm submit)")
        return
    table = Table(box=None, header_style="bold")
    for name in ("job", "state", "elapsed", "node", "worker", "runs", "submitted"):
        table.add_column(name)
    for view in views:
        for task in view.tasks:
            label = view.job.job_id if task.task is None else f"{view.job.job_id}_{task.task}"
            worker = f"{task.worker} ({task.worker_status})" if task.worker else ""
            state = task.state + (" (cancelled here)" if view.job.cancelled_at and task.state != "CANCELLED" else "")
            cells = [label, state, task.elapsed, task.nodes, worker, ", ".join(map(str, task.runs)),
                     when(view.job.submitted_at)]  # fmt: skip
            table.add_row(*(Text(cell) for cell in cells))  # host names and ids: never markup
    console.print(table)


@slurm_app.command("cancel")
def cancel(
    jobs: Jobs = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the jobs to end (0: do not wait)")] = 60.0,
    db: DbOption = None,
) -> None:
    """scancel this store's Slurm jobs (default: all still queued or running).

    Their runs go back to the queue and resume from their checkpoint later.
    """
    store = open_store(db, existing=True)
    done = cancel_jobs(store, jobs or [], wait_s=wait)
    for job in done.already_ended:
        typer.echo(f"job {job}: already ended")
    if not done.jobs:
        if not done.already_ended:
            typer.echo("no queued or running Slurm jobs of this store")
        return
    typer.echo(f"cancelled Slurm job(s) {', '.join(done.jobs)}")
    if done.handed_back:
        typer.echo(f"back in the queue: run(s) {', '.join(map(str, done.handed_back))}")
    if done.still_running:
        typer.echo(
            f"run(s) {', '.join(map(str, done.still_running))} still marked running: "
            "they go back to the queue once their heartbeat goes stale"
        )
