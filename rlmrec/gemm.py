"""The dense products of the hot loops, and their exponentials, on the CPU engine that
runs them fastest.

PyTorch's ``torch.mm`` on CPU calls MKL. On AMD CPUs MKL does not pick its best kernels
and scales poorly to a second thread for the shapes that dominate Con and Gen, while
oneDNN (shipped inside every x86 PyTorch wheel, and what ``torch.compile`` itself calls
for linear layers on CPU) dispatches on the instruction set alone. Measured on a
two-core AMD EPYC (Zen 4) at two threads (``bench/bench_gemm.py``, BENCHMARKS.md), the
forward-shaped products ran 1.1-1.7x faster on oneDNN (InfoNCE's logits block 88 -> 148
GFLOP/s, Gen's softmax-weighted targets 165 -> 210), and whole Con and Gen epochs
11-24% faster. One shape goes the other way: a weight gradient ``A^T B`` summed over
thousands of rows (MKL 192, oneDNN 129), so those stay on ``torch.mm`` at their call
sites.

Engine: ``RLMREC_GEMM=onednn`` or ``blas`` forces one; unset (``auto``) uses oneDNN on
AMD CPUs and ``torch.mm`` elsewhere (on Intel CPUs MKL is Intel's own best, and no
measurement here says otherwise). Both engines compute the same float32 products; only
the order of the sums differs, so results agree to float rounding. On other devices
these are plain ``torch`` calls.

The exponentials of those loops (InfoNCE's and the reconstruction contrast's logits)
follow the engine too. ``torch.exp`` on CPU calls MKL's vector math, slow on AMD (1.4-2.1
G/s at two threads on the Zen 4 EPYC, ``bench/bench_gemm.py``), while ``torch.exp2`` runs
PyTorch's own vectorized kernel (4.4-5.0 G/s on the same block).
So on oneDNN, logits are formed already multiplied by ``log2(e)`` (folded into the
scale the callers apply anyway) and exponentiated with ``exp2``: the same value to
float rounding. :func:`exp_scale` and :func:`exp_` are that pair.

Every function here takes tensors that need no gradient (the callers are hand-written
backward passes): oneDNN's op has no autograd formula.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import torch
from torch import Tensor

from rlmrec.errors import ConfigError

ENV = "RLMREC_GEMM"
ENGINES = ("auto", "onednn", "blas")
_LOG2E = math.log2(math.e)


def _cpu_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        with cpuinfo.open() as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def _onednn_available() -> bool:
    """Whether oneDNN's linear op is there and behaves. It is torch's internal op (the
    one ``torch.compile`` emits for linear layers on CPU), not a public API, so one
    small product checks it; anything unexpected means MKL."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    x, w = torch.arange(6.0).reshape(2, 3), torch.arange(12.0).reshape(4, 3)
    try:
        out = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    except (RuntimeError, TypeError):
        return False
    return isinstance(out, Tensor) and out.shape == (2, 4) and bool(torch.equal(out, x @ w.T))


def _count_flops() -> None:
    """Teach ``torch.utils.flop_counter`` the oneDNN product (it counts only aten's), so
    the FLOP counts of the benchmarks and tests do not depend on the engine."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    op = torch.ops.mkldnn._linear_pointwise
    if op in flop_registry:
        return

    @register_flop_formula(op)
    def _linear_flop(x_shape: list[int], w_shape: list[int], *_: object, **__: object) -> int:
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


if _onednn_available():
    _count_flops()


@functools.cache
def engine() -> str:
    """``"onednn"`` or ``"blas"``: the CPU engine for the products below."""
    wanted = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if wanted not in ENGINES:
        raise ConfigError(f"{ENV}={wanted!r}: expected one of {', '.join(ENGINES)} (or leave it unset)")
    if wanted == "blas" or not _onednn_available():
        return "blas"
    if wanted == "onednn":
        return "onednn"
    return "onednn" if _cpu_vendor() == "AuthenticAMD" else "blas"


def _onednn(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and engine() == "onednn"


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, leaky_slope: float | None = None) -> Tensor:
    """``x @ weight.T + bias``, then ``leaky_relu(., leaky_slope)`` when a slope is given
    (fused into the product on oneDNN). ``weight`` is ``out x in`` like ``nn.Linear``'s;
    a transposed view is fine."""
    if _onednn(x):
        if leaky_slope is None:
            out: Tensor = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        else:
            out = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "leaky_relu", [leaky_slope], "")
        return out
    y = torch.addmm(bias, x, weight.T) if bias is not None else x @ weight.T
    return y if leaky_slope is None else torch.nn.functional.leaky_relu_(y, leaky_slope)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` (``a`` row-major or a transposed view with a short inner dimension;
    for ``A^T B`` over many rows use ``torch.mm``, see the module docstring)."""
    return linear(a, b.T) if _onednn(a) else a @ b


def add_mm_(acc: Tensor, a: Tensor, b: Tensor, alpha: float = 1.0) -> Tensor:
    """``acc += alpha * a @ b`` in place (a block's share of a sum over blocks).

    oneDNN has no in-place accumulation, so there it is a product and an add (Gen's
    ``3049 x 343 x 784`` block on the Zen 4 EPYC: 12.1 ms against MKL's in-place
    ``addmm`` 16.4 ms in one sitting, about even in another: these VMs drift).
    """
    if _onednn(a):
        return acc.add_(mm(a, b), alpha=alpha)
    # out= rather than addmm_: the same kernel, and torch's FlopCounterMode sees it.
    return torch.addmm(acc, a, b, alpha=alpha, out=acc)


def stable_size(n: int, like: Tensor, multiple: int = 64) -> int:
    """``n`` rounded up to a multiple of ``multiple`` where ``like``'s products run on
    oneDNN, else ``n``.

    oneDNN compiles a kernel for each shape it meets and keeps it (with its scratch
    memory) in a cache of up to 1,024. A size that changes every batch (a batch's
    distinct items, the last row block of a pool) would fill that cache: a Con run's
    memory grew by 160 MB an epoch. Callers pad such sizes, exactly (zero rows, or
    columns whose weight is ``exp(-inf) = 0``), so only a few shapes ever occur.
    """
    return -(-n // multiple) * multiple if _onednn(like) else n


def exp_scale(like: Tensor) -> float:
    """The factor to multiply logits by before :func:`exp_` (``log2(e)`` where it runs
    as ``exp2``, else 1). Natural-log offsets added to the logits need it as well."""
    return _LOG2E if _onednn(like) else 1.0


def exp_(x: Tensor) -> Tensor:
    """``exp`` in place of logits already multiplied by ``exp_scale(x)``: ``e^(x / s)``."""
    return x.exp2_() if _onednn(x) else x.exp_()
