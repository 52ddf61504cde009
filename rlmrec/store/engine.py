"""Opening a store URL: defaults, SQLite tuning, and errors a user can act on.

SQLite runs in WAL mode (readers never block the writer) with a 30 s busy
timeout. Python's sqlite3 module would otherwise open transactions lazily, which
lets two writers both start reading and then deadlock on the upgrade to a write
lock ("database is locked" despite the timeout); so transactions are begun
explicitly, and the store's write paths begin them ``IMMEDIATE``: the write lock
is taken (or waited for) up front.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from rlmrec.errors import StoreError

DEFAULT_URL = "sqlite:///runs.db"
BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "rlmrec_immediate"


def resolve_url(url: str | None = None) -> str:
    """``--db`` > ``RLMREC_DB`` > ``sqlite:///runs.db``; a bare path means SQLite."""
    url = url or os.environ.get("RLMREC_DB") or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    return url


def display_url(url: str | URL) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: still never show a password
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if str(url.query.get("uri", "")).lower() in ("true", "1") and url.database.startswith("file:"):
        # A SQLite URI filename (sqlite:///file:runs.db?mode=ro&uri=true): the path, not "file:..."
        parsed = urlsplit(url.database)
        path = unquote(parsed.path)
        return None if path in ("", ":memory:") or url.query.get("mode") == "memory" else Path(path)
    return Path(url.database)


def create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(
            f"bad store URL '{display_url(url)}': expected e.g. sqlite:///runs.db or postgresql://host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"store {display_url(url)}: unsupported database '{backend}'; use sqlite:// or postgresql://")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, the [postgres] extra
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        path = sqlite_path(parsed)
        if path is not None and not path.parent.exists():
            raise StoreError(f"store {display_url(url)}: folder {path.parent} does not exist; create it or pick --db")
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except sa.exc.NoSuchModuleError:
        raise StoreError(
            f"store {display_url(url)}: unknown driver '{parsed.drivername}'; use sqlite:// or postgresql://"
        ) from None
    except ModuleNotFoundError as error:
        hint = "'rlmrec[postgres]'" if error.name == "psycopg" else str(error.name)
        raise StoreError(f"store {display_url(url)} needs the '{error.name}' driver: pip install {hint}") from None
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable across app crashes in WAL mode
        # Persistent once set; must run outside a transaction, hence here. Fails on a
        # read-only or corrupt file: the first real statement then reports it clearly.
        with contextlib.suppress(sqlite3.DatabaseError):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine and pool; transactions on it take SQLite's write lock first."""
    return engine.execution_options(**{_IMMEDIATE: True})


def explain(error: BaseException, url: str) -> StoreError:
    """A database error as one line naming the store and what to do."""
    where = display_url(url)
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else repr(error)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return StoreError(f"store {where} is read-only; make the file and its folder writable or pick another --db")
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return StoreError(
            f"store {where} is not a readable SQLite database ({text}); move it aside or pick another --db"
        )
    if "unable to open" in low:
        return StoreError(f"cannot open store {where}: {text}; check the path and its permissions")
    if "password authentication failed" in low or "no password supplied" in low:
        return StoreError(f"store {where}: the server refused the login ({text}); check user and password in the URL")
    if "database" in low and "does not exist" in low:
        return StoreError(f"store {where}: {text}; create it first (createdb) or fix the URL")
    if "connection" in low or "could not translate host" in low or "timeout" in low or "refused" in low:
        return StoreError(f"cannot reach store {where}: {text}; is the server running? (--db or RLMREC_DB)")
    if "database is locked" in low:
        return StoreError(f"store {where} stayed locked for {BUSY_TIMEOUT_MS // 1000} s by another process; retry")
    return StoreError(f"store {where}: {text}")
