"""Two LightGCN base trainings at once on Amazon-book: seconds per epoch of each,
without the thread fix (each process with torch's default count, all the cores) and
with it (each with half the usable cores, what ``rlmrec worker --per-gpu 2`` or
``--threads`` gives), beside one process alone. Writes the table into BENCHMARKS.md.

    python bench/bench_concurrent.py                  # 1 warm-up + 3 timed epochs per process
    python bench/bench_concurrent.py --dataset demo --epochs 1 --no-write   # does it work

Each training is its own process. They load and build first, then start their epochs
together (a barrier on stdin), and each keeps training after its timed epochs until
the last one is done, so that every timed epoch ran beside the other process. Each
then samples the CPU as a run starting now would (``rlmrec.contention``): whether
that run would be warned. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_AMAZON, machine, publish

from rlmrec.config import resolve_config
from rlmrec.contention import check
from rlmrec.data import Dataset, load_dataset, load_folder
from rlmrec.threads import torch_default, usable_cores
from rlmrec.worker.pool import threads_per_slot

# (label, processes, threads each: None = torch's default)
MODES: list[tuple[str, int, int | None]] = [
    ("one process alone, torch's default threads", 1, None),
    ("two at once, torch's default threads each (before)", 2, None),
    ("two at once, half the usable cores each (after: worker slots, --threads)", 2, -1),
]


def data(name: str) -> Dataset:
    """The demo, or Amazon-book from ``$RLMREC_DATA/amazon``, ``$RLMREC_AMAZON`` or ../shared/data/amazon."""
    if name == "demo":
        return load_dataset("demo")
    candidates = [Path(os.environ.get("RLMREC_DATA", "data")) / "amazon"]
    candidates += [Path(os.environ.get("RLMREC_AMAZON", SHARED_AMAZON))]
    for folder in candidates:
        if (folder / "trn_mat.pkl").is_file():
            return load_folder(folder, "amazon")
    raise SystemExit(f"Amazon-book splits not found in {' or '.join(map(str, candidates))}; set RLMREC_DATA")


def child(dataset: str, threads: int | None, epochs: int) -> None:
    """One training process: build, report ready, wait for "go", time ``epochs`` epochs
    after a warm-up, report, train on until "stop"."""
    import torch

    from rlmrec.threads import apply_threads
    from rlmrec.trainer import Trainer

    if threads is not None:
        apply_threads(threads)  # the fix; without it, torch keeps its default
    trainer = Trainer(resolve_config("lightgcn", "base", dataset, device="cpu"), data(dataset))
    print(json.dumps({"ready": True}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    trainer.train_epoch()  # warm-up: allocator, thread pools, lazy inits
    seconds = []
    for _ in range(epochs):
        tick = time.perf_counter()
        trainer.train_epoch()
        seconds.append(time.perf_counter() - tick)
    print(json.dumps({"epoch_s": seconds, "threads": torch.get_num_threads()}), flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:  # keep the other process company
        trainer.train_epoch()


def run_mode(
    dataset: str, processes: int, threads: int | None, epochs: int, probe: int | None = None
) -> list[dict[str, Any]]:
    """Time ``processes`` trainings at once. With ``probe``, once they train, sample the
    CPU as a run with that many threads starting beside them would: ``warned``."""
    cmd = [sys.executable, __file__, "--child", "--dataset", dataset, "--epochs", str(epochs)]
    cmd += ["--threads", str(threads)] if threads is not None else []
    pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    children = [subprocess.Popen(cmd, **pipes) for _ in range(processes)]
    try:
        for proc in children:  # all built before any epoch starts
            assert proc.stdout is not None
            if not proc.stdout.readline():
                _fail(proc)
        for proc in children:
            _send(proc, "go")
        results = []
        for proc in children:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            results.append(json.loads(line) if line else _fail(proc))
        if probe is not None:  # the children keep training until "stop"
            warned = check(probe) is not None
            results = [{**r, "warned": warned} for r in results]
        for proc in children:
            _send(proc, "stop")
        for proc in children:
            if proc.wait(timeout=600) != 0:
                _fail(proc)
        return results
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.kill()


def _send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _fail(proc: subprocess.Popen[str]) -> Any:
    raise SystemExit(f"a training process failed (exit code {proc.wait()}); see its messages above")


def table(rows: list[dict[str, Any]], epochs: int, dataset: str) -> str:
    alone = statistics.median(rows[0]["results"][0]["epoch_s"])
    lines = [
        "| setting | threads each | s/epoch of each | x alone | epochs/min, all together | warned |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        medians = [statistics.median(r["epoch_s"]) for r in row["results"]]
        each = ", ".join(f"{m:.3f}" for m in medians)
        slower = ", ".join(f"{m / alone:.1f}x" for m in medians)
        rate = sum(60 / m for m in medians)
        warned = ("yes" if row["results"][0]["warned"] else "no") if len(medians) > 1 else ""
        threads = ", ".join(str(r["threads"]) for r in row["results"])
        lines.append(f"| {row['label']} | {threads} | {each} | {slower} | {rate:.0f} | {warned} |")
    note = (
        f"\n\nMachine: {machine()}; {usable_cores()} usable cores. LightGCN base on {dataset}, median of {epochs}"
        " timed epochs per process after one warm-up epoch, the processes' epochs overlapping throughout."
        " 'warned': whether the second run, starting with that thread count beside the first one training,"
        " prints the contention warning (sampled by this script as rlmrec run samples at its start)."
    )
    return "\n".join(lines) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="amazon", choices=["amazon", "demo"])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process (after one warm-up)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dataset, args.threads, args.epochs)
        return
    rows = []
    for label, processes, threads in MODES:
        # -1: what the worker pool gives each of two CPU slots (its own function, not a copy).
        per = threads_per_slot(None, 2, {}) if threads == -1 else threads
        results = run_mode(args.dataset, processes, per, args.epochs)
        if processes > 1:
            # Would the second of these runs be warned? One trains; a run with the same
            # thread count samples the CPU beside it, as rlmrec run does at its start.
            beside = run_mode(args.dataset, 1, per, 1, probe=per or torch_default())
            results = [{**r, "warned": beside[0]["warned"]} for r in results]
        print(json.dumps({"mode": label, "results": results}), flush=True)
        rows.append({"label": label, "processes": processes, "results": results})
    publish("concurrent", rows, table(rows, args.epochs, args.dataset), write=not args.no_write)


if __name__ == "__main__":
    main()
