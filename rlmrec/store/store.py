"""The run store: every read and write of runs, epochs, logs and workers.

Callers get plain records (``records.py``); sessions never leak. Writes go through
:meth:`Store._write`, which on SQLite takes the write lock up front (see
``engine.py``) and on PostgreSQL claims rows with ``FOR UPDATE SKIP LOCKED``, so
two workers never claim the same run.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rlmrec.errors import StoreError
from rlmrec.store import engine as eng
from rlmrec.store.migrations import migrate, pending
from rlmrec.store.placement import claimable, fits_sql, queued_waits
from rlmrec.store.records import EpochInfo, LogInfo, RunInfo, RunSpec, SlurmJobInfo, WorkerInfo

if TYPE_CHECKING:
    import numpy as np

from rlmrec.store.schema import (
    CANCELLED,
    CLAIMABLE,
    FAILED,
    FINAL,
    LOST,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Epoch,
    LogLine,
    Run,
    SlurmJob,
    UserMetrics,
    Worker,
)

RUNS = cast(sa.Table, Run.__table__)
EPOCHS = cast(sa.Table, Epoch.__table__)
LOGS = cast(sa.Table, LogLine.__table__)
USER_METRICS = cast(sa.Table, UserMetrics.__table__)
WORKERS = cast(sa.Table, Worker.__table__)
SLURM_JOBS = cast(sa.Table, SlurmJob.__table__)

# The device a run's config asks for (claims match it to worker slots).
_WANTED = RUNS.c.config["device"].as_string()
# Listing columns: everything but the config (parsing 10,000 JSON configs would
# dominate ``ls``); the lean listing also skips the other JSON columns. The requested
# device is read out of the config in SQL, and only for runs that wait to be claimed.
_REQUESTED = sa.case((RUNS.c.status.in_(CLAIMABLE), _WANTED), else_=None).label("requested_device")
_LIST_COLUMNS = [*(c for c in RUNS.c if c.name not in ("config",)), _REQUESTED]
_LEAN_COLUMNS = [c for c in _LIST_COLUMNS if c.name not in ("tags", "valid_metrics", "test_metrics", "data_root")]
_FIELD = {"group_name": "group"}


def _run_info(row: Any) -> RunInfo:
    return _run_infos(row._mapping.keys(), [row])[0]


def _run_infos(keys: Iterable[str], rows: Iterable[Any]) -> list[RunInfo]:
    """Rows -> records, resolving column names once (this is most of ``ls``'s time)."""
    names = [_FIELD.get(k, k) for k in keys]
    out = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        if "tags" in values:
            values["tags"] = list(values["tags"] or [])
        out.append(RunInfo(**values))
    return out


class Superseded(StoreError):
    """This attempt no longer owns the run (it was marked lost, cancelled or
    removed meanwhile); the process running it should stop."""


class Store:
    """A run store at ``url`` (see :func:`engine.resolve_url`), migrated on open.

    ``artifacts``: the folder holding one sub-folder per run (checkpoints, outputs).
    Default: ``RLMREC_ARTIFACTS``, else a folder named after a SQLite file next to
    it (``runs.db`` -> ``runs/``), else ``./runs``. Hosts sharing a PostgreSQL store
    should point it at a path they all reach.
    """

    def __init__(
        self,
        url: str | None = None,
        artifacts: str | Path | None = None,
        *,
        migrate_schema: bool = True,
        create: bool = True,
    ):
        """``create=False``: a SQLite file that does not exist is an error instead of a
        new, empty store (commands that only read runs must not litter a mistyped path)."""
        self.url = eng.resolve_url(url)
        self.engine = eng.create_engine(self.url)
        self._writer = eng.writer(self.engine)
        self.backend = self.engine.dialect.name
        path = eng.sqlite_path(self.engine.url)
        if not create and path is not None and not path.exists():
            raise StoreError(
                f"no run store at {path}: nothing was queued or run with it; check --db or RLMREC_DB "
                "(rlmrec queue or rlmrec run creates a store)"
            )
        default_artifacts = path.with_suffix("") if path is not None else Path("runs")
        self.artifacts = Path(artifacts or os.environ.get("RLMREC_ARTIFACTS") or default_artifacts)
        if migrate_schema:
            self._open()

    # -- plumbing --------------------------------------------------------------

    def _open(self) -> None:
        with self._guard():
            with self.engine.connect() as conn:
                if not pending(conn):
                    return
            with self._writer.begin() as conn:
                if self.backend == "postgresql":
                    # Two workers opening a blank store at once: one migrates, one waits.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7151)"))
                migrate(conn)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (sa.exc.DBAPIError, sa.exc.OperationalError) as error:
            raise eng.explain(error, self.url) from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._guard(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def run_dir(self, run_id: int) -> Path:
        return self.artifacts / str(run_id)

    # -- queueing --------------------------------------------------------------

    def add_runs(
        self,
        specs: Sequence[RunSpec],
        *,
        now: float | None = None,
        before_commit: Callable[[list[int]], None] | None = None,
    ) -> list[int]:
        """Queue ``specs`` in one transaction; returns their ids in order.

        ``before_commit(ids)`` runs inside the transaction: if it raises (the command
        could not print what it queued, say), nothing is queued.
        """
        now = time.time() if now is None else now
        rows = [_spec_row(spec, now, QUEUED) for spec in specs]
        if not rows:
            return []
        with self._write() as conn:
            result = conn.execute(sa.insert(RUNS).returning(RUNS.c.id, sort_by_parameter_order=True), rows)
            ids = [int(r) for r in result.scalars()]
            if before_commit is not None:
                before_commit(ids)
            return ids

    def start_direct(
        self, spec: RunSpec, *, host: str, pid: int, device: str, slurm: tuple[str | None, int | None] = (None, None)
    ) -> RunInfo:
        """Record a run that is started in this process (``rlmrec run``), not queued.
        ``slurm``: the Slurm job and array task this process runs in, if any."""
        now = time.time()
        row = _spec_row(spec, now, RUNNING)
        row.update(started_at=now, heartbeat_at=now, host=host, pid=pid, device=device, attempt=1)
        row.update(slurm_job=slurm[0], slurm_task=slurm[1])
        with self._write() as conn:
            run_id = int(conn.execute(sa.insert(RUNS).returning(RUNS.c.id), row).scalar_one())
        return self.get(run_id, with_config=True)

    # -- claiming and progress ---------------------------------------------------

    def claim(
        self,
        worker_id: str,
        host: str,
        pid: int,
        device: str,
        *,
        slurm: tuple[str | None, int | None] = (None, None),
    ) -> RunInfo | None:
        """The next claimable run by priority (high first), then age, that a slot on
        ``device`` can run (see ``placement.py``), now ours. ``slurm``: the Slurm job
        and array task the worker runs in, recorded with the attempt like host and pid."""
        now = time.time()
        with self._write() as conn:
            pick = (
                sa.select(RUNS.c.id)
                .where(RUNS.c.status.in_(CLAIMABLE), RUNS.c.cancel_requested.is_(False))
                .where(fits_sql(_WANTED, device))
                .order_by(RUNS.c.priority.desc(), RUNS.c.created_at, RUNS.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            run_id = conn.execute(pick).scalar()
            if run_id is None:
                return None
            conn.execute(
                sa.update(RUNS)
                .where(RUNS.c.id == run_id)
                .values(
                    status=RUNNING,
                    worker_id=worker_id,
                    host=host,
                    pid=pid,
                    device=device,
                    slurm_job=slurm[0],
                    slurm_task=slurm[1],
                    attempt=RUNS.c.attempt + 1,
                    started_at=now,
                    heartbeat_at=now,
                    finished_at=None,
                    error=None,
                )
            )
            row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).one()
        return _run_info(row)

    def waiting(self, slots: Sequence[str]) -> int:
        """Claimable runs that at least one of ``slots`` could run."""
        fitting = sa.or_(*(fits_sql(_WANTED, slot) for slot in dict.fromkeys(slots)))
        query = sa.select(sa.func.count()).where(
            RUNS.c.status.in_(CLAIMABLE), RUNS.c.cancel_requested.is_(False), fitting
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def begin_attempt(
        self, run_id: int, attempt: int, *, pid: int, code_version: str | None, resume_epoch: int | None
    ) -> None:
        """The child took over: its pid, its code, and epochs past the checkpoint
        it resumes from (recorded by the dead attempt, about to be redone) dropped."""
        with self._write() as conn:
            self._own(conn, run_id, attempt, pid=pid, code_version=code_version, heartbeat_at=time.time())
            stale = EPOCHS.c.run_id == run_id
            # Earlier attempts' epoch and validation lines past the checkpoint: redone now,
            # so ``rlmrec logs`` lists each epoch once (their error lines stay).
            stale_lines = (LOGS.c.run_id == run_id) & LOGS.c.epoch.is_not(None) & (LOGS.c.attempt < attempt)
            if resume_epoch is not None:
                stale &= EPOCHS.c.epoch > resume_epoch
                stale_lines &= LOGS.c.epoch > resume_epoch
            conn.execute(sa.delete(EPOCHS).where(stale))
            conn.execute(sa.delete(LOGS).where(stale_lines))
            if resume_epoch is None:
                conn.execute(
                    sa.update(RUNS)
                    .where(RUNS.c.id == run_id)
                    .values(epoch=None, best_epoch=None, best_valid=None, valid_metrics=None, seconds=None)
                )
            else:
                conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(epoch=resume_epoch))

    def _own(self, conn: Connection, run_id: int, attempt: int, **values: Any) -> None:
        """Update the run if this attempt still owns it; else :class:`Superseded`."""
        done = conn.execute(
            sa.update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.attempt == attempt, RUNS.c.status == RUNNING)
            .values(**values)
        )
        if done.rowcount != 1:
            raise Superseded(f"run {run_id} attempt {attempt} is no longer running here")

    def record_epoch(
        self,
        run_id: int,
        attempt: int,
        epoch: int,
        losses: dict[str, float],
        seconds: float,
        total_seconds: float,
        message: str | None = None,
    ) -> None:
        """An epoch's mean loss terms, with its log line, in one transaction."""
        now = time.time()
        with self._write() as conn:
            self._own(conn, run_id, attempt, epoch=epoch, heartbeat_at=now, seconds=total_seconds)
            row = {"run_id": run_id, "epoch": epoch, "losses": losses, "seconds": seconds, "at": now}
            conn.execute(sa.delete(EPOCHS).where(EPOCHS.c.run_id == run_id, EPOCHS.c.epoch == epoch))
            conn.execute(sa.insert(EPOCHS), row)
            if message is not None:
                _log(conn, run_id, attempt, message, epoch=epoch)

    def record_eval(
        self,
        run_id: int,
        attempt: int,
        epoch: int,
        metrics: dict[str, float],
        seconds: float,
        best: tuple[int, float, dict[str, float]] | None,
        message: str | None = None,
    ) -> None:
        """Validation metrics of ``epoch``; ``best`` = (epoch, value, metrics) when it improved."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if best is not None:
            values.update(best_epoch=best[0], best_valid=best[1], valid_metrics=best[2])
        with self._write() as conn:
            self._own(conn, run_id, attempt, **values)
            conn.execute(
                sa.update(EPOCHS)
                .where(EPOCHS.c.run_id == run_id, EPOCHS.c.epoch == epoch)
                .values(valid=metrics, valid_seconds=seconds)
            )
            if message is not None:
                _log(conn, run_id, attempt, message, epoch=epoch)

    def heartbeat(self, run_id: int, attempt: int) -> bool:
        """Refresh the heartbeat; True when a cancel was requested."""
        with self._write() as conn:
            self._own(conn, run_id, attempt, heartbeat_at=time.time())
            return bool(conn.execute(sa.select(RUNS.c.cancel_requested).where(RUNS.c.id == run_id)).scalar())

    def finish(
        self,
        run_id: int,
        attempt: int,
        status: str,
        *,
        error: str | None = None,
        test_metrics: dict[str, float] | None = None,
        test_value: float | None = None,
        seconds: float | None = None,
        per_user: dict[str, np.ndarray] | None = None,
    ) -> None:
        """The attempt's end: succeeded (with results), failed or cancelled."""
        assert status in FINAL
        values: dict[str, Any] = {"status": status, "finished_at": time.time(), "error": error}
        if test_metrics is not None:
            values.update(test_metrics=test_metrics, test_value=test_value)
        if seconds is not None:
            values["seconds"] = seconds
        with self._write() as conn:
            self._own(conn, run_id, attempt, **values)
            if per_user is not None:
                conn.execute(sa.delete(USER_METRICS).where(USER_METRICS.c.run_id == run_id))
                conn.execute(sa.insert(USER_METRICS), {"run_id": run_id, "npz": pack_arrays(per_user)})

    def log(self, run_id: int, attempt: int, message: str, level: str = "info") -> None:
        with self._write() as conn:
            _log(conn, run_id, attempt, message, level)

    # -- failure detection -------------------------------------------------------

    def mark_lost(self, run_id: int, attempt: int, reason: str, *, max_attempts: int = 3) -> str | None:
        """An attempt died without reporting. Lost (claimable again, resuming from its
        checkpoint) while attempts remain; failed after ``max_attempts``. Returns the
        new status, or None if the attempt had already ended."""
        with self._write() as conn:
            before = conn.execute(sa.select(RUNS.c.retried_after).where(RUNS.c.id == run_id)).scalar() or 0
            tries = attempt - before  # since the run last started afresh (a retry)
            gone = tries >= max_attempts
            status = FAILED if gone else LOST
            error = f"{reason}; gave up after {tries} attempts" if gone else reason
            values: dict[str, Any] = {"status": status, "error": error, "finished_at": time.time()}
            done = conn.execute(
                sa.update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.attempt == attempt, RUNS.c.status == RUNNING)
                .values(**values)
            )
            if done.rowcount != 1:
                return None
            _log(conn, run_id, attempt, error, "error")
        return status

    def release(self, run_id: int, attempt: int, reason: str) -> None:
        """The attempt stopped on purpose to give the run back (its worker is shutting
        down: a Slurm job at its time limit, or cancelled): lost, so that the next worker
        resumes it from its checkpoint. Not a failure: ``--max-attempts`` counts afresh
        from here. :class:`Superseded` if the attempt no longer owns the run."""
        with self._write() as conn:
            values = {"status": LOST, "error": reason, "finished_at": time.time(), "retried_after": attempt}
            self._own(conn, run_id, attempt, **values)
            _log(conn, run_id, attempt, reason, "warning")

    def reap(
        self, *, stale_after: float, host: str, alive: Any, max_attempts: int = 3, watched: Iterable[int] = ()
    ) -> list[int]:
        """Mark lost every running run whose heartbeat is older than ``stale_after``
        seconds, or that runs on ``host`` under a pid for which ``alive(pid)`` is False.
        ``watched``: run ids the caller supervises itself (a worker, its children's
        runs: it sees them exit), left alone; a child still importing torch on a busy
        machine may not have beaten yet."""
        watched = set(watched)
        now = time.time()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(RUNS.c.id, RUNS.c.attempt, RUNS.c.host, RUNS.c.pid, RUNS.c.heartbeat_at).where(
                    RUNS.c.status == RUNNING
                )
            ).all()
        lost = []
        for run_id, attempt, run_host, pid, beat in rows:
            if run_id in watched:
                continue
            if beat is not None and now - beat > stale_after:
                reason = f"no heartbeat for {now - beat:.0f} s (worker or host died?)"
            elif run_host == host and pid is not None and not alive(pid):
                reason = f"process {pid} on {host} died without reporting"
            else:
                continue
            if self.mark_lost(run_id, attempt, reason, max_attempts=max_attempts):
                lost.append(run_id)
        return lost

    def reap_workers(self, *, host: str, alive: Callable[[int], bool]) -> list[str]:
        """Mark ``died`` the workers on ``host`` whose process ``alive`` says is gone (a
        kill -9 leaves no ``stopped``): at once, not once their heartbeat is stale."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(WORKERS.c.id, WORKERS.c.pid).where(
                    WORKERS.c.host == host, WORKERS.c.status.not_in(WORKER_ENDED)
                )
            ).all()
        dead = [worker_id for worker_id, pid in rows if not alive(pid)]
        if dead:
            with self._write() as conn:
                conn.execute(sa.update(WORKERS).where(WORKERS.c.id.in_(dead)).values(status="died"))
        return dead

    def orphans(self, *, stale_after: float = 120.0) -> list[int]:
        """Running runs claimed by a worker that is no longer live (died, stopped or
        silent): their process outlived it, or is about to be reaped as lost."""
        live = {w.id for w in self.workers(stale_after=stale_after)}
        with self._read() as conn:
            rows = conn.execute(sa.select(RUNS.c.id, RUNS.c.worker_id).where(RUNS.c.status == RUNNING)).all()
        return [run_id for run_id, worker_id in rows if worker_id is not None and worker_id not in live]

    # -- steering ----------------------------------------------------------------

    def cancel(self, ids: Iterable[int]) -> dict[int, str]:
        """Queued or lost runs are cancelled at once; running ones are asked to stop
        (their process stops at the next batch). Returns what happened to each."""
        out: dict[int, str] = {}
        now = time.time()
        with self._write() as conn:
            for run_id, status in self._statuses(conn, ids).items():
                if status in CLAIMABLE:
                    conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(status=CANCELLED, finished_at=now))
                    out[run_id] = "cancelled"
                elif status == RUNNING:
                    conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(cancel_requested=True))
                    out[run_id] = "stopping"
                else:
                    out[run_id] = f"already {status}"
        return out

    def retry(self, ids: Iterable[int]) -> dict[int, str]:
        """Failed, cancelled or lost runs go back to the queue and start afresh."""
        out: dict[int, str] = {}
        with self._write() as conn:
            for run_id, status in self._statuses(conn, ids).items():
                if status not in (FAILED, CANCELLED, LOST):
                    out[run_id] = f"not retried: {status}"
                    continue
                conn.execute(sa.delete(EPOCHS).where(EPOCHS.c.run_id == run_id))
                conn.execute(sa.delete(USER_METRICS).where(USER_METRICS.c.run_id == run_id))
                conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(**_FRESH, retried_after=RUNS.c.attempt))
                out[run_id] = "queued"
        for run_id, what in out.items():
            if what == "queued":
                (self.run_dir(run_id) / "state.pt").unlink(missing_ok=True)  # start afresh, not resume
        return out

    def set_priority(self, ids: Iterable[int], priority: int) -> int:
        """Set the priority of runs; an unknown id is an error and changes nothing."""
        ids = list(ids)
        with self._write() as conn:
            self._statuses(conn, ids)  # refuses unknown ids
            done = conn.execute(sa.update(RUNS).where(RUNS.c.id.in_(ids)).values(priority=priority))
            return int(done.rowcount)

    def remove(self, ids: Iterable[int]) -> list[int]:
        """Delete runs with their epochs, logs and files; running runs are refused."""
        ids = list(ids)
        with self._write() as conn:
            statuses = self._statuses(conn, ids)
            busy = [i for i, s in statuses.items() if s == RUNNING]
            if busy:
                raise StoreError(f"run {busy[0]} is running; cancel it first (rlmrec cancel {busy[0]})")
            found = list(statuses)
            for table in (EPOCHS, LOGS, USER_METRICS):
                conn.execute(sa.delete(table).where(table.c.run_id.in_(found)))
            conn.execute(sa.delete(RUNS).where(RUNS.c.id.in_(found)))
        for run_id in found:  # files only once the rows are gone for good
            shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        return found

    def _statuses(self, conn: Connection, ids: Iterable[int]) -> dict[int, str]:
        ids = list(ids)
        rows = dict(conn.execute(sa.select(RUNS.c.id, RUNS.c.status).where(RUNS.c.id.in_(ids))).all())
        missing = [i for i in ids if i not in rows]
        if missing:
            raise StoreError(f"no run with id {missing[0]} in {eng.display_url(self.url)} (see rlmrec ls)")
        return {i: rows[i] for i in ids}

    # -- reading -----------------------------------------------------------------

    def get(self, run_id: int, *, with_config: bool = True) -> RunInfo:
        columns = list(RUNS.c) if with_config else _LIST_COLUMNS
        with self._read() as conn:
            row = conn.execute(sa.select(*columns).where(RUNS.c.id == run_id)).first()
        if row is None:
            raise StoreError(f"no run with id {run_id} in {eng.display_url(self.url)} (see rlmrec ls)")
        return _run_info(row)

    def runs(
        self,
        *,
        status: Sequence[str] = (),
        model: Sequence[str] = (),
        variant: Sequence[str] = (),
        dataset: Sequence[str] = (),
        group: Sequence[str] = (),
        ids: Sequence[int] = (),
        limit: int | None = None,
        with_config: bool = False,
        lean: bool = False,
    ) -> list[RunInfo]:
        """Runs matching every given filter (each a list of accepted values), oldest
        first. ``lean``: without tags, metric dicts and data root (what ``ls`` shows)."""
        columns = list(RUNS.c) if with_config else _LEAN_COLUMNS if lean else _LIST_COLUMNS
        query = sa.select(*columns)
        for column, accepted in (
            (RUNS.c.status, status),
            (RUNS.c.model, model),
            (RUNS.c.variant, variant),
            (RUNS.c.dataset, dataset),
            (RUNS.c.group_name, group),
            (RUNS.c.id, ids),
        ):
            if accepted:
                query = query.where(column.in_(list(accepted)))
        if limit is not None:  # the newest `limit`, still listed oldest first
            query = sa.select(query.order_by(RUNS.c.id.desc()).limit(limit).subquery())
            query = query.order_by(query.selected_columns.id)
        else:
            query = query.order_by(RUNS.c.id)
        with self._read() as conn:
            result = conn.execute(query)
            return _run_infos(result.keys(), result.all())

    def change_token(self) -> tuple[Any, ...]:
        """Cheap to compute, different after any write a viewer cares about (a new or
        removed run, a status, priority or progress change, a new epoch or log line):
        dashboards poll this and reload only when it moves."""
        with self._read() as conn:
            runs = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.max(RUNS.c.id),
                    sa.func.max(RUNS.c.heartbeat_at),
                    sa.func.max(RUNS.c.finished_at),
                    sa.func.sum(RUNS.c.priority),
                    sa.func.sum(RUNS.c.attempt),
                    sa.func.sum(sa.case((RUNS.c.status == QUEUED, 1), else_=0)),
                    sa.func.sum(sa.case((RUNS.c.cancel_requested, 1), else_=0)),
                )
            ).one()
            epochs = conn.execute(sa.select(sa.func.max(EPOCHS.c.id))).scalar()
            logs = conn.execute(sa.select(sa.func.max(LOGS.c.id))).scalar()
        return (*runs, epochs, logs)

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return dict(conn.execute(sa.select(RUNS.c.status, sa.func.count()).group_by(RUNS.c.status)).all())

    def epochs(self, run_id: int) -> list[EpochInfo]:
        query = sa.select(
            EPOCHS.c.epoch, EPOCHS.c.losses, EPOCHS.c.seconds, EPOCHS.c.valid, EPOCHS.c.valid_seconds, EPOCHS.c.at
        ).where(EPOCHS.c.run_id == run_id)
        with self._read() as conn:
            return [EpochInfo(*row) for row in conn.execute(query.order_by(EPOCHS.c.epoch))]

    def logs(self, run_id: int, *, after: int = 0, limit: int | None = None) -> list[LogInfo]:
        query = sa.select(LOGS).where(LOGS.c.run_id == run_id, LOGS.c.id > after).order_by(LOGS.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [LogInfo(*row) for row in conn.execute(query)]

    def user_metrics(self, run_id: int) -> dict[str, np.ndarray] | None:
        with self._read() as conn:
            blob = conn.execute(sa.select(USER_METRICS.c.npz).where(USER_METRICS.c.run_id == run_id)).scalar()
        return None if blob is None else unpack_arrays(blob)

    # -- workers -----------------------------------------------------------------

    def register_worker(
        self,
        worker_id: str,
        host: str,
        pid: int,
        slots: list[str],
        *,
        slurm: tuple[str | None, int | None] = (None, None),
    ) -> None:
        now = time.time()
        row = {"id": worker_id, "host": host, "pid": pid, "slots": slots, "started_at": now, "heartbeat_at": now}
        row.update(slurm_job=slurm[0], slurm_task=slurm[1])
        with self._write() as conn:
            conn.execute(sa.insert(WORKERS), {**row, "status": "running"})

    def worker_beat(self, worker_id: str, status: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(WORKERS).where(WORKERS.c.id == worker_id).values(heartbeat_at=time.time(), status=status)
            )

    def workers(self, *, include_stopped: bool = False, stale_after: float = 120.0) -> list[WorkerInfo]:
        """Workers with their running runs; stopped or silent ones only on request."""
        now = time.time()
        with self._read() as conn:
            rows = conn.execute(sa.select(WORKERS).order_by(WORKERS.c.started_at)).all()
            busy = conn.execute(
                sa.select(RUNS.c.worker_id, RUNS.c.id).where(RUNS.c.status == RUNNING).order_by(RUNS.c.id)
            ).all()
        runs: dict[str, list[int]] = {}
        for worker_id, run_id in busy:
            runs.setdefault(worker_id, []).append(run_id)
        out = []
        for row in rows:
            info = WorkerInfo(**row._mapping, runs=runs.get(row.id, []))
            silent = now - info.heartbeat_at > stale_after
            if include_stopped or (info.status not in WORKER_ENDED and not silent):
                out.append(info)
        return out

    def queued_waits(self, runs: Sequence[RunInfo]) -> dict[int, str]:
        """Why each claimable run among ``runs`` waits, by id: for any worker while none
        is live, else for a GPU (or a given one) that no live worker has."""
        if not any(claimable(run) for run in runs):
            return {}  # the common case: no need to ask for the workers
        return queued_waits(runs, [slot for worker in self.workers() for slot in worker.slots])

    # -- Slurm jobs ----------------------------------------------------------------

    def add_slurm_job(self, job_id: str, *, tasks: int, host: str, options: dict[str, Any], script: str) -> None:
        row = {"job_id": job_id, "tasks": tasks, "submitted_at": time.time(), "host": host}
        with self._write() as conn:
            conn.execute(sa.insert(SLURM_JOBS), {**row, "options": options, "script": script})

    def slurm_jobs(self, job_ids: Sequence[str] = ()) -> list[SlurmJobInfo]:
        """The job arrays this store submitted, oldest first; only ``job_ids`` if given."""
        query = sa.select(SLURM_JOBS).order_by(SLURM_JOBS.c.id)
        if job_ids:
            query = query.where(SLURM_JOBS.c.job_id.in_(list(job_ids)))
        with self._read() as conn:
            return [SlurmJobInfo(**row._mapping) for row in conn.execute(query)]

    def slurm_cancelled(self, row_ids: Sequence[int]) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(SLURM_JOBS)
                .where(SLURM_JOBS.c.id.in_(list(row_ids)), SLURM_JOBS.c.cancelled_at.is_(None))
                .values(cancelled_at=time.time())
            )


WORKER_ENDED = ("stopped", "died")  # a worker's last status: it shut down, or its process vanished

_FRESH: dict[str, Any] = {
    "status": QUEUED,
    "cancel_requested": False,
    "error": None,
    "finished_at": None,
    "started_at": None,
    "heartbeat_at": None,
    "epoch": None,
    "best_epoch": None,
    "best_valid": None,
    "valid_metrics": None,
    "test_value": None,
    "test_metrics": None,
    "seconds": None,
}


def _log(
    conn: Connection, run_id: int, attempt: int, message: str, level: str = "info", *, epoch: int | None = None
) -> None:
    """``epoch``: set on an epoch's or a validation's line, which a resume may redo."""
    row = {"run_id": run_id, "attempt": attempt, "at": time.time(), "level": level, "message": message, "epoch": epoch}
    conn.execute(sa.insert(LOGS), row)


def _spec_row(spec: RunSpec, now: float, status: str) -> dict[str, Any]:
    return {
        "model": spec.model,
        "variant": spec.variant,
        "dataset": spec.dataset,
        "seed": spec.seed,
        "group_name": spec.group,
        "config": spec.config,
        "data_root": spec.data_root,
        "status": status,
        "priority": spec.priority,
        "created_at": now,
        "attempt": 0,
        "cancel_requested": False,
        "tags": list(spec.tags),
        "note": spec.note,
        "epochs_planned": spec.config.get("epochs"),
    }


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Compact: users as int32, metrics as float32, zlib-compressed npz."""
    import numpy as np  # lazy: listing runs never needs it

    buf = io.BytesIO()
    small = {k: np.asarray(v, dtype=np.int32 if k == "users" else np.float32) for k, v in arrays.items()}
    np.savez_compressed(buf, **small)  # type: ignore[arg-type]
    return buf.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    import numpy as np

    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:  # never unpickle stored bytes
        return {k: npz[k] for k in npz.files}


__all__ = ["CANCELLED", "FAILED", "LOST", "QUEUED", "RUNNING", "SUCCEEDED", "Store", "Superseded"]
