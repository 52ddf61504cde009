"""One call per user-facing action; the CLI calls these."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrec.config import RunConfig, resolve_config
from rlmrec.data.dataset import Dataset, load_dataset
from rlmrec.data.preflight import DatasetFacts, check_fit
from rlmrec.device import resolve_device
from rlmrec.errors import RLMRecError
from rlmrec.events import Listener
from rlmrec.outputs import writable_folder
from rlmrec.store import RunSpec, Store
from rlmrec.trainer import TrainResult, train


def default_out_dir(model: str, variant: str, dataset: str, seed: int, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{dataset}-{model}-{variant}-s{seed}-{stamp}"


@dataclass
class Experiment:
    """A run that is fully validated and ready to train."""

    config: RunConfig
    dataset: Dataset
    out_dir: Path | None

    def run(self, listeners: Iterable[Listener] = ()) -> TrainResult:
        return train(self.config, self.dataset, listeners, self.out_dir)

    def run_recorded(
        self, store: Store, listeners: Iterable[Listener] = (), warnings: Iterable[str] = ()
    ) -> tuple[int, TrainResult]:
        """Train as a run of ``store``, with this process as its worker: recorded like a
        queued run (epochs, validation, logs, checkpoints, result; the Slurm job when
        inside one). ``warnings`` go into the run's log. Returns the run's id and result;
        a run that does not succeed is an error naming its id and why."""
        from rlmrec.slurm.env import current_job
        from rlmrec.worker.execute import execute

        cfg = self.config.to_dict()
        spec = RunSpec(cfg["model"], cfg["variant"], cfg["dataset"], cfg["seed"], cfg)
        device = str(resolve_device(self.config.train.device))
        started = store.start_direct(
            spec, host=socket.gethostname(), pid=os.getpid(), device=device, slurm=current_job()
        )
        outcome = execute(
            store, started, listeners=listeners, dataset=self.dataset, out_dir=self.out_dir, warnings=warnings
        )
        if outcome.result is None:
            error = store.get(started.id, with_config=False).error
            raise RLMRecError(f"run {started.id} {outcome.status}: {error}")
        return started.id, outcome.result


def prepare_experiment(
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
) -> Experiment:
    """Resolve the config and load the dataset: everything that can fail on user
    input fails here, before any training starts."""
    cfg = resolve_config(model, variant, dataset, overrides, seed=seed, epochs=epochs, device=device)
    resolve_device(cfg.train.device)
    data = load_dataset(dataset, data_root)
    check_fit(DatasetFacts.of(data), cfg)  # what the trainer would refuse, before a run is recorded
    if save and out_dir is None:
        out_dir = default_out_dir(cfg.model, cfg.variant, dataset, cfg.train.seed)
    if save:
        assert out_dir is not None
        writable_folder(out_dir)  # now, not after training (or after recording the run)
    return Experiment(cfg, data, out_dir if save else None)


def run_experiment(
    model: str,
    variant: str,
    dataset: str,
    *,
    listeners: Iterable[Listener] = (),
    **options: Any,
) -> TrainResult:
    """Prepare (see :func:`prepare_experiment` for the options), train, test, save."""
    return prepare_experiment(model, variant, dataset, **options).run(listeners)
