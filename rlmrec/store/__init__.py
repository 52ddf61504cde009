"""The run store (SQLite or PostgreSQL through SQLAlchemy), its records and recorder."""

from rlmrec.store.engine import DEFAULT_URL, resolve_url
from rlmrec.store.records import EpochInfo, LogInfo, RunInfo, RunSpec, SlurmJobInfo, WorkerInfo
from rlmrec.store.schema import CANCELLED, CLAIMABLE, FAILED, FINAL, LOST, QUEUED, RUNNING, STATUSES, SUCCEEDED
from rlmrec.store.store import Store, Superseded

__all__ = [
    "CANCELLED",
    "CLAIMABLE",
    "DEFAULT_URL",
    "FAILED",
    "FINAL",
    "LOST",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "SUCCEEDED",
    "EpochInfo",
    "LogInfo",
    "RunInfo",
    "RunSpec",
    "SlurmJobInfo",
    "Store",
    "Superseded",
    "WorkerInfo",
    "resolve_url",
]
