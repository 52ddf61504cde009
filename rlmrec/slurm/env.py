"""Which Slurm job (and array task) this process runs in, from the environment
Slurm gives every job's processes."""

from __future__ import annotations

import os
from collections.abc import Mapping

NO_JOB: tuple[str | None, int | None] = (None, None)


def current_job(environ: Mapping[str, str] | None = None) -> tuple[str | None, int | None]:
    """``(array job id, array task id)`` for an array task, ``(job id, None)`` for a
    plain job, ``(None, None)`` outside Slurm. An array task's own ``SLURM_JOB_ID`` is
    a separate number; users (and ``squeue``, ``scancel``) name it ``ARRAY_TASK``."""
    env = os.environ if environ is None else environ
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array and task and task.isdigit():
        return array, int(task)
    return (env.get("SLURM_JOB_ID") or None), None
