"""Seconds per training epoch and per full-ranking validation pass, peak memory,
and for Con/Gen the FLOP rate against this machine's measured GEMM peak, for every
model x variant on Amazon-book. Writes the table into BENCHMARKS.md.

    python bench/bench_train.py                 # all, 3 timed epochs each
    python bench/bench_train.py --only lightgcn:base --epochs 5 --no-write

Each configuration runs in its own process so that peak memory is its own.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import amazon, machine, publish, timed

from rlmrec.config import resolve_config
from rlmrec.models import Batch
from rlmrec.trainer import Trainer

MODELS = ("lightgcn", "gccf", "sgl", "simgcl", "dccf", "autocf")
CONFIGS = [(m, v) for m in MODELS for v in ("base", "con", "gen")]
# Seconds per epoch of the reference code measured on this machine (2 threads).
REFERENCE = {
    ("lightgcn", "base"): "2.2-2.6",
    ("gccf", "base"): "2.4-2.5",
    ("lightgcn", "con"): "37.6-39.3",
    ("lightgcn", "gen"): "15.4",
    ("gccf", "con"): "41.9-43.4",
    ("gccf", "gen"): "8.5-11.0",
    ("sgl", "base"): "41.5-43.5",
    ("simgcl", "base"): "26.5-27.0",
    ("autocf", "base"): "51.3-55.7",
}
REFERENCE_VALIDATION = "2.3-3.0"


def gemm_peak(device: torch.device) -> float:
    """Best single-precision GEMM rate (FLOP/s) over the shapes these models use."""
    shapes = [(11000, 1536, 784), (3049, 1536, 3049), (4096, 1536, 784), (2048, 2048, 2048)]
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        out = torch.empty(m, n, device=device)
        torch.mm(a, b, out=out)
        for _ in range(5):
            _sync(device)
            tick = time.perf_counter()
            torch.mm(a, b, out=out)
            _sync(device)
            best = max(best, 2 * m * k * n / (time.perf_counter() - tick))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_epoch(trainer: Trainer, n_sample: int = 3) -> float:
    """Dense FLOPs of the training step (forward + backward), counted by torch on a
    few real batches and scaled to the epoch. Sparse propagation is not counted
    (it is ~1% of Con/Gen's work)."""
    negs = torch.from_numpy(trainer.sampler.sample(trainer.rng)).to(trainer.device)
    order = torch.randperm(len(trainer.sampler), device=trainer.device)
    bs = trainer.cfg.train.batch_size
    counted = 0
    for i in range(n_sample):
        idx = order[i * bs : (i + 1) * bs]
        with FlopCounterMode(display=False) as counter:
            losses = trainer.model.train_losses(Batch(trainer._users[idx], trainer._items[idx], negs[idx]))
            torch.stack(list(losses.values())).sum().backward()
        counted += counter.get_total_flops()
        trainer.model.zero_grad(set_to_none=True)
    return counted / n_sample * trainer.n_batches


def bench_one(model: str, variant: str, epochs: int, evals: int, device: str) -> dict[str, Any]:
    data = amazon()
    cfg = resolve_config(model, variant, "amazon", device=device)
    trainer = Trainer(cfg, data)
    dev = trainer.device
    trainer.train_epoch()  # warm-up: allocator, thread pools, lazy inits
    sync = functools.partial(_sync, dev)
    epoch_s = timed(trainer.train_epoch, epochs, sync)
    trainer.evaluate()
    eval_s = timed(trainer.evaluate, evals, sync)
    out: dict[str, Any] = {
        "model": model,
        "variant": variant,
        "device": str(dev),
        "epoch_s": statistics.median(epoch_s),
        "epoch_s_all": epoch_s,
        "eval_s": statistics.median(eval_s),
        "peak_mb": (
            torch.cuda.max_memory_allocated() / 2**20
            if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }
    if variant != "base":
        out["flops_per_epoch"] = flops_per_epoch(trainer)
        out["gemm_peak"] = gemm_peak(dev)
    return out


def table(results: list[dict[str, Any]], epochs: int) -> str:
    lines = [
        "| model | variant | s/epoch | reference s/epoch | speed-up | validation pass s | peak memory MB"
        " | GFLOP/epoch | GEMM bound s | x bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ref = REFERENCE.get((r["model"], r["variant"]), "")
        speedup = ""
        if ref:
            lo, _, hi = ref.partition("-")
            mid = (float(lo) + float(hi or lo)) / 2
            speedup = f"{mid / r['epoch_s']:.1f}x"
        bound = ratio = gflop = ""
        if "flops_per_epoch" in r:
            b = r["flops_per_epoch"] / r["gemm_peak"]
            gflop, bound, ratio = f"{r['flops_per_epoch'] / 1e9:,.0f}", f"{b:.1f}", f"{r['epoch_s'] / b:.2f}"
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['epoch_s']:.3f} | {ref} | {speedup} | {r['eval_s']:.3f}"
            f" | {r['peak_mb']:,.0f} | {gflop} | {bound} | {ratio} |"
        )
    peaks = [r["gemm_peak"] for r in results if "gemm_peak" in r]
    notes = [
        "",
        f"Machine: {machine()}. Median of {epochs} timed epochs after one warm-up epoch; validation pass ="
        f" full ranking of all {11000:,} validation users (reference: {REFERENCE_VALIDATION} s).",
    ]
    if peaks:
        notes.append(
            f"GEMM bound = the step's dense FLOPs (forward + backward, counted by torch's FlopCounterMode)"
            f" / the best measured SGEMM rate ({max(peaks) / 1e9:.0f} GFLOP/s); 'x bound' = measured / bound."
        )
    return "\n".join(lines + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="model:variant (repeatable)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--merge", action="store_true", help="with --only: replace those rows of the last full run")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bench_one(*args.child, args.epochs, args.evals, args.device)))
        return
    configs = [tuple(o.split(":")) for o in args.only] if args.only else CONFIGS
    results = []
    for model, variant in configs:
        cmd = [sys.executable, __file__, "--child", model, variant, "--epochs", str(args.epochs)]
        cmd += ["--evals", str(args.evals), "--device", args.device]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.only and args.merge:
        results = merged(results, args.device)
    publish("train", results, table(results, args.epochs), write=not args.no_write)


def merged(fresh: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    """The latest earlier results on this device with the re-measured rows replaced
    (or added): re-run a few configurations without re-running all of them."""
    folder = Path(__file__).with_name("results")
    wanted = {(r["model"], r["variant"]) for r in fresh}
    for path in sorted(folder.glob("train-*.json"), reverse=True):
        earlier: list[dict[str, Any]] = json.loads(path.read_text())
        keys = {(r["model"], r["variant"]) for r in earlier}
        if keys | wanted >= set(CONFIGS) and {r["device"] for r in earlier} == {r["device"] for r in fresh}:
            rows = {(r["model"], r["variant"]): r for r in earlier if (r["model"], r["variant"]) in CONFIGS}
            rows.update({(r["model"], r["variant"]): r for r in fresh})
            return [rows[c] for c in CONFIGS]
    raise SystemExit(f"--merge: no earlier run for device {device} in {folder}; run without --only first")


if __name__ == "__main__":
    main()
