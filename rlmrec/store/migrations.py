"""Named, append-only schema migrations.

Each migration is a function of a connection, applied once, in order, inside the
same transaction that records its name in ``schema_migrations``. Never edit one
that has shipped: add the next. Migrations spell their tables out instead of
calling ``Base.metadata.create_all``, so that a later change to ``schema.py`` cannot
change what an old migration does; ``tests/store/test_migrations.py`` checks that
the migrated schema equals the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rlmrec.errors import StoreError


def _0001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("group_name", sa.String(64), nullable=True, index=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("data_root", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("device", sa.String(32), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("epoch", sa.Integer, nullable=True),
        sa.Column("epochs_planned", sa.Integer, nullable=True),
        sa.Column("best_epoch", sa.Integer, nullable=True),
        sa.Column("best_valid", sa.Float, nullable=True),
        sa.Column("valid_metrics", sa.JSON, nullable=True),
        sa.Column("test_value", sa.Float, nullable=True),
        sa.Column("test_metrics", sa.JSON, nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Index("ix_runs_claim", "status", "priority", "created_at"),
        sa.Index("ix_runs_dataset_model", "dataset", "model"),
    )
    sa.Table(
        "epochs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("losses", sa.JSON, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("valid", sa.JSON, nullable=True),
        sa.Column("valid_seconds", sa.Float, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint("run_id", "epoch", name="uq_epochs_run_epoch"),
    )
    sa.Table(
        "user_metrics",
        md,
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("npz", sa.LargeBinary, nullable=False),
    )
    sa.Table(
        "logs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Index("ix_logs_run_id", "run_id", "id"),
    )
    sa.Table(
        "workers",
        md,
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("slots", sa.JSON, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    md.create_all(conn)


def _0002_log_epochs(conn: Connection) -> None:
    """The epoch of an epoch's or a validation's log line, so that a resumed attempt
    can drop the lines of the epochs it redoes."""
    conn.execute(sa.text("ALTER TABLE logs ADD COLUMN epoch INTEGER"))


def _0003_retried_after(conn: Connection) -> None:
    """The attempt count at the last ``retry``, so a retried run gets ``--max-attempts``
    afresh (attempt numbers keep growing: they tell attempts apart in the logs)."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN retried_after INTEGER NOT NULL DEFAULT 0"))


def _0004_slurm(conn: Connection) -> None:
    """Workers as Slurm jobs: the job and array task of each worker and of each run's
    current attempt, and the job arrays ``rlmrec slurm submit`` handed to Slurm."""
    for table in ("runs", "workers"):
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN slurm_job VARCHAR(32)"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN slurm_task INTEGER"))
    md = sa.MetaData()
    sa.Table(
        "slurm_jobs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False, index=True),
        sa.Column("tasks", sa.Integer, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("cancelled_at", sa.Float, nullable=True),
    )
    md.create_all(conn)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _0001_initial),
    ("0002_log_epochs", _0002_log_epochs),
    ("0003_retried_after", _0003_retried_after),
    ("0004_slurm", _0004_slurm),
]

_LEDGER = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def pending(conn: Connection) -> list[str]:
    """Names not yet applied; an error if the database knows migrations we don't."""
    if not sa.inspect(conn).has_table("schema_migrations"):
        return [name for name, _ in MIGRATIONS]
    applied = set(conn.execute(sa.select(_LEDGER.c.name)).scalars())
    known = {name for name, _ in MIGRATIONS}
    unknown = sorted(applied - known)
    if unknown:
        raise StoreError(
            f"the run store was written by a newer rlmrec (schema {unknown[-1]}); upgrade rlmrec to use it"
        )
    return [name for name, _ in MIGRATIONS if name not in applied]


def migrate(conn: Connection) -> list[str]:
    """Apply what is pending, inside the caller's (write-locked) transaction."""
    _LEDGER.create(conn, checkfirst=True)
    todo = pending(conn)
    steps = dict(MIGRATIONS)
    for name in todo:
        steps[name](conn)
        conn.execute(sa.insert(_LEDGER).values(name=name, applied_at=time.time()))
    return todo
