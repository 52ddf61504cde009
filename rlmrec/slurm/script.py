"""The batch script ``rlmrec slurm submit`` hands to ``sbatch``: one job array whose
tasks each run ``rlmrec worker --until-empty`` on the slots of their allocation.

Everything is in ``#SBATCH`` lines, so the printed script (``--dry-run``) is exactly
what is submitted and can be submitted by hand. The store URL in it never carries a
password: the job inherits the submitting environment (``--export=ALL``), where
``PGPASSWORD`` or ``~/.pgpass`` supply it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from rlmrec import __version__
from rlmrec.errors import SlurmError

DEFAULT_GRACE_S = 120  # Slurm's warning before the time limit: enough to hand runs back
JOB_NAME = "rlmrec-worker"
# Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")
_WORD = re.compile(r"^[^\s'\"\\]+$")  # one token on an #SBATCH line, no quoting needed


@dataclass(frozen=True)
class SubmitOptions:
    """What ``rlmrec slurm submit`` asks Slurm for; None leaves it to the cluster's default."""

    jobs: int = 1  # array tasks, one worker each
    gpus_per_job: int = 0  # 0: CPU workers
    per_gpu: int = 1  # runs at once per GPU (or CPU slots per job without GPUs)
    partition: str | None = None
    time: str | None = None  # Slurm's formats, e.g. 12:00:00 or 2-00:00:00
    mem: str | None = None  # e.g. 32G
    cpus_per_task: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    grace_s: int | None = None  # Slurm's SIGTERM this long before the time limit [default: 120 s, at most half]


@dataclass(frozen=True)
class JobContext:
    """Where the jobs run from and against which store (URL without its password)."""

    python: str  # the interpreter that has rlmrec, as the nodes see it
    workdir: Path
    store_url: str
    artifacts: Path
    data_root: str | None  # RLMREC_DATA of the submitter, if set

    @property
    def log_dir(self) -> Path:
        return self.artifacts / "slurm"


def time_limit_s(spec: str) -> int | None:
    """Seconds of a Slurm ``--time`` value (None: unlimited); an error naming the forms."""
    if spec.strip().lower() in ("0", "unlimited", "infinite"):
        return None
    match = _TIME.match(spec.strip())
    if match is None:
        raise SlurmError(f"bad --time '{spec}': use HH:MM:SS, MM, or D-HH:MM:SS (e.g. 12:00:00)")
    days = int(match["d"] or 0)
    a, b, c = (int(match[k]) if match[k] is not None else None for k in "abc")
    if match["d"] is not None:  # D-H[:M[:S]]
        hours, minutes, seconds = a, b or 0, c or 0
    elif b is None:  # M
        hours, minutes, seconds = 0, a or 0, 0
    elif c is None:  # M:S
        hours, minutes, seconds = 0, a or 0, b
    else:  # H:M:S
        hours, minutes, seconds = a or 0, b, c
    return ((days * 24 + (hours or 0)) * 60 + minutes) * 60 + seconds


def grace_of(options: SubmitOptions) -> int:
    """Seconds between Slurm's early SIGTERM and the time limit; an explicit value must
    leave the job time to work, the default shrinks to half a short limit."""
    limit = time_limit_s(options.time) if options.time else None
    if options.grace_s is None:
        return DEFAULT_GRACE_S if limit is None else max(1, min(DEFAULT_GRACE_S, limit // 2))
    if options.grace_s < 1:
        raise SlurmError(f"--grace must be >= 1 second (got {options.grace_s})")
    if limit is not None and options.grace_s >= limit:
        raise SlurmError(f"--grace {options.grace_s} leaves no time to work within --time {options.time}; lower it")
    return options.grace_s


def worker_grace(grace: int) -> int:
    """What the worker gives running runs to finish after Slurm's warning: the rest is
    kept to stop them at their next batch and hand them back before the limit."""
    return max(0, grace - min(30, max(5, grace // 3)))


def validate(options: SubmitOptions) -> None:
    for name, value, low in (("--jobs", options.jobs, 1), ("--gpus-per-job", options.gpus_per_job, 0),
                             ("--per-gpu", options.per_gpu, 1)):  # fmt: skip
        if value < low:
            raise SlurmError(f"{name} must be >= {low} (got {value})")
    if options.cpus_per_task is not None and options.cpus_per_task < 1:
        raise SlurmError(f"--cpus-per-task must be >= 1 (got {options.cpus_per_task})")
    for name, word in _words(options):
        if not _WORD.match(word):
            raise SlurmError(f"bad {name} '{word}': one word without spaces or quotes, as Slurm expects")
    if options.mem is not None and not re.match(r"^\d+[KMGT]?$", options.mem, re.IGNORECASE):
        raise SlurmError(f"bad --mem '{options.mem}': a size such as 32G or 8000M")
    grace_of(options)


def _words(options: SubmitOptions) -> list[tuple[str, str]]:
    pairs = [("--partition", options.partition), ("--account", options.account), ("--qos", options.qos),
             ("--constraint", options.constraint), ("--mem", options.mem)]  # fmt: skip
    return [(name, value) for name, value in pairs if value is not None]


def render(options: SubmitOptions, ctx: JobContext) -> str:
    """The batch script for ``options`` (validated here) run from ``ctx``."""
    validate(options)
    for name, path in (("working folder", ctx.workdir), ("artifacts folder", ctx.artifacts)):
        if not _WORD.match(str(path)):
            raise SlurmError(f"the {name} {path} has spaces or quotes, which #SBATCH lines cannot hold; move it")
    grace = grace_of(options)
    slots = options.per_gpu * max(1, options.gpus_per_job)
    directives = [
        f"--job-name={JOB_NAME}",
        f"--array=0-{options.jobs - 1}",
        "--nodes=1",
        "--ntasks=1",
        *([f"--gres=gpu:{options.gpus_per_job}"] if options.gpus_per_job else []),
        *([f"--cpus-per-task={options.cpus_per_task}"] if options.cpus_per_task else []),
        *([f"--mem={options.mem}"] if options.mem else []),
        *([f"--time={options.time}"] if options.time else []),
        *([f"--partition={options.partition}"] if options.partition else []),
        *([f"--account={options.account}"] if options.account else []),
        *([f"--qos={options.qos}"] if options.qos else []),
        *([f"--constraint={options.constraint}"] if options.constraint else []),
        # B: the batch shell only, which exec made the worker; its runs hear it from the worker.
        f"--signal=B:TERM@{grace}",
        "--export=ALL",
        f"--chdir={ctx.workdir}",
        f"--output={ctx.log_dir}/%A_%a.out",
    ]
    worker = [ctx.python, "-m", "rlmrec", "worker", "--until-empty"]
    worker += ["--per-gpu", str(options.per_gpu), "--grace", str(worker_grace(grace))]
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), "#"]
    lines += [
        f"# Written by rlmrec slurm submit (rlmrec {__version__}). Each array task is one worker that",
        "# runs queued runs of the store below until none is left. Slurm's SIGTERM before the",
        "# time limit (or scancel) hands unfinished runs back to the queue; they resume from",
        "# their checkpoint in another job. The URL holds no password: PGPASSWORD or ~/.pgpass",
        "# in the environment the job inherits (--export=ALL) supply it.",
        "set -euo pipefail",
        f"export RLMREC_DB={shlex.quote(ctx.store_url)}",
        f"export RLMREC_ARTIFACTS={shlex.quote(str(ctx.artifacts))}",
    ]
    if ctx.data_root:
        lines.append(f"export RLMREC_DATA={shlex.quote(ctx.data_root)}")
    lines += [
        f"# The job's CPUs shared by its {slots} slot(s), not the whole node's.",
        f"threads=$(( ${{SLURM_CPUS_PER_TASK:-1}} / {slots} ))",
        "export RLMREC_THREADS=$(( threads > 0 ? threads : 1 ))",
    ]
    if options.gpus_per_job:
        lines += [
            "# The GPUs Slurm allocated, as it numbers them for this job; the worker puts its",
            "# slots on exactly these (nvidia-smi may list the node's others too).",
            'gpus="${CUDA_VISIBLE_DEVICES:-}"',
            'if [ -z "$gpus" ]; then',
            f'    echo "rlmrec: Slurm set no CUDA_VISIBLE_DEVICES for --gres=gpu:{options.gpus_per_job}" >&2',
            "    exit 1",
            "fi",
        ]
        worker += ["--gpus", '"$gpus"']
    else:
        worker += ["--gpus", "none"]
    quoted = [part if part == '"$gpus"' else shlex.quote(part) for part in worker]
    lines.append("# exec: the worker is the batch shell itself, so --signal=B:TERM reaches it.")
    lines.append("exec " + " ".join(quoted))
    return "\n".join(lines) + "\n"
