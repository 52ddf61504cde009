"""Suite-wide: no test writes a run store or run files into the working folder
(``rlmrec run`` records into ``./runs.db`` by default)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMREC_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.setenv("RLMREC_ARTIFACTS", str(tmp_path / "runs"))
