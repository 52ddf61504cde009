"""What each profile prompt is made of, read from a dataset folder: item metadata
(``items_meta.jsonl``), reviews (``reviews.jsonl``) and each user's training items.

Nothing from the validation or test splits may reach a prompt, or the profiles (and the
embeddings made from them) would carry the held-out answers into training. So a user's
items come from ``trn_mat.pkl`` alone, and a review is used only when its line says
``"split": "train"`` *and* its (user, item) pair is in ``trn_mat.pkl``: a reviews file
that disagrees with the matrices cannot leak either.

Sampling (reviews per item, items per user) is seeded per entity, so an entity's prompt
is the same on every run, whatever ``--limit`` picks: the answer cache depends on it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlmrec.data.dataset import load_splits
from rlmrec.errors import DataError

META_FILE = "items_meta.jsonl"
REVIEWS_FILE = "reviews.jsonl"
BUILD_FILE = "build.json"
SPLITS = ("train", "valid", "test")
# The metadata field shown as an item's name in user prompts, in order of preference.
NAME_FIELDS = ("title", "name", "app_name")


@dataclass(frozen=True)
class Review:
    uid: int
    text: str
    rating: float | None


@dataclass(frozen=True)
class ItemInput:
    """One item's prompt material: metadata without empty fields, and up to
    ``reviews_per_item`` reviews of training interactions."""

    iid: int
    meta: dict[str, Any]
    reviews: list[Review]

    @property
    def empty(self) -> bool:
        return not self.meta and not self.reviews

    @property
    def name(self) -> str | None:
        return next((str(self.meta[k]) for k in NAME_FIELDS if isinstance(self.meta.get(k), str | int)), None)


@dataclass(frozen=True)
class UserItem:
    """An item of a user's prompt, with the user's own review when there is one."""

    iid: int
    review: str | None
    rating: float | None


@dataclass(frozen=True)
class UserInput:
    uid: int
    items: list[UserItem]  # up to items_per_user training items, by index


@dataclass(frozen=True)
class Inputs:
    folder: Path
    n_users: int
    n_items: int
    domain: str | None  # build.json's, when it names one
    has_meta: bool
    has_reviews: bool
    items: list[ItemInput]  # by index
    users: list[UserInput]  # by index


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object
    is a one-line :class:`DataError` naming the file and line."""
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}:{number}: not JSON ({error.msg}, column {error.colno})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
                yield number, obj
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def _index(obj: dict[str, Any], key: str, upper: int, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: '{key}' must be an integer index, got {json.dumps(value)[:40]}")
    if not 0 <= value < upper:
        raise DataError(f"{where}: '{key}' {value} outside 0..{upper - 1} (the matrices' size)")
    return value


def _kept(value: Any) -> bool:
    """Metadata worth a prompt's tokens: not null, not an empty string, list or object."""
    return value is not None and value != "" and value != [] and value != {}


def read_meta(path: Path, n_items: int) -> dict[int, dict[str, Any]]:
    meta: dict[int, dict[str, Any]] = {}
    for number, obj in read_jsonl(path):
        where = f"{path}:{number}"
        iid = _index(obj, "iid", n_items, where)
        if iid in meta:
            raise DataError(f"{where}: item {iid} appears twice")
        meta[iid] = {k: v for k, v in obj.items() if k != "iid" and _kept(v)}
    return meta


def read_reviews(path: Path, train_pairs: set[int], n_users: int, n_items: int) -> dict[int, list[Review]]:
    """Training reviews by item, in file order; every other line is checked and dropped."""
    by_item: dict[int, list[Review]] = {}
    for number, obj in read_jsonl(path):
        where = f"{path}:{number}"
        uid, iid = _index(obj, "uid", n_users, where), _index(obj, "iid", n_items, where)
        split, text, rating = obj.get("split"), obj.get("text"), obj.get("rating")
        if split not in SPLITS:
            raise DataError(f"{where}: 'split' must be one of {', '.join(SPLITS)}, got {json.dumps(split)[:40]}")
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string, got {json.dumps(text)[:40]}")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int | float)):
            raise DataError(f"{where}: 'rating' must be a number or absent, got {json.dumps(rating)[:40]}")
        # Both conditions: the file's own label and the matrices must agree that it is training data.
        if split != "train" or uid * n_items + iid not in train_pairs or not text.strip():
            continue
        by_item.setdefault(iid, []).append(Review(uid, text.strip(), None if rating is None else float(rating)))
    return by_item


def read_domain(folder: Path) -> str | None:
    path = folder / BUILD_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not readable JSON ({error})") from None
    domain = info.get("domain") if isinstance(info, dict) else None
    return domain if isinstance(domain, str) and domain else None


def _sample(population: list[Any], k: int, key: str) -> list[Any]:
    """``k`` of ``population`` (all when fewer), in their original order, chosen by a
    generator seeded with ``key`` alone: the same every run."""
    if len(population) <= k:
        return list(population)
    chosen = sorted(random.Random(key).sample(range(len(population)), k))
    return [population[i] for i in chosen]


def load_inputs(
    folder: Path, *, reviews_per_item: int, items_per_user: int, seed: int, need_meta: bool = True
) -> Inputs:
    """Every item's and user's prompt material. ``need_meta``: item prompts are wanted,
    so ``items_meta.jsonl`` must exist."""
    if reviews_per_item < 0 or items_per_user < 1:
        raise DataError("--reviews-per-item must be 0 or more and --items-per-user 1 or more")
    folder = Path(folder)
    train = load_splits(folder)[0]  # valid and test are never read past this check
    n_users, n_items = (int(n) for n in train.shape)
    meta_path, reviews_path = folder / META_FILE, folder / REVIEWS_FILE
    if need_meta and not meta_path.is_file():
        raise DataError(
            f"{meta_path}: missing; item prompts need item metadata: "
            f"rlmrec data build ... --items FILE writes it (then run rlmrec profile {folder.name} again)"
        )
    meta = read_meta(meta_path, n_items) if meta_path.is_file() else {}
    coo = train.tocoo()
    train_pairs = set((coo.row.astype(np.int64) * n_items + coo.col).tolist())
    reviews = read_reviews(reviews_path, train_pairs, n_users, n_items) if reviews_path.is_file() else {}

    items = [
        ItemInput(i, meta.get(i, {}), _sample(reviews.get(i, []), reviews_per_item, f"{seed}/item/{i}"))
        for i in range(n_items)
    ]
    own = {(r.uid, i): r for i, rs in reviews.items() for r in rs}
    users = []
    for u in range(n_users):
        trained = train.indices[train.indptr[u] : train.indptr[u + 1]].tolist()
        chosen = _sample(trained, items_per_user, f"{seed}/user/{u}")
        entries = []
        for i in chosen:
            review = own.get((u, i))
            entries.append(UserItem(i, review.text if review else None, review.rating if review else None))
        users.append(UserInput(u, entries))
    return Inputs(
        folder, n_users, n_items, read_domain(folder), meta_path.is_file(), reviews_path.is_file(), items, users
    )
