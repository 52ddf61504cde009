"""The sparse kernels' backend: native torch (the default) or torch-sparse and
torch-scatter (``pip install 'rlmrec[pyg]'``).

Graph propagation (:mod:`rlmrec.graph`) and the edge scatter reductions of DCCF and
AutoCF read the active backend when they run. ``auto`` picks the optional one only
when it is installed and measured faster on the run's own graph.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from rlmrec.errors import ConfigError

BACKENDS = ("torch", "pyg", "auto")
_active = "torch"


def pyg_available() -> bool:
    """Whether torch-sparse and torch-scatter are installed (imports neither)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch_sparse", "torch_scatter"))


def active() -> str:
    return _active


def set_backend(name: str) -> None:
    """Make ``torch`` or ``pyg`` the backend of every sparse product and scatter."""
    global _active
    if name not in ("torch", "pyg"):
        raise ConfigError(f"sparse_backend '{name}' cannot be set directly; use torch or pyg (auto is resolved first)")
    if name == "pyg" and not pyg_available():
        raise ConfigError(
            "sparse_backend=pyg needs torch-sparse and torch-scatter: pip install 'rlmrec[pyg]' "
            "(or set sparse_backend=torch)"
        )
    _active = name


@contextmanager
def using(name: str) -> Iterator[None]:
    """Run a block under backend ``name``, restoring the previous one after."""
    previous = _active
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def resolve(name: str, probe: Callable[[], object], repeats: int = 3) -> str:
    """``torch`` or ``pyg`` for a configured ``name``; ``auto`` times ``probe`` (a
    forward and backward on the run's graph) under both and keeps the faster."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown sparse_backend '{name}'; choose one of: {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if not pyg_available():
        return "torch"
    best: dict[str, float] = {}
    for candidate in ("torch", "pyg"):
        with using(candidate):
            probe()  # warm-up: allocations, lazy imports, cached transposes
            times = []
            for _ in range(repeats):
                tick = time.perf_counter()
                probe()
                times.append(time.perf_counter() - tick)
        best[candidate] = sorted(times)[len(times) // 2]
    return min(best, key=lambda k: best[k])


def scatter_sum(src: Tensor, index: Tensor, n: int) -> Tensor:
    """``out[i] = sum of src[e] over e with index[e] == i``, for ``n`` rows; differentiable."""
    if _active == "pyg":
        import torch_scatter

        out: Tensor = torch_scatter.scatter(src, index, dim=0, dim_size=n, reduce="sum")
        return out
    return torch.zeros((n, *src.shape[1:]), dtype=src.dtype, device=src.device).index_add(0, index, src)
