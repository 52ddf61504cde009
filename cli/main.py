"""Entry point: every ``rlmrec`` command. Commands that only touch the run store
never import torch, so they start in a fraction of a second."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlmrec.config import preset
from rlmrec.outputs import writable_folder
from rlmrec.registry import MODELS, VARIANTS

from . import build as build_cmd
from . import data as data_cmd
from . import profile as profile_cmd
from . import queue as queue_cmd
from . import report as report_cmd
from . import runs as runs_cmd
from . import slurm as slurm_cmd
from . import workers as workers_cmd
from .common import ArtifactsOption, DbOption, OneLineErrors, open_store
from .progress import RunLog, RunProgress, metrics_table

app = typer.Typer(
    name="rlmrec",
    help="RLMRec: align graph recommenders with LLM profile embeddings, faithfully and fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,  # usage mistakes as one line too
)

for command in (
    queue_cmd.queue,
    workers_cmd.worker,
    workers_cmd.workers,
    runs_cmd.ls,
    runs_cmd.show,
    runs_cmd.logs,
    runs_cmd.cancel,
    runs_cmd.retry,
    runs_cmd.rm,
    runs_cmd.priority,
    report_cmd.report,
    report_cmd.compare,
    report_cmd.plot,
    data_cmd.embed,
    profile_cmd.profile,
):
    app.command()(command)
data_cmd.data_app.command("build")(build_cmd.build)
app.add_typer(data_cmd.data_app)
app.add_typer(slurm_cmd.slurm_app)


@app.command()
def run(
    model: Annotated[str, typer.Argument(help="Backbone: " + ", ".join(MODELS))],
    variant: Annotated[str, typer.Argument(help="base, con (alias plus) or gen (alias gene)")],
    dataset: Annotated[str, typer.Argument(help="A folder under the data root, or 'demo' (generated on first use)")],
    *,
    seed: Annotated[int | None, typer.Option(help="Random seed (preset: 2023)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a setting: key=value (repeatable)", metavar="KEY=VALUE")
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Epoch cap (preset: 3000; early stopping ends sooner)")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N")] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads (default: RLMREC_THREADS, else the cores this process may use: affinity, cgroup quota)",
            min=1,
        ),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Folder holding dataset folders (env: RLMREC_DATA; default ./data)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Artifacts folder (default: runs/<dataset>-<model>-<variant>-s<seed>-<time>)")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (config and metrics) instead of tables")
    ] = False,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Record the run in the run store")] = True,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Train MODEL with VARIANT on DATASET with the published protocol, then test.

    The run is recorded in the run store (see rlmrec ls / show) unless --no-record;
    its files go to the store's run folder unless --out.
    """
    from rlmrec.api import prepare_experiment  # torch: only commands that train pay for it
    from rlmrec.threads import apply_threads

    console = Console(stderr=True)
    used = apply_threads(threads)  # before loading: preparing the data runs torch too
    experiment = prepare_experiment(
        model,
        variant,
        dataset,
        overrides=set_ or [],
        seed=seed,
        epochs=max_epochs,
        device=device,
        data_root=data_root,
        out_dir=out,
        save=out is not None or not record,
    )
    store = open_store(db, artifacts) if record else None
    if store is not None and out is None:
        writable_folder(store.artifacts, "--artifacts")  # before the run is recorded
    # Last before training: a mistake above stays the only line on stderr.
    warnings = _crowded_cpu(experiment.config.train.device, used)
    for message in warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(message)}", highlight=False, soft_wrap=True)
    # A live display on a terminal, plain lines in a log; with --json and no terminal,
    # nothing (stdout is for the JSON alone, and stderr may be the same pipe).
    display: RunProgress | RunLog | None = None
    if console.is_terminal:
        display = RunProgress(console)
    elif not json_:
        display = RunLog(console)
    listeners = [display] if display else []
    with display or contextlib.nullcontext():
        if store is None:
            result = experiment.run(listeners)
        else:
            run_id, result = experiment.run_recorded(store, listeners, warnings)
            where = escape(store.url)
            console.print(f"[dim]recorded as run {run_id} in {where} (rlmrec show {run_id})[/dim]", soft_wrap=True)
    if json_:
        typer.echo(json.dumps(result.summary()))
        return
    cfg = result.config
    title = f"{cfg['model']}/{cfg['variant']} on {cfg['dataset']} (seed {cfg['seed']}, best epoch {result.best_epoch})"
    out_console = Console()
    out_console.print(metrics_table(result.test_metrics, result.valid_metrics, title))
    timing = result.timings
    out_console.print(
        f"{result.epochs_run} epochs in {result.seconds:.1f}s "
        f"({timing['train_s_per_epoch']:.3f}s/epoch, {timing['eval_s_per_pass']:.3f}s/validation)"
        + (f"; artifacts in {escape(str(result.out_dir))}" if result.out_dir else ""),
        soft_wrap=True,  # a path to copy stays whole
    )


def _crowded_cpu(device: str, threads: int) -> list[str]:
    """The warning, if a CPU run starts where other processes keep its cores busy."""
    from rlmrec.contention import check
    from rlmrec.device import resolve_device

    if resolve_device(device).type != "cpu":
        return []
    message = check(threads)
    return [message] if message else []


@app.command()
def tui(
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
    poll: Annotated[float, typer.Option(help="Seconds between checks for changes")] = 1.0,
) -> None:
    """The live dashboard: runs, curves, logs, comparisons, queueing, workers, report."""
    from rlmrec.tui.app import RLMRecApp  # Textual loads only for the dashboard

    RLMRecApp(open_store(db, artifacts), poll_s=poll).run()


def _models_catalog() -> dict[str, Any]:
    catalog: dict[str, Any] = {}
    for name, spec in MODELS.items():
        variants = {v: {"common": preset(name, v, "any")} for v in VARIANTS}
        for v in variants:
            for dataset in ("amazon", "yelp", "steam"):
                variants[v][dataset] = preset(name, v, dataset)
        catalog[name] = {
            "summary": spec.summary,
            "defaults": dataclasses.asdict(spec.config()),
            "variants": variants,
        }
    return catalog


@app.command()
def models(json_: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """List backbones, variants and their published hyperparameters."""
    catalog = _models_catalog()
    if json_:
        typer.echo(json.dumps(catalog))
        return
    console = Console()
    train_keys = {"lr", "weight_decay", "batch_size", "epochs", "test_step", "patience", "seed", "topk"}
    for name, entry in catalog.items():
        table = Table(title=f"{name}: {entry['summary']}", title_justify="left")
        table.add_column("variant")
        for dataset in ("common", "amazon", "yelp", "steam"):
            table.add_column(dataset)
        for variant, presets in entry["variants"].items():
            cells = []
            for dataset in ("common", "amazon", "yelp", "steam"):
                cells.append(" ".join(f"{k}={v}" for k, v in presets[dataset].items() if k not in train_keys))
            table.add_row(f"{variant}\n[dim]{VARIANTS[variant]}[/dim]", *cells)
        console.print(table)
    console.print(
        "[dim]Variant aliases: plus = con, gene = gen. Training: Adam lr 1e-3, batch 4096, "
        "validation every 3 epochs, patience 5, seed 2023.[/dim]"
    )


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
