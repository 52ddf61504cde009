"""A trainer listener that writes every event into the run store as it happens.

One short write transaction per event (epoch row + run progress + log line
together), so a reader never sees an epoch without its log line, and a crash
loses at most the epoch in flight.
"""

from __future__ import annotations

import time

from rlmrec.events import EpochEnded, Evaluated, Event, RunFinished, RunStarted, Tested
from rlmrec.store.store import Store


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in values.items())


class Recorder:
    """Listener for one attempt of one run (see :class:`rlmrec.trainer.Trainer`)."""

    def __init__(self, store: Store, run_id: int, attempt: int, prior_seconds: float = 0.0) -> None:
        self.store, self.run_id, self.attempt = store, run_id, attempt
        self.prior_seconds = prior_seconds  # wall time of earlier attempts
        self.started = time.perf_counter()

    def total_seconds(self) -> float:
        return self.prior_seconds + time.perf_counter() - self.started

    def log(self, message: str, level: str = "info") -> None:
        self.store.log(self.run_id, self.attempt, message, level)

    def __call__(self, event: Event) -> None:
        if isinstance(event, EpochEnded):
            message = f"epoch {event.epoch:>4}  {_fmt(event.losses)}  {event.seconds:.2f}s"
            self.store.record_epoch(
                self.run_id, self.attempt, event.epoch, event.losses, event.seconds, self.total_seconds(), message
            )
        elif isinstance(event, Evaluated):
            best = (event.best_epoch, event.best_value, event.metrics) if event.improved else None
            mark = (
                "  (best)" if event.improved else f"  (best epoch {event.best_epoch}; patience {event.patience_left})"
            )
            message = f"valid {event.epoch:>4}  {_fmt(event.metrics)}{mark}"
            self.store.record_eval(self.run_id, self.attempt, event.epoch, event.metrics, event.seconds, best, message)
        elif isinstance(event, RunStarted):
            where = f"resumed at epoch {event.start_epoch}" if event.start_epoch else "started"
            threads = f" with {event.cpu_threads}" if event.cpu_threads else ""
            self.log(
                f"{where} on {event.device}{threads}: {event.n_users} users, {event.n_items} items, "
                f"{event.n_train} training interactions, {event.n_batches} batches/epoch, {event.n_params} parameters, "
                f"sparse backend {event.sparse_backend}"
            )
        elif isinstance(event, Tested):
            self.log(f"test (best epoch {event.best_epoch})  {_fmt(event.metrics)}")
        elif isinstance(event, RunFinished):
            why = "early stop" if event.stopped_early else "epoch cap"
            self.log(f"finished after {event.epochs_run} epochs ({why}), {event.seconds:.1f}s")
