"""Pieces every command shares: one-line errors, the store options, formatting."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from rlmrec.errors import RLMRecError
from rlmrec.report.present import STATUS_STYLE, duration, metric, when
from rlmrec.store import Store

# Formatting shared with the dashboard (rlmrec/report/present.py), re-exported for the commands.
__all__ = ["STATUS_STYLE", "duration", "metric", "when"]

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="RLMREC_DB", help="Run store URL or SQLite path (default: sqlite:///runs.db)"),
]
ArtifactsOption = Annotated[
    Path | None,
    typer.Option(
        "--artifacts", envvar="RLMREC_ARTIFACTS", help="Run files folder (default: next to the SQLite file: runs/)"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def fail(error: Exception) -> typer.Exit:
    """One line on stderr and a non-zero exit: user mistakes never get a traceback."""
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _usage_errors() -> tuple[type[Exception], ...]:
    """click's usage error, and that of the copy of click Typer vendors (``typer._click``)."""
    found: list[type[Exception]] = [click.UsageError]
    with contextlib.suppress(ImportError, AttributeError):
        found.append(importlib.import_module("typer._click.exceptions").UsageError)
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


class LogThrottle:
    """When a progress line is due where there is no terminal (a log file, a pipe):
    every ``every_s`` seconds, and once at the end if a line came before. A log then
    shows a long run alive and finished, while a short one leaves it to its result
    line (and a one-line error stays one line)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.last = time.monotonic()
        self.said = self.ended = False

    def due(self, finished: bool) -> bool:
        if self.ended:
            return False
        now = time.monotonic()
        due = now - self.last >= self.every_s or (finished and self.said)
        if due:
            self.last, self.said = now, True
        self.ended = finished
        return due


def reflow(doc: str) -> str:
    """``doc`` with the line breaks inside each paragraph joined. Typer's Rich help
    prints a docstring's own line breaks and then wraps at the terminal's width, which
    leaves ragged lines; joined, each paragraph wraps once. (No command docstring here
    holds a list or an indented block: ``tests/test_help_text.py`` would see it.)"""
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in doc.strip().split("\n\n"))


class HelpGroup(TyperGroup):
    """A command group whose commands' help texts are reflowed (:func:`reflow`)."""

    # Any: the context and command types are those of the click that Typer vendors.
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.help:
            command.help = reflow(command.help)
        return command


class OneLineErrors(HelpGroup):
    """Every mistake as one line and exit status 1: the library's errors
    (:class:`RLMRecError`: bad input, files, configs, the store), raised from any
    command, and usage mistakes (a value that does not parse, a missing argument, an
    unknown option) instead of Typer's boxed message. Commands just let errors rise."""

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _USAGE_ERRORS as error:
            raise _usage(error) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)  # sub-commands parse their arguments in here
        except _USAGE_ERRORS as error:
            raise _usage(error) from None
        except RLMRecError as error:
            raise fail(error) from None


def _usage(error: Any) -> Exception:
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare command: Typer prints its help
        return error
    where = error.ctx.command_path if error.ctx is not None else "rlmrec"
    return fail(RLMRecError(f"{error.format_message()} (see {where} --help)"))


class StrictConsole(Console):
    """A console whose writes to a closed pipe raise :class:`BrokenPipeError`. Rich
    would exit quietly instead, leaving a command no chance to undo what it was
    announcing (``queue`` rolls its runs back)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "nobody reads the output (broken pipe)")


def silence_stdout() -> None:
    """After a failed write to stdout: point it at /dev/null, so that Python's final
    flush does not fail again with a second message."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (tests): nothing to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def table_console() -> Console:
    """A console for tables on stdout; piped or redirected, rows are never cut to 80
    columns with ellipses (``rlmrec ls | grep`` must see whole ids and seeds)."""
    console = Console()
    if not console.is_terminal:
        console.width = 1000
    return console


def open_store(db: str | None, artifacts: Path | None = None, *, existing: bool = False) -> Store:
    """``existing``: for commands that read or steer runs, a missing SQLite file is an
    error, not a new empty store."""
    return Store(db, artifacts, create=not existing)


def parse_ids(values: list[str]) -> list[int]:
    """``3 5-8 12`` -> [3, 5, 6, 7, 8, 12]."""
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            lo, sep, hi = part.partition("-")
            try:
                first, last = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise RLMRecError(f"bad run id '{part}': expected a number or a range such as 3-7") from None
            if last < first:
                raise RLMRecError(f"run id range '{part}' is empty; did you mean {last}-{first}?")
            ids.extend(range(first, last + 1))
    return list(dict.fromkeys(ids))


def split_list(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists alike: ``--status failed,lost --status queued``."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
