"""Gen's alignment loss, forward + backward, at Amazon-book size: the plain path
(``reconstruction_contrast(MLP(e), y)``) against the hidden-space path
(:mod:`rlmrec.align.gen_logits`), interleaved in one process.

    OMP_NUM_THREADS=1 python bench/bench_gen_logits.py [--masked 3049 1016 ...] [--reps 5]

By default the masked counts are those of the published Amazon-book Gen presets
(``max(int(20,332 * mask_ratio), 1)``, one per distinct ratio). Each timing is one
step as GenerativeAlignment.loss runs it: gather the masked final embeddings, the
MLP's first layer and LeakyReLU, the contrast, and the backward into the embeddings
and the MLP. Prints the median and the fastest step per path (on a shared machine the
fastest is the least disturbed), plain / hidden, and the multiply-add counts of
:func:`rlmrec.align.gen_logits.path_flops`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rlmrec.align.base import profile_mlp
from rlmrec.align.gen_logits import linear_reconstruction_contrast, path_flops

N_NODES = 11_000 + 9_332  # Amazon-book users + items
PROFILE_DIM = 1536
EMBEDDING = 32


def preset_masked_counts() -> dict[int, list[str]]:
    """Masked count -> the backbones whose Amazon Gen preset gives it."""
    path = Path(__file__).resolve().parents[1] / "rlmrec" / "presets" / "hyperparameters.json"
    models = json.loads(path.read_text())["models"]
    counts: dict[int, list[str]] = {}
    for name, variants in models.items():
        gen = variants.get("gen")
        if gen is None:
            continue
        ratio = {**gen["common"], **gen.get("amazon", {})}["mask_ratio"]
        counts.setdefault(max(int(N_NODES * ratio), 1), []).append(name)
    return dict(sorted(counts.items()))


def step(final: torch.Tensor, seeds: torch.Tensor, mlp: torch.nn.Sequential, prf: torch.Tensor, path: str) -> float:
    start = time.perf_counter()
    first, act, last = mlp
    assert isinstance(last, torch.nn.Linear)
    h = act(first(final.index_select(0, seeds)))
    y = prf.index_select(0, seeds)
    loss = linear_reconstruction_contrast(h, last.weight, last.bias, y, 0.5, path=path)  # type: ignore[arg-type]
    loss.backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masked", type=int, nargs="*", help="masked counts (default: the Amazon presets')")
    parser.add_argument("--reps", type=int, default=5, help="timed steps per path and count (after one warm-up)")
    args = parser.parse_args()
    presets = preset_masked_counts()
    counts = args.masked or list(presets)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), load {' '.join(load)}"
    )
    gen = torch.Generator().manual_seed(0)
    final = torch.randn(N_NODES, EMBEDDING, generator=gen).requires_grad_()
    prf = F.normalize(torch.randn(N_NODES, PROFILE_DIM, generator=gen))
    torch.manual_seed(0)
    mlp = profile_mlp(EMBEDDING, PROFILE_DIM)
    hidden = (EMBEDDING + PROFILE_DIM) // 2  # the MLP's hidden width (profile_mlp)
    for n in counts:
        seeds = torch.randperm(N_NODES, generator=gen)[:n]
        times: dict[str, list[float]] = {"plain": [], "hidden": []}
        for rep in range(args.reps + 1):
            for path in ("plain", "hidden") if rep % 2 == 0 else ("hidden", "plain"):  # interleaved
                final.grad = None
                mlp.zero_grad(set_to_none=True)
                t = step(final, seeds, mlp, prf, path)
                if rep > 0:
                    times[path].append(t)
        plain, hidden_t = statistics.median(times["plain"]), statistics.median(times["hidden"])
        # The fastest step is the least disturbed by other processes on a shared machine.
        best_plain, best_hidden = min(times["plain"]), min(times["hidden"])
        f_plain, f_hidden = path_flops(n, PROFILE_DIM, hidden, True, True)
        who = ",".join(presets.get(n, [])) or "-"
        print(
            f"masked {n:5d} ({who}): median plain {plain:.3f} s, hidden {hidden_t:.3f} s "
            f"({plain / hidden_t:.2f}x); min plain {best_plain:.3f} s, hidden {best_hidden:.3f} s "
            f"({best_plain / best_hidden:.2f}x); GMAC plain {f_plain / 1e9:.1f}, hidden {f_hidden / 1e9:.1f} "
            f"({f_plain / f_hidden:.2f}x)"
        )


if __name__ == "__main__":
    main()
