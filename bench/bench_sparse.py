"""Native torch against torch-sparse/torch-scatter (the ``[pyg]`` extra): seconds per
training epoch on Amazon-book for every base backbone under each sparse backend, and
what ``sparse_backend=auto`` picks. Writes the table into BENCHMARKS.md.

    python bench/bench_sparse.py
    python bench/bench_sparse.py --only dccf --epochs 2 --no-write

Each (model, backend) runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import amazon, machine, publish, timed

from rlmrec import sparse
from rlmrec.config import resolve_config
from rlmrec.trainer import Trainer

MODELS = ("lightgcn", "gccf", "sgl", "simgcl", "dccf", "autocf")


def bench_one(model: str, backend: str, epochs: int) -> dict[str, Any]:
    cfg = resolve_config(model, "base", "amazon", {"sparse_backend": backend}, device="cpu")
    trainer = Trainer(cfg, amazon())
    trainer.train_epoch()  # warm-up
    seconds = timed(trainer.train_epoch, epochs, lambda: None)
    return {"model": model, "backend": trainer.sparse_backend, "requested": backend, "epoch_s": seconds}


def table(results: list[dict[str, Any]], epochs: int) -> str:
    rows = {(r["model"], r["requested"]): r for r in results}
    lines = ["| model | torch s/epoch | pyg s/epoch | pyg / torch | auto picks |", "|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in results):
        native, pyg, auto = (rows.get((model, b)) for b in ("torch", "pyg", "auto"))
        if native is None or pyg is None:
            continue
        t, p = statistics.median(native["epoch_s"]), statistics.median(pyg["epoch_s"])
        lines.append(f"| {model} | {t:.2f} | {p:.2f} | {p / t:.2f} | {auto['backend'] if auto else ''} |")
    note = (
        f"\n\nMachine: {machine()}. Base variants, median of {epochs} timed epochs after a warm-up epoch;"
        " torch-scatter 2.1.2 and torch-sparse 0.6.18 built from source against the same torch."
        " Each cell is its own process; on this VM the same configuration varies by up to ~50%"
        " between processes, so read the ratios, not the absolute seconds."
    )
    return "\n".join(lines) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=MODELS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bench_one(*args.child, args.epochs)))
        return
    if not sparse.pyg_available():
        raise SystemExit("torch-sparse/torch-scatter are not installed: make pyg")
    results = []
    for model in args.only or MODELS:
        for backend in ("torch", "pyg", "auto"):
            cmd = [sys.executable, __file__, "--child", model, backend, "--epochs", str(args.epochs)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    publish("sparse", results, table(results, args.epochs), write=not args.no_write)


if __name__ == "__main__":
    main()
