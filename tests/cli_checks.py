"""The one-line error contract of every command, checked the same way everywhere
(importable: tests/ is on pytest's path)."""

from __future__ import annotations

from collections.abc import Callable

from typer.testing import Result

# What the ``cli`` fixture (tests/conftest.py) returns.
Invoke = Callable[..., Result]


def one_line_error(result: Result, *fragments: str) -> str:
    """Exit status 1, no traceback, and exactly one stderr line, ``error: ...``, holding
    every one of ``fragments``; returns that line."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
