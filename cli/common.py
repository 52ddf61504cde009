"""Pieces every command shares: one-line errors, the store options, formatting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rlmrec.errors import RLMRecError
from rlmrec.store import Store

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="RLMREC_DB", help="Run store URL or SQLite path [default: sqlite:///runs.db]"),
]
ArtifactsOption = Annotated[
    Path | None,
    typer.Option(
        "--artifacts", envvar="RLMREC_ARTIFACTS", help="Run files folder [default: next to the SQLite file: runs/]"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]

STATUS_STYLE = {
    "queued": "cyan",
    "running": "bold yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "lost": "red",
}


def fail(error: Exception) -> typer.Exit:
    """One line on stderr and a non-zero exit: user mistakes never get a traceback."""
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def table_console() -> Console:
    """A console for tables on stdout; piped or redirected, rows are never cut to 80
    columns with ellipses (``rlmrec ls | grep`` must see whole ids and seeds)."""
    console = Console()
    if not console.is_terminal:
        console.width = 1000
    return console


def open_store(db: str | None, artifacts: Path | None = None) -> Store:
    try:
        return Store(db, artifacts)
    except RLMRecError as error:
        raise fail(error) from None


def parse_ids(values: list[str]) -> list[int]:
    """``3 5-8 12`` -> [3, 5, 6, 7, 8, 12]."""
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            lo, sep, hi = part.partition("-")
            try:
                ids.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
            except ValueError:
                raise fail(RLMRecError(f"bad run id '{part}': expected a number or a range such as 3-7")) from None
    return list(dict.fromkeys(ids))


def split_list(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists alike: ``--status failed,lost --status queued``."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else ""


def metric(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else ""
