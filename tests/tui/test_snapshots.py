"""SVG snapshots of the dashboard's screens (pytest-textual-snapshot), with the
store's clock and the app's clock frozen. Regenerate after a deliberate change:
``pytest tests/tui/test_snapshots.py --snapshot-update``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from rlmrec.store import Store

from .conftest import make_app
from .test_app import table_ids, until

Dash = tuple[Store, dict[str, int]]
SIZE = (120, 36)


def _loaded(then: Callable[[Pilot[Any]], Awaitable[None]] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: len(table_ids(pilot.app)) == 5)  # type: ignore[arg-type]
        if then is not None:
            await then(pilot)
        await pilot.pause(0.3)

    return run_before


def test_runs_screen(snap_compare: Any, dash: Dash) -> None:
    async def mark(pilot: Pilot[Any]) -> None:
        pilot.app.runs_screen.action_mark()  # type: ignore[attr-defined]

    assert snap_compare(make_app(dash[0]), terminal_size=SIZE, run_before=_loaded(mark))


def test_detail_screen(snap_compare: Any, dash: Dash) -> None:
    store, ids = dash

    async def open_running(pilot: Pilot[Any]) -> None:
        pilot.app.open_detail(ids["running"])  # type: ignore[attr-defined]
        # lines[-1:]: the log may still be empty on the first look
        await until(pilot, lambda: any("valid 6" in str(x.text) for x in pilot.app.screen.query_one("#log").lines[-1:]))

    assert snap_compare(make_app(store), terminal_size=(120, 48), run_before=_loaded(open_running))


def test_compare_screen(snap_compare: Any, dash: Dash) -> None:
    store, ids = dash

    async def compare(pilot: Pilot[Any]) -> None:
        pilot.app.open_compare([ids["done_a"], ids["done_b"]])  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(getattr(pilot.app.screen, "runs", None)))

    assert snap_compare(make_app(store), terminal_size=(120, 48), run_before=_loaded(compare))


def test_queue_form_with_an_error(snap_compare: Any, dash: Dash) -> None:
    async def bad_queue(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await until(pilot, lambda: bool(pilot.app.screen.query("#q-model")))
        # An error whose text does not list the models: new backbones must not change the picture.
        pilot.app.screen.query_one("#q-seeds", Input).value = "two"
        await pilot.press("enter")
        await until(pilot, lambda: "whole numbers" in str(pilot.app.screen.query_one("#q-error").render()))

    assert snap_compare(make_app(dash[0]), terminal_size=SIZE, run_before=_loaded(bad_queue))
