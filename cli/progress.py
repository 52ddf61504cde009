"""A Rich live display of a training run, fed by the trainer's events."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from rlmrec.events import EpochEnded, Evaluated, Event, RunFinished, RunStarted


class RunProgress:
    """Three live lines: the epoch bar, the loss terms, the best validation Recall@K."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("epoch {task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.bar.add_task("starting", total=None)
        self.losses = Text("")
        self.best = Text("")
        self.live = Live(Group(self.bar, self.losses, self.best), console=console, refresh_per_second=8)
        self.selection = "recall@20"

    def __enter__(self) -> RunProgress:
        self.live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.stop()
        if not self.live.console.is_terminal:
            self.live.console.line()  # a redirected display ends without a newline

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            cfg = event.config
            self.selection = f"recall@{cfg['topk'][-1]}"
            self.bar.update(
                self.task, total=cfg["epochs"], description=escape(f"{cfg['model']}/{cfg['variant']} {cfg['dataset']}")
            )
            threads = f" ({event.cpu_threads})" if event.cpu_threads else ""
            self.live.console.print(
                f"[dim]{event.n_users:,} users, {event.n_items:,} items, {event.n_train:,} train interactions, "
                f"{event.n_batches} batches/epoch, {event.n_params:,} parameters, "
                f"device {event.device}{threads}, sparse {event.sparse_backend}[/dim]"
            )
        elif isinstance(event, EpochEnded):
            self.bar.update(self.task, completed=event.epoch + 1)
            terms = "  ".join(f"{name} {value:.4f}" for name, value in event.losses.items())
            self.losses.plain = f"  loss  {terms}  ({event.seconds:.2f} s/epoch)"
        elif isinstance(event, Evaluated):
            arrow = "up" if event.improved else "  "
            self.best.plain = (
                f"  valid {self.selection} {event.metrics[self.selection]:.4f} {arrow}  "
                f"best {event.best_value:.4f} at epoch {event.best_epoch}  patience left {event.patience_left}"
            )
        elif isinstance(event, RunFinished):
            self.bar.update(self.task, total=event.epochs_run, completed=event.epochs_run)


def metrics_table(test: dict[str, float], valid: dict[str, float], title: str) -> Table:
    """Recall and NDCG at each K, test and (best-epoch) validation side by side."""
    table = Table(title=Text(title))  # the title holds the dataset name: never markup
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("valid (best epoch)", justify="right")
    for name, value in test.items():
        table.add_row(name, f"{value:.4f}", f"{valid.get(name, float('nan')):.4f}")
    return table
