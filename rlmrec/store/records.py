"""Plain values the store returns: no sessions, no lazy loading, safe to keep."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rlmrec.store.schema import FINAL


@dataclass(frozen=True)
class RunSpec:
    """One run to queue: identity, the fully resolved config, and bookkeeping."""

    model: str
    variant: str
    dataset: str
    seed: int
    config: dict[str, Any]
    group: str | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()
    note: str | None = None
    data_root: str | None = None


@dataclass(slots=True)  # slots, not frozen: 10,000 of these are built per ``ls``
class RunInfo:
    id: int
    model: str
    variant: str
    dataset: str
    seed: int
    group: str | None
    status: str
    priority: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker_id: str | None
    host: str | None
    pid: int | None
    device: str | None
    attempt: int
    cancel_requested: bool
    error: str | None
    code_version: str | None
    note: str | None
    epoch: int | None
    epochs_planned: int | None
    best_epoch: int | None
    best_valid: float | None
    test_value: float | None
    seconds: float | None
    # Left out of the lean listing (``ls``'s table), for speed:
    tags: list[str] = field(default_factory=list)
    valid_metrics: dict[str, float] | None = None
    test_metrics: dict[str, float] | None = None
    data_root: str | None = None
    config: dict[str, Any] | None = None
    requested_device: str | None = None  # the config's device, listed for queued and lost runs
    retried_after: int = 0  # attempts before the last retry or hand-back
    slurm_job: str | None = None  # the Slurm job (array) and task of the current or last attempt
    slurm_task: int | None = None

    @property
    def slurm(self) -> str | None:
        return slurm_label(self.slurm_job, self.slurm_task)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def duration(self, now: float | None = None) -> float | None:
        """Wall time of the current (or last) attempt."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)


@dataclass(frozen=True)
class EpochInfo:
    epoch: int
    losses: dict[str, float]
    seconds: float
    valid: dict[str, float] | None
    valid_seconds: float | None
    at: float


@dataclass(frozen=True)
class LogInfo:
    id: int
    run_id: int
    attempt: int
    at: float
    level: str
    message: str
    epoch: int | None = None  # on epoch and validation lines


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    slots: list[str]
    started_at: float
    heartbeat_at: float
    status: str
    slurm_job: str | None = None
    slurm_task: int | None = None
    runs: list[int] = field(default_factory=list)

    @property
    def slurm(self) -> str | None:
        return slurm_label(self.slurm_job, self.slurm_task)


@dataclass(frozen=True)
class SlurmJobInfo:
    """A job array this store submitted (``rlmrec slurm submit``)."""

    id: int
    job_id: str
    tasks: int
    submitted_at: float
    host: str
    options: dict[str, Any]
    script: str
    cancelled_at: float | None


def slurm_label(job: str | None, task: int | None) -> str | None:
    """Slurm's own spelling: ``1234_5`` for an array task, ``1234`` for a plain job."""
    if job is None:
        return None
    return job if task is None else f"{job}_{task}"
