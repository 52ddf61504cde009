"""The hostile cases share tests/conftest.py's CLI fixtures; the crafted files are
built by ``hostile.crafted``."""

from __future__ import annotations

# Every store test here runs on SQLite and, when a server answers, PostgreSQL: the
# fixtures of tests/store/conftest.py, shared rather than copied.
from store.conftest import pg_url, store_url  # noqa: F401
