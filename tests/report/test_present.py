"""The one place runs are formatted for the CLI, the dashboard and the plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rlmrec.config import resolve_config
from rlmrec.report import present
from rlmrec.store import EpochInfo, RunSpec, Store


def _epoch(epoch: int, losses: dict[str, float], valid: dict[str, float] | None = None) -> EpochInfo:
    return EpochInfo(epoch, losses, 0.1, valid, None, 0.0)


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, ""), (0, "0s"), (59.9, "59s"), (60, "1m00s"), (3599, "59m59s"), (7260, "2h01m")]
)
def test_duration(seconds: float | None, text: str) -> None:
    assert present.duration(seconds) == text


def test_metric_and_missing_values() -> None:
    assert (present.metric(0.123456), present.metric(None)) == ("0.1235", "")


def test_series_reads_loss_terms_and_validation_metrics() -> None:
    epochs = [_epoch(0, {"bpr": 0.7}, {"recall@20": 0.1}), _epoch(1, {"bpr": 0.6}), _epoch(2, {"bpr": 0.5})]
    assert present.series(epochs, "bpr") == [(0, 0.7), (1, 0.6), (2, 0.5)]
    assert present.series(epochs, "recall@20") == [(0, 0.1)]
    assert present.series(epochs, "nothing") == []


@pytest.mark.parametrize(
    ("terms", "main"),
    [(["bpr", "reg", "kd"], "bpr"), (["rec", "ssl", "reg"], "rec"), (["reg", "recon"], "reg"), ([], None)],
)
def test_main_loss_is_the_backbones_own_term(terms: list[str], main: str | None) -> None:
    epochs = [_epoch(0, dict.fromkeys(terms, 1.0))] if terms else []
    assert present.main_loss(epochs) == main


def test_changed_keys_in_first_seen_order() -> None:
    a = {"model": "lightgcn", "lr": 1e-3, "topk": [5, 20], "kd_weight": 0.01}
    b = {"model": "lightgcn", "lr": 2e-3, "topk": [5, 20]}
    assert present.changed_keys([a, b]) == ["lr", "kd_weight"]
    assert present.changed_keys([a, dict(a)]) == []


def test_status_label_marks_a_stopping_run(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "runs")
    cfg = resolve_config("lightgcn", "base", "demo")
    (run_id,) = store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, cfg.to_dict())])
    assert store.claim("host:1:0", "host", 1, "cpu") is not None
    run = store.get(run_id)
    assert present.status_label(run) == "running"
    assert present.status_label(replace(run, cancel_requested=True)) == "running (stopping)"
    assert present.status_label(replace(run, status="queued", cancel_requested=True)) == "queued"
