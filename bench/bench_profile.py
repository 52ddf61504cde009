"""``rlmrec profile`` throughput: profiles per minute against a local OpenAI-compatible
server at concurrency 1, 4 and 8. Writes the ``bench:profile`` section of BENCHMARKS.md.

    .ci/llm-server.sh                                 # SmolLM2-135M-Instruct on 127.0.0.1:8089
    python bench/bench_profile.py [--base-url URL] [--model smollm2] [--no-write]

Each level profiles a fresh synthetic book dataset (items, then users; nothing cached),
with the command's defaults except a shorter answer cap, and counts what the server did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import random
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlmrec.profile.generate import Settings, profile_folder

_GENRES = ["mystery", "romance", "history", "science fiction", "cooking", "travel", "poetry", "business"]
_WORDS = ["quiet", "sharp", "warm", "slow", "clever", "dark", "funny", "dense", "gentle", "bold"]


def write_books(folder: Path, n_items: int, n_users: int, seed: int = 0) -> None:
    """Books with a title, a description and categories; users with four training
    items (one review each), one validation and one test item."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    genre = [rng.choice(_GENRES) for _ in range(n_items)]
    rows: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        items = rng.sample(range(n_items), 6)
        rows["train"] += [(u, i) for i in items[:4]]
        rows["valid"].append((u, items[4]))
        rows["test"].append((u, items[5]))
    for fname, split in (("trn_mat.pkl", "train"), ("val_mat.pkl", "valid"), ("tst_mat.pkl", "test")):
        r, c = zip(*rows[split], strict=True)
        mat = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_users, n_items))
        (folder / fname).write_bytes(pickle.dumps(mat))
    meta = [
        {
            "iid": i,
            "title": f"The {rng.choice(_WORDS).title()} {genre[i].title()} Book {i}",
            "description": f"A {rng.choice(_WORDS)} {genre[i]} book, {rng.choice(_WORDS)} in tone, about "
            f"{rng.choice(_WORDS)} people and {rng.choice(_WORDS)} places.",
            "categories": ["Books", genre[i].title()],
        }
        for i in range(n_items)
    ]
    (folder / "items_meta.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
    reviews = [
        {"uid": u, "iid": i, "split": split, "rating": rng.choice([3.0, 4.0, 5.0]),
         "text": f"A {rng.choice(_WORDS)} read; the {genre[i]} parts were {rng.choice(_WORDS)}."}
        for split, pairs in rows.items() for u, i in pairs
    ]  # fmt: skip
    (folder / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in reviews) + "\n")
    (folder / "build.json").write_text(json.dumps({"domain": "books"}))


def run_level(
    base_url: str, model: str, concurrency: int, n_items: int, n_users: int, max_tokens: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rlmrec-bench-profile-") as tmp:
        folder = Path(tmp) / "books"
        write_books(folder, n_items, n_users)
        settings = Settings(
            model=model, base_url=base_url, concurrency=concurrency, max_tokens=max_tokens, timeout_s=600,
            allow_missing=True,
        )  # fmt: skip
        started = time.perf_counter()
        outcome = profile_folder(folder, settings)
        seconds = time.perf_counter() - started
    passes = {p.kind: p for p in outcome.passes}
    profiled = sum(len(p.profiles) for p in outcome.passes)
    entities = sum(p.total for p in outcome.passes)
    c = outcome.counters
    return {
        "concurrency": concurrency,
        "entities": entities,
        "profiled": profiled,
        "failed": sum(len(p.failures) for p in outcome.passes),
        "first_try": sum(p.first_try for p in outcome.passes),
        "after_retry": sum(p.after_retry for p in outcome.passes),
        "requests": c.requests,
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "seconds": seconds,
        "profiles_per_min": 60 * profiled / seconds,
        "requests_per_s": c.requests / seconds,
        "json_mode": outcome.json_mode,
        "items": len(passes["item"].profiles),
        "users": len(passes["user"].profiles),
    }


def _table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| concurrency | profiles / min | profiled / asked | valid at 1st answer | after a retry | failed "
        "| requests | requests / s | tokens in / out | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['concurrency']} | {r['profiles_per_min']:.1f} | {r['profiled']} / {r['entities']} "
            f"| {r['first_try']} | {r['after_retry']} | {r['failed']} | {r['requests']} "
            f"| {r['requests_per_s']:.2f} | {r['tokens_in']:,} / {r['tokens_out']:,} | {r['seconds']:.0f} |"
        )
    try:
        llama = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        llama = "unknown"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    lines.append(
        f"\nServer: {args.base_url}, model {args.model} (llama-cpp-python {llama}, JSON mode "
        f"{results[0]['json_mode']}); {args.items} items then {args.users} users per level, fresh each time; "
        f"--max-tokens {args.max_tokens}, other options at their defaults. Machine: {cpu}, "
        f"{os.cpu_count()} cores, shared with other jobs; the server runs one request at a time."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("RLMREC_TEST_LLM", "http://127.0.0.1:8089/v1"))
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    results = []
    for level in (int(c) for c in args.concurrency.split(",")):
        result = run_level(args.base_url, args.model, level, args.items, args.users, args.max_tokens)
        print(json.dumps(result), flush=True)
        results.append(result)
    text = _table(results, args)
    print(text)
    if not args.no_write:
        from common import write_section  # BENCHMARKS.md lives beside this folder

        write_section("bench:profile", text)


if __name__ == "__main__":
    main()
