"""``rlmrec data build``: raw interactions -> an RLMRec dataset (``rlmrec.data.build``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rlmrec.data.layout import resolve_data_root
from rlmrec.errors import DataError

from .common import JsonOption, table_console

FileOption = Annotated[Path | None, typer.Option(help="CSV, TSV, JSON Lines or Parquet, optionally .gz")]


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per phase on stderr, only on a terminal."""
    console = Console(stderr=True, highlight=False)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def _split_ratio(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(":"))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise DataError(f"--split {text!r}: give three shares as train:valid:test, e.g. 3:1:1")
    return parts


def _min_rating(text: str) -> float | None:
    if text.lower() in ("off", "none", "no"):
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"--min-rating {text!r}: give a number (3 keeps ratings 3 and up) or off") from None


def build(
    source: Annotated[Path, typer.Argument(help="Interactions: CSV, TSV, JSON Lines or Parquet, optionally .gz")],
    name: Annotated[str, typer.Option("--name", help="Dataset name under the data root")],
    preset: Annotated[
        str | None, typer.Option(help="Field names of a public dump: amazon, yelp or steam (the paper's sources)")
    ] = None,
    user_col: Annotated[str | None, typer.Option(help="User id column (default: guessed)")] = None,
    item_col: Annotated[str | None, typer.Option(help="Item id column (default: guessed)")] = None,
    rating_col: Annotated[str | None, typer.Option(help="Rating column (default: guessed; none: no rating)")] = None,
    time_col: Annotated[str | None, typer.Option(help="Time column: unix seconds or dates (default: guessed)")] = None,
    text_col: Annotated[str | None, typer.Option(help="Review text column (in --reviews, or in SOURCE)")] = None,
    columns: Annotated[
        str | None, typer.Option(help="Column names of a CSV/TSV without a header row: user,item,rating,time")
    ] = None,
    items: FileOption = None,
    reviews: FileOption = None,
    min_rating: Annotated[str, typer.Option(help="Drop interactions rated below this; off keeps all")] = "3",
    sample_users: Annotated[
        float | None, typer.Option(help="Keep a random share of users (0.25) or a number of them (11000)")
    ] = None,
    k_core: Annotated[int, typer.Option(help="Every user and item keeps at least this many interactions")] = 10,
    item_core: Annotated[int | None, typer.Option(help="A different core for items (default: --k-core)")] = None,
    split: Annotated[str, typer.Option(help="train:valid:test shares per user")] = "3:1:1",
    split_by: Annotated[str, typer.Option(help="random (seeded) or time (latest interactions are test)")] = "random",
    seed: Annotated[int, typer.Option(help="Seed of user sampling and the random split")] = 2023,
    domain: Annotated[
        str | None, typer.Option(help="books, businesses, games or generic: picks the profile prompts")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a dataset of the same name")] = False,
    data_root: Annotated[Path | None, typer.Option(help="Folder holding dataset folders (env RLMREC_DATA)")] = None,
    json_: JsonOption = False,
) -> None:
    """Build a dataset from raw interactions: rating filter, user sampling, k-core, split per user.

    Writes trn_mat.pkl / val_mat.pkl / tst_mat.pkl, users.jsonl / items.jsonl (id mappers),
    items_meta.jsonl and reviews.jsonl (for rlmrec profile) and build.json (sources with
    sha256, every parameter, counts after each step) under the data root, atomically.
    """
    from rlmrec.data.build import BuildOptions, build_dataset

    root = resolve_data_root(data_root)
    try:
        if split_by not in ("random", "time"):
            raise DataError(f"--split-by {split_by!r}: random or time")
        options = BuildOptions(
            preset=preset,
            user_col=user_col,
            item_col=item_col,
            rating_col=rating_col,
            time_col=time_col,
            text_col=text_col,
            columns=tuple(c.strip() for c in columns.split(",")) if columns else None,
            items=items,
            reviews=reviews,
            min_rating=_min_rating(min_rating),
            sample_users=sample_users,
            k_core=k_core,
            item_core=item_core,
            split=_split_ratio(split),
            split_by=split_by,  # type: ignore[arg-type]
            seed=seed,
            domain=domain,
        )
        with _progress() as update:
            built = build_dataset(source, name, root, options, force=force, progress=update)
    except OSError as error:  # a full disk or an unwritable data root: one line too
        raise DataError(f"cannot write under {root}: {error.strerror or error}") from None
    if json_:
        typer.echo(json.dumps(json.loads((built.path / "build.json").read_text())))
        return
    console = table_console()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("step", "rows", "users", "items", "density"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in built.steps:
        density = step.rows / max(step.users * step.items, 1)
        table.add_row(escape(step.step), f"{step.rows:,}", f"{step.users:,}", f"{step.items:,}", f"{density:.4%}")
    console.print(table)
    splits = " / ".join(f"{built.splits[k]:,}" for k in ("train", "valid", "test"))
    moved = f"; {built.moved_to_train:,} moved to train so every item has one" if built.moved_to_train else ""
    console.print(
        f"[bold green]{escape(built.name)}[/bold green]: {built.users:,} users x {built.items:,} items, "
        f"train / valid / test {splits} ({built.density:.4%} dense){moved}; in {escape(str(built.path))} "
        f"({built.seconds:.1f} s)",
        highlight=False,
    )
    if built.side_files:
        console.print(f"[dim]also wrote {', '.join(built.side_files)}[/dim]", highlight=False)
    console.print(
        f"[dim]next: rlmrec data validate {escape(built.name)}; rlmrec run lightgcn base {escape(built.name)}[/dim]",
        highlight=False,
    )
