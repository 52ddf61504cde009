"""Does profile alignment help on the built-in demo? Test Recall/NDCG@20 of base,
Con and Gen, full default protocol, mean over seeds.

    python bench/demo_check.py                     # lightgcn, seeds 2023-2025
    python bench/demo_check.py --model gccf --seeds 5
"""

from __future__ import annotations

import argparse
import statistics

from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="backbone (repeatable; default lightgcn)")
    parser.add_argument("--seeds", type=int, default=3, help="consecutive seeds from 2023")
    args = parser.parse_args()
    data = load_dataset("demo")
    print("| model | variant | test Recall@20 (mean) | per seed | NDCG@20 (mean) | best epochs | s/run |")
    print("|---|---|---|---|---|---|---|")
    for model in args.model or ["lightgcn"]:
        for variant in ("base", "con", "gen"):
            runs = [
                train(resolve_config(model, variant, "demo", seed=2023 + i, device="cpu"), data)
                for i in range(args.seeds)
            ]
            recall = [r.test_metrics["recall@20"] for r in runs]
            ndcg = [r.test_metrics["ndcg@20"] for r in runs]
            print(
                f"| {model} | {variant} | {statistics.mean(recall):.4f} | {' '.join(f'{v:.4f}' for v in recall)}"
                f" | {statistics.mean(ndcg):.4f} | {' '.join(str(r.best_epoch) for r in runs)}"
                f" | {statistics.mean(r.seconds for r in runs):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
