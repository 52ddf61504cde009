"""What ``rlmrec run`` shows while it trains, fed by the trainer's events: a Rich live
display on a terminal, plain timestamped lines elsewhere (a log file, a pipe)."""

from __future__ import annotations

import time
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

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            cfg = event.config
            self.selection = f"recall@{cfg['topk'][-1]}"
            self.bar.update(
                self.task, total=cfg["epochs"], description=escape(f"{cfg['model']}/{cfg['variant']} {cfg['dataset']}")
            )
            self.live.console.print(Text(_setting(event), style="dim"))
        elif isinstance(event, EpochEnded):
            self.bar.update(self.task, completed=event.epoch + 1)
            self.losses.plain = f"  loss  {_losses(event)}"
        elif isinstance(event, Evaluated):
            arrow = "up" if event.improved else "  "
            self.best.plain = f"  valid {self.selection} {event.metrics[self.selection]:.4f} {arrow}  {_best(event)}"
        elif isinstance(event, RunFinished):
            self.bar.update(self.task, total=event.epochs_run, completed=event.epochs_run)


class RunLog:
    """The same figures as :class:`RunProgress` as plain lines, for a console that is no
    terminal (``nohup``, a Slurm job, a pipe), where a live display would show nothing
    until the end: the start, then a line per validation with the last epoch's losses."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.selection = "recall@20"
        self.losses = ""

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def _say(self, text: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {text}", markup=False, highlight=False, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            cfg = event.config
            self.selection = f"recall@{cfg['topk'][-1]}"
            self._say(f"{cfg['model']}/{cfg['variant']} on {cfg['dataset']}, seed {cfg['seed']}: {_setting(event)}")
        elif isinstance(event, EpochEnded):
            self.losses = _losses(event)
        elif isinstance(event, Evaluated):
            value = event.metrics[self.selection]
            self._say(f"epoch {event.epoch}: {self.losses}; valid {self.selection} {value:.4f}, {_best(event)}")


def _setting(event: RunStarted) -> str:
    threads = f" ({event.cpu_threads})" if event.cpu_threads else ""
    return (
        f"{event.n_users:,} users, {event.n_items:,} items, {event.n_train:,} train interactions, "
        f"{event.n_batches} batches/epoch, {event.n_params:,} parameters, "
        f"device {event.device}{threads}, sparse {event.sparse_backend}"
    )


def _losses(event: EpochEnded) -> str:
    terms = "  ".join(f"{name} {value:.4f}" for name, value in event.losses.items())
    return f"{terms}  ({event.seconds:.2f} s/epoch)"


def _best(event: Evaluated) -> str:
    return f"best {event.best_value:.4f} at epoch {event.best_epoch}  patience left {event.patience_left}"


def metrics_table(test: dict[str, float], valid: dict[str, float], title: str) -> Table:
    """Recall and NDCG at each K, test and (best-epoch) validation side by side."""
    # The title holds the dataset name: never markup. As wide as the title, which would
    # otherwise wrap to the columns' width.
    table = Table(title=Text(title), min_width=len(title) + 2)
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("valid (best epoch)", justify="right")
    for name, value in test.items():
        table.add_row(name, f"{value:.4f}", f"{valid.get(name, float('nan')):.4f}")
    return table
