"""The paper-style comparison table, computed from the run store.

Runs are grouped by model, variant, dataset and *setting*: the config keys whose
values differ between the selected runs of a model (a grid over ``lr``, say),
seed excluded. Keys every variant has (training, backbone) split rows into
blocks, one per setting; alignment-only keys (``kd_weight``...) split the variant
rows inside a block, so each alignment row is still compared with its block's
base. Cells are the mean over seeds (one finished run per seed: the latest).
Groups with queued, running, failed or lost runs are flagged incomplete (3/5),
never silently averaged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlmrec.errors import RLMRecError
from rlmrec.report import stats
from rlmrec.report.published import paper_value
from rlmrec.store import CANCELLED, SUCCEEDED, RunInfo, Store

PAPER_MODELS = ("semantic", "gccf", "lightgcn", "sgl", "simgcl", "dccf", "autocf")
PAPER_DATASETS = ("amazon", "yelp", "steam")
VARIANT_ORDER = ("base", "con", "gen")
VARIANT_NAMES = {"base": "Base", "con": "RLMRec-Con", "gen": "RLMRec-Gen"}
DEFAULT_METRICS = ("recall@20", "ndcg@20")
_NOT_SETTINGS = {"model", "variant", "dataset", "seed", "device"}


@dataclass
class Entry:
    """One run group x metric: the tidy unit of every format."""

    model: str
    setting: str  # shared keys that tell this block apart ("" when none vary)
    variant: str
    variant_setting: str  # alignment-only keys that tell this row apart
    dataset: str
    metric: str
    values: list[float]  # one per finished seed, in seed order
    seeds: list[int]
    expected: int  # runs in the group that are not cancelled
    significance: stats.Significance | None = None
    paper: float | None = None
    best: bool = False
    improvement_pct: float | None = None  # against the block's base (alignment rows)
    runs: list[RunInfo] = field(default_factory=list, repr=False)  # the finished runs behind the values

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    @property
    def complete(self) -> bool:
        return self.n >= self.expected

    @property
    def paper_diff_pct(self) -> float | None:
        mean = self.mean
        return None if self.paper is None or mean is None else 100.0 * (mean - self.paper) / self.paper

    def tidy(self) -> dict[str, Any]:
        sig = self.significance
        return {
            "model": self.model,
            "setting": self.setting,
            "variant": self.variant,
            "variant_setting": self.variant_setting,
            "dataset": self.dataset,
            "metric": self.metric,
            "mean": _round(self.mean),
            "std": _round(self.std),
            "n": self.n,
            "expected": self.expected,
            "complete": self.complete,
            "seeds": self.seeds,
            "values": [_round(v) for v in self.values],
            "improvement_pct": _round(self.improvement_pct, 2),
            "test": sig.test if sig else None,
            "p_value": float(f"{sig.p_value:.4g}") if sig else None,  # significant digits: p can be 1e-54
            "significant": sig.significant if sig else None,
            "best": self.best,
            "paper": self.paper,
            "paper_diff_pct": _round(self.paper_diff_pct, 2),
        }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


@dataclass
class Block:
    model: str
    setting: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # (variant, variant_setting)
    improvement: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (dataset, metric)


@dataclass
class Report:
    datasets: list[str]
    metrics: list[str]
    blocks: list[Block]
    entries: dict[tuple[str, str, str, str, str, str], Entry]  # model, setting, variant, vsetting, dataset, metric
    vs_paper: bool = False

    def entry(self, block: Block, row: tuple[str, str], dataset: str, metric: str) -> Entry | None:
        return self.entries.get((block.model, block.setting, row[0], row[1], dataset, metric))

    @property
    def tests_used(self) -> list[str]:
        return sorted({e.significance.test for e in self.entries.values() if e.significance is not None})

    @property
    def incomplete(self) -> bool:
        return any(not e.complete for e in self.entries.values())

    def tidy(self) -> list[dict[str, Any]]:
        return [
            self.entries[key].tidy()
            for block in self.blocks
            for row in block.rows
            for dataset in self.datasets
            for metric in self.metrics
            if (key := (block.model, block.setting, row[0], row[1], dataset, metric)) in self.entries
        ]


def _order(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    return [v for v in preferred if v in values] + sorted(v for v in set(values) if v not in preferred)


def _metric_order(names: set[str]) -> list[str]:
    def key(name: str) -> tuple[int, int, str]:
        kind, _, k = name.partition("@")
        return ({"recall": 0, "ndcg": 1}.get(kind, 2), int(k) if k.isdigit() else 0, name)

    return sorted(names, key=key)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _label(config: dict[str, Any], keys: Sequence[str]) -> str:
    return " ".join(f"{k}={_show(config[k])}" for k in keys if k in config)


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def build(
    store: Store,
    *,
    datasets: Sequence[str] = (),
    models: Sequence[str] = (),
    metrics: Sequence[str] = DEFAULT_METRICS,
    group_by: Sequence[str] = (),
    vs_paper: bool = False,
) -> Report:
    """The report over the store's runs (all of them, or those of ``models`` on ``datasets``)."""
    runs = [r for r in store.runs(model=models, dataset=datasets, with_config=True) if r.status != CANCELLED]
    if not runs:
        raise RLMRecError("no runs to report on" + (" for that selection" if models or datasets else "; queue some"))
    finished = [r for r in runs if r.status == SUCCEEDED and r.test_metrics]
    found_metrics = {m for r in finished for m in (r.test_metrics or {})}
    wanted = _metric_order(found_metrics) if list(metrics) == ["all"] else list(metrics)
    unknown = [m for m in wanted if m not in found_metrics] if finished else []
    if unknown:
        have = ", ".join(_metric_order(found_metrics))
        raise RLMRecError(f"unknown metric '{unknown[0]}'; finished runs have: {have}")
    by_model: dict[str, list[RunInfo]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)

    report = Report(_order([r.dataset for r in runs], PAPER_DATASETS), wanted, [], {}, vs_paper)
    for model in _order(list(by_model), PAPER_MODELS):
        _add_model(report, store, by_model[model], list(group_by))
    _mark_best(report)
    return report


def _split_keys(runs: list[RunInfo], group_by: list[str]) -> tuple[list[str], list[str]]:
    """(block keys, variant-row keys): explicit ``group_by``, else the keys whose
    values differ between runs of one variant on one dataset. Differences *between*
    variants or datasets are the published presets (reg_weight, layer_num...), not a
    grid, so they never split rows."""
    configs = [r.config or {} for r in runs]
    shared = set.intersection(*(set(c) for c in configs)) if configs else set()
    if group_by:
        unknown = [k for k in group_by if k != "group" and not any(k in c for c in configs)]
        if unknown:
            raise RLMRecError(f"--group-by '{unknown[0]}' is not a config key of these runs (or 'group')")
        keys = list(group_by)
    else:
        cohorts: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run, config in zip(runs, configs, strict=True):
            cohorts.setdefault((run.variant, run.dataset), []).append(config)
        varying = set()
        for members in cohorts.values():
            for key in set().union(*(set(c) for c in members)) - _NOT_SETTINGS:
                if len({_canon(c.get(key)) for c in members}) > 1:
                    varying.add(key)
        keys = sorted(varying)
    return [k for k in keys if k in shared or k == "group"], [k for k in keys if k not in shared and k != "group"]


def _add_model(report: Report, store: Store, runs: list[RunInfo], group_by: list[str]) -> None:
    block_keys, row_keys = _split_keys(runs, group_by)
    groups: dict[tuple[str, str, str, str], list[RunInfo]] = {}
    for run in runs:
        config = {**(run.config or {}), "group": run.group}
        key = (_label(config, block_keys), run.variant, _label(config, row_keys), run.dataset)
        groups.setdefault(key, []).append(run)
    model = runs[0].model
    for setting in sorted({k[0] for k in groups}):
        block = Block(model, setting)
        rows = {(k[1], k[2]) for k in groups if k[0] == setting}
        block.rows = sorted(rows, key=lambda r: (VARIANT_ORDER.index(r[0]) if r[0] in VARIANT_ORDER else 9, r[1]))
        report.blocks.append(block)
        for (s, variant, vsetting, dataset), members in groups.items():
            if s != setting:
                continue
            latest: dict[int, RunInfo] = {}  # one finished run per seed: the latest
            for run in sorted((r for r in members if r.status == SUCCEEDED), key=lambda r: r.finished_at or 0):
                latest[run.seed] = run
            seeds = sorted(latest)
            for metric in report.metrics:
                values = [(latest[s].test_metrics or {}).get(metric) for s in seeds]
                pairs = [(s, v) for s, v in zip(seeds, values, strict=True) if v is not None]
                entry = Entry(
                    model, setting, variant, vsetting, dataset, metric,
                    [v for _, v in pairs], [s for s, _ in pairs], len(members),
                    paper=paper_value(model, variant, dataset, metric) if report.vs_paper else None,
                    runs=[latest[s] for s, _ in pairs],
                )  # fmt: skip
                report.entries[(model, setting, variant, vsetting, dataset, metric)] = entry
        _compare_with_base(report, store, block)


def _compare_with_base(report: Report, store: Store, block: Block) -> None:
    cache: dict[int, dict[str, np.ndarray] | None] = {}

    def per_user(entry: Entry, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Users and the metric per user, averaged over the entry's runs."""
        arrays = []
        for run in entry.runs:
            if run.id not in cache:
                cache[run.id] = store.user_metrics(run.id)
            stored = cache[run.id]
            if stored is None or metric not in stored:
                return None
            arrays.append(stored)
        if not arrays:
            return None
        users = arrays[0]["users"]
        if any(not np.array_equal(a["users"], users) for a in arrays[1:]):
            return None
        return users, np.mean([a[metric] for a in arrays], axis=0)

    for dataset in report.datasets:
        for metric in report.metrics:
            base = report.entries.get((block.model, block.setting, "base", "", dataset, metric))
            best: float | None = None
            for variant, vsetting in block.rows:
                entry = report.entries.get((block.model, block.setting, variant, vsetting, dataset, metric))
                if variant == "base" or entry is None or entry.mean is None:
                    continue
                best = entry.mean if best is None else max(best, entry.mean)
                if base is None or base.mean is None:
                    continue
                entry.improvement_pct = 100.0 * (entry.mean - base.mean) / base.mean if base.mean else None
                sig = stats.over_seeds(dict(zip(base.seeds, base.values, strict=True)),
                                       dict(zip(entry.seeds, entry.values, strict=True)))  # fmt: skip
                if sig is None:
                    a, b = per_user(base, metric), per_user(entry, metric)
                    sig = stats.over_users(a[0], a[1], b[0], b[1]) if a is not None and b is not None else None
                entry.significance = sig
            if base is not None and base.mean and best is not None:
                block.improvement[(dataset, metric)] = 100.0 * (best - base.mean) / base.mean


def _mark_best(report: Report) -> None:
    for dataset in report.datasets:
        for metric in report.metrics:
            column = [e for e in report.entries.values() if e.dataset == dataset and e.metric == metric and e.values]
            if column:
                top = max(e.mean or 0.0 for e in column)
                for e in column:
                    e.best = e.mean == top
