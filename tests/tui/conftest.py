"""A store for the dashboard: every status, epochs with validation, log lines, a
worker; timestamps fixed so screenshots do not drift."""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from rlmrec.tui.app import RLMRecApp

from rlmrec.config import resolve_config
from rlmrec.store import RunSpec, Store
from rlmrec.store import store as store_module

T0 = 1_790_000_000.0  # a fixed "now" for the app and the store


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The store's clock only (Textual keeps the real one): each reading 0.5 s later."""
    ticks = itertools.count()
    fake = types.SimpleNamespace(time=lambda: T0 - 600 + next(ticks) * 0.5)
    monkeypatch.setattr(store_module, "time", fake)
    yield


def spec(model: str, variant: str, seed: int, group: str = "study", **overrides: object) -> RunSpec:
    cfg = resolve_config(model, variant, "demo", overrides)
    cfg.train.seed = seed
    return RunSpec(model, variant, "demo", seed, cfg.to_dict(), group=group)


def progress(store: Store, run_id: int, attempt: int, epochs: int, level: float) -> None:
    for epoch in range(epochs):
        losses = {"bpr": 0.69 - 0.02 * epoch, "reg": 1e-4 * epoch}
        store.record_epoch(run_id, attempt, epoch, losses, 0.05, 0.05 * (epoch + 1), f"epoch {epoch}")
        if epoch % 3 == 0:
            value = level + 0.004 * epoch
            metrics = {"recall@20": value, "ndcg@20": value / 2}
            store.record_eval(run_id, attempt, epoch, metrics, 0.02, (epoch, value, metrics), f"valid {epoch}")


def fill(store: Store) -> dict[str, int]:
    """ids by role: done_a, done_b (succeeded), running, failed, queued."""
    ids = dict(zip(["done_a", "done_b", "running", "failed", "queued"], store.add_runs([
        spec("lightgcn", "base", 2023), spec("lightgcn", "con", 2023), spec("lightgcn", "gen", 2023),
        spec("gccf", "base", 2023, group="other"), spec("gccf", "gen", 2024, group="other"),
    ]), strict=True))  # fmt: skip
    for role in ("done_a", "done_b", "running", "failed"):
        run = store.claim("host:1:0", "host", 1, "cpu")
        assert run is not None and run.id == ids[role]
        store.begin_attempt(run.id, run.attempt, pid=1, code_version="git:abc", resume_epoch=None)
        level = {"done_a": 0.20, "done_b": 0.22, "running": 0.18, "failed": 0.1}[role]
        progress(store, run.id, run.attempt, 7 if role != "failed" else 2, level)
        if role.startswith("done"):
            metrics = {"recall@20": level + 0.03, "ndcg@20": (level + 0.03) / 2}
            store.finish(run.id, run.attempt, "succeeded", test_metrics=metrics, test_value=metrics["recall@20"])
        elif role == "failed":
            store.finish(run.id, run.attempt, "failed", error="RuntimeError: boom")
    store.register_worker("host:1:0", "host", 1, ["cpu", "cpu"])
    return ids


@pytest.fixture
def dash(tmp_path: Path, frozen: None) -> tuple[Store, dict[str, int]]:
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "runs")
    return store, fill(store)


def make_app(store: Store) -> RLMRecApp:
    app = RLMRecApp(store, poll_s=0.1, clock=lambda: T0)
    app.sub_title = "runs.db"  # not the temporary path: screenshots stay the same
    return app
