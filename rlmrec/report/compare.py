"""Two runs side by side: metric deltas with the paired per-user test, the config
keys that differ, and how long each took to reach its best epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlmrec.report import present, stats
from rlmrec.store import RunInfo, Store


@dataclass
class MetricDelta:
    metric: str
    a: float
    b: float
    significance: stats.Significance | None

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def delta_pct(self) -> float | None:
        return 100.0 * self.delta / self.a if self.a else None


@dataclass
class Comparison:
    a: RunInfo
    b: RunInfo
    metrics: list[MetricDelta]
    config_diff: dict[str, tuple[Any, Any]]  # key -> (a's value, b's value); a missing key is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"id": self.a.id, "best_epoch": self.a.best_epoch, "epochs": _epochs(self.a)},
            "b": {"id": self.b.id, "best_epoch": self.b.best_epoch, "epochs": _epochs(self.b)},
            "metrics": [
                {
                    "metric": m.metric,
                    "a": m.a,
                    "b": m.b,
                    "delta": m.delta,
                    "delta_pct": m.delta_pct,
                    "test": m.significance.test if m.significance else None,
                    "p_value": m.significance.p_value if m.significance else None,
                    "users": m.significance.n if m.significance else None,
                }
                for m in self.metrics
            ],
            "config_diff": {k: {"a": a, "b": b} for k, (a, b) in self.config_diff.items()},
        }


def _epochs(run: RunInfo) -> int | None:
    return None if run.epoch is None else run.epoch + 1


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in present.changed_keys([a, b])}


def compare(store: Store, a_id: int, b_id: int) -> Comparison:
    """B against A. Per-user Wilcoxon when both runs stored per-user metrics."""
    a, b = store.get(a_id), store.get(b_id)
    ua, ub = store.user_metrics(a_id), store.user_metrics(b_id)
    deltas = []
    for metric, value in (a.test_metrics or {}).items():
        other = (b.test_metrics or {}).get(metric)
        if other is None:
            continue
        sig = None
        if ua is not None and ub is not None and metric in ua and metric in ub:
            sig = stats.over_users(ua["users"], ua[metric], ub["users"], ub[metric])
        deltas.append(MetricDelta(metric, value, other, sig))
    return Comparison(a, b, deltas, config_diff(a.config or {}, b.config or {}))
