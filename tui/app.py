"""The dashboard application: a runs table that follows the store live, and
screens for a run's detail, comparisons, queueing, workers and the report.

Nothing here blocks the event loop: every store read runs in a thread worker.
Once a second a worker asks the store for its change token (one aggregate query)
and reloads the runs only when it moved; reloads post one message carrying the
whole list, so bursts of writes coalesce into one table refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from rlmrec.errors import RLMRecError
from rlmrec.store import RunInfo, Store

from .runs import RunsLoaded, RunsScreen


class RLMRecApp(App[None]):
    """``rlmrec tui``."""

    TITLE = "rlmrec"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "toggle_help", "Help", id="app.help"),
    ]

    def __init__(self, store: Store, *, poll_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.store = store
        self.poll_s = poll_s
        self.now = clock
        self.sub_title = store.url
        self._token: tuple[Any, ...] | None = None
        self._runs: list[RunInfo] = []
        self._waits: dict[int, str] = {}
        self.runs_screen = RunsScreen()

    def on_mount(self) -> None:
        self.push_screen(self.runs_screen)
        self.poll()
        self.set_interval(self.poll_s, self.poll)

    # -- background reads -----------------------------------------------------

    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        try:
            token = self.store.change_token()
            runs = self._runs if token == self._token else self.store.runs(lean=True)
            # Workers come and go without touching a run: asked every poll, but only
            # while some run waits to be claimed.
            waits = self.store.queued_waits(runs)
        except RLMRecError as error:
            self.call_from_thread(self.notify, str(error), severity="error", markup=False)
            return
        if token == self._token and waits == self._waits:
            return
        self._token, self._runs, self._waits = token, runs, waits
        self.post_message(RunsLoaded(runs, waits))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs_screen.show_runs(message.runs, message.waits)
        for screen in self.screen_stack:
            refresh = getattr(screen, "store_changed", None)
            if refresh is not None:
                refresh()

    def reload(self) -> None:
        self._token = None
        self.poll()

    @work(thread=True, group="steer")
    def steer(self, what: str, act: Callable[[list[int]], dict[int, str]], ids: list[int]) -> None:
        try:
            results = act(ids)
        except RLMRecError as error:
            self.call_from_thread(self.notify, str(error), severity="error", markup=False)
            return
        summary = ", ".join(f"{i}: {r}" for i, r in results.items())
        self.call_from_thread(self.notify, f"{what}: {summary}", markup=False)
        self.call_from_thread(self.reload)

    # -- navigation -----------------------------------------------------------

    def open_detail(self, run_id: int) -> None:
        from .detail import DetailScreen

        self.push_screen(DetailScreen(run_id))

    def open_compare(self, ids: list[int]) -> None:
        from .compare import CompareScreen

        self.push_screen(CompareScreen(ids))

    def open_queue(self) -> None:
        from .screens import QueueScreen

        self.push_screen(QueueScreen())

    def open_workers(self) -> None:
        from .screens import WorkersScreen

        self.push_screen(WorkersScreen())

    def open_report(self) -> None:
        from .screens import ReportScreen

        self.push_screen(ReportScreen())

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette (ctrl+p)."""
        yield from super().get_system_commands(screen)
        runs = self.runs_screen
        for title, help_text, callback in [
            ("Open run detail", "Details, live curves and log of the selected run", runs.action_open),
            ("Filter runs", "status=… model=… dataset=… group=… seed=… tag=…", runs.action_filter),
            ("Sort by next column", "Cycle the sort column", runs.action_sort),
            ("Group by submission", "Toggle grouping rows by queue submission", runs.action_group),
            ("Mark run", "Mark or unmark the selected run", runs.action_mark),
            ("Compare marked runs", "Metrics, curves and config side by side", runs.action_compare),
            ("Queue runs", "Queue model x variant x dataset x seeds", runs.action_queue),
            ("Cancel runs", "Cancel the marked or selected runs", runs.action_cancel),
            ("Retry runs", "Requeue failed, cancelled or lost runs", runs.action_retry),
            ("Raise priority", "Priority +1 for the marked or selected runs", lambda: runs.action_priority(1)),
            ("Lower priority", "Priority -1 for the marked or selected runs", lambda: runs.action_priority(-1)),
            ("Remove runs", "Delete runs and their files (asks first)", runs.action_remove),
            ("Workers", "Live workers, slots and GPUs", runs.action_workers),
            ("Report preview", "The markdown report of finished runs", runs.action_report),
        ]:
            yield SystemCommand(title, help_text, callback)
