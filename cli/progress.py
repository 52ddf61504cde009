"""A Rich live display of a training run, fed by the trainer's events."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from rlmrec.events import EpochEnded, Evaluated, Event, RunFinished, RunStarted


class RunProgress:
    """Epoch bar, live loss terms, best validation Recall@K and patience left."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} epochs"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            TextColumn("{task.fields[best]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("training", total=None, losses="", best="")
        self.selection = "recall@20"

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            cfg = event.config
            self.selection = f"recall@{cfg['topk'][-1]}"
            self.progress.update(
                self.task, total=cfg["epochs"], description=f"{cfg['model']}/{cfg['variant']} on {cfg['dataset']}"
            )
            self.console.print(
                f"[dim]{event.n_users:,} users, {event.n_items:,} items, {event.n_train:,} train interactions, "
                f"{event.n_batches} batches/epoch, {event.n_params:,} parameters, device {event.device}[/dim]"
            )
        elif isinstance(event, EpochEnded):
            losses = "  ".join(f"{k} {v:.4f}" for k, v in event.losses.items())
            self.progress.update(self.task, completed=event.epoch + 1, losses=f"{losses}  ({event.seconds:.2f}s)")
        elif isinstance(event, Evaluated):
            mark = "[green]↑[/green]" if event.improved else " "
            best = (
                f"{mark} val {self.selection} {event.metrics[self.selection]:.4f}  "
                f"best {event.best_value:.4f} @ {event.best_epoch}  patience {event.patience_left}"
            )
            self.progress.update(self.task, best=best)
        elif isinstance(event, RunFinished):
            self.progress.update(self.task, total=event.epochs_run, completed=event.epochs_run)


def metrics_table(test: dict[str, float], valid: dict[str, float], title: str) -> Table:
    """Recall and NDCG at each K, test and (best-epoch) validation side by side."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("valid (best epoch)", justify="right")
    for name, value in test.items():
        table.add_row(name, f"{value:.4f}", f"{valid.get(name, float('nan')):.4f}")
    return table
