"""Store fixtures: every store test runs against SQLite and, when a server is
reachable, PostgreSQL (a fresh database per test).

PostgreSQL: ``RLMREC_TEST_PG`` names an account that may create databases
(``.ci/run`` starts a server and sets it); without it, the default local URL
below is tried and the PostgreSQL cases skip when nothing answers. In CI
(``CI`` set) an unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN = os.environ.get("RLMREC_TEST_PG", "postgresql+psycopg://rlmrec:rlmrec@localhost:5432/rlmrec")


def _pg_admin() -> sa.Engine | None:
    try:
        engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})
        with engine.connect():
            return engine
    except Exception as error:
        if os.environ.get("CI") and os.environ.get("RLMREC_TEST_PG"):
            raise RuntimeError(f"RLMREC_TEST_PG={PG_ADMIN} unreachable in CI: {error}") from error
        return None


_ADMIN: list[sa.Engine | None] = []


def pg_admin() -> sa.Engine | None:
    if not _ADMIN:
        _ADMIN.append(_pg_admin())
    return _ADMIN[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    admin = pg_admin()
    if admin is None:
        pytest.skip("no PostgreSQL server reachable (set RLMREC_TEST_PG)")
    name = f"rlmrec_t_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A blank store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
