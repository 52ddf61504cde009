"""Inspect and steer runs: ``ls``, ``show``, ``logs``, ``cancel``, ``retry``, ``rm``, ``priority``."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.color import ColorSystem
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from rlmrec.errors import RLMRecError
from rlmrec.report.present import NO_WORKER_HINT, status_label
from rlmrec.store import STATUSES, RunInfo, Store
from rlmrec.store.placement import NO_WORKER

from .common import (
    STATUS_STYLE,
    ArtifactsOption,
    DbOption,
    JsonOption,
    duration,
    metric,
    open_store,
    parse_ids,
    split_list,
    table_console,
    when,
)

Ids = Annotated[list[str], typer.Argument(help="Run ids or ranges (3 5-8)")]


def _status_text(run: RunInfo) -> Text:
    return Text(status_label(run), style=STATUS_STYLE.get(run.status, ""))


def ls(
    status: Annotated[list[str] | None, typer.Option(help=f"Only these: {', '.join(STATUSES)}")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Only these backbones")] = None,
    variant: Annotated[list[str] | None, typer.Option(help="Only these variants")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Only these datasets")] = None,
    group: Annotated[list[str] | None, typer.Option(help="Only these submissions")] = None,
    last: Annotated[int | None, typer.Option("--last", "-n", help="Only the newest N")] = None,
    db: DbOption = None,
    json_: JsonOption = False,
) -> None:
    """List runs: status, progress, best validation and test Recall@K, duration."""
    statuses = split_list(status)
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise RLMRecError(f"unknown status '{bad[0]}'; choose from {', '.join(STATUSES)}")
    store = open_store(db, existing=True)
    runs = store.runs(
        status=statuses,
        model=split_list(model),
        variant=split_list(variant),
        dataset=split_list(dataset),
        group=split_list(group),
        limit=last,
        lean=not json_,
    )
    waits = store.queued_waits(runs)
    if json_:
        typer.echo(json.dumps([{**_listing(run), "waits_for": waits.get(run.id)} for run in runs]))
        return
    console = table_console()
    if not runs:
        console.print("no runs" + (" match" if statuses or model or variant or dataset or group else " yet"))
        return
    render_runs(runs, console, waits)


_COLUMNS = [  # (header, right-aligned)
    ("id", True), ("model", False), ("variant", False), ("dataset", False), ("seed", True), ("status", False),
    ("epoch", True), ("val R@20", True), ("test R@20", True), ("time", True),
]  # fmt: skip


_COLOR_SYSTEMS = {
    "standard": ColorSystem.STANDARD,
    "256": ColorSystem.EIGHT_BIT,
    "truecolor": ColorSystem.TRUECOLOR,
    "windows": ColorSystem.WINDOWS,
}


def render_runs(runs: list[RunInfo], console: Console, waits: dict[int, str] | None = None) -> None:
    """The ``ls`` table and a status tally; ``waits``: why a queued run waits, by id.

    Formatted by hand rather than with ``rich.table``: Rich lays out every cell of
    every row, about 0.6 ms a row, i.e. seconds for 10,000 runs; this takes ~20 ms.
    """
    now = time.time()
    # The Slurm job of each run's attempt, only where some run has one (plain hosts see no empty column).
    slurm = any(run.slurm_job for run in runs)
    columns = [*_COLUMNS, ("slurm job", False)] if slurm else _COLUMNS
    rows = [
        (
            str(run.id),
            run.model,
            run.variant,
            run.dataset,
            str(run.seed),
            status_label(run, (waits or {}).get(run.id)),
            "" if run.epoch is None else str(run.epoch),
            metric(run.best_valid),
            metric(run.test_value),
            duration(run.duration(now)),
            *([run.slurm or ""] if slurm else []),
        )
        for run in runs
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, (h, _) in enumerate(columns)]

    def line(cells: tuple[str, ...] | list[str]) -> list[str]:
        return [c.rjust(w) if right else c.ljust(w) for c, w, (_, right) in zip(cells, widths, columns, strict=True)]

    system = _COLOR_SYSTEMS.get(console.color_system or "") if console.is_terminal else None
    paint = {
        status: Style.parse(style).render("{}", color_system=system) if system else "{}"
        for status, style in STATUS_STYLE.items()
    }
    bold = Style(bold=True).render("{}", color_system=system) if system else "{}"
    out = [bold.format("  ".join(line([h for h, _ in columns])).rstrip())]
    for run, cells in zip(runs, rows, strict=True):
        parts = line(cells)
        parts[5] = paint.get(run.status, "{}").format(parts[5])
        out.append("  ".join(parts).rstrip())
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    tally = "  ".join(f"{n} {s}" for s, n in counts.items())
    console.file.write("\n".join(out) + "\n")
    console.print(Text(tally, style="dim"))
    if NO_WORKER in (waits or {}).values():
        console.print(Text(NO_WORKER_HINT, style="dim"))


def _listing(run: RunInfo) -> dict[str, Any]:
    out = dataclasses.asdict(run)
    out.pop("config", None)
    return out


def show(
    run_id: Annotated[int, typer.Argument(help="Run id")],
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
    json_: JsonOption = False,
) -> None:
    """Everything about one run: identity, where and how it ran, config, metrics, epochs."""
    store = open_store(db, artifacts, existing=True)
    run = store.get(run_id)
    epochs = store.epochs(run_id)
    if json_:
        payload = dataclasses.asdict(run)
        payload["epochs"] = [dataclasses.asdict(e) for e in epochs]
        payload["files"] = str(store.run_dir(run_id))
        typer.echo(json.dumps(payload))
        return
    console = Console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    rows: list[tuple[str, Any]] = [
        ("run", f"{run.id}: {run.model}/{run.variant} on {run.dataset}, seed {run.seed}"),
        ("status", _status_text(run)),
        ("group", run.group or ""),
        ("priority", str(run.priority)),
        ("attempt", str(run.attempt)),
        ("created", when(run.created_at)),
        ("started", when(run.started_at)),
        ("finished", when(run.finished_at)),
        ("time", duration(run.duration())),
        ("where", f"{run.host or ''} pid {run.pid or ''} {run.device or ''}".strip() if run.host else ""),
        ("slurm job", run.slurm or ""),
        ("code", run.code_version or ""),
        ("tags", ", ".join(run.tags)),
        ("note", run.note or ""),
        ("error", Text(run.error or "", style="red")),
        ("files", str(store.run_dir(run.id))),
    ]
    for key, value in rows:
        if value:  # user text (group, tags, note, error, paths) is never read as markup
            head.add_row(key, value if isinstance(value, Text) else Text(value))
    console.print(head)
    if run.test_metrics or run.valid_metrics:
        metrics = Table(title=f"metrics (best epoch {run.best_epoch})", title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("test", justify="right")
        metrics.add_column("valid", justify="right")
        names = list((run.test_metrics or run.valid_metrics or {}).keys())
        for name in names:
            metrics.add_row(
                Text(name), metric((run.test_metrics or {}).get(name)), metric((run.valid_metrics or {}).get(name))
            )
        console.print(metrics)
    if epochs:
        table = Table(title=f"epochs ({len(epochs)}; last 10)", title_justify="left")
        table.add_column("epoch", justify="right")
        for name in epochs[-1].losses:
            table.add_column(name, justify="right")
        table.add_column("valid R@20", justify="right")
        table.add_column("s", justify="right")
        for e in epochs[-10:]:
            valid = (e.valid or {}).get("recall@20")
            table.add_row(str(e.epoch), *(f"{v:.4f}" for v in e.losses.values()), metric(valid), f"{e.seconds:.2f}")
        console.print(table)
    config = run.config or {}
    console.print(Text("config  ", style="bold") + Text(" ".join(f"{k}={v}" for k, v in config.items()), style="dim"))


def logs(
    run_id: Annotated[int, typer.Argument(help="Run id")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends")] = False,
    db: DbOption = None,
) -> None:
    """A run's log: epochs, validations, test, errors (with tracebacks)."""
    store = open_store(db, existing=True)
    run = store.get(run_id, with_config=False)
    last = 0
    while True:
        for line in store.logs(run_id, after=last):
            last = line.id
            stamp = time.strftime("%H:%M:%S", time.localtime(line.at))
            typer.echo(f"{stamp} [{line.attempt}] {line.message}")
        if not follow or run.final:
            return
        sys.stdout.flush()
        time.sleep(0.5)
        run = store.get(run_id, with_config=False)
        if run.final:  # one more read: lines written just before the final status
            follow = False


def _report(results: dict[int, str]) -> None:
    for run_id, what in results.items():
        typer.echo(f"run {run_id}: {what}")


def cancel(ids: Ids, db: DbOption = None) -> None:
    """Cancel runs: queued ones never start; running ones stop at the next batch."""
    store = open_store(db, existing=True)
    _report(store.cancel(parse_ids(ids)))


def retry(ids: Ids, db: DbOption = None, artifacts: ArtifactsOption = None) -> None:
    """Requeue failed, cancelled or lost runs; they start afresh."""
    store = open_store(db, artifacts, existing=True)
    _report(store.retry(parse_ids(ids)))


def rm(
    ids: Ids,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Delete runs with their epochs, logs and files (running runs are refused)."""
    store: Store = open_store(db, artifacts, existing=True)
    run_ids = parse_ids(ids)
    if not yes and sys.stdin.isatty() and not typer.confirm(f"delete {len(run_ids)} run(s) and their files?"):
        raise typer.Exit(code=1)
    removed = store.remove(run_ids)
    typer.echo(f"removed {len(removed)} run(s)")


def priority(
    value: Annotated[int, typer.Argument(help="New priority (higher runs first)")],
    ids: Ids,
    db: DbOption = None,
) -> None:
    """Change the priority of runs (matters while they are queued)."""
    run_ids = parse_ids(ids)
    open_store(db, existing=True).set_priority(run_ids, value)
    typer.echo(f"priority {value} for {len(run_ids)} run(s)")
