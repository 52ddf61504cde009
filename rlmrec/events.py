"""What the trainer reports while it runs; the CLI, run store and dashboard listen.

Listeners are plain callables taking one event. Events are small frozen
dataclasses holding plain Python values, so they serialize and cross processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    config: dict[str, Any]
    device: str
    n_users: int
    n_items: int
    n_train: int
    n_batches: int
    n_params: int
    start_epoch: int = 0  # > 0 when resuming from a checkpoint
    sparse_backend: str = "torch"  # the resolved backend (never "auto")
    threads: int = 0  # torch's CPU threads in the training process
    gemm: str = ""  # the CPU GEMM engine of the hot loops (rlmrec.gemm); empty on a GPU

    @property
    def cpu_threads(self) -> str:
        """``2 threads`` on a CPU, where the count sets the speed; empty on a GPU."""
        if self.device != "cpu" or not self.threads:
            return ""
        engine = f", gemm {self.gemm}" if self.gemm else ""
        return f"{self.threads} thread{'s' * (self.threads != 1)}{engine}"


@dataclass(frozen=True)
class EpochEnded:
    epoch: int
    losses: dict[str, float]  # each term's mean over the epoch's batches
    seconds: float


@dataclass(frozen=True)
class Evaluated:
    epoch: int
    metrics: dict[str, float]  # validation split
    seconds: float
    improved: bool
    best_epoch: int
    best_value: float
    patience_left: int


@dataclass(frozen=True)
class Tested:
    best_epoch: int
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class RunFinished:
    best_epoch: int
    epochs_run: int
    test_metrics: dict[str, float]
    seconds: float
    stopped_early: bool
    timings: dict[str, float] = field(default_factory=dict)


Event = RunStarted | EpochEnded | Evaluated | Tested | RunFinished
Listener = Callable[[Event], None]
