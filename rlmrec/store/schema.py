"""The run store's tables, as typed SQLAlchemy 2.x models.

Times are Unix seconds (floats): portable across SQLite and PostgreSQL, cheap to
compare, converted for display only. Metric and config columns are JSON. The
columns ``ls`` shows (epoch, best validation value, test value) are kept on the run
row itself so listing 10,000 runs is one indexed scan with no joins.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Run states. "lost": its worker or child died without reporting; lost runs are
# claimed again (and resume from their last checkpoint) like queued ones.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST = "queued", "running", "succeeded", "failed", "cancelled", "lost"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST)
CLAIMABLE = (QUEUED, LOST)
FINAL = (SUCCEEDED, FAILED, CANCELLED)


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(16))
    dataset: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int] = mapped_column(Integer)
    group: Mapped[str | None] = mapped_column("group_name", String(64), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_root: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[float | None] = mapped_column(Float)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    # Progress and results, kept current as the run goes.
    epoch: Mapped[int | None] = mapped_column(Integer)  # last finished epoch
    epochs_planned: Mapped[int | None] = mapped_column(Integer)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    best_valid: Mapped[float | None] = mapped_column(Float)  # validation selection metric at best_epoch
    valid_metrics: Mapped[dict[str, float] | None] = mapped_column(JSON)  # all of them at best_epoch
    test_value: Mapped[float | None] = mapped_column(Float)  # test selection metric
    test_metrics: Mapped[dict[str, float] | None] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float)  # training wall time over all attempts
    # Attempts before the last retry or hand-back: --max-attempts counts from there (0003).
    retried_after: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The Slurm job (array job id) and array task of the current or last attempt (0004).
    slurm_job: Mapped[str | None] = mapped_column(String(32))
    slurm_task: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # The claim query: claimable runs by priority, then age.
        Index("ix_runs_claim", "status", "priority", "created_at"),
        Index("ix_runs_dataset_model", "dataset", "model"),
    )


class Epoch(Base):
    __tablename__ = "epochs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    losses: Mapped[dict[str, float]] = mapped_column(JSON)
    seconds: Mapped[float] = mapped_column(Float)
    valid: Mapped[dict[str, float] | None] = mapped_column(JSON)  # validation metrics, on evaluation epochs
    valid_seconds: Mapped[float | None] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_epochs_run_epoch"),)


class UserMetrics(Base):
    """Per-user test metrics of a finished run (for paired significance tests):
    a compressed ``.npz`` of ``users`` and one float32 array per metric."""

    __tablename__ = "user_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    npz: Mapped[bytes] = mapped_column(LargeBinary)


class LogLine(Base):
    __tablename__ = "logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    epoch: Mapped[int | None] = mapped_column(Integer)  # on epoch and validation lines (0002)

    __table_args__ = (Index("ix_logs_run_id", "run_id", "id"),)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid:start
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    slots: Mapped[list[str]] = mapped_column(JSON)  # one device name per slot: "cuda:0", "cpu"
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # running | draining | stopped | died (its process vanished)
    slurm_job: Mapped[str | None] = mapped_column(String(32))  # when it runs as a Slurm job (0004)
    slurm_task: Mapped[int | None] = mapped_column(Integer)


class SlurmJob(Base):
    """A job array ``rlmrec slurm submit`` handed to Slurm, so that ``slurm status`` and
    ``slurm cancel`` know this store's jobs (Slurm may reuse ids: the row id is the key)."""

    __tablename__ = "slurm_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)  # the array job id
    tasks: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[float] = mapped_column(Float)
    host: Mapped[str] = mapped_column(String(255))  # where sbatch ran
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # the submit options (never a password)
    script: Mapped[str] = mapped_column(Text)  # the batch script as submitted
    cancelled_at: Mapped[float | None] = mapped_column(Float)  # by rlmrec slurm cancel


class Migration(Base):
    __tablename__ = "schema_migrations"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    applied_at: Mapped[float] = mapped_column(Float)
