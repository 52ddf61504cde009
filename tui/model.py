"""What the runs table shows, as plain functions (tested without a terminal):
filtering with ``rlmrec ls``'s fields, sorting, paging, and time estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rlmrec.errors import RLMRecError
from rlmrec.store import STATUSES, RunInfo

FIELDS = ("status", "model", "variant", "dataset", "group", "seed", "tag")
PAGE_SIZE = 200  # rows in the table at once: Textual's DataTable slows down past a few thousand
# Early stopping: an evaluation every 3 epochs, patience 5 (every published preset).
EPOCHS_TO_STOP = 15


@dataclass
class Query:
    """``status=running,queued model=lightgcn seed=2023 demo``: fields as ``rlmrec ls``
    takes them (comma lists), bare words match model, variant, dataset or group."""

    fields: dict[str, set[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Query:
        query = cls()
        for token in text.split():
            key, sep, value = token.partition("=")
            if not sep:
                query.words.append(token.lower())
                continue
            if key not in FIELDS:
                raise RLMRecError(f"unknown filter field '{key}'; use {', '.join(FIELDS)}")
            values = {v for v in value.split(",") if v}
            if key == "status" and values - set(STATUSES):
                bad = sorted(values - set(STATUSES))[0]
                raise RLMRecError(f"unknown status '{bad}'; choose from {', '.join(STATUSES)}")
            query.fields.setdefault(key, set()).update(values)
        return query

    def matches(self, run: RunInfo) -> bool:
        values = {
            "status": run.status, "model": run.model, "variant": run.variant, "dataset": run.dataset,
            "group": run.group or "", "seed": str(run.seed),
        }  # fmt: skip
        for key, accepted in self.fields.items():
            if key == "tag":
                if not accepted & set(run.tags):
                    return False
            elif values[key] not in accepted:
                return False
        haystack = " ".join([run.model, run.variant, run.dataset, run.group or ""]).lower()
        return all(word in haystack for word in self.words)


SORT_KEYS = {
    "id": lambda r: r.id,
    "status": lambda r: (STATUSES.index(r.status), r.id),
    "model": lambda r: (r.model, r.id),
    "variant": lambda r: (r.variant, r.id),
    "dataset": lambda r: (r.dataset, r.id),
    "seed": lambda r: (r.seed, r.id),
    "epoch": lambda r: (r.epoch if r.epoch is not None else -1, r.id),
    "val R@20": lambda r: (r.best_valid if r.best_valid is not None else -1.0, r.id),
    "test R@20": lambda r: (r.test_value if r.test_value is not None else -1.0, r.id),
    "elapsed": lambda r: (r.duration() or 0.0, r.id),
    "group": lambda r: (r.group or "", r.id),
}


def arrange(
    runs: Sequence[RunInfo], query: Query, sort: str = "id", reverse: bool = False, grouped: bool = False
) -> list[RunInfo]:
    """Filter, then sort (by submission first when grouped)."""
    chosen = [r for r in runs if query.matches(r)]
    key = SORT_KEYS[sort]
    chosen.sort(key=key, reverse=reverse)
    if grouped:
        chosen.sort(key=lambda r: r.group or "")  # stable: keeps the order within a group
    return chosen


def page(rows: Sequence[RunInfo], number: int, size: int = PAGE_SIZE) -> tuple[list[RunInfo], int, int]:
    """(rows of page ``number``, the page actually shown, the page count)."""
    pages = max(1, -(-len(rows) // size))
    number = min(max(number, 0), pages - 1)
    return list(rows[number * size : (number + 1) * size]), number, pages


def time_left(run: RunInfo) -> float | None:
    """Seconds until the run could stop early if validation stops improving: the
    epochs left to ``best + patience x test_step``, at its mean epoch time so far."""
    if run.status != "running" or run.epoch is None or not run.seconds:
        return None
    best = run.best_epoch if run.best_epoch is not None else 0
    left = max(0, best + EPOCHS_TO_STOP - run.epoch)
    if run.epochs_planned is not None:
        left = min(left, run.epochs_planned - 1 - run.epoch)
    return left * run.seconds / (run.epoch + 1)
