"""Marked runs side by side: test and best validation metrics (best highlighted),
validation curves and the main loss overlaid, config differences."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from rlmrec.errors import RLMRecError
from rlmrec.report import present
from rlmrec.store import EpochInfo, RunInfo


class CompareScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
        Binding("o", "only_changed", "Only changed", id="compare.only_changed"),
    ]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.only_changed = True
        self.runs: list[RunInfo] = []
        self.curves: dict[int, list[EpochInfo]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("test metrics (best in bold green)", id="metrics-title")
            yield DataTable(id="metrics", show_cursor=False, zebra_stripes=True)
            with Horizontal(id="charts"):
                yield PlotextPlot(id="valid")
                yield PlotextPlot(id="loss")
            yield Static("", id="config")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def store_changed(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare")
    def load(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            runs = [store.get(i) for i in self.run_ids]
            curves = {i: store.epochs(i) for i in self.run_ids}
        except RLMRecError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error", markup=False)
            return
        self.app.call_from_thread(self.show, runs, curves)

    def show(self, runs: list[RunInfo], curves: dict[int, list[EpochInfo]]) -> None:
        if not self.query("#metrics"):  # closed while its thread read the store: nothing left to update
            return
        self.runs, self.curves = runs, curves
        self._metrics(self.query_one("#metrics", DataTable))
        self.query_one("#config", Static).update(self._config())
        # Validation Recall@20, and each run's own training loss (BPR, or AutoCF's "rec").
        valid = [(run, present.series(curves[run.id], "recall@20")) for run in runs]
        mains = {run.id: present.main_loss(curves[run.id]) for run in runs}
        losses = [(run, present.series(curves[run.id], term) if (term := mains[run.id]) else []) for run in runs]
        loss_title = "loss: " + (" / ".join(dict.fromkeys(t for t in mains.values() if t)) or "none yet")
        for widget_id, title, lines in (("#valid", "validation recall@20", valid), ("#loss", loss_title, losses)):
            plot = self.query_one(widget_id, PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            for run, points in lines:
                if points:
                    plt.plot([p[0] for p in points], [p[1] for p in points], label=f"run {run.id}")
            plt.title(title)
            plot.refresh()

    def _metrics(self, table: DataTable[Text]) -> None:
        # A DataTable, not a Rich table in a Static: Textual would drop the padding
        # in front of styled cells and misalign the highlighted values.
        table.clear(columns=True)
        table.add_column("metric", key="metric")
        for run in self.runs:
            label = Text(present.run_title(run))  # not markup
            table.add_column(label, key=str(run.id))
        for name, values in present.metric_rows(self.runs):
            top = max((v for v in values if v is not None), default=None)
            highlight = len(self.runs) > 1
            cells = [Text(present.metric(v), style="bold green" if highlight and v == top else "", justify="right")
                     for v in values]  # fmt: skip
            table.add_row(Text(name), *cells)
        table.add_row(Text("best epoch"), *(Text("" if r.best_epoch is None else str(r.best_epoch)) for r in self.runs))
        table.add_row(Text("status"), *(Text(r.status) for r in self.runs))

    def _config(self) -> Table:
        configs = [r.config or {} for r in self.runs]
        keys = list(dict.fromkeys(k for c in configs for k in c))
        changed = present.changed_keys(configs)
        shown = changed if self.only_changed else keys
        title = "config: only changed keys (o: all)" if self.only_changed else "config: all keys (o: only changed)"
        table = Table(title=title, expand=True)
        table.add_column("key")
        for run in self.runs:
            table.add_column(f"run {run.id}")
        for key in shown:
            style = "yellow" if key in changed else ""
            table.add_row(Text(key), *(Text(str(c.get(key, ""))) for c in configs), style=style)  # values: not markup
        return table

    def action_only_changed(self) -> None:
        self.only_changed = not self.only_changed
        self.query_one("#config", Static).update(self._config())
