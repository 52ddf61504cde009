"""The CLI with a private data root (the run store is the suite's private one, from
tests/conftest.py); the crafted files themselves are built by ``hostile.crafted``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rlmrec.cli.main import app
from typer.testing import CliRunner, Result


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli("data", "ls")``: the rlmrec CLI with the data root set to ``root``."""
    monkeypatch.setenv("RLMREC_DATA", str(root))
    runner = CliRunner()

    def invoke(*args: Any) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


# Every store test here runs on SQLite and, when a server answers, PostgreSQL: the
# fixtures of tests/store/conftest.py, shared rather than copied.
from store.conftest import pg_url, store_url  # noqa: E402, F401
