"""Help texts are Rich markup in ``--help``: a bracketed ``[default: x]`` is read as a
markup tag and silently vanishes, so no option or argument help may contain one."""

from __future__ import annotations

import re
from typing import Any

import typer.main
from rlmrec.cli.main import app

TAG = re.compile(r"(?<!\\)\[[a-z]")


def _params(command: Any, path: str) -> list[tuple[str, str]]:
    found = [(f"{path} {p.name}", getattr(p, "help", None) or "") for p in command.params]
    if hasattr(command, "commands"):  # a group (Typer vendors its own click)
        for name, sub in command.commands.items():
            found += _params(sub, f"{path} {name}")
    return found


def test_no_help_text_holds_a_bracket_that_rich_would_swallow() -> None:
    params = _params(typer.main.get_command(app), "rlmrec")
    assert len(params) > 100  # every command's options were found
    assert [name for name, text in params if TAG.search(text)] == []
