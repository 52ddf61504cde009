"""The demo bookshop as *raw* logs, the way a researcher's own data arrives: a ratings
file with timestamps (liked books rated 3-5, plus disliked ones rated 1-2 and repeat
purchases), a book catalogue with titles, categories and blurbs, and reviews.

``rlmrec data build`` turns these into an RLMRec dataset; that path (raw files ->
build -> profile -> embed -> train) is the end-to-end test of the own-data pipeline.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from rlmrec.data.demo import make_demo

_OPINIONS = (
    "Really enjoyed",
    "Could not put down",
    "A solid read:",
    "Recommended to a friend:",
    "Better than expected:",
)
_COMPLAINTS = ("Gave up halfway through", "Not for me:", "Disappointing:")
_START = 1_500_000_000  # 2017-07-14, unix seconds


def write_demo_raw(folder: Path, seed: int = 2023, **world: Any) -> dict[str, Path]:
    """Write ``interactions.csv.gz`` (user_id, item_id, rating, timestamp),
    ``books.jsonl`` (item_id, title, categories, description) and ``reviews.jsonl``
    (user_id, item_id, text) into ``folder``; returns their paths by role. ``world``
    goes to ``make_demo`` (``n_users=12, n_items=10, ...`` for a tiny shop)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    demo = make_demo(seed, **world)
    rng = np.random.default_rng(seed + 1)
    ds = demo.dataset
    liked = (ds.train + ds.valid + ds.test).tocoo()
    users, items = liked.row.astype(np.int64), liked.col.astype(np.int64)
    n_users, n_items = ds.train.shape
    # Disliked books (rated 1-2): the rating filter must drop them.
    n_bad = len(users) // 6
    bad_users = rng.integers(0, n_users, n_bad)
    bad_items = rng.integers(0, n_items, n_bad)
    # Repeat purchases of liked books: duplicates that count once.
    again = rng.choice(len(users), len(users) // 20, replace=False)
    all_users = np.concatenate([users, bad_users, users[again]])
    all_items = np.concatenate([items, bad_items, items[again]])
    ratings = np.concatenate(
        [rng.choice([3, 4, 5], len(users), p=[0.2, 0.4, 0.4]), rng.integers(1, 3, n_bad), np.full(len(again), 5)]
    )
    times = _START + rng.integers(0, 3 * 365 * 86400, len(all_users))
    order = rng.permutation(len(all_users))  # a log is not sorted by user
    paths = {
        "interactions": folder / "interactions.csv.gz",
        "items": folder / "books.jsonl",
        "reviews": folder / "reviews.jsonl",
    }
    with gzip.open(paths["interactions"], "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for n in order:
            writer.writerow([_user(all_users[n]), _item(all_items[n]), int(ratings[n]), int(times[n])])
    with paths["items"].open("w", encoding="utf-8") as out:
        for i in range(n_items):
            record = {
                "item_id": _item(i),
                "title": demo.item_titles[i],
                "categories": ["Books", *demo.item_topics[i]],
                "description": demo.item_profiles[i]["profile"],
            }
            out.write(json.dumps(record) + "\n")
    with paths["reviews"].open("w", encoding="utf-8") as out:
        for n in order:
            if rng.random() < 0.4:  # most readers write nothing
                continue
            u, i = int(all_users[n]), int(all_items[n])
            words = _COMPLAINTS if ratings[n] < 3 else _OPINIONS
            text = f"{words[int(rng.integers(len(words)))]} {demo.item_titles[i]}."
            out.write(json.dumps({"user_id": _user(u), "item_id": _item(i), "text": text}) + "\n")
    return paths


def _user(index: int) -> str:
    return f"R{index:05d}"


def _item(index: int) -> str:
    return f"B{index:05d}"
