"""``rlmrec data build``: raw interactions -> a validated RLMRec dataset folder.

Reads the interactions as columns, runs the recipe (``recipe.py``), maps ids to dense
indices sorted by raw id, and writes, in a hidden staging folder under the data root:
the three split matrices (``coo_matrix``, float64 ones, rows sorted by user then item,
as in the published data), ``users.jsonl`` / ``items.jsonl`` (the published mapper
format), ``items_meta.jsonl`` / ``reviews.jsonl`` when given, and ``build.json``. The
folder is validated, then renamed into place; on any error nothing is left behind.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from rlmrec.data.build import extras, recipe
from rlmrec.data.build.presets import get_preset, pick
from rlmrec.data.build.sources import Source, column_names, open_source, read_columns
from rlmrec.data.layout import SPLIT_FILES, _check_name
from rlmrec.data.place import occupied, place, staging_dir
from rlmrec.data.validate import Report, validate_folder
from rlmrec.errors import DataError

# (phase, done, total): bytes while reading, rows while writing side files.
Progress = Callable[[str, int, int], None]
BUILD_VERSION = 1  # bump when the same inputs would give different outputs


@dataclass(frozen=True)
class BuildOptions:
    """Every knob of the recipe; the defaults are the paper's."""

    preset: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None
    text_col: str | None = None
    columns: tuple[str, ...] | None = None  # names for a CSV/TSV without a header row
    items: Path | None = None
    reviews: Path | None = None
    min_rating: float | None = 3.0  # None: keep every rating
    sample_users: float | None = None  # a fraction (<= 1) or a count of users
    k_core: int = 10
    item_core: int | None = None  # default: k_core
    split: tuple[float, float, float] = (3.0, 1.0, 1.0)
    split_by: Literal["random", "time"] = "random"
    seed: int = 2023
    domain: str | None = None


@dataclass(frozen=True)
class Step:
    step: str
    rows: int
    users: int
    items: int


@dataclass
class Built:
    name: str
    path: Path
    steps: list[Step]
    splits: dict[str, int]
    moved_to_train: int
    users: int
    items: int
    seconds: float
    side_files: list[str] = field(default_factory=list)
    report: Report | None = None

    @property
    def density(self) -> float:
        return sum(self.splits.values()) / max(self.users * self.items, 1)


def build_dataset(
    source_path: Path,
    name: str,
    root: Path,
    options: BuildOptions = BuildOptions(),
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> Built:
    """Build ``root/name`` from ``source_path``; see the module docstring."""
    started = time.perf_counter()
    _check_name(name)
    _check_options(options)
    target = root / name
    if occupied(target) and not force:
        raise DataError(f"{target}: a dataset with this name already exists; pass --force to replace it")
    preset = get_preset(options.preset)
    source = open_source(source_path, options.columns)
    present = column_names(source)
    file = str(source.path)
    user_col = pick(present, "user", options.user_col, preset.user if preset else None, file=file)
    item_col = pick(present, "item", options.item_col, preset.item if preset else None, file=file)
    for role, col in (("user", user_col), ("item", item_col)):
        if col is None:
            raise DataError(
                f"{file}: no {role} column found; name it with --{role}-col (columns: {', '.join(present)})"
            )
    assert user_col is not None and item_col is not None
    rating_col = pick(present, "rating", options.rating_col, preset.rating if preset else None, file=file)
    if preset is not None and preset.rating is None and options.rating_col is None:
        rating_col = None
    time_col = pick(present, "time", options.time_col, preset.time if preset else None, file=file)
    if options.split_by == "time" and time_col is None:
        raise DataError(
            f"{file}: --split-by time needs a time column; name it with --time-col (columns: {', '.join(present)})"
        )

    report_read = _phase(progress, "reading interactions")
    types: dict[str, pa.DataType] = {user_col: pa.string(), item_col: pa.string()}
    if rating_col:
        types[rating_col] = pa.float64()
    if time_col:
        types[time_col] = pa.null()  # numbers or date strings; converted below
    table = read_columns(source, types, report_read)

    steps: list[Step] = []
    complete = pc.and_(pc.is_valid(table.column(user_col)), pc.is_valid(table.column(item_col)))
    steps.append(Step("read", table.num_rows, *_distinct(table, user_col, item_col)))
    if not pc.all(complete).as_py():
        table = table.filter(complete)
        steps.append(Step("with user and item", table.num_rows, *_distinct(table, user_col, item_col)))
    user_codes, user_ids = _encode(table.column(user_col))
    item_codes, item_ids = _encode(table.column(item_col))
    ratings = _ratings(table, rating_col)
    times = _seconds(table, time_col, source) if time_col else None
    del table
    data = recipe.Interactions(user_codes, item_codes, ratings, times)
    rng = np.random.default_rng(options.seed)

    def record(step: str) -> None:
        steps.append(Step(step, len(data), data.n_users(), data.n_items()))
        if not len(data):
            raise DataError(f"{file}: nothing left after {step} ({_undo_hint(step)})")

    if rating_col and options.min_rating is not None:
        data = recipe.filter_rating(data, options.min_rating)
        record(f"rating >= {options.min_rating:g}")
    data = recipe.deduplicate(data)
    record("duplicates removed")
    if options.sample_users is not None:
        data = recipe.sample_users(data, options.sample_users, rng)
        record(f"users sampled ({options.sample_users:g})")
    item_core = options.item_core if options.item_core is not None else options.k_core
    if options.k_core > 1 or item_core > 1:
        data, _ = recipe.k_core(data, options.k_core, item_core)
        record(f"{options.k_core}-core" if item_core == options.k_core else f"{options.k_core}/{item_core}-core")
    assignment, moved = recipe.split(data, options.split, by_time=options.split_by == "time", rng=rng)

    # Dense ids in raw-id order (the codes already are): the same file gives the same ids
    # whatever its row order.
    kept_users, users = np.unique(data.users, return_inverse=True)
    kept_items, items = np.unique(data.items, return_inverse=True)
    shape = (len(kept_users), len(kept_items))
    raw_users, raw_items = user_ids.take(pa.array(kept_users)), item_ids.take(pa.array(kept_items))

    created_root = not root.exists()
    stage = staging_dir(root, "build")
    try:
        folder = stage / name
        folder.mkdir()
        counts = _write_splits(folder, users, items, assignment, shape)
        extras.write_mapper(folder / "users.jsonl", "uid", user_col, raw_users)
        extras.write_mapper(folder / "items.jsonl", "iid", item_col, raw_items)
        side: list[str] = []
        sources = [("interactions", source)]
        context = extras.Context(folder, raw_users, raw_items, users, items, assignment, shape, progress)
        if options.items is not None:
            meta_source = open_source(options.items)
            sources.append(("items", meta_source))
            extras.write_items_meta(context, meta_source, item_col, preset)
            side.append("items_meta.jsonl")
        review_source = open_source(options.reviews) if options.reviews is not None else None
        text_col = options.text_col if review_source is not None else None
        preset_text = preset.text if preset else None
        if review_source is None and (options.text_col or preset_text in present):
            review_source, text_col = source, pick(present, "text", options.text_col, preset_text, file=file)
        if review_source is not None:
            if review_source is not source:
                sources.append(("reviews", review_source))
            extras.write_reviews(context, review_source, user_col, item_col, text_col, rating_col)
            side.append("reviews.jsonl")
        domain = options.domain or (preset.domain if preset else "generic")
        columns = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col, "text": text_col}
        _write_manifest(folder, name, options, sources, columns, domain, steps, counts, moved)
        report = validate_folder(folder, name)
        if not report.ok:  # the recipe guarantees a valid dataset: this is a bug, say so
            raise DataError(f"built dataset failed validation: {report.errors[0].message}")
        place(folder, target, force=force)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created_root and not any(root.iterdir()):
            root.rmdir()  # a failed first build leaves no empty data root behind
    report.path = target
    return Built(name, target, steps, counts, moved, shape[0], shape[1], time.perf_counter() - started, side, report)


def _check_options(options: BuildOptions) -> None:
    if options.k_core < 1 or (options.item_core is not None and options.item_core < 1):
        raise DataError("--k-core must be at least 1 (1 keeps everything)")
    if len(options.split) != 3 or options.split[0] <= 0 or min(options.split) < 0:
        raise DataError("--split must be three non-negative numbers with a positive train share, e.g. 3:1:1")
    if options.sample_users is not None and options.sample_users <= 0:
        raise DataError("--sample-users must be a fraction in (0, 1] or a number of users")
    if options.domain is not None and options.domain not in ("books", "businesses", "games", "generic"):
        raise DataError(f"unknown domain {options.domain!r}: books, businesses, games or generic")


def _phase(progress: Progress | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(phase, done, total)


def _undo_hint(step: str) -> str:
    if step.startswith("rating"):
        return "lower --min-rating or pass --min-rating off"
    if "core" in step:
        return "lower --k-core"
    if step.startswith("users sampled"):
        return "sample more users"
    return "check the input"


def _distinct(table: pa.Table, user_col: str, item_col: str) -> tuple[int, int]:
    return (
        pc.count_distinct(table.column(user_col)).as_py(),
        pc.count_distinct(table.column(item_col)).as_py(),
    )


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dense codes 0..n-1 in sorted raw-id order, and the sorted raw ids."""
    uniques = pc.unique(column)
    uniques = uniques.take(pc.sort_indices(uniques))
    codes = pc.index_in(column, value_set=uniques)
    return np.asarray(codes.to_numpy(), dtype=np.int64), uniques


def _ratings(table: pa.Table, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    values = table.column(column).to_numpy()
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)


def _seconds(table: pa.Table, column: str, source: Source) -> np.ndarray:
    """Unix seconds from numbers or date strings (``2017-12-17``, ``2018-07-07 22:09:11``,
    ISO 8601 with a zone). Missing times sort last."""
    values = table.column(column)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        for target in (pa.int64(), pa.timestamp("s"), pa.timestamp("s", tz="UTC")):
            try:
                values = values.cast(target)
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        else:
            sample = next((v for v in values.to_pylist()[:1000] if v), "")
            raise DataError(
                f"{source.path}: column {column!r} is not a time (e.g. {str(sample)[:40]!r}); give unix seconds "
                "or dates like 2017-12-17 / 2018-07-07 22:09:11, or another --time-col"
            )
    if pa.types.is_date(values.type):
        values = values.cast(pa.timestamp("s"))
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    try:
        values = values.cast(pa.int64(), safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(f"{source.path}: column {column!r} is not a time (type {values.type})") from None
    return np.asarray(values.fill_null(np.iinfo(np.int64).max).to_numpy(), dtype=np.int64)


def _write_splits(
    folder: Path, users: np.ndarray, items: np.ndarray, assignment: np.ndarray, shape: tuple[int, int]
) -> dict[str, int]:
    counts = {}
    for code, (file, label) in enumerate(zip(SPLIT_FILES, ("train", "valid", "test"), strict=True)):
        rows = np.flatnonzero(assignment == code)
        order = np.lexsort((items[rows], users[rows]))
        row, col = users[rows][order].astype(np.int32), items[rows][order].astype(np.int32)
        matrix = sp.coo_matrix((np.ones(len(rows)), (row, col)), shape=shape)
        (folder / file).write_bytes(pickle.dumps(matrix, protocol=4))
        counts[label] = len(rows)
    return counts


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_manifest(
    folder: Path,
    name: str,
    options: BuildOptions,
    sources: list[tuple[str, Source]],
    columns: dict[str, str | None],
    domain: str,
    steps: list[Step],
    counts: dict[str, int],
    moved: int,
) -> None:
    from rlmrec import __version__

    parameters: dict[str, Any] = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    parameters["split"] = list(options.split)
    manifest = {
        "name": name,
        "tool": {"name": "rlmrec", "version": __version__, "build_version": BUILD_VERSION},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sources": [
            {"role": role, "path": str(s.path), "bytes": s.size, "sha256": _sha256(s.path)} for role, s in sources
        ],
        "columns": columns,
        "parameters": parameters,
        "seed": options.seed,
        "domain": domain,
        "steps": [asdict(s) for s in steps],
        "splits": counts,
        "moved_to_train": moved,
    }
    (folder / "build.json").write_text(json.dumps(manifest, indent=2) + "\n")
