"""Full default-protocol runs on Amazon-book, test Recall/NDCG@20 beside the paper's.

    python bench/fidelity.py                          # one base run per backbone (about 40 min)
    python bench/fidelity.py --only lightgcn:base --seed 2023
    python bench/fidelity.py --only sgl:base --merge  # re-run one row, keep the others

Each run uses the published preset and protocol unchanged (early stopping on
validation Recall@20, best state restored, one test pass).

The published table is kept in ``bench/fidelity-table.json`` (committed; ``bench/results/`` is not), one row
per model, variant and seed, each with the machine and date it ran on: rows re-run
in different sittings then say where each came from. ``--merge`` replaces the re-run
rows there and keeps the others; without it the table is exactly this invocation's
runs. Every invocation also leaves its raw rows in a timestamped file beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import amazon, machine, publish, training_threads

from rlmrec.atomic import atomic_write
from rlmrec.config import resolve_config
from rlmrec.trainer import train

TABLE = Path(__file__).with_name("fidelity-table.json")
BACKBONES = ("lightgcn", "gccf", "sgl", "simgcl", "dccf", "autocf")

# Single-seed (2023) runs of the reference code on Amazon-book (docs/protocol.md §10).
REFERENCE_RUNS = {
    ("lightgcn", "base"): (0.1434, 0.0869, 231),
    ("lightgcn", "con"): (0.1482, 0.0910, 135),
    ("gccf", "base"): (0.1346, 0.0807, 213),
    ("sgl", "base"): (0.1480, 0.0925, 45),
    ("sgl", "con"): (0.1511, 0.0938, 66),
    ("simgcl", "base"): (0.1512, 0.0915, 81),
    ("dccf", "base"): (0.1517, 0.0945, 39),
    ("dccf", "con"): (0.1562, 0.0959, 78),
    ("autocf", "base"): (0.1559, 0.0998, 66),
}


def published(model: str, variant: str) -> dict[str, float]:
    text = resources.files("rlmrec.presets").joinpath("published-results.csv").read_text()
    rows = csv.DictReader(text.splitlines())
    return {
        r["metric"]: float(r["value"])
        for r in rows
        if r["backbone"] == model and r["variant"] == variant and r["dataset"] == "amazon"
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | variant | seed | test Recall@20 | paper | diff | test NDCG@20 | paper | diff | best epoch"
        " | reference run (R@20 / N@20 / epoch) | wall time | run on |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    machines: list[str] = []
    for r in results:
        paper = published(r["model"], r["variant"])
        ref = REFERENCE_RUNS.get((r["model"], r["variant"]))
        cells = []
        for metric in ("recall@20", "ndcg@20"):
            ours, theirs = r["test"][metric], paper[metric]
            cells += [f"{ours:.4f}", f"{theirs:.4f}", f"{(ours - theirs) / theirs:+.1%}"]
        ref_cell = f"{ref[0]:.4f} / {ref[1]:.4f} / {ref[2]}" if ref else ""
        machine_name = r.get("machine", "not recorded")
        if machine_name not in machines:
            machines.append(machine_name)
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['seed']} | "
            + " | ".join(cells)
            + f" | {r['best_epoch']} | {ref_cell} | {r['seconds'] / 60:.1f} min"
            + f" | {r.get('date', '?')}, machine {machines.index(machine_name) + 1} |"
        )
    lines += ["", "Paper values: mean of 5 seeds (published-results.csv). Machines:"]
    lines += [f"{i}. {m}" for i, m in enumerate(machines, 1)]
    return "\n".join(lines)


def merge(kept: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``kept`` with each fresh row replacing the one of its model, variant and seed
    (in place, so the table keeps its order) or appended after them."""

    def key(r: dict[str, Any]) -> tuple[str, str, int]:
        return r["model"], r["variant"], r["seed"]

    new = {key(r): r for r in fresh}
    out = [new.pop(key(r), r) for r in kept]
    return out + [r for r in fresh if key(r) in new]


def published_rows() -> list[dict[str, Any]]:
    """The rows of the published table (``bench/fidelity-table.json``), if any."""
    if not TABLE.exists():
        return []
    rows: list[dict[str, Any]] = json.loads(TABLE.read_text())
    return rows


def save_table(rows: list[dict[str, Any]]) -> None:
    with atomic_write(TABLE) as tmp:
        tmp.write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="model:variant (repeatable)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--merge", action="store_true", help="replace only these rows of the published table (fidelity-table.json)"
    )
    args = parser.parse_args()
    configs = [tuple(o.split(":")) for o in args.only] if args.only else [(b, "base") for b in BACKBONES]
    training_threads()  # RLMREC_THREADS=1 for each of two series run side by side
    data = amazon()
    kept = published_rows() if args.merge else []
    fresh: list[dict[str, Any]] = []
    for model, variant in configs:
        cfg = resolve_config(model, variant, "amazon", seed=args.seed, device=args.device)
        result = train(cfg, data)
        row = {
            "model": model,
            "variant": variant,
            "seed": cfg.train.seed,
            "test": result.test_metrics,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": result.seconds,
            "timings": result.timings,
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
        }
        print(json.dumps(row), flush=True)
        fresh.append(row)
        results = merge(kept, fresh)
        # After every run: a long series cut short keeps what it finished.
        publish("fidelity", results, table(results), write=not args.no_write)
        if not args.no_write:
            save_table(results)


if __name__ == "__main__":
    main()
