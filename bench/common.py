"""Shared helpers for the benchmark scripts: the Amazon data, machine facts, and
rewriting one marked section of BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlmrec.data import Dataset, load_folder
from rlmrec.threads import apply_threads, usable_cores

REPO = Path(__file__).resolve().parents[1]
SHARED_AMAZON = REPO.parent / "shared" / "data" / "amazon"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def amazon(path: Path | None = None, emb_dim: int = 1536) -> Dataset:
    """The published Amazon-book splits with synthesized profile embeddings.

    The shared copy has no profiles; Con/Gen cost depends only on the embedding
    shape, so seeded Gaussian stand-ins of the published size (1536-d) suffice.
    """
    folder = path or Path(os.environ.get("RLMREC_AMAZON", SHARED_AMAZON))
    if not (folder / "trn_mat.pkl").exists():
        raise SystemExit(f"Amazon-book splits not found at {folder}; set RLMREC_AMAZON or pass --data")
    data = load_folder(folder, "amazon")
    rng = np.random.default_rng(0)
    return replace(
        data,
        user_emb=rng.standard_normal((data.n_users, emb_dim), dtype=np.float32),
        item_emb=rng.standard_normal((data.n_items, emb_dim), dtype=np.float32),
    )


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    usable = usable_cores()
    cores = f"{os.cpu_count()} cores"
    if usable != os.cpu_count():
        cores += f" ({usable} usable: affinity, cgroup quota)"
    return (
        f"{cpu}, {cores}, torch {torch.__version__} with {torch.get_num_threads()} threads"
        f" ({torch.backends.cpu.get_cpu_capability()}){gpu}"
    )


def training_threads() -> int:
    """Set torch's threads as ``rlmrec run`` does (``RLMREC_THREADS``, else the usable
    cores): long runs started side by side can then be given their share."""
    return apply_threads()


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->``."""
    text = BENCHMARKS_MD.read_text()
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{BENCHMARKS_MD}: no <!-- {name} --> section to update")
    BENCHMARKS_MD.write_text(pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text))


def publish(kind: str, results: list[dict[str, Any]], text: str, write: bool) -> None:
    """Print the table, keep the raw results in bench/results/, and (unless told
    not to) replace the ``bench:<kind>`` section of BENCHMARKS.md with the table."""
    print(text)
    folder = Path(__file__).with_name("results")
    folder.mkdir(exist_ok=True)
    (folder / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    if write:
        write_section(f"bench:{kind}", text)


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls, with the device synchronized around each."""
    seconds = []
    for _ in range(repeats):
        sync()
        tick = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - tick)
    return seconds
