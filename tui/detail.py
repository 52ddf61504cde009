"""One run, live: identity and outcome, curves of every loss term and of the
validation metrics, test metrics, the resolved config and the log tail."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static
from textual_plotext import PlotextPlot

from rlmrec.errors import RLMRecError
from rlmrec.report import present
from rlmrec.store import EpochInfo, LogInfo, RunInfo, Store


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("x", "cancel", "Cancel run", id="detail.cancel"),
        Binding("r", "retry", "Retry run", id="detail.retry"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.last_log = 0
        self.epoch_count = -1

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="info")
        with Horizontal(id="charts"):
            yield PlotextPlot(id="losses")
            yield PlotextPlot(id="valid")
        with Horizontal(id="lower"):
            yield Static("", id="metrics")
            with VerticalScroll(id="config-box"):
                yield Static("", id="config")
        yield RichLog(id="log", wrap=True, highlight=False, max_lines=2000)
        yield Footer()

    @property
    def store(self) -> Store:
        return self.app.store  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]

    def store_changed(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        try:
            run = self.store.get(self.run_id)
            epochs = self.store.epochs(self.run_id)
            logs = self.store.logs(self.run_id, after=self.last_log)
        except RLMRecError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error", markup=False)
            return
        self.app.call_from_thread(self.show, run, epochs, logs)

    def show(self, run: RunInfo, epochs: list[EpochInfo], logs: list[LogInfo]) -> None:
        if not self.query("#info"):  # closed while its thread read the store: nothing left to update
            return
        now = self.app.now()  # type: ignore[attr-defined]
        # Separators end the preceding span: Textual drops spaces that begin a span.
        info = Text()
        info.append(f"run {run.id}  ", style="bold")
        info.append(f"{run.model}/{run.variant} on {run.dataset}, seed {run.seed}  ")
        info.append(f"{run.status}  ", style=present.STATUS_STYLE.get(run.status, ""))
        info.append(f"attempt {run.attempt}  epoch {'' if run.epoch is None else run.epoch}  ")
        info.append(f"elapsed {present.duration(run.duration(now))}  ")
        info.append(f"{run.host or ''} {run.device or ''} {run.code_version or ''}", style="dim")
        if run.error:
            info.append(f"\n{run.error}", style="red")
        self.query_one("#info", Static).update(info)
        if len(epochs) != self.epoch_count:
            self.epoch_count = len(epochs)
            self._plot(epochs)
        self.query_one("#metrics", Static).update(self._metrics(run))
        config = run.config or {}
        self.query_one("#config", Static).update(Text("\n".join(f"{k} = {v}" for k, v in config.items())))
        log = self.query_one("#log", RichLog)
        for line in logs:
            self.last_log = line.id
            style = {"error": "red", "warning": "yellow"}.get(line.level, "")
            log.write(Text(f"[{line.attempt}] {line.message}", style=style))

    def _plot(self, epochs: list[EpochInfo]) -> None:
        losses = self.query_one("#losses", PlotextPlot)
        plt = losses.plt
        plt.clear_data()
        plt.clear_figure()
        for term in present.loss_terms([epochs]):
            points = present.series(epochs, term)
            if points:
                plt.plot([p[0] for p in points], [p[1] for p in points], label=term)
        plt.title("loss terms per epoch")
        losses.refresh()
        valid = self.query_one("#valid", PlotextPlot)
        plt = valid.plt
        plt.clear_data()
        plt.clear_figure()
        names = [m for m in ("recall@20", "ndcg@20") if m in present.valid_metrics([epochs])]
        for name in names:
            points = present.series(epochs, name)
            plt.plot([p[0] for p in points], [p[1] for p in points], label=name, marker="dot")
        plt.title("validation")
        valid.refresh()

    @staticmethod
    def _metrics(run: RunInfo) -> Table:
        table = Table(title=f"best epoch {'' if run.best_epoch is None else run.best_epoch}", expand=True)
        table.add_column("metric")
        table.add_column("test", justify="right")
        table.add_column("valid", justify="right")
        names = list((run.test_metrics or run.valid_metrics or {}).keys())
        for name in names:
            test, valid = (run.test_metrics or {}).get(name), (run.valid_metrics or {}).get(name)
            table.add_row(Text(name), present.metric(test), present.metric(valid))
        return table

    def action_cancel(self) -> None:
        self.app.steer("cancel", lambda ids: self.store.cancel(ids), [self.run_id])  # type: ignore[attr-defined]

    def action_retry(self) -> None:
        self.app.steer("retry", lambda ids: self.store.retry(ids), [self.run_id])  # type: ignore[attr-defined]


__all__ = ["DetailScreen"]
