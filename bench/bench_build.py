"""``rlmrec data build`` at scale: wall time and peak memory of the whole command on
synthetic interaction logs of 1M and 10M rows. Writes the ``bench:build`` section of
BENCHMARKS.md.

    python bench/bench_build.py [--sizes 1000000,10000000] [--no-write]

Target (issue 12): a 10-million-interaction CSV builds within a few minutes on a
two-core machine, without one Python object per row.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from common import machine, publish


def synthetic_log(path: Path, rows: int, seed: int = 0) -> None:
    """A ratings log shaped like a review dump: users and items with long-tailed
    activity, ratings 1-5 (about a fifth below 3), unix times, string ids, shuffled."""
    rng = np.random.default_rng(seed)
    n_users, n_items = rows // 20, rows // 50
    users = np.minimum(rng.pareto(1.2, rows) * n_users / 30, n_users - 1).astype(np.int64)
    items = np.minimum(rng.pareto(1.0, rows) * n_items / 40, n_items - 1).astype(np.int64)
    table = pa.table(
        {
            "user_id": pa.array(np.char.add("U", users.astype(str))),
            "item_id": pa.array(np.char.add("I", items.astype(str))),
            "rating": rng.choice([1, 2, 3, 4, 5], rows, p=[0.08, 0.1, 0.17, 0.3, 0.35]),
            "timestamp": 1_300_000_000 + rng.integers(0, 10**8, rows),
        }
    )
    pcsv.write_csv(table, path)


def run(rows: int, folder: Path) -> dict[str, object]:
    log = folder / f"log-{rows}.csv"
    tick = time.perf_counter()
    synthetic_log(log, rows)
    made = time.perf_counter() - tick
    command = [sys.executable, "-m", "rlmrec", "data", "build", str(log), "--name", f"b{rows}",
               "--data-root", str(folder / "data"), "--force"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    tick = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    seconds = time.perf_counter() - tick
    if done.returncode:
        raise SystemExit(done.stderr)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(done.stdout)
    return {
        "rows": rows,
        "csv_mb": log.stat().st_size / 1e6,
        "generate_s": made,
        "build_s": seconds,
        # ru_maxrss of children is the largest child so far: exact for the first size,
        # an upper bound afterwards, so sizes run in increasing order.
        "peak_mb": max(peak_kib, before) / 1024,
        "summary": done.stdout.strip().splitlines()[-3] if done.stdout else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results = []
    with tempfile.TemporaryDirectory(prefix="rlmrec-bench-build-") as tmp:
        for rows in sizes:
            results.append(run(rows, Path(tmp)))
    lines = [
        f"Machine: {machine()}. `bench/bench_build.py`: the whole `rlmrec data build` command (a fresh",
        "process: start-up, reading, recipe with the default 10-core, writing, validation) on synthetic",
        "CSV logs (string ids, long-tailed users and items, ratings 1-5, unix times).",
        "",
        "| interactions | CSV | wall time | peak memory (RSS) |",
        "|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['csv_mb']:.0f} MB | {r['build_s']:.1f} s | {r['peak_mb']:,.0f} MB |")
    publish("build", results, "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
