"""Checkpoints: a run resumed from the state saved after any evaluation ends with
the same numbers as the uninterrupted run, for every variant (dropout, masking
and negative sampling all draw from restored RNG states)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from rlmrec.config import resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.errors import ConfigError
from rlmrec.trainer import RunStopped, Trainer


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


def _trainer(demo: Dataset, variant: str, model: str = "lightgcn", **overrides: Any) -> Trainer:
    settings = {"epochs": 7, "test_step": 2, "patience": 10, **overrides}
    return Trainer(resolve_config(model, variant, "demo", settings, device="cpu"), demo)


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """Through bytes, as the worker stores it, loading with weights_only."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded: dict[str, Any] = torch.load(buf, weights_only=True)
    return loaded


@pytest.mark.parametrize(
    ("model", "variant"),
    # AutoCF: its sampled graphs live between batches, never across a checkpoint.
    [("lightgcn", "base"), ("lightgcn", "con"), ("lightgcn", "gen"), ("autocf", "base")],
)
def test_resumed_run_matches_uninterrupted_run(demo: Dataset, model: str, variant: str) -> None:
    states: list[dict[str, Any]] = []
    full = _trainer(demo, variant, model).fit(on_checkpoint=lambda s: states.append(_roundtrip(s)))
    assert [s["progress"]["next_epoch"] for s in states] == [1, 3, 5]  # after evaluations at 0, 2, 4
    resumed = _trainer(demo, variant, model).fit(resume=states[1])  # as if killed during epoch 3 or 4
    assert resumed.test_metrics == full.test_metrics
    assert resumed.best_epoch == full.best_epoch and resumed.epochs_run == full.epochs_run
    full_losses = [h["losses"] for h in full.history]
    assert [h["losses"] for h in resumed.history] == full_losses  # history carried over, then identical


def test_checkpoint_of_another_config_is_refused(demo: Dataset) -> None:
    states: list[dict[str, Any]] = []
    _trainer(demo, "base", epochs=3).fit(on_checkpoint=states.append)
    with pytest.raises(ConfigError, match="different config"):
        _trainer(demo, "base", epochs=3, lr=0.01).fit(resume=states[0])


def test_should_stop_stops_between_batches(demo: Dataset) -> None:
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # let two batches run, stop before the third

    trainer = _trainer(demo, "base", batch_size=1024)
    trainer.should_stop = stop
    with pytest.raises(RunStopped):
        trainer.fit()
    assert len(calls) == 3
