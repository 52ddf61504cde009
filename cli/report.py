"""``rlmrec report``, ``rlmrec compare``, ``rlmrec plot``: results out of the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlmrec.errors import RLMRecError
from rlmrec.outputs import replacing

from .common import DbOption, JsonOption, open_store, split_list


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    if not out.parent.exists():
        raise RLMRecError(f"--out {out}: folder {out.parent} does not exist")
    with replacing(out) as tmp:  # never a half-written report; an OS error is one line
        tmp.write_text(text)
    Console(stderr=True).print(f"wrote {escape(str(out))}", highlight=False, soft_wrap=True)


def report(
    format_: Annotated[str, typer.Option("--format", "-f", help="markdown, latex, csv, json or html")] = "markdown",
    dataset: Annotated[list[str] | None, typer.Option(help="Only these datasets (comma list ok)")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Only these backbones (comma list ok)")] = None,
    metric: Annotated[str, typer.Option(help="Comma list, e.g. recall@20,ndcg@20, or all")] = "recall@20,ndcg@20",
    group_by: Annotated[
        list[str] | None, typer.Option(help="Config keys (or 'group') that split rows (default: keys that vary)")
    ] = None,
    vs_paper: Annotated[bool, typer.Option("--vs-paper", help="Show the published value and our difference")] = False,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
    db: DbOption = None,
) -> None:
    """The paper's table from finished runs, mean ± std over seeds.

    Backbone x (Base, Con, Gen, Improvement) rows, dataset x metric columns, and the
    significance of each variant against Base."""
    from rlmrec.report.build import build
    from rlmrec.report.render import FORMATS, render

    if format_ not in FORMATS:
        raise RLMRecError(f"unknown --format '{format_}'; choose one of {', '.join(FORMATS)}")
    store = open_store(db, existing=True)
    built = build(
        store,
        datasets=split_list(dataset),
        models=split_list(model),
        metrics=split_list([metric]),
        group_by=split_list(group_by),
        vs_paper=vs_paper,
    )
    _write(render(built, format_), out)


def compare(
    run_a: Annotated[int, typer.Argument(help="Reference run id")],
    run_b: Annotated[int, typer.Argument(help="Run id compared with it")],
    db: DbOption = None,
    json_: JsonOption = False,
) -> None:
    """Run B against run A: test metric deltas, with a paired per-user Wilcoxon test.

    Also the config keys that differ, and the epochs each took to its best."""
    from rlmrec.report.compare import compare as compare_runs

    store = open_store(db, existing=True)
    result = compare_runs(store, run_a, run_b)
    if json_:
        typer.echo(json.dumps(result.to_dict()))
        return
    console = Console()
    a, b = result.a, result.b
    table = Table(title=f"run {b.id} against run {a.id}", title_justify="left")
    for name in ("metric", f"run {a.id}", f"run {b.id}", "delta", "delta %", "p (Wilcoxon, users)"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for m in result.metrics:
        p = m.significance.p_value if m.significance else None
        style = "bold" if p is not None and p < 0.05 else ""
        table.add_row(
            Text(m.metric),
            f"{m.a:.4f}",
            f"{m.b:.4f}",
            Text(f"{m.delta:+.4f}", style="green" if m.delta > 0 else "red" if m.delta < 0 else ""),
            "" if m.delta_pct is None else f"{m.delta_pct:+.1f}%",
            Text("" if p is None else f"{p:.2g}", style=style),
        )
    console.print(table)
    if not result.metrics:
        console.print("no test metrics in common (has each run finished?)")
    diff = Table(title="config differences", title_justify="left")
    for name in ("key", f"run {a.id}", f"run {b.id}"):
        diff.add_column(name)
    for key, (va, vb) in result.config_diff.items():
        diff.add_row(Text(key), Text(_show(va)), Text(_show(vb)))  # values are user text, not markup
    console.print(diff if result.config_diff else Text("same config", style="dim"))
    for run in (a, b):
        epochs = "" if run.epoch is None else f" of {run.epoch + 1}"
        console.print(f"run {run.id}: {run.status}, best epoch {run.best_epoch}{epochs}", highlight=False)


def _show(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value) if isinstance(value, list) else str(value)


def plot(
    runs: Annotated[list[int], typer.Argument(help="Run ids to overlay")],
    metric: Annotated[
        str, typer.Option(help="Comma list: loss (every term), a loss term, or a validation metric")
    ] = "loss,recall@20,ndcg@20",
    out: Annotated[Path, typer.Option(help="Image file: .png, .svg or .pdf")] = Path("curves.png"),
    db: DbOption = None,
) -> None:
    """Learning curves: loss terms and validation metrics per epoch, runs overlaid."""
    from rlmrec.report.plot import plot_runs

    store = open_store(db, existing=True)
    if not out.parent.exists():
        raise RLMRecError(f"--out {out}: folder {out.parent} does not exist")
    panels = plot_runs(store, runs, out, split_list([metric]))
    Console(stderr=True).print(
        f"wrote {escape(str(out))} ({escape(', '.join(panels))})", highlight=False, soft_wrap=True
    )
