"""One call per user-facing action; the CLI and, later, the run queue call these."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlmrec.config import resolve_config
from rlmrec.data.dataset import load_dataset
from rlmrec.events import Listener
from rlmrec.trainer import TrainResult, train


def default_out_dir(model: str, variant: str, dataset: str, seed: int, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{dataset}-{model}-{variant}-s{seed}-{stamp}"


def run_experiment(
    model: str,
    variant: str,
    dataset: str,
    *,
    overrides: list[str] | dict[str, Any] | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    device: str | None = None,
    data_root: str | Path | None = None,
    out_dir: Path | None = None,
    save: bool = True,
    listeners: Iterable[Listener] = (),
) -> TrainResult:
    """Resolve the config, load the dataset, train, test and save artifacts.

    Everything is validated before training starts, so a typo never costs a run.
    """
    cfg = resolve_config(model, variant, dataset, overrides, seed=seed, epochs=epochs, device=device)
    data = load_dataset(dataset, data_root)
    if save and out_dir is None:
        out_dir = default_out_dir(cfg.model, cfg.variant, dataset, cfg.train.seed)
    return train(cfg, data, listeners, out_dir if save else None)
