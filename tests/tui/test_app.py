"""The dashboard driven with Textual's Pilot: every screen and action against a
filled store, including a run that progresses while the app is open."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest
from rlmrec.tui.app import RLMRecApp, RunsScreen
from rlmrec.tui.compare import CompareScreen
from rlmrec.tui.detail import DetailScreen
from rlmrec.tui.model import PAGE_SIZE
from rlmrec.tui.screens import ConfirmScreen, QueueScreen, ReportScreen, WorkersScreen
from textual.widgets import DataTable, Input, Markdown, RichLog, Static

from rlmrec.config import resolve_config
from rlmrec.store import RunSpec, Store

from .conftest import make_app

Dash = tuple[Store, dict[str, int]]


async def until(pilot: object, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app work (threads, messages) until ``check`` holds."""
    from textual.css.query import NoMatches

    for _ in range(int(timeout / 0.05)):
        try:
            if check():
                return
        except NoMatches:  # the screen is still composing
            pass
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("condition not reached")


def table_ids(app: RLMRecApp) -> list[int]:
    return [run.id for run in app.runs_screen.shown]


def cell(app: RLMRecApp, run_id: int, column: str) -> str:
    table = app.runs_screen.query_one("#runs", DataTable)
    return str(table.get_cell(str(run_id), column))


async def test_runs_table_lists_every_run_with_status_and_metrics(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        assert cell(app, ids["done_b"], "status") == "succeeded"
        assert cell(app, ids["done_b"], "test R@20") == "0.2500"
        assert cell(app, ids["running"], "epoch") == "6" and cell(app, ids["running"], "left") == "0s"
        summary = str(app.runs_screen.query_one("#summary", Static).render())
        assert "2 succeeded" in summary and "1 running" in summary and "1 queued" in summary


async def test_a_queued_run_says_when_no_worker_is_running(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        assert cell(app, ids["queued"], "status") == "queued"

        def summary() -> str:
            return str(app.runs_screen.query_one("#summary", Static).render())

        assert "no worker is running" not in summary()
        store.worker_beat("host:1:0", "stopped")  # no run changes: the poll still sees it
        await until(pilot, lambda: cell(app, ids["queued"], "status") == "queued (needs a worker)")
        assert "no worker is running: start one with `rlmrec worker`" in summary()
        assert cell(app, ids["done_a"], "status") == "succeeded"
        store.register_worker("host:2:0", "host", 2, ["cpu"])
        await until(pilot, lambda: cell(app, ids["queued"], "status") == "queued")
        assert "no worker is running" not in summary()


async def test_filter_sort_group_and_escape(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        await pilot.press("slash")
        box = app.runs_screen.query_one("#filter", Input)
        assert box.display and box.has_focus
        for key in "model=gccf":
            await pilot.press(key if key != "=" else "equals_sign")
        await pilot.press("enter")
        assert table_ids(app) == [ids["failed"], ids["queued"]] and not box.display
        await pilot.press("slash", *"status=nope", "enter")  # rejected, the old filter stays
        assert table_ids(app) == [ids["failed"], ids["queued"]]
        await pilot.press("escape", "escape")  # close the box, then clear the filter
        assert len(table_ids(app)) == 5
        app.runs_screen.set_sort("test R@20")
        app.runs_screen.set_sort("test R@20")  # second time: descending
        assert table_ids(app)[:2] == [ids["done_b"], ids["done_a"]]
        await pilot.press("g")
        assert [r.group for r in app.runs_screen.shown][:2] == ["other", "other"]


async def test_a_run_updating_while_open_shows_up_in_table_and_detail(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    run = store.get(ids["running"])
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        app.runs_screen.query_one("#runs", DataTable).move_cursor(row=table_ids(app).index(run.id))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        log = app.screen.query_one("#log", RichLog)
        await until(pilot, lambda: any("valid 6" in str(line.text) for line in log.lines))
        store.record_epoch(run.id, run.attempt, 7, {"bpr": 0.5, "reg": 0.001}, 0.05, 0.4, "epoch 7 arrives live")
        await until(pilot, lambda: any("epoch 7 arrives live" in str(line.text) for line in log.lines))
        await until(pilot, lambda: "epoch 7" in str(app.screen.query_one("#info", Static).render()))
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, run.id, "epoch") == "7")


async def test_detail_of_a_failed_run_shows_its_error_and_config(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        app.open_detail(ids["failed"])
        await until(pilot, lambda: "boom" in str(app.screen.query_one("#info", Static).render()))
        assert "lr = 0.001" in _text(app.screen.query_one("#config", Static))


async def test_mark_and_compare_with_only_changed_toggle(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        await pilot.press("c")  # nothing marked: a warning, no screen
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("space", "space")  # marks the first two rows
        assert app.runs_screen.marked == {ids["done_a"], ids["done_b"]}
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and bool(app.screen.runs))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        changed = screen._config()
        keys = [str(c) for c in changed.columns[0].cells]
        assert {"variant", "kd_weight", "kd_temperature"} <= set(keys) and "lr" not in keys
        rows_changed = changed.row_count
        await pilot.press("o")
        assert screen._config().row_count > rows_changed


async def test_cancel_retry_priority_and_remove(dash: Dash) -> None:
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        table = app.runs_screen.query_one("#runs", DataTable)

        async def select(role: str) -> None:
            table.move_cursor(row=table_ids(app).index(ids[role]))
            await pilot.pause()

        await select("queued")
        await pilot.press("plus")
        await until(pilot, lambda: store.get(ids["queued"]).priority == 1)
        await pilot.press("x")
        await until(pilot, lambda: store.get(ids["queued"]).status == "cancelled")
        await until(pilot, lambda: cell(app, ids["queued"], "status") == "cancelled")
        await select("failed")
        await pilot.press("r")
        await until(pilot, lambda: store.get(ids["failed"]).status == "queued")
        await select("done_a")
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert store.get(ids["done_a"]).status == "succeeded"
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: ids["done_a"] not in table_ids(app))
        assert ids["done_a"] not in [r.id for r in store.runs()]


async def test_queue_form_validates_then_queues(dash: Dash) -> None:
    store, _ = dash
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        form = app.screen
        form.query_one("#q-model", Input).value = "lightgcm"
        form.query_one("#q-seeds", Input).value = "2"
        await pilot.click("#submit")
        error = form.query_one("#q-error", Static)
        await until(pilot, lambda: "did you mean 'lightgcn'" in str(error.render()))
        assert len(store.runs()) == 5  # nothing queued
        form.query_one("#q-model", Input).value = "lightgcn"
        form.query_one("#q-variant", Input).value = "base,gen"
        form.query_one("#q-overrides", Input).value = "lr=1e-3,2e-3"
        form.query_one("#q-overrides", Input).focus()
        await pilot.press("enter")  # Enter in any field submits, as the button does
        await until(pilot, lambda: not isinstance(app.screen, QueueScreen))
        added = store.runs()[5:]
        assert len(added) == 2 * 2 * 2  # variants x seeds x lr grid
        await until(pilot, lambda: len(table_ids(app)) == 13)


async def test_workers_report_help_and_palette(dash: Dash) -> None:
    store, _ = dash
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
        workers = app.screen.query_one("#workers", Static)
        await until(pilot, lambda: "host:1:0" in _text(workers))
        assert not app.screen.query_one("#gpus", Static).display  # no nvidia-smi here: hidden
        await pilot.press("escape", "R")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen))
        report = app.screen.query_one("#report", Markdown)
        await until(pilot, lambda: "LightGCN" in report.source)
        await pilot.press("escape", "question_mark")
        await until(pilot, lambda: bool(app.screen.query("HelpPanel")))
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query("HelpPanel"))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Filter runs", "Compare marked runs", "Queue runs", "Cancel runs", "Retry runs",
                      "Raise priority", "Remove runs", "Workers", "Report preview"):  # fmt: skip
            assert title in titles


def _text(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be a Rich table)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def test_every_binding_has_a_unique_id() -> None:
    from rlmrec.tui import compare, detail, screens
    from textual.binding import Binding

    classes = [RLMRecApp, RunsScreen, detail.DetailScreen, compare.CompareScreen, screens.ConfirmScreen,
               screens.QueueScreen, screens.WorkersScreen, screens.ReportScreen]  # fmt: skip
    found = [b.id for cls in classes for b in cls.BINDINGS if isinstance(b, Binding)]
    assert all(found) and len(found) == len(set(found))


async def test_ten_thousand_runs_stay_paged(tmp_path: object) -> None:
    from pathlib import Path

    store = Store(f"sqlite:///{Path(str(tmp_path)) / 'big.db'}")
    config = resolve_config("lightgcn", "base", "demo").to_dict()
    store.add_runs([RunSpec("lightgcn", "base", "demo", i, config, group=f"g{i % 7}") for i in range(10_000)])
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: len(app.runs_screen.runs) == 10_000, timeout=30)
        assert len(table_ids(app)) == PAGE_SIZE
        assert app.runs_screen.query_one("#runs", DataTable).row_count == PAGE_SIZE
        await pilot.press("right_square_bracket")
        assert table_ids(app)[0] == PAGE_SIZE + 1
        loop = asyncio.get_running_loop()
        tick = loop.time()
        app.runs_screen.set_sort("seed")
        assert loop.time() - tick < 1.0  # a re-sort of 10,000 runs keeps the app responsive


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_compare_plots_each_runs_own_loss_autocf_included(tmp_path: object, frozen: None) -> None:
    """AutoCF's training loss is "rec", not "bpr": comparing it with LightGCN shows both
    runs' loss curves (the chart once drew only BPR, leaving AutoCF's empty)."""
    from pathlib import Path

    from .conftest import progress, spec

    store = Store(f"sqlite:///{Path(str(tmp_path)) / 'runs.db'}", Path(str(tmp_path)) / "runs")
    lightgcn, autocf = store.add_runs([spec("lightgcn", "base", 2023), spec("autocf", "base", 2023)])
    for run_id in (lightgcn, autocf):
        run = store.claim("host:1:0", "host", 1, "cpu")
        assert run is not None and run.id == run_id
        store.begin_attempt(run.id, run.attempt, pid=1, code_version="git:abc", resume_epoch=None)
    progress(store, lightgcn, 1, 4, 0.2)  # bpr and reg
    for epoch in range(4):  # AutoCF's own terms: no bpr at all
        store.record_epoch(autocf, 1, epoch, {"rec": -1.0 - epoch, "ssl": 0.5, "reg": 1e-4}, 0.05, 1.0, "")
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 2)
        await pilot.press("space", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and bool(app.screen.runs))
        monitor = app.screen.query_one("#loss").plt._active.monitor  # type: ignore[attr-defined]
        assert monitor.title == "loss: bpr / rec"
        assert monitor.label == [f"run {lightgcn}", f"run {autocf}"]
        assert [len(xs) for xs in monitor.x] == [4, 4]
        assert monitor.y[1] == [-1.0, -2.0, -3.0, -4.0]


async def test_a_detail_closed_while_its_thread_reads_the_store_ignores_the_late_result(dash: Dash) -> None:
    """The store is read on a thread; its result can arrive after the screen closed
    (the dashboard quit or escape pressed): it must not crash the app."""
    store, ids = dash
    app = make_app(store)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(table_ids(app)) == 5)
        app.open_detail(ids["failed"])
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        detail.show(store.get(ids["failed"]), store.epochs(ids["failed"]), [])  # the late delivery
        await pilot.pause()
