"""The CPU GEMM engines side by side (:mod:`rlmrec.gemm`): MKL through ``torch.mm``
(``RLMREC_GEMM=blas``) against oneDNN (``onednn``), in one process, interleaved.

    python bench/bench_gemm.py [--epochs lightgcn:con ...] [--exp-epochs sgl:base ...] [--no-write]

Part 1 times the products that dominate Con and Gen at Amazon-book size (the shapes
the training loop makes), best of several calls, in GFLOP/s, and the exponentials of
their logits blocks, each engine's way. Part 2 (``--epochs``) trains the named
model:variant pairs on Amazon-book and times whole epochs, the two engines alternating
epoch by epoch (median of 3 each, after one warm-up epoch each). Part 3
(``--exp-epochs``) does the same on oneDNN for its exponentials alone: MKL's ``exp``
against ``exp2``. Writes the ``bench:gemm`` section of BENCHMARKS.md, so the engine
``auto`` picks on this machine's CPU can be checked against a measurement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from common import amazon, machine, publish, training_threads

from rlmrec import gemm
from rlmrec.config import resolve_config
from rlmrec.trainer import Trainer

# (what, rows x inner x cols, how the operands are laid out)
SHAPES: list[tuple[str, tuple[int, int, int], str]] = [
    ("Con: profile MLP layer 1 + LeakyReLU (all users)", (11_000, 1_536, 784), "linear+leaky"),
    ("Con: InfoNCE logits block (users)", (95, 32, 11_000), "linear"),
    ("Con: InfoNCE softmax @ pool", (95, 11_000, 32), "mm"),
    ("Gen: logits block (LightGCN, 3,049 masked)", (343, 784, 3_049), "linear"),
    ("Gen: softmax @ targets", (343, 3_049, 784), "mm"),
    ("Gen: targets' gradient, one block (A^T B)", (3_049, 343, 784), "mm-transposed-a"),
    ("Gen: targets in hidden space (Y W)", (3_049, 1_536, 784), "mm"),
    ("weight gradient over all users (A^T B, long sum)", (784, 11_000, 1_536), "mm-transposed-a"),
]


def _use(engine: str) -> None:
    os.environ[gemm.ENV] = engine
    gemm.engine.cache_clear()


def _product(layout: str, m: int, k: int, n: int) -> Callable[[], Any]:
    g = torch.Generator().manual_seed(0)
    if layout.startswith("linear"):
        x, w, b = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g), torch.randn(n, generator=g)
        slope = 0.01 if layout == "linear+leaky" else None
        return lambda: gemm.linear(x, w, b, leaky_slope=slope)
    a = torch.randn(k, m, generator=g).T if layout == "mm-transposed-a" else torch.randn(m, k, generator=g)
    b2 = torch.randn(k, n, generator=g)
    return lambda: gemm.mm(a, b2)


def _best(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    seconds = []
    for _ in range(repeats):
        tick = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - tick)
    return min(seconds)


def products(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for what, (m, k, n), layout in SHAPES:
        rate = {}
        for engine in ("blas", "onednn"):
            _use(engine)
            rate[engine] = 2 * m * k * n / _best(_product(layout, m, k, n), repeats) / 1e9
        rows.append({"what": what, "shape": f"{m:,} x {k:,} x {n:,}", **rate})
        print(f"{what}: blas {rate['blas']:.0f}, onednn {rate['onednn']:.0f} GFLOP/s", flush=True)
    return rows


def exponentials(repeats: int) -> dict[str, Any]:
    """Elements per second of the exponential of one InfoNCE logits block (Amazon's
    user term), each engine's way (:func:`rlmrec.gemm.exp_`): MKL's ``exp`` or, on
    oneDNN, ``exp2`` of logits pre-scaled by ``log2(e)``. Each call refills the block
    first (a copy, about a tenth of the time), since ``exp_`` works in place."""
    rows, cols = 95, 11_000
    logits = torch.rand(rows, cols, generator=torch.Generator().manual_seed(0)) * 10 - 5
    block = torch.empty_like(logits)
    rate = {}
    for engine in ("blas", "onednn"):
        _use(engine)
        scaled = logits * gemm.exp_scale(logits)
        rate[engine] = rows * cols / _best(lambda s=scaled: gemm.exp_(block.copy_(s)), repeats * 10) / 1e9
    print(f"exponentials: blas (exp) {rate['blas']:.2f}, onednn (exp2) {rate['onednn']:.2f} G/s", flush=True)
    return {"what": "exp", "shape": f"{rows:,} x {cols:,}", **rate}


def epochs(pairs: list[str], repeats: int) -> list[dict[str, Any]]:
    data = amazon()
    rows = []
    for pair in pairs:
        model, variant = pair.split(":")
        trainer = Trainer(resolve_config(model, variant, "amazon", device="cpu"), data)
        seconds: dict[str, list[float]] = {"blas": [], "onednn": []}
        for engine in seconds:  # one warm-up epoch each
            _use(engine)
            trainer.train_epoch()
        for _ in range(repeats):
            for engine, times in seconds.items():
                _use(engine)
                tick = time.perf_counter()
                trainer.train_epoch()
                times.append(time.perf_counter() - tick)
        row = {"model": model, "variant": variant, **{e: statistics.median(t) for e, t in seconds.items()}}
        row["all"] = seconds
        rows.append(row)
        print(f"{pair}: blas {row['blas']:.2f} s, onednn {row['onednn']:.2f} s", flush=True)
    return rows


@contextmanager
def _exp_as_mkl() -> Iterator[None]:
    """The oneDNN engine with MKL's ``exp`` (scale 1) instead of ``exp2``: the products
    stay the same, so an epoch A/B isolates the exponentials."""
    saved = gemm.exp_scale, gemm.exp_
    gemm.exp_scale, gemm.exp_ = (lambda like: 1.0), (lambda x: x.exp_())
    try:
        yield
    finally:
        gemm.exp_scale, gemm.exp_ = saved


def exp_epochs(pairs: list[str], repeats: int) -> list[dict[str, Any]]:
    """Whole epochs on oneDNN, MKL's ``exp`` against ``exp2``, alternating epoch by epoch."""
    data = amazon()
    _use("onednn")
    rows = []
    for pair in pairs:
        model, variant = pair.split(":")
        trainer = Trainer(resolve_config(model, variant, "amazon", device="cpu"), data)
        seconds: dict[str, list[float]] = {"exp": [], "exp2": []}
        for step in range(repeats + 1):  # the first round is a warm-up
            for kind, times in seconds.items():
                with _exp_as_mkl() if kind == "exp" else nullcontext():
                    tick = time.perf_counter()
                    trainer.train_epoch()
                    if step:
                        times.append(time.perf_counter() - tick)
        medians = {k: statistics.median(t) for k, t in seconds.items()}
        row = {"model": model, "variant": variant, "kind": "exp", **medians}
        row["all"] = seconds
        rows.append(row)
        print(f"{pair}: exp {row['exp']:.2f} s, exp2 {row['exp2']:.2f} s", flush=True)
    return rows


def table(
    shape_rows: list[dict[str, Any]],
    exp_row: dict[str, Any],
    epoch_rows: list[dict[str, Any]],
    exp_epoch_rows: list[dict[str, Any]],
    auto: str,
) -> str:
    lines = [
        "| product | rows x inner x cols | MKL (torch.mm) GFLOP/s | oneDNN GFLOP/s | oneDNN / MKL |",
        "|---|---|---|---|---|",
    ]
    for r in shape_rows:
        ratio = r["onednn"] / r["blas"]
        lines.append(f"| {r['what']} | {r['shape']} | {r['blas']:.0f} | {r['onednn']:.0f} | {ratio:.2f} |")
    lines += [
        "",
        "| exponentials of one InfoNCE logits block | rows x cols | MKL engine: `exp`, G/s "
        "| oneDNN engine: `exp2` of pre-scaled logits, G/s | ratio |",
        "|---|---|---|---|---|",
        f"| Con: users' block | {exp_row['shape']} | {exp_row['blas']:.2f} | {exp_row['onednn']:.2f} "
        f"| {exp_row['onednn'] / exp_row['blas']:.2f} |",
    ]
    if epoch_rows:
        lines += ["", "| model | variant | s/epoch, MKL | s/epoch, oneDNN | change |", "|---|---|---|---|---|"]
        for r in epoch_rows:
            change = (r["onednn"] / r["blas"] - 1) * 100
            lines.append(f"| {r['model']} | {r['variant']} | {r['blas']:.2f} | {r['onednn']:.2f} | {change:+.0f}% |")
    if exp_epoch_rows:
        lines += [
            "",
            "| model | variant | s/epoch, oneDNN with MKL's `exp` | s/epoch, oneDNN with `exp2` | change |",
            "|---|---|---|---|---|",
        ]
        for r in exp_epoch_rows:
            change = (r["exp2"] / r["exp"] - 1) * 100
            lines.append(f"| {r['model']} | {r['variant']} | {r['exp']:.2f} | {r['exp2']:.2f} | {change:+.0f}% |")
    lines += [
        "",
        f"Machine: {machine()}; `RLMREC_GEMM=auto` picks {auto} here. Products: best of the timed calls; "
        "epochs: median of 3, engines alternating epoch by epoch in one process. The weight-gradient product stays on "
        "`torch.mm` in the code whichever engine is set (rlmrec/gemm.py).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", nargs="*", default=[], metavar="MODEL:VARIANT", help="also time whole epochs")
    parser.add_argument(
        "--exp-epochs", nargs="*", default=[], metavar="MODEL:VARIANT", help="also time epochs with exp against exp2"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per product and engine")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    training_threads()
    if not gemm._onednn_available():
        raise SystemExit("this torch build has no oneDNN: there is nothing to compare")
    saved = os.environ.get(gemm.ENV)
    os.environ.pop(gemm.ENV, None)
    gemm.engine.cache_clear()
    auto = gemm.engine()
    shape_rows = products(args.repeats)
    exp_row = exponentials(args.repeats)
    epoch_rows = epochs(args.epochs, 3)
    exp_epoch_rows = exp_epochs(args.exp_epochs, 3)
    if saved is not None:
        os.environ[gemm.ENV] = saved
    text = table(shape_rows, exp_row, epoch_rows, exp_epoch_rows, auto)
    publish("gemm", [*shape_rows, exp_row, *epoch_rows, *exp_epoch_rows], text, not args.no_write)


if __name__ == "__main__":
    main()
