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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import amazon, machine, publish, timed

from rlmrec import gemm
from rlmrec.config import resolve_config
from rlmrec.models import Batch
from rlmrec.trainer import Trainer

MODELS = ("lightgcn", "gccf", "sgl", "simgcl", "dccf", "autocf")
CONFIGS = [(m, v) for m in MODELS for v in ("base", "con", "gen")]
# The reference code's seconds per epoch and per validation pass (2 threads), by the
# CPU capability of the machine it was measured on (../shared/reference/reference-timings.md).
# A ratio is honest only against the row of the same capability, measured in the same
# kind of sitting; rows from the earlier machine (capability not recorded) are shown
# with a dagger, for scale only.
REFERENCE: dict[str, dict[tuple[str, str], str]] = {
    "AVX2": {
        ("lightgcn", "base"): "2.80-3.51",
        ("gccf", "base"): "3.38-3.99",
        ("lightgcn", "con"): "55.8-59.1",
        ("lightgcn", "gen"): "31.4-36.0",
    },
    "earlier": {
        ("lightgcn", "base"): "2.2-2.6",
        ("gccf", "base"): "2.4-2.5",
        ("lightgcn", "con"): "37.6-39.3",
        ("lightgcn", "gen"): "15.4",
        ("gccf", "con"): "41.9-43.4",
        ("gccf", "gen"): "8.5-11.0",
        ("sgl", "base"): "41.5-43.5",
        ("simgcl", "base"): "26.5-27.0",
        ("dccf", "base"): "42.5-43.9",
        ("autocf", "base"): "51.3-55.7",
    },
}
DAGGER = " \u2020"
REFERENCE_VALIDATION = {"AVX2": "3.55-5.49", "earlier": "1.6-4.9"}


def reference(model: str, variant: str, capability: str) -> tuple[str, bool]:
    """The reference figure for a row and whether it is from this capability's machine."""
    own = REFERENCE.get(capability, {}).get((model, variant))
    if own:
        return own, True
    return REFERENCE["earlier"].get((model, variant), ""), False


def memory_bandwidth(device: torch.device) -> float:
    """Best measured bytes/s of a large copy (read + write), the rate a sparse
    propagation's streams can reach at best on this machine."""
    n = 64 * 2**20  # 256 MB of float32, far beyond any cache
    a, b = torch.ones(n, device=device), torch.empty(n, device=device)
    best = 0.0
    for _ in range(6):
        _sync(device)
        tick = time.perf_counter()
        b.copy_(a)
        _sync(device)
        best = max(best, 2 * 4 * n / (time.perf_counter() - tick))
    return best


class SparseTraffic(TorchDispatchMode):
    """Counts the bytes every CSR product must move at least: the operator (column
    indices, values, row pointers) read once, the dense input read and the output
    written once. Gathers of input rows are assumed to hit cache (a 20k x 32 table
    is 2.6 MB), so this is a lower bound, the propagation's share of the roofline."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        # torch.sparse.mm reaches _sparse_addmm; rlmrec's own products call addmm_ (rlmrec.graph.spmm).
        sparse_product = func in (torch.ops.aten._sparse_addmm.default, torch.ops.aten.addmm_.default)
        if sparse_product and args[1].layout == torch.sparse_csr:
            a, x = args[1], args[2]
            idx = a.crow_indices().element_size()
            self.bytes += a._nnz() * (idx + a.values().element_size()) + (a.shape[0] + 1) * idx
            self.bytes += x.numel() * x.element_size() + out.numel() * out.element_size()
        return out


def gemm_peak(device: torch.device) -> float:
    """Best single-precision GEMM rate (FLOP/s) over the shapes these models use, on
    either CPU engine (rlmrec.gemm: MKL or oneDNN), so the bound does not flatter the
    slower one."""
    shapes = [(11000, 1536, 784), (3049, 1536, 3049), (4096, 1536, 784), (2048, 2048, 2048)]
    products: list[Callable[[torch.Tensor, torch.Tensor], object]] = [torch.mm]
    if device.type == "cpu" and gemm._onednn_available():
        products.append(lambda a, b: torch.ops.mkldnn._linear_pointwise(a, b.T, None, "none", [], ""))
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        for product in products:
            product(a, b)
            for _ in range(5):
                _sync(device)
                tick = time.perf_counter()
                product(a, b)
                _sync(device)
                best = max(best, 2 * m * k * n / (time.perf_counter() - tick))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def work_per_epoch(trainer: Trainer, n_sample: int = 3) -> tuple[float, float]:
    """Dense FLOPs (forward + backward, counted by torch's FlopCounterMode) and the
    bytes the sparse products move (:class:`SparseTraffic`) of the training step,
    on a few real batches scaled to the epoch."""
    negs = torch.from_numpy(trainer.sampler.sample(trainer.rng)).to(trainer.device)
    order = torch.randperm(len(trainer.sampler), device=trainer.device)
    bs = trainer.cfg.train.batch_size
    flops = moved = 0
    for i in range(n_sample):
        idx = order[i * bs : (i + 1) * bs]
        with FlopCounterMode(display=False) as counter, SparseTraffic() as traffic:
            losses = trainer.model.train_losses(Batch(trainer._users[idx], trainer._items[idx], negs[idx]))
            torch.stack(list(losses.values())).sum().backward()
        flops += counter.get_total_flops()
        moved += traffic.bytes
        trainer.model.zero_grad(set_to_none=True)
    return flops / n_sample * trainer.n_batches, moved / n_sample * trainer.n_batches


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
    out["flops_per_epoch"], out["sparse_bytes_per_epoch"] = work_per_epoch(trainer)
    out["gemm_peak"], out["bandwidth"] = gemm_peak(dev), memory_bandwidth(dev)
    out["capability"] = torch.backends.cpu.get_cpu_capability() if dev.type == "cpu" else "cuda"
    return out


def table(results: list[dict[str, Any]], epochs: int) -> str:
    lines = [
        "| model | variant | s/epoch | reference s/epoch | speed-up | validation pass s | peak memory MB"
        " | GFLOP/epoch | GEMM bound s | sparse GB/epoch | memory bound s | x bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    capability = results[0].get("capability", "") if results else ""
    daggers = same_kind = False
    for r in results:
        ref, same = reference(r["model"], r["variant"], r.get("capability", ""))
        speedup = ""
        if ref:
            lo, _, hi = ref.partition("-")
            mid = (float(lo) + float(hi or lo)) / 2
            speedup = f"{mid / r['epoch_s']:.1f}x" + ("" if same else DAGGER)
            daggers |= not same
            same_kind |= same
        gflop = gemm = gb = mem = ratio = ""
        if r.get("flops_per_epoch"):
            g = r["flops_per_epoch"] / r["gemm_peak"]
            gflop, gemm = f"{r['flops_per_epoch'] / 1e9:,.0f}", f"{g:.2f}"
        if r.get("sparse_bytes_per_epoch"):
            m = r["sparse_bytes_per_epoch"] / r["bandwidth"]
            gb, mem = f"{r['sparse_bytes_per_epoch'] / 1e9:.2f}", f"{m:.3f}"
        bound = r.get("flops_per_epoch", 0) / r.get("gemm_peak", 1) + r.get("sparse_bytes_per_epoch", 0) / r.get(
            "bandwidth", 1
        )
        if bound:
            ratio = f"{r['epoch_s'] / bound:.1f}"
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['epoch_s']:.3f} | {ref}{'' if same or not ref else DAGGER}"
            f" | {speedup} | {r['eval_s']:.3f} | {r['peak_mb']:,.0f} | {gflop} | {gemm} | {gb} | {mem} | {ratio} |"
        )
    peaks = [r["gemm_peak"] for r in results if "gemm_peak" in r]
    bandwidths = [r["bandwidth"] for r in results if "bandwidth" in r]
    val = REFERENCE_VALIDATION.get(capability, REFERENCE_VALIDATION["earlier"])
    earlier = (
        f"{DAGGER} marks a reference figure from the earlier machine, whose capability was not recorded (for scale"
        " only, not a same-kind ratio)."
    )
    if not daggers:
        ratios = f"Speed-ups are against the reference measured on a machine of the same CPU capability ({capability})."
    elif same_kind:
        ratios = f"Speed-ups are against the reference measured on a machine of the same CPU capability ({capability});"
        ratios += earlier
    else:
        ratios = f"No reference figure was measured on a machine of this CPU capability ({capability}):{earlier}"
    notes = [
        "",
        f"Machine: {machine()}. Median of {epochs} timed epochs after one warm-up epoch; validation pass ="
        f" full ranking of all {11000:,} validation users (reference: {val} s).",
        ratios,
    ]
    if peaks and bandwidths:
        notes.append(
            "Bounds: GEMM bound = the step's dense FLOPs (forward + backward, counted by torch's FlopCounterMode)"
            f" / the best measured SGEMM rate, MKL or oneDNN ({max(peaks) / 1e9:.0f} GFLOP/s); memory bound = the"
            " bytes the sparse products must move at least (operator and dense operands streamed once, forward and"
            f" backward) / the measured copy bandwidth ({max(bandwidths) / 1e9:.1f} GB/s); 'x bound' = measured"
            " / (GEMM bound + memory bound). Edge dropout, sampling and scatter/gather work are not in the bound."
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
