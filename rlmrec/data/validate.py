"""``rlmrec data validate``: every check of the loader, plus the ones it does not make
because they do not stop training (split overlap, users or items without training
interactions, duplicate or zero entries, gaps in the profiles). One report, each
finding one line.

Levels: ``error`` makes the dataset unusable or its evaluation wrong (a file that does
not load, a (user, item) pair in two splits, a profile index outside the matrix);
``warning`` is legal but worth knowing (cold users or items, duplicates the loader
merges, missing profiles); ``info`` says what is absent and what that means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from rlmrec.data.dataset import load_embeddings, load_profiles, load_splits
from rlmrec.data.layout import EMB_FILES, PROFILE_FILES, SPLIT_FILES
from rlmrec.data.safe_pickle import safe_load
from rlmrec.errors import DataError

Level = Literal["ok", "info", "warning", "error"]
_SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str


@dataclass
class Report:
    name: str
    path: Path | None
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, check: str, message: str) -> None:
        self.findings.append(Finding(level, check, message))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def verdict(self) -> str:
        """``amazon: valid`` / ``amazon: 2 errors, 1 warning``."""
        parts = [_plural(len(self.errors), "error"), _plural(len(self.warnings), "warning")]
        counted = ", ".join(p for p in parts if not p.startswith("0 "))
        if self.ok:
            return f"{self.name}: valid" + (f" ({counted})" if counted else "")
        return f"{self.name}: {counted}"

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "path": str(self.path) if self.path else None,
            "valid": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.__dict__ for f in self.findings],
        }


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _examples(ids: Sequence[int] | np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in list(ids)[:k])
    return f"e.g. {shown}" + (", ..." if len(ids) > k else "")


def validate_folder(folder: Path, name: str | None = None) -> Report:
    """Check one dataset folder; never raises for bad data (it is all in the report)."""
    folder = Path(folder)
    report = Report(name or folder.name, folder)
    if not folder.is_dir():
        report.add("error", "folder", f"{folder}: not a folder")
        return report
    try:
        splits = load_splits(folder)
    except DataError as error:
        report.add("error", "splits", str(error))
        splits = None
    if splits is not None:
        users, items = splits[0].shape
        counts = " / ".join(f"{mat.nnz:,}" for mat in splits)
        density = sum(mat.nnz for mat in splits) / (users * items)
        report.add(
            "ok", "splits", f"{users:,} users x {items:,} items; train / valid / test {counts}; density {density:.4%}"
        )
        _check_entries(folder, report)
        _check_overlap(splits, report)
        _check_coverage(splits[0], splits[1:], report)
    _check_embeddings(folder, splits[0].shape if splits else None, report)
    for kind, fname, axis in (("user", PROFILE_FILES[0], 0), ("item", PROFILE_FILES[1], 1)):
        _check_profiles(folder / fname, kind, splits[0].shape[axis] if splits else None, report)
    return report


def _check_entries(folder: Path, report: Report) -> None:
    """Duplicates and stored zeros, which the loader silently merges or drops: the raw
    matrices are read again (the loader's copies are already canonical)."""
    clean = True
    for fname in SPLIT_FILES:
        coo = sp.coo_matrix(safe_load(folder / fname))  # csr -> coo keeps duplicate entries
        nonzero = coo.data != 0
        keys = coo.row[nonzero].astype(np.int64) * coo.shape[1] + coo.col[nonzero]
        duplicates = int(keys.size - np.unique(keys).size)
        zeros = int((~nonzero).sum())
        if duplicates:
            clean = False
            report.add(
                "warning",
                "duplicates",
                f"{fname}: {_plural(duplicates, 'duplicate (user, item) entry')} (the loader counts each pair once)",
            )
        if zeros:
            clean = False
            report.add("warning", "duplicates", f"{fname}: {_plural(zeros, 'stored zero')} (not interactions; dropped)")
    if clean:
        report.add("ok", "duplicates", "no duplicate or zero entries")


def _check_overlap(splits: tuple[sp.csr_matrix, ...], report: Report) -> None:
    """A pair in two splits leaks: a test item seen in training is masked and can never
    be a hit, one in validation and test is counted twice."""
    clean = True
    for a in range(3):
        for b in range(a + 1, 3):
            both = splits[a].multiply(splits[b]).tocoo()
            if both.nnz:
                clean = False
                report.add(
                    "error",
                    "overlap",
                    f"{_plural(both.nnz, '(user, item) pair')} in both "
                    f"{_SPLIT_NAMES[a]} and {_SPLIT_NAMES[b]} (e.g. user {both.row[0]}, item {both.col[0]}); "
                    "splits must be disjoint",
                )
    if clean:
        report.add("ok", "overlap", "train, valid and test are disjoint")


def _check_coverage(train: sp.csr_matrix, held_out: tuple[sp.csr_matrix, ...], report: Report) -> None:
    users, items = train.shape
    cold_users = np.flatnonzero(np.diff(train.indptr) == 0)
    cold_items = np.flatnonzero(np.bincount(train.indices, minlength=items) == 0)
    if cold_users.size:
        evaluated = sum(int((np.diff(m.indptr)[cold_users] > 0).sum()) for m in held_out)
        report.add(
            "warning",
            "coverage",
            f"{cold_users.size:,} of {users:,} users have no training interactions "
            f"({_examples(cold_users)}); {evaluated:,} of their valid/test rows are still evaluated",
        )
    if cold_items.size:
        report.add(
            "warning",
            "coverage",
            f"{cold_items.size:,} of {items:,} items have no training interactions ({_examples(cold_items)})",
        )
    if not cold_users.size and not cold_items.size:
        report.add("ok", "coverage", "every user and item has training interactions")


def _check_embeddings(folder: Path, shape: tuple[int, int] | None, report: Report) -> None:
    present = [f for f in EMB_FILES if (folder / f).exists()]
    if not present:
        report.add(
            "info", "embeddings", "no profile embeddings: only base variants can train (rlmrec embed writes them)"
        )
        return
    if shape is None:
        report.add("info", "embeddings", "not checked: the splits do not load")
        return
    try:
        loaded = load_embeddings(folder, shape)
    except DataError as error:
        report.add("error", "embeddings", str(error))
        return
    assert loaded is not None  # files are present
    for fname, emb in zip(EMB_FILES, loaded, strict=True):
        zero = np.flatnonzero(~emb.any(axis=1))
        if zero.size:
            report.add("warning", "embeddings", f"{fname}: {zero.size:,} all-zero rows ({_examples(zero)})")
    report.add("ok", "embeddings", f"users and items, dim {loaded[0].shape[1]}")


def _check_profiles(file: Path, kind: str, count: int | None, report: Report) -> None:
    if not file.exists():
        report.add("info", "profiles", f"no {file.name}: rlmrec data show and rlmrec embed need the {kind} profiles")
        return
    try:
        profiles = load_profiles(file)
    except DataError as error:
        report.add("error", "profiles", str(error))
        return
    if count is None:
        report.add("ok", "profiles", f"{file.name}: {len(profiles):,} {kind} profiles (indices not checked)")
        return
    outside = sorted(k for k in profiles if not 0 <= k < count)
    if outside:
        report.add(
            "error",
            "profiles",
            f"{file.name}: {_plural(len(outside), 'index')} outside 0..{count - 1} "
            f"({_examples(outside)}); the profiles belong to another id mapping",
        )
    missing = sorted(set(range(count)) - set(profiles))
    if missing:
        report.add(
            "warning",
            "profiles",
            f"{file.name}: no profile for {len(missing):,} of {count:,} {kind}s "
            f"({_examples(missing)}); rlmrec embed needs them all",
        )
    empty = sorted(k for k, v in profiles.items() if not v["profile"].strip())
    if empty:
        report.add("warning", "profiles", f"{file.name}: {_plural(len(empty), 'empty profile')} ({_examples(empty)})")
    if not (outside or missing or empty):
        report.add("ok", "profiles", f"{file.name}: a profile for each of the {count:,} {kind}s")
