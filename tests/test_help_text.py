"""Help texts are Rich markup in ``--help``: a bracketed ``[default: x]`` is read as a
markup tag and silently vanishes, so no option or argument help may contain one. And it
prints a docstring's own line breaks before wrapping, so commands' help texts are
reflowed (``cli.common.HelpGroup``)."""

from __future__ import annotations

import re
from typing import Any

import typer
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


def _helps(group: Any, path: str) -> list[tuple[str, str]]:
    """Every command's help as ``--help`` gets it: through its group's ``get_command``."""
    found = []
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append((f"{path} {name}", command.help or ""))
        if hasattr(command, "list_commands"):  # a group (Typer vendors its own click)
            found += _helps(command, f"{path} {name}")
    return found


def test_help_paragraphs_are_reflowed() -> None:
    helps = _helps(typer.main.get_command(app), "rlmrec")
    assert len(helps) > 25 and "rlmrec data build" in dict(helps)
    ragged = [name for name, text in helps if any("\n" in p for p in text.split("\n\n"))]
    assert ragged == []


def test_help_pages_wrap_once(cli) -> None:
    page = cli("embed", "--help").output
    assert "OpenAI-compatible server with --base-url" in " ".join(page.split())
    lines = [line.strip() for line in page.splitlines()]
    assert "OpenAI-compatible" not in lines  # a word alone on a line: the old ragged wrap
