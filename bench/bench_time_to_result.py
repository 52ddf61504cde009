"""Time to a result: one full early-stopped ``rlmrec run`` on Amazon-book, as a user
types it, timed from the shell's point of view, and where the wall time goes
(start-up and data loading, training epochs, validation passes, the rest: test,
checkpoints, the run store). Writes the table into BENCHMARKS.md.

    python bench/bench_time_to_result.py                    # lightgcn base
    python bench/bench_time_to_result.py --model gccf --no-write

Run it on an otherwise idle machine: another process on the same cores makes it
several times slower (BENCHMARKS.md, "Two trainings at once").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_AMAZON, machine, publish

REFERENCE_S = {"lightgcn": 921, "gccf": 818}  # the reference code's full runs (reference-timings.md)


def run_once(model: str, data_root: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rlmrec-ttr-") as tmp:
        out = Path(tmp) / "run"
        env = {**os.environ, "RLMREC_DB": f"sqlite:///{tmp}/runs.db"}
        cmd = [sys.executable, "-m", "rlmrec", "run", model, "base", "amazon", "--data-root", str(data_root)]
        tick = time.perf_counter()
        subprocess.run([*cmd, "--out", str(out)], check=True, env=env, capture_output=True)
        wall = time.perf_counter() - tick
        result = json.loads((out / "result.json").read_text())
    epochs, timings = result["epochs_run"], result["timings"]
    train_s = epochs * timings["train_s_per_epoch"]
    step = result["config"]["test_step"]
    n_evals = len(range(0, epochs, step))  # validated after epochs 0, step, 2 step, ...
    eval_s = n_evals * timings["eval_s_per_pass"]
    return {
        "model": model,
        "wall_s": wall,
        "fit_s": result["seconds"],
        "epochs": epochs,
        "best_epoch": result["best_epoch"],
        "train_s": train_s,
        "n_evals": n_evals,
        "eval_s": eval_s,
        "recall": result["test"]["recall@20"],
        "ndcg": result["test"]["ndcg@20"],
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | wall s | reference s | epochs (best) | training epochs s | validation passes s"
        " | start-up, loading, graph s | test, checkpoints, store s | test R@20 / N@20 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        startup = r["wall_s"] - r["fit_s"]
        rest = r["fit_s"] - r["train_s"] - r["eval_s"]
        reference = REFERENCE_S.get(r["model"], "")
        per_epoch = r["train_s"] / r["epochs"]
        lines.append(
            f"| {r['model']} | {r['wall_s']:.0f} | {reference} | {r['epochs']} ({r['best_epoch']})"
            f" | {r['train_s']:.0f} ({per_epoch:.3f}/epoch) | {r['eval_s']:.0f} ({r['n_evals']} passes)"
            f" | {startup:.0f} | {rest:.0f} | {r['recall']:.4f} / {r['ndcg']:.4f} |"
        )
    lines += ["", f"Machine: {machine()}. One `rlmrec run <model> base amazon`, wall time as the shell sees it."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="repeatable; default lightgcn")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("RLMREC_DATA", SHARED_AMAZON.parent)))
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if not (args.data_root / "amazon" / "trn_mat.pkl").exists():
        raise SystemExit(f"{args.data_root}/amazon: no Amazon-book splits; pass --data-root or set RLMREC_DATA")
    results = [run_once(model, args.data_root) for model in args.model or ["lightgcn"]]
    publish("time-to-result", results, table(results), write=not args.no_write)


if __name__ == "__main__":
    main()
