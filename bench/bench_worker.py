"""Throughput of `rlmrec worker` with K runs sharing one device: finished full runs per
hour of LightGCN base and Con on Amazon-book, for K = 1, 2, 4 (the GPU table's
question: which K finishes the paper's table soonest on one GPU).

    python bench/bench_worker.py --device cuda                    # K = 1 2 4, base and con
    python bench/bench_worker.py --device cpu --dataset demo --per-device 1 2 --no-write

Each measurement queues exactly K full default-protocol runs (seeds 2023, 2024, ...)
into a fresh run store, starts one worker with K slots, and times it from start to
empty: K runs / wall time, start-up included, as a user's queue would see it. The
runs' own wall times and best epochs come back from the store.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_AMAZON, machine, publish


def rlmrec(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "rlmrec", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"rlmrec {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def measure(model: str, variant: str, dataset: str, k: int, device: str, data_root: Path) -> dict[str, Any]:
    """K runs of one configuration through one worker with K slots."""
    with tempfile.TemporaryDirectory(prefix="rlmrec-worker-") as tmp:
        env = {
            **os.environ,
            "RLMREC_DB": f"sqlite:///{tmp}/runs.db",
            "RLMREC_ARTIFACTS": f"{tmp}/runs",
            "RLMREC_DATA": str(data_root),
        }
        rlmrec("queue", model, variant, dataset, "--seeds", str(k), env=env)
        slots = ["--gpus", "none"] if device == "cpu" else ["--gpus", "auto"]
        tick = time.perf_counter()
        rlmrec("worker", *slots, "--per-gpu", str(k), "--until-empty", env=env)
        wall = time.perf_counter() - tick
        runs = json.loads(rlmrec("ls", "--json", env=env))
    done = [r for r in runs if r["status"] == "succeeded"]
    if len(done) != k:
        raise SystemExit(f"{model} {variant} K={k}: {len(done)} of {k} runs succeeded: {[r['status'] for r in runs]}")
    return {
        "model": model,
        "variant": variant,
        "k": k,
        "device": device,
        "wall_s": wall,
        "runs_per_hour": k / wall * 3600,
        "run_s": [r["seconds"] for r in done],
        "best_epochs": [r["best_epoch"] for r in done],
        # Seeds stop at different epochs, so epochs per hour compares K fairly too.
        "epochs": sum(r["epoch"] + 1 for r in done),
        "devices": sorted({r["device"] for r in done}),
    }


def table(results: list[dict[str, Any]], dataset: str) -> str:
    lines = [
        "| model | variant | K runs at once | wall s for K runs | finished runs / hour | epochs / hour"
        " | each run's s (median) | best epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r["model"], r["variant"])
        if key not in best or r["runs_per_hour"] > best[key]["runs_per_hour"]:
            best[key] = r
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['k']} | {r['wall_s']:.0f} | {r['runs_per_hour']:.0f}"
            f" | {r['epochs'] / r['wall_s'] * 3600:,.0f} | {statistics.median(r['run_s']):.0f}"
            f" | {', '.join(str(e) for e in r['best_epochs'])} |"
        )
    picks = ", ".join(f"{m} {v}: K = {r['k']}" for (m, v), r in best.items())
    devices = sorted({d for r in results for d in r["devices"]})
    lines += [
        "",
        f"Machine: {machine()}; runs on {', '.join(devices)}. {dataset}, full default-protocol runs (early stopping),"
        f" seeds 2023 onwards; one `rlmrec worker --per-gpu K --until-empty` over exactly K queued runs, wall time"
        f" from its start to the queue's end. Best throughput: {picks}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--per-device", type=int, nargs="+", default=[1, 2, 4], metavar="K")
    parser.add_argument("--variant", action="append", help="repeatable; default base and con")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--dataset", default="amazon")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("RLMREC_DATA", SHARED_AMAZON.parent)))
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.dataset != "demo" and not (args.data_root / args.dataset).is_dir():
        folder = args.data_root / args.dataset
        raise SystemExit(f"{folder}: no such dataset folder; pass --data-root or set RLMREC_DATA")
    results = []
    for variant in args.variant or ["base", "con"]:
        for k in args.per_device:
            result = measure(args.model, variant, args.dataset, k, args.device, args.data_root)
            print(json.dumps(result), flush=True)
            results.append(result)
    publish("worker", results, table(results, args.dataset), write=not args.no_write)


if __name__ == "__main__":
    main()
