"""Smoke test in a real terminal: ``rlmrec tui`` under tmux, keys sent with
send-keys, the screen read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rlmrec.store import Store

from .conftest import fill

_SESSION: list[str] = []


@pytest.fixture
def tmux_session() -> Iterator[str]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is required in CI (.ci/run installs it)")
        pytest.skip("tmux not installed")
    name = f"rlmrec-smoke-{os.getpid()}"
    _SESSION[:] = [name]
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out; the screen:\n{_screen(_SESSION[0]) if _SESSION else ''}"
        time.sleep(0.2)


def test_tui_in_tmux_shows_runs_filters_and_quits(tmp_path: Path, tmux_session: str) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    fill(Store(db, tmp_path / "runs"))
    command = f"{sys.executable} -m rlmrec tui --db {db}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", tmux_session, "-x", "120", "-y", "36", command],
        check=True, env={**os.environ, "TERM": "xterm-256color"},
    )  # fmt: skip
    _wait(lambda: all(word in _screen(tmux_session) for word in ("succeeded", "queued", "lightgcn", "gccf")))
    screen = _screen(tmux_session)
    assert "lightgcn" in screen and "gccf" in screen and "running" in screen
    for keys in ("/", "status=failed", "Enter"):  # one at a time, as a person types: focus moves in between
        subprocess.run(["tmux", "send-keys", "-t", tmux_session, keys], check=True)
        time.sleep(0.5)
    _wait(lambda: "1 shown" in _screen(tmux_session))
    rows = [line for line in _screen(tmux_session).splitlines() if " demo " in line]
    assert len(rows) == 1 and "failed" in rows[0]
    subprocess.run(["tmux", "send-keys", "-t", tmux_session, "q"], check=True)

    def ended() -> bool:
        return subprocess.run(["tmux", "has-session", "-t", tmux_session], capture_output=True).returncode != 0

    _wait(ended, timeout=15)
