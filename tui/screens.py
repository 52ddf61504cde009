"""Small screens: confirmation, the queue form, workers, and the report preview."""

from __future__ import annotations

import shutil
import subprocess
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, Label, Markdown, Static

from rlmrec.errors import RLMRecError
from rlmrec.report import present
from rlmrec.store import WorkerInfo


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QueueScreen(ModalScreen[None]):
    """The ``rlmrec queue`` form, with the same validation and suggestions."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close", id="queue.close")]
    FIELDS: ClassVar[list[tuple[str, str, str]]] = [
        ("model", "Model(s)", "lightgcn  (comma list or all)"),
        ("variant", "Variant(s)", "base,con,gen"),
        ("dataset", "Dataset(s)", "demo"),
        ("seeds", "Seeds", "1  (consecutive from the preset seed)"),
        ("overrides", "Overrides", "lr=1e-3,2e-3 test_step=3  (space separated; commas expand a grid)"),
        ("priority", "Priority", "0"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label("Queue runs", id="form-title")
            with Grid(id="fields"):
                for key, label, hint in self.FIELDS:
                    yield Label(label)
                    yield Input(placeholder=hint, id=f"q-{key}")
            yield Static("", id="q-error")
            with Horizontal(id="buttons"):
                yield Button("Queue", variant="success", id="submit")
                yield Button("Cancel", id="close")

    def value(self, key: str) -> str:
        return self.query_one(f"#q-{key}", Input).value.strip()

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss()

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def _submit(self) -> None:
        self.submit()

    @work(thread=True, exclusive=True, group="queue")
    def submit(self) -> None:
        from rlmrec.queueing import Submission, plan

        try:
            seeds = int(self.value("seeds") or 1)
            priority = int(self.value("priority") or 0)
        except ValueError:
            self.app.call_from_thread(self._error, "seeds and priority must be whole numbers")
            return
        try:
            specs = plan(
                Submission(
                    self.value("model") or "lightgcn",
                    self.value("variant") or "base",
                    self.value("dataset") or "demo",
                    n_seeds=seeds,
                    overrides=self.value("overrides").split(),
                    priority=priority,
                )
            )
            ids = self.app.store.add_runs(specs)  # type: ignore[attr-defined]
        except RLMRecError as error:
            self.app.call_from_thread(self._error, str(error))
            return
        self.app.call_from_thread(self._done, ids)

    def _error(self, message: str) -> None:
        self.query_one("#q-error", Static).update(Text(message, style="red"))  # echoes typed values: not markup

    def _done(self, ids: list[int]) -> None:
        self.app.notify(f"queued {len(ids)} run(s): {ids[0]}-{ids[-1]}" if len(ids) > 1 else f"queued run {ids[0]}")
        self.app.reload()  # type: ignore[attr-defined]
        self.dismiss()


def gpu_status() -> list[dict[str, str]] | None:
    """Utilization and memory per GPU from nvidia-smi; None where it is absent."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "index,name,utilization.gpu,memory.used,memory.total"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            rows.append(dict(zip(("index", "name", "util", "used", "total"), parts, strict=True)))
    return rows or None


class WorkersScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back", id="workers.back")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="workers")
            yield Static("", id="gpus")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(2.0, self.load)

    @work(thread=True, exclusive=True, group="workers")
    def load(self) -> None:
        try:
            workers = self.app.store.workers()  # type: ignore[attr-defined]
        except RLMRecError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error", markup=False)
            return
        self.app.call_from_thread(self.show, workers, gpu_status())

    def show(self, workers: list[WorkerInfo], gpus: list[dict[str, str]] | None) -> None:
        now = self.app.now()  # type: ignore[attr-defined]
        table = Table(title="live workers", expand=True)
        slurm = any(w.slurm_job for w in workers)  # a column only where some worker is a Slurm job
        for name in ("worker", "status", "slots", "runs", "uptime", "last beat", *(["slurm job"] * slurm)):
            table.add_column(name)
        for w in workers:
            cells = [w.id, w.status, ", ".join(w.slots), ", ".join(map(str, w.runs)) or "idle",
                     present.duration(now - w.started_at), f"{now - w.heartbeat_at:.0f}s ago",
                     *([w.slurm or ""] * slurm)]  # fmt: skip
            table.add_row(*(Text(cell) for cell in cells))  # worker ids hold host names: never markup
        self.query_one("#workers", Static).update(table if workers else "no live workers (start one: rlmrec worker)")
        box = self.query_one("#gpus", Static)
        box.display = gpus is not None  # hidden cleanly without NVIDIA tools
        if gpus:
            gpu_table = Table(title="GPUs", expand=True)
            for name in ("gpu", "name", "utilization", "memory"):
                gpu_table.add_column(name)
            for g in gpus:
                cells = [g["index"], g["name"], f"{g['util']}%", f"{g['used']} / {g['total']} MiB"]
                gpu_table.add_row(*(Text(cell) for cell in cells))
            box.update(gpu_table)


class ReportScreen(Screen[None]):
    """``rlmrec report`` rendered in the app."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back", id="report.back")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Markdown("Building the report...", id="report")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="report")
    def load(self) -> None:
        from rlmrec.report.build import build
        from rlmrec.report.render import render

        try:
            text = render(build(self.app.store), "markdown")  # type: ignore[attr-defined]
        except RLMRecError as error:
            text = f"**No report:** {error}"
        self.app.call_from_thread(self.query_one("#report", Markdown).update, text)
