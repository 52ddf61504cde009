"""The dashboard shows markup in user text (group, tags, note, errors, config values,
worker ids, typed filters and form values) as typed, and opens such a store at all."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile.crafted import MARKUP, fill_with_markup
from rlmrec.tui.app import RLMRecApp
from rlmrec.tui.compare import CompareScreen
from rlmrec.tui.detail import DetailScreen
from rlmrec.tui.screens import QueueScreen, WorkersScreen
from textual.widgets import DataTable, Input, RichLog, Static

from rlmrec.store import Store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """Under a folder named ``[``: the store's own path spells ``[/]``."""
    (tmp_path / "[").mkdir()
    store = Store(f"sqlite:///{tmp_path / '[' / ']runs.db'}", tmp_path / "runs")
    return fill_with_markup(store, (MARKUP, "plain"))


async def until(pilot: object, check: Callable[[], bool], timeout: float = 10.0) -> None:
    from textual.css.query import NoMatches

    for _ in range(int(timeout / 0.05)):
        try:
            if check():
                return
        except NoMatches:
            pass
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("condition not reached")


def _text(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=300, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def test_runs_detail_compare_workers_show_markup_as_typed(store: Store) -> None:
    app = RLMRecApp(store, poll_s=0.1)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: len(app.runs_screen.shown) == 2)
        table = app.runs_screen.query_one("#runs", DataTable)
        assert str(table.get_cell("1", "group")) == MARKUP
        app.open_detail(1)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(pilot, lambda: MARKUP in _text(app.screen.query_one("#info", Static)))
        assert f"augmentation = {MARKUP}" in _text(app.screen.query_one("#config", Static))
        log = app.screen.query_one("#log", RichLog)
        await until(pilot, lambda: any(MARKUP in str(line.text) for line in log.lines))
        await pilot.press("escape")
        app.open_compare([1, 2])
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await until(pilot, lambda: MARKUP in _text(app.screen.query_one("#config", Static)))
        await pilot.press("escape")
        app.open_workers()
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
        await until(pilot, lambda: f"host{MARKUP}" in _text(app.screen.query_one("#workers", Static)))


async def test_typed_filter_and_queue_form_values_show_as_typed(store: Store) -> None:
    app = RLMRecApp(store, poll_s=0.1)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: len(app.runs_screen.shown) == 2)
        box = app.runs_screen.query_one("#filter", Input)
        app.runs_screen.action_filter()
        box.value = "[/]"
        await pilot.press("enter")
        summary = app.runs_screen.query_one("#summary", Static)
        await until(pilot, lambda: "filter: [/]" in _text(summary))
        assert len(app.runs_screen.shown) == 2  # the word matches their group
        await pilot.press("escape", "escape")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        form = app.screen
        form.query_one("#q-model", Input).value = "[/x]"
        await pilot.click("#submit")
        error = form.query_one("#q-error", Static)
        await until(pilot, lambda: "unknown model '[/x]'" in _text(error))
        assert len(store.runs()) == 2
