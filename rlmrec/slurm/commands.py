"""Slurm's command-line tools, each call one function that returns plain values or
raises :class:`SlurmError` with the tool's own one-line complaint.

Job states come from ``squeue`` while a job is known to the controller's queue; a
finished task comes from ``scontrol show job`` (kept for ``MinJobAge``, 5 minutes by
default) and then ``sacct`` where accounting is enabled; beyond those, it is gone.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rlmrec.errors import SlurmError

TIMEOUT_S = 30


@dataclass(frozen=True)
class TaskState:
    job: str  # the array job id
    task: int | None  # its array task, None for a pending range not yet split or a plain job
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, FAILED, ... or GONE
    elapsed: str = ""
    nodes: str = ""
    source: str = "squeue"  # which tool said so


def _run(args: list[str], *, stdin: str | None = None, env: Mapping[str, str] | None = None) -> str:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} not found: run this on a Slurm login node (or install slurm-client)")
    try:
        done = subprocess.run(
            args, input=stdin, env=dict(env) if env is not None else None, capture_output=True, text=True,
            timeout=TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer within {TIMEOUT_S} s; is slurmctld up?") from None
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()[-1]
        raise SlurmError(f"{args[0]} failed: {why}")
    return done.stdout


def sbatch(script: str, env: Mapping[str, str]) -> str:
    """Submit ``script`` (on stdin: no file to leave behind); the job id."""
    out = _run(["sbatch", "--parsable"], stdin=script, env=env).strip()
    job = out.split(";")[0]  # "1234" or "1234;cluster"
    if not job.isdigit():
        raise SlurmError(f"sbatch answered '{out}', not a job id")
    return job


def scancel(jobs: Iterable[str]) -> None:
    _run(["scancel", *jobs])


def _split(label: str) -> tuple[str, int | None]:
    """``1234_5`` -> ("1234", 5); ``1234_[2-7]`` (pending, not yet split) -> ("1234", None)."""
    job, _, task = label.partition("_")
    return job, int(task) if task.isdigit() else None


def queued(jobs: Iterable[str]) -> list[TaskState]:
    """What ``squeue`` knows of ``jobs`` (one line per array task). squeue refuses the
    whole list when one job is no longer known, so each is asked alone then."""
    jobs = list(jobs)
    if not jobs:
        return []
    fmt = ["squeue", "--noheader", "--array", "--format=%i|%T|%M|%N"]
    try:
        out = _run([*fmt, f"--jobs={','.join(jobs)}"])
    except SlurmError as error:
        if "invalid job id" not in str(error).lower():
            raise
        return [] if len(jobs) == 1 else [state for job in jobs for state in queued([job])]
    states = []
    for line in out.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 4:
            job, task = _split(fields[0])
            states.append(TaskState(job, task, fields[1], fields[2], fields[3]))
    return states


def finished(job: str) -> list[TaskState]:
    """The tasks of ``job`` that left the queue, from ``scontrol`` then ``sacct``; [] if
    neither knows it (purged, and no accounting)."""
    try:
        out = _run(["scontrol", "--oneliner", "show", "job", job])
    except SlurmError:
        out = ""
    states = []
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("ArrayJobId", fields.get("JobId")) != job and fields.get("JobId") != job:
            continue
        task = fields.get("ArrayTaskId", "")
        states.append(
            TaskState(job, int(task) if task.isdigit() else None, fields.get("JobState", "?"),
                      fields.get("RunTime", ""), fields.get("NodeList", ""), "scontrol")
        )  # fmt: skip
    if states or shutil.which("sacct") is None:
        return states
    try:
        out = _run(["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job}",
                    "--format=JobID,State,Elapsed,NodeList"])  # fmt: skip
    except SlurmError:  # accounting disabled: "Slurm accounting storage is disabled"
        return []
    for line in out.splitlines():
        cells = line.split("|")
        if len(cells) == 4:
            array, index = _split(cells[0])
            state = cells[1].split()[0]  # "CANCELLED by 0" -> CANCELLED
            states.append(TaskState(array, index, state, cells[2], cells[3], "sacct"))
    return states
