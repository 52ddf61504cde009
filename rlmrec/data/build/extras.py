"""The files beside the split matrices that profile generation reads: id mappers,
item metadata and reviews, each restricted to the users and items the recipe kept.

Reviews carry the split of their interaction, so a profile prompt can use training
reviews only; metadata and reviews are untrusted text and are written as JSON
strings, never interpreted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlmrec.data.build.presets import Preset, pick
from rlmrec.data.build.sources import Source, column_names, iter_records, read_columns
from rlmrec.errors import DataError

SPLIT_LABELS = ("train", "valid", "test")


@dataclass(frozen=True)
class Context:
    """What the recipe kept: raw ids of the kept users and items (index = new id), and
    per interaction its new user, new item and split."""

    folder: Path
    raw_users: pa.Array
    raw_items: pa.Array
    users: np.ndarray
    items: np.ndarray
    assignment: np.ndarray
    shape: tuple[int, int]
    progress: Callable[[str, int, int], None] | None


def write_mapper(path: Path, key: str, column: str, raw: pa.Array) -> None:
    """``{"uid": 0, "reviewerID": "A2..."}`` per line, as in the published mappers."""
    with path.open("w", encoding="utf-8") as out:
        for index, value in enumerate(raw.to_pylist()):
            out.write(json.dumps({key: index, column: value}, ensure_ascii=False) + "\n")


def _json_value(value: Any) -> Any:
    """Python literals that JSON lacks (tuples, sets, bytes) as JSON."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_items_meta(context: Context, source: Source, item_col: str, preset: Preset | None) -> int:
    """``items_meta.jsonl``: ``{"iid": 3, "title": ..., ...}`` for each kept item the
    metadata file describes (the first record of an item wins), in iid order."""
    present = column_names(source)
    preferred = preset.item_id if preset else item_col
    id_col = pick(present, "item", None, preferred, file=str(source.path))
    if id_col is None:
        raise DataError(f"{source.path}: no item id column ({preferred!r}); columns present: {', '.join(present)}")
    index = {raw: i for i, raw in enumerate(context.raw_items.to_pylist())}
    wanted = preset.meta if preset else None
    found: dict[int, dict[str, Any]] = {}
    report = _phase(context, "reading item metadata")
    for _, record in iter_records(source, report, keep=_mentions(id_col, index)):
        raw = record.get(id_col)
        iid = index.get(raw if isinstance(raw, str) else _as_text(raw))
        if iid is None or iid in found:
            continue
        fields = wanted if wanted is not None else [k for k in record if k != id_col]
        found[iid] = {k: _json_value(record[k]) for k in fields if k in record and record[k] is not None}
    with (context.folder / "items_meta.jsonl").open("w", encoding="utf-8") as out:
        for iid in sorted(found):
            out.write(json.dumps({"iid": iid, **found[iid]}, ensure_ascii=False) + "\n")
    return len(found)


def _phase(context: Context, phase: str) -> Callable[[int, int], None] | None:
    progress = context.progress
    if progress is None:
        return None
    return lambda done, total: progress(phase, done, total)


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _mentions(id_col: str, index: dict[str, int]) -> Callable[[bytes], bool]:
    """A cheap pre-test for a JSON Lines metadata line: its id field names a kept item.
    Lines whose id cannot be found this way are parsed anyway (never dropped unseen)."""
    pattern = re.compile(rb"""["']""" + re.escape(id_col.encode()) + rb"""["']\s*:\s*["']?([^"',}\s]+)""")
    kept = {raw.encode() for raw in index}

    def keep(line: bytes) -> bool:
        match = pattern.search(line)
        return match is None or match.group(1) in kept

    return keep


def write_reviews(
    context: Context, source: Source, user_col: str, item_col: str, text_col: str | None, rating_col: str | None
) -> int:
    """``reviews.jsonl``: ``{"uid", "iid", "split", "text"[, "rating"]}`` for each kept
    interaction that has a review (the first one per pair), in (uid, iid) order."""
    present = column_names(source)
    file = str(source.path)
    u_col = pick(present, "user", None, user_col, file=file)
    i_col = pick(present, "item", None, item_col, file=file)
    t_col = pick(present, "text", text_col, None, file=file)
    for role, col in (("user", u_col), ("item", i_col), ("text", t_col)):
        if col is None:
            raise DataError(
                f"{file}: no review {role} column; name it with --{role}-col (columns: {', '.join(present)})"
            )
    assert u_col is not None and i_col is not None and t_col is not None
    types: dict[str, pa.DataType] = {u_col: pa.string(), i_col: pa.string(), t_col: pa.string()}
    if rating_col and rating_col in present and rating_col not in types:
        types[rating_col] = pa.float64()
    report = _phase(context, "reading reviews")
    table = read_columns(source, types, report)
    uid = pc.index_in(table.column(u_col), value_set=context.raw_users)
    iid = pc.index_in(table.column(i_col), value_set=context.raw_items)
    text = table.column(t_col)
    usable = pc.and_(pc.and_(pc.is_valid(uid), pc.is_valid(iid)), pc.greater(pc.utf8_length(text), 0))
    rows = np.flatnonzero(np.asarray(usable.fill_null(False).to_numpy(zero_copy_only=False)))
    n_items = context.shape[1]
    u = np.asarray(uid.take(pa.array(rows)).to_numpy(), dtype=np.int64)
    i = np.asarray(iid.take(pa.array(rows)).to_numpy(), dtype=np.int64)
    # Only pairs the recipe kept: look each review's pair up among the interactions.
    pair_keys = context.users.astype(np.int64) * n_items + context.items
    order = np.argsort(pair_keys, kind="stable")
    sorted_keys = pair_keys[order]
    keys = u * n_items + i
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[position] == keys
    rows, keys, position = rows[hit], keys[hit], position[hit]
    # First review per pair in file order, output in (uid, iid) order.
    _, first = np.unique(keys, return_index=True)
    rows, keys, position = rows[first], keys[first], position[first]
    splits = context.assignment[order[position]]
    texts = text.take(pa.array(rows)).to_pylist()
    ratings = table.column(rating_col).take(pa.array(rows)).to_pylist() if rating_col in types else None
    with (context.folder / "reviews.jsonl").open("w", encoding="utf-8") as out:
        for n, key in enumerate(keys.tolist()):
            line: dict[str, Any] = {
                "uid": key // n_items,
                "iid": key % n_items,
                "split": SPLIT_LABELS[splits[n]],
                "text": texts[n],
            }
            if ratings is not None and ratings[n] is not None:
                line["rating"] = ratings[n]
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            if context.progress is not None and n % 100_000 == 0:
                context.progress("writing reviews", n, len(keys))
    return len(keys)
