"""Schema migrations: from a blank database, the migrated schema is exactly the
models' schema; reopening applies nothing; a newer store is refused."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

from rlmrec.errors import StoreError
from rlmrec.store import Store
from rlmrec.store.migrations import MIGRATIONS
from rlmrec.store.schema import Base


def _describe(engine: sa.Engine) -> dict[str, object]:
    """Tables -> columns (name, nullable, type family), indexes and unique constraints."""
    inspector = sa.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        columns = {
            c["name"]: (c["nullable"] or bool(c.get("primary_key")), type(c["type"]).__mro__[-3].__name__)
            for c in inspector.get_columns(table)
        }
        indexes = sorted(tuple(i["column_names"]) for i in inspector.get_indexes(table))
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        out[table] = (columns, indexes, uniques)
    return out


def test_migrated_schema_equals_the_models(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url, tmp_path / "files")
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    if store.backend == "postgresql":  # compare like with like: a second blank PG database
        pytest.importorskip("psycopg")
    reference = sa.create_engine(reference_url if store.backend == "sqlite" else store_url + "_ref")
    if store.backend == "postgresql":
        admin = sa.create_engine(store_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{reference.url.database}"'))
    try:
        Base.metadata.create_all(reference)
        assert _describe(store.engine) == _describe(reference)
    finally:
        reference.dispose()
        if store.backend == "postgresql":
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{reference.url.database}" WITH (FORCE)'))
    with store.engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT name FROM schema_migrations")).scalars().all()
    assert sorted(applied) == [name for name, _ in MIGRATIONS]


def test_reopening_applies_nothing_and_keeps_data(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url, tmp_path)
    with store.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT name, applied_at FROM schema_migrations")).all()
    store.close()
    again = Store(store_url, tmp_path)
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name, applied_at FROM schema_migrations")).all() == before


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = Store(url, tmp_path)
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_migrations VALUES ('9999_future', 0)"))
    with pytest.raises(StoreError, match="newer rlmrec"):
        Store(url, tmp_path)


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _open(url: str, barrier: mp.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    barrier.wait()
    Store(url, "/tmp/unused")


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    ctx = mp.get_context("fork")  # spawn would need this test module importable by name
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open, args=(store_url, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM schema_migrations")).scalar() == len(MIGRATIONS)
    engine.dispose()
