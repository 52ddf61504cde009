"""The runs table: every run, live, with filter, sort, pages, marks and actions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from rlmrec.errors import RLMRecError
from rlmrec.report import present
from rlmrec.store import RunInfo, Store
from rlmrec.store.placement import NO_WORKER

from .model import SORT_KEYS, Query, arrange, page, time_left

COLUMNS = ("", "id", "status", "model", "variant", "dataset", "seed", "epoch", "val R@20", "test R@20", "elapsed",
           "left", "group")  # fmt: skip


class RunsLoaded(Message):
    """The store's runs, and why the claimable ones wait (``Store.queued_waits``)."""

    def __init__(self, runs: list[RunInfo], waits: dict[int, str] | None = None) -> None:
        super().__init__()
        self.runs = runs
        self.waits = waits or {}


class RunsScreen(Screen[None]):
    """All runs: filter, sort, page, mark, act."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail", id="runs.open"),
        Binding("space", "mark", "Mark", id="runs.mark"),
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("s", "sort", "Sort", id="runs.sort"),
        Binding("g", "group", "Group", id="runs.group"),
        Binding("c", "compare", "Compare", id="runs.compare"),
        Binding("n", "queue", "Queue", id="runs.queue"),
        Binding("x", "cancel", "Cancel", id="runs.cancel"),
        Binding("r", "retry", "Retry", id="runs.retry"),
        Binding("plus", "priority(1)", "Priority+", id="runs.priority_up"),
        Binding("minus", "priority(-1)", "Priority-", show=False, id="runs.priority_down"),
        Binding("delete", "remove", "Remove", id="runs.remove"),
        Binding("w", "workers", "Workers", id="runs.workers"),
        Binding("R", "report", "Report", id="runs.report"),
        Binding("right_square_bracket", "page(1)", "Next page", show=False, id="runs.next_page"),
        Binding("left_square_bracket", "page(-1)", "Prev page", show=False, id="runs.prev_page"),
        Binding("j", "cursor(1)", "Down", show=False, id="runs.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="runs.up"),
        Binding("escape", "clear", "Clear", show=False, id="runs.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunInfo] = []
        self.waits: dict[int, str] = {}
        self.shown: list[RunInfo] = []
        self.query_text = ""
        self.sort_column = "id"
        self.sort_reverse = False
        self.grouped = False
        self.page_number = 0
        self.pages = 1
        self.marked: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="summary")
        table: DataTable[Any] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield table
        hint = "filter: status=running,queued model=lightgcn dataset=demo seed=2023 words"
        yield Input(placeholder=hint, id="filter")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)  # re-created with widths on every refresh
        self.query_one("#filter", Input).display = False
        table.focus()
        if self.runs:  # loaded before this screen was composed
            self.refresh_table()

    # -- data ---------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.app.store  # type: ignore[attr-defined]

    def show_runs(self, runs: list[RunInfo], waits: dict[int, str] | None = None) -> None:
        self.runs = runs
        self.waits = waits or {}
        # Not composed yet (on_mount shows them), or being torn down as the app exits.
        with contextlib.suppress(NoMatches):
            self.refresh_table()

    def refresh_table(self) -> None:
        table = self.query_one("#runs", DataTable)
        try:
            query = Query.parse(self.query_text)
        except RLMRecError:
            query = Query()
        arranged = arrange(self.runs, query, self.sort_column, self.sort_reverse, self.grouped)
        self.shown, self.page_number, self.pages = page(arranged, self.page_number)
        selected = self.selected_id()
        now = self.app.now()  # type: ignore[attr-defined]
        rows = []
        for run in self.shown:
            status = present.status_label(run, self.waits.get(run.id))
            rows.append((
                "●" if run.id in self.marked else "",
                str(run.id),
                status,
                run.model,
                run.variant,
                run.dataset,
                str(run.seed),
                "" if run.epoch is None else str(run.epoch),
                present.metric(run.best_valid),
                present.metric(run.test_value),
                present.duration(run.duration(now)),
                present.duration(time_left(run)),
                run.group or "",
            ))  # fmt: skip
        # Explicit widths from this page's cells: auto-sized columns can stay at their
        # header's width when rows arrive before the first layout.
        table.clear(columns=True)
        for i, name in enumerate(COLUMNS):
            table.add_column(name, key=name, width=max([len(name), *(len(row[i]) for row in rows)]))
        for run, row in zip(self.shown, rows, strict=True):
            # Text, not str: DataTable reads str cells as markup, and groups and datasets are user text.
            cells = [Text(cell) for cell in row]
            cells[2] = Text(row[2], style=present.STATUS_STYLE.get(run.status, ""))
            table.add_row(*cells, key=str(run.id))
        if selected is not None:
            for i, run in enumerate(self.shown):
                if run.id == selected:
                    table.move_cursor(row=i)
                    break
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        tally = "  ".join(f"[{present.STATUS_STYLE.get(s, '')}]{n} {s}[/]" for s, n in counts.items()) or "no runs yet"
        arrow = "▼" if self.sort_reverse else "▲"
        extra = f"  filter: {escape(self.query_text)}" if self.query_text else ""
        pages = f"  page {self.page_number + 1}/{self.pages} ([ ])" if self.pages > 1 else ""
        marked = f"  {len(self.marked)} marked" if self.marked else ""
        grouped = "  grouped by submission" if self.grouped else ""
        hint = f"\n[yellow]{escape(present.NO_WORKER_HINT)}[/]" if NO_WORKER in self.waits.values() else ""
        self.query_one("#summary", Static).update(
            f"{tally}   [dim]{len(arranged)} shown, sort {self.sort_column} {arrow}{grouped}{extra}{pages}{marked}[/]"
            + hint
        )

    def selected_id(self) -> int | None:
        table = self.query_one("#runs", DataTable)
        if not self.shown or table.cursor_row is None or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row].id

    def targets(self) -> list[int]:
        """Marked runs, else the one under the cursor."""
        if self.marked:
            return sorted(self.marked)
        selected = self.selected_id()
        return [] if selected is None else [selected]

    # -- actions ------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#runs", DataTable)
        table.move_cursor(row=max(0, (table.cursor_row or 0) + step))

    def action_open(self) -> None:
        selected = self.selected_id()
        if selected is not None:
            self.app.open_detail(selected)  # type: ignore[attr-defined]

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self) -> None:
        self.action_open()

    @on(DataTable.HeaderSelected, "#runs")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        self.set_sort("elapsed" if column == "left" else column)

    def set_sort(self, column: str) -> None:
        if column not in SORT_KEYS:
            return
        self.sort_reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column = column
        self.refresh_table()

    def action_sort(self) -> None:
        names = list(SORT_KEYS)
        self.sort_column = names[(names.index(self.sort_column) + 1) % len(names)]
        self.sort_reverse = False
        self.refresh_table()

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self.refresh_table()

    def action_page(self, step: int) -> None:
        self.page_number += step
        self.refresh_table()

    def action_mark(self) -> None:
        selected = self.selected_id()
        if selected is None:
            return
        self.marked ^= {selected}
        self.refresh_table()
        self.action_cursor(1)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.query_text
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            Query.parse(event.value)
        except RLMRecError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self.query_text = event.value.strip()
        self.page_number = 0
        event.input.display = False
        self.query_one("#runs", DataTable).focus()
        self.refresh_table()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.query_one("#runs", DataTable).focus()
        elif self.marked:
            self.marked.clear()
            self.refresh_table()
        elif self.query_text:
            self.query_text = ""
            self.refresh_table()

    def action_compare(self) -> None:
        ids = sorted(self.marked) if len(self.marked) >= 2 else []
        if not ids:
            self.notify("mark two or more runs with space first", severity="warning")
            return
        self.app.open_compare(ids)  # type: ignore[attr-defined]

    def action_queue(self) -> None:
        self.app.open_queue()  # type: ignore[attr-defined]

    def action_workers(self) -> None:
        self.app.open_workers()  # type: ignore[attr-defined]

    def action_report(self) -> None:
        self.app.open_report()  # type: ignore[attr-defined]

    def action_cancel(self) -> None:
        self._steer("cancel", lambda ids: self.store.cancel(ids))

    def action_retry(self) -> None:
        self._steer("retry", lambda ids: self.store.retry(ids))

    def action_priority(self, step: int) -> None:
        def change(ids: list[int]) -> dict[int, str]:
            current = {r.id: r.priority for r in self.runs}
            for run_id in ids:
                self.store.set_priority([run_id], current.get(run_id, 0) + step)
            return {i: f"priority {current.get(i, 0) + step}" for i in ids}

        self._steer("priority", change)

    def action_remove(self) -> None:
        ids = self.targets()
        if not ids:
            return
        from .screens import ConfirmScreen

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._steer("remove", lambda ids: {i: "removed" for i in self.store.remove(ids)}, ids)
                self.marked -= set(ids)

        self.app.push_screen(ConfirmScreen(f"Remove run(s) {', '.join(map(str, ids))} and their files?"), confirmed)

    def _steer(self, what: str, act: Callable[[list[int]], dict[int, str]], ids: list[int] | None = None) -> None:
        ids = ids if ids is not None else self.targets()
        if ids:
            self.app.steer(what, act, ids)  # type: ignore[attr-defined]
