"""A store filled as a study would leave it, without training: multi-seed groups,
single-seed groups with per-user metrics, a missing cell, an incomplete group, a
cancelled run, and a grid over one key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlmrec.config import resolve_config
from rlmrec.store import RunSpec, Store

USERS = 300
METRICS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20")


def per_user(noise: int, level: float) -> dict[str, np.ndarray]:
    """Per-user values around ``level`` (recall@20). Runs sharing ``noise`` share the
    users' deviations, as runs of one seed on one split largely do."""
    rng = np.random.default_rng(noise)
    base = np.clip(rng.normal(level, 0.08, USERS), 0, 1)
    out = {"users": np.arange(USERS)}
    for m in METRICS:
        scale = int(m.split("@")[1]) / 20 * (0.6 if m.startswith("ndcg") else 1.0)
        out[m] = np.clip(base * scale, 0, 1)
    return out


def add(store: Store, model: str, variant: str, dataset: str, seed: int, level: float | None,
        status: str = "succeeded", noise: int | None = None, **overrides: object) -> int:  # fmt: skip
    cfg = resolve_config(model, variant, "amazon", overrides)
    cfg.dataset, cfg.train.seed = dataset, seed
    config = cfg.to_dict()
    # The queued run sits below everything else, so later claims here take their own run.
    priority = -1 if status == "queued" else 0
    [run_id] = store.add_runs([RunSpec(model, variant, dataset, seed, config, group="study", priority=priority)])
    if status == "queued":
        return run_id
    if status == "cancelled":
        store.cancel([run_id])
        return run_id
    run = store.claim("w", "h", 1, "cpu")
    assert run is not None and run.id == run_id
    if status != "succeeded":
        store.finish(run_id, run.attempt, status, error="boom")
        return run_id
    assert level is not None
    arrays = per_user(seed if noise is None else noise, level)
    metrics = {m: float(np.mean(arrays[m])) for m in METRICS}
    store.finish(run_id, run.attempt, "succeeded", test_metrics=metrics, test_value=metrics["recall@20"],
                 per_user=arrays)  # fmt: skip
    return run_id


def fill(store: Store) -> None:
    for seed in (1, 2, 3):  # three seeds everywhere: the t-test over seeds
        add(store, "lightgcn", "base", "amazon", seed, 0.140 + 0.001 * seed)
        add(store, "lightgcn", "con", "amazon", seed, 0.150 + 0.001 * seed)
        add(store, "lightgcn", "gen", "amazon", seed, 0.141 + 0.002 * seed, noise=100 + seed)  # unpaired noise
    add(store, "gccf", "base", "amazon", 1, 0.130)  # single seeds: Wilcoxon over users
    add(store, "gccf", "gen", "amazon", 1, 0.138)  # gccf con: a missing cell
    for seed in (1, 2, 3):
        add(store, "lightgcn", "base", "steam", seed, 0.130 + 0.001 * seed)
    add(store, "lightgcn", "gen", "steam", 9, None, "cancelled")  # ignored entirely
    for seed, status in [(1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (4, "failed"), (5, "queued")]:
        add(store, "lightgcn", "con", "steam", seed, 0.135 + 0.001 * seed, status)  # incomplete: 3/5


@pytest.fixture
def study(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "runs")
    fill(store)
    return store
