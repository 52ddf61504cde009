"""How runs are shown, wherever they are shown: the command line, the dashboard and
the plots all take their labels, numbers and curves from here, so a run reads the
same everywhere. Plain strings and numbers: no Rich, no Textual, no matplotlib.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rlmrec.store.records import EpochInfo, RunInfo

# Rich style names, shared by the CLI's tables and the dashboard's.
STATUS_STYLE = {
    "queued": "cyan",
    "running": "bold yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "lost": "red",
}

# A backbone's own training loss, the term a single "loss" chart shows: BPR for every
# backbone but AutoCF, whose loss is the reconstruction of masked edges ("rec").
MAIN_LOSS_TERMS = ("bpr", "rec")


# Shown under the runs while claimable ones wait for any worker at all (placement.NO_WORKER).
NO_WORKER_HINT = "no worker is running: start one with `rlmrec worker` (or on a cluster, `rlmrec slurm submit`)"


def status_label(run: RunInfo, waits_for: str | None = None) -> str:
    """The status as ``ls`` and the dashboard show it; ``waits_for``: what a queued run
    waits for (``Store.queued_waits``), shown as ``queued (needs a GPU worker)``."""
    if waits_for:
        return f"{run.status} (needs {waits_for})"
    return run.status + (" (stopping)" if run.cancel_requested and run.status == "running" else "")


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``; empty when unknown."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else ""


def run_title(run: RunInfo) -> str:
    """``12: lightgcn/con amazon s2023``, the label of a run in legends and headers."""
    return f"{run.id}: {run.model}/{run.variant} {run.dataset} s{run.seed}"


def metric_rows(runs: Sequence[RunInfo]) -> list[tuple[str, list[float | None]]]:
    """Each test metric any of ``runs`` has, with every run's value (None: missing)."""
    names = list(dict.fromkeys(m for r in runs for m in (r.test_metrics or {})))
    return [(name, [(r.test_metrics or {}).get(name) for r in runs]) for name in names]


def loss_terms(curves: Iterable[Sequence[EpochInfo]]) -> list[str]:
    """Every loss term recorded in ``curves``, in first-seen order."""
    return list(dict.fromkeys(t for epochs in curves for e in epochs for t in e.losses))


def valid_metrics(curves: Iterable[Sequence[EpochInfo]]) -> list[str]:
    return list(dict.fromkeys(m for epochs in curves for e in epochs for m in (e.valid or {})))


def main_loss(epochs: Sequence[EpochInfo]) -> str | None:
    """The backbone's own loss term among a run's recorded terms (``bpr``, or ``rec``
    for AutoCF), else its first term; None before any epoch is recorded."""
    terms = loss_terms([epochs])
    return next((t for t in MAIN_LOSS_TERMS if t in terms), terms[0] if terms else None)


def series(epochs: Sequence[EpochInfo], name: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` of a loss term, or else of a validation metric, per epoch."""
    if any(name in e.losses for e in epochs):
        return [(e.epoch, e.losses[name]) for e in epochs if name in e.losses]
    return [(e.epoch, e.valid[name]) for e in epochs if e.valid and name in e.valid]


def changed_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Config keys whose values differ between ``configs`` (a key missing from some
    counts as different), in first-seen order."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
