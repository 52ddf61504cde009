"""``rlmrec slurm submit``, ``status`` and ``cancel`` as library calls: the CLI only
prints what these return."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from rlmrec.errors import SlurmError
from rlmrec.slurm import commands
from rlmrec.slurm.commands import TaskState
from rlmrec.slurm.script import JobContext, SubmitOptions, render
from rlmrec.slurm.shared import check_artifacts, check_store
from rlmrec.store import RUNNING, RunInfo, SlurmJobInfo, Store, Superseded
from rlmrec.store.engine import display_url

# squeue's states of a task that still holds (or waits for) a node.
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STOPPED")


@dataclass(frozen=True)
class Submitted:
    job: str | None  # None on a dry run
    script: str


def without_password(url: str) -> str:
    parsed = make_url(url)
    if parsed.password is None:
        return url
    # URL.set(password=None) would keep it: None there means "unchanged".
    return parsed._replace(password=None).render_as_string(hide_password=False)


def job_environment(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What sbatch passes on to the jobs (--export=ALL): the password, if the URL has
    one, as PGPASSWORD (libpq reads it) rather than in a URL the script would show."""
    env = dict(environ)
    env.pop("RLMREC_DB", None)  # the script sets it, without the password
    password = make_url(url).password
    if password and not env.get("PGPASSWORD"):
        env["PGPASSWORD"] = str(password)
    return env


def context(store: Store, environ: Mapping[str, str]) -> JobContext:
    data = environ.get("RLMREC_DATA")
    return JobContext(
        python=sys.executable,
        workdir=Path.cwd(),
        store_url=without_password(store.url),
        artifacts=store.artifacts.absolute(),
        data_root=str(Path(data).absolute()) if data else None,
    )


def submit(
    store: Store,
    options: SubmitOptions,
    *,
    force: bool = False,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
    mounts: str | None = None,
) -> Submitted:
    """Check, render and (unless ``dry_run``) submit the job array; recorded in the store."""
    environ = os.environ if environ is None else environ
    ctx = context(store, environ)
    script = render(options, ctx)
    if not force:
        check_store(store.url)
        check_artifacts(ctx.artifacts, mounts)
    if dry_run:
        return Submitted(None, script)
    try:
        ctx.log_dir.mkdir(parents=True, exist_ok=True)  # Slurm does not create --output's folder
    except OSError as error:
        raise SlurmError(f"cannot create the job log folder {ctx.log_dir}: {error.strerror or error}") from None
    job = commands.sbatch(script, job_environment(store.url, environ))
    recorded = {**dataclasses.asdict(options), "store": display_url(store.url), "artifacts": str(ctx.artifacts)}
    store.add_slurm_job(job, tasks=options.jobs, host=socket.gethostname(), options=recorded, script=script)
    return Submitted(job, script)


@dataclass
class TaskView:
    """One array task: Slurm's word on it and the worker it runs (from the store)."""

    task: int | None
    state: str
    elapsed: str = ""
    nodes: str = ""
    worker: str | None = None
    worker_status: str | None = None
    runs: list[int] = field(default_factory=list)


@dataclass
class JobView:
    job: SlurmJobInfo
    tasks: list[TaskView]

    @property
    def active(self) -> bool:
        return any(t.state in ACTIVE for t in self.tasks)


def status(store: Store, jobs: Sequence[str] = ()) -> list[JobView]:
    """This store's job arrays (``jobs``: only these), each task's state and worker."""
    jobs = [_task_of(label)[0] for label in jobs]
    known = store.slurm_jobs(jobs)
    _unknown(jobs, known)
    states: dict[str, list[TaskState]] = {}
    for state in commands.queued(dict.fromkeys(j.job_id for j in known)):
        states.setdefault(state.job, []).append(state)
    workers = {(w.slurm_job, w.slurm_task): w for w in store.workers(include_stopped=True) if w.slurm_job}
    running: dict[tuple[str | None, int | None], list[int]] = {}
    for run in store.runs(status=[RUNNING], lean=True):
        running.setdefault((run.slurm_job, run.slurm_task), []).append(run.id)
    views = []
    for info in known:
        found = list(states.get(info.job_id, []))
        seen = {s.task for s in found}
        if len([t for t in seen if t is not None]) < info.tasks and None not in seen:
            found += [s for s in commands.finished(info.job_id) if s.task not in seen]
        tasks = []
        for s in sorted(found, key=lambda s: -1 if s.task is None else s.task):
            worker = workers.get((info.job_id, s.task))
            tasks.append(
                TaskView(s.task, s.state, s.elapsed, s.nodes, worker.id if worker else None,
                         worker.status if worker else None, running.get((info.job_id, s.task), []))
            )  # fmt: skip
        views.append(JobView(info, tasks or [TaskView(None, "GONE")]))
    return views


def _unknown(asked: Sequence[str], known: list[SlurmJobInfo]) -> None:
    missing = sorted(set(asked) - {j.job_id for j in known})
    if missing:
        raise SlurmError(f"job {missing[0]} was not submitted with this store (see rlmrec slurm status)")


@dataclass
class Cancelled:
    jobs: list[str]
    already_ended: list[str]  # asked for by id, but no task of them was queued or running
    handed_back: list[int]  # runs that went back to the queue
    still_running: list[int]  # their jobs did not end within the wait: a stale heartbeat frees them


def _task_of(label: str) -> tuple[str, int | None]:
    """``1234`` or ``1234_5`` (one array task), as Slurm's tools spell them."""
    job, sep, task = label.partition("_")
    if not job.isdigit() or (sep and not task.isdigit()):
        raise SlurmError(f"bad Slurm job '{label}': expected a job id such as 1234 or an array task such as 1234_5")
    return job, int(task) if sep else None


def _covers(targets: list[tuple[str, int | None]], job: str | None, task: int | None) -> bool:
    """Whether one of ``targets`` (a whole job, or one task) covers ``job``'s ``task``."""
    return any(job == j and (t is None or task is None or t == task) for j, t in targets)


def _label(job: str, task: int | None) -> str:
    return job if task is None else f"{job}_{task}"


def cancel(store: Store, jobs: Sequence[str] = (), *, wait_s: float = 60.0, poll_s: float = 1.0) -> Cancelled:
    """scancel ``jobs`` (ids or array tasks ``1234_5``; default: this store's jobs still
    queued or running). Their workers hand their runs back as Slurm's SIGTERM reaches
    them; once the jobs are gone (at most ``wait_s``), a run still marked running under
    them (its process was killed before it could say so) is put back in the queue too."""
    asked = [_task_of(label) for label in jobs]
    views = status(store, [job for job, _ in asked])
    tasks = [(v.job.job_id, t.task) for v in views for t in v.tasks if t.state in ACTIVE]
    if not asked:
        asked = [(v.job.job_id, None) for v in views if v.active]
    live = [target for target in dict.fromkeys(asked) if any(_covers([target], j, t) for j, t in tasks)]
    ended = [_label(*target) for target in asked if target not in live]
    if not live:
        return Cancelled([], ended, [], [])

    def mine() -> list[RunInfo]:
        return [r for r in store.runs(status=[RUNNING], lean=True) if _covers(live, r.slurm_job, r.slurm_task)]

    def alive() -> bool:
        queued = commands.queued(dict.fromkeys(j for j, _ in live))
        return any(s.state in ACTIVE and _covers(live, s.job, s.task) for s in queued)

    before = {r.id for r in mine()}
    commands.scancel([_label(*target) for target in live])
    whole = {j for j, t in live if t is None}
    store.slurm_cancelled([v.job.id for v in views if v.job.job_id in whole])
    deadline = time.monotonic() + wait_s
    while wait_s > 0 and time.monotonic() < deadline and alive():
        time.sleep(poll_s)
    gone = wait_s > 0 and not alive()
    still = []
    for run in mine():
        if not gone:
            still.append(run.id)
            continue
        with contextlib.suppress(Superseded):  # every process of the job is dead: none will report it
            store.release(run.id, run.attempt, f"its Slurm job {run.slurm} was cancelled; resumes from its checkpoint")
    handed = sorted(r for r in before if r not in still)
    return Cancelled([_label(*target) for target in live], ended, handed, still)
