"""The normalized user-item graph and a fast sparse propagation for it.

Node order is users ``0..U-1`` then items ``U..U+I-1`` (docs/protocol.md §2).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from rlmrec import sparse


def normalized_adjacency(train: sp.csr_matrix, self_loops: bool = False) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [R^T, 0]]``.

    With ``self_loops`` the identity is added to ``A`` before normalizing (GCCF).
    Degree-0 nodes get 0 instead of inf, as in the reference.
    """
    n_users, n_items = train.shape
    r = (train != 0).astype(np.float32)
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    # bmat leaves the diagonal blocks implicit; force the full square shape.
    a = sp.csr_matrix(a, shape=(n_users + n_items, n_users + n_items))
    if self_loops:
        a = a + sp.identity(n_users + n_items, dtype=np.float32, format="csr")
    a = (a != 0).astype(np.float32)
    deg = np.asarray(a.sum(axis=1), dtype=np.float64).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, deg**-0.5, 0.0)
    d = sp.diags(inv_sqrt)
    out = (d @ a @ d).astype(np.float32).tocsr()
    out.sort_indices()
    return out


def _transpose_permutation(indptr: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """For a CSR matrix with a symmetric sparsity pattern, ``perm`` such that the
    values of its transpose, laid out on the same pattern, are ``values[perm]``."""
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    # Position of entry (r, c) in row-major order is its index; the transpose's entry
    # at that position is (c, r). Sorting (c, r) pairs by (r, c) order finds it.
    order = np.lexsort((rows, indices))  # sort entries by (col, row)
    return order.astype(np.int64)


class _SymmetricPatternSpMM(torch.autograd.Function):
    """``A @ x`` for a CSR matrix with a symmetric sparsity pattern.

    The backward pass is ``A^T @ grad``; ``A^T`` shares ``A``'s pattern, so it is one
    more CSR product with permuted values instead of autograd's generic (and on CPU
    roughly 10x slower) sparse backward. No gradient flows to the graph values.
    """

    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, a_t: Tensor) -> Tensor:
        ctx.a_t = a_t
        return spmm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return spmm(ctx.a_t, grad.contiguous()), None, None


def spmm(a: Tensor, x: Tensor, out: Tensor | None = None) -> Tensor:
    """``torch.sparse.mm(a, x)`` for a CSR ``a``, bit for bit, into ``out`` (else new
    memory), without sparse.mm's zero-filled input tensor and its copy into the result:
    on CPU, two passes over new memory fewer. (beta=0: out's old contents are ignored.)
    Elsewhere torch.sparse.mm itself: CUDA's caching allocator has no such cost."""
    if a.device.type != "cpu":
        return torch.sparse.mm(a, x)
    if out is None:
        out = x.new_empty((a.shape[0], x.shape[1]))
    return out.addmm_(a, x, beta=0)


def _csr(crow: Tensor, col: Tensor, values: Tensor, n: int) -> Tensor:
    with warnings.catch_warnings():
        # Beta-state and invariant-check warnings: our indices come from scipy, sorted.
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


@dataclass
class EdgePattern:
    """A graph's edges sorted by (row, col), with a symmetric pattern (every (r, c)
    has its (c, r)), and the per-edge kernels on it: CSR products and SDDMM.

    Kernels on the pattern never gather an ``edges x d`` tensor: on Amazon-book
    (241k edges, d=32, one thread) an SDDMM takes 1.3 ms against 38 ms for the
    gather-multiply-sum, a CSR product 0.6 ms against 32 ms for gather-scale-scatter.
    """

    rows: Tensor  # int64, the row of every edge (gathers of per-row values)
    cols: Tensor  # CSR indices, int32 like Graph's (MKL's product is faster with them)
    crow: Tensor
    perm: Tensor  # values of the transpose, on the same pattern, are values[perm]
    n: int
    # The all-ones pattern SDDMM samples through, one per dtype: made once, not per call.
    _ones: dict[torch.dtype, Tensor] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_sorted(cls, rows: Tensor, cols: Tensor, n: int) -> EdgePattern:
        idx_dtype = torch.int32 if rows.numel() < 2**31 else torch.int64
        crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
        crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
        # Entry (r, c)'s mirror (c, r) is found by sorting the entries by (col, row).
        perm = torch.argsort(cols * n + rows)
        return cls(rows.long(), cols.to(idx_dtype), crow.to(idx_dtype), perm, n)

    def csr(self, values: Tensor) -> Tensor:
        return _csr(self.crow, self.cols, values, self.n)

    def spmm(self, values: Tensor, x: Tensor) -> Tensor:
        """``A x`` for the matrix with ``values`` on this pattern."""
        return spmm(self.csr(values), x.contiguous())

    def sddmm(self, a: Tensor, b: Tensor) -> Tensor:
        """``(a b^T)[r, c]`` for every edge, in pattern order."""
        if a.dtype not in self._ones:
            self._ones[a.dtype] = self.csr(torch.ones_like(self.rows, dtype=a.dtype))
        return torch.sparse.sampled_addmm(self._ones[a.dtype], a, b.T, beta=0.0).values()

    def row_sum(self, values: Tensor) -> Tensor:
        """Per row node, the sum of ``values`` (``heads x edges``) over its edges.

        On CPU a segment sum over the CSR row pointers: the same additions in the same
        order as ``index_add_`` over ``rows`` (bit for bit), 2-3x faster."""
        if values.device.type != "cpu":
            out = torch.zeros((values.shape[0], self.n), dtype=values.dtype, device=values.device)
            return out.index_add_(1, self.rows, values)
        offsets = self.crow.expand(values.shape[0], -1).contiguous()
        return torch.segment_reduce(values, "sum", offsets=offsets, axis=1)


class Workspace:
    """Two reusable ``[nodes, d]`` buffers for the intermediate layers of a power sum.

    A fresh tensor of that size (2.6 MB on Amazon-book) is new memory from the
    allocator, which on CPU costs page faults and zeroing on every touch: reusing two
    buffers made one CSR product 1.2-1.6 ms instead of 1.6-13 ms on this project's
    two-core VMs. Only intermediates live here; whatever autograd or the caller keeps
    is allocated fresh, so no result is ever overwritten. One graph's propagations
    run one at a time (forward, then backward), so one pair per graph suffices.
    """

    def __init__(self) -> None:
        self._buffers: list[Tensor] = []

    def pair(self, like: Tensor) -> list[Tensor]:
        if not self._buffers or self._buffers[0].shape != like.shape or self._buffers[0].dtype != like.dtype:
            self._buffers = [torch.empty_like(like, memory_format=torch.contiguous_format) for _ in range(2)]
        return self._buffers


@dataclass
class Graph:
    """A normalized adjacency on a device, ready for repeated propagation.

    ``values`` are the normalized weights; :meth:`dropped` gives a view of the graph
    with edges zeroed (not removed, not rescaled: the reference's edge dropout).
    """

    crow: Tensor
    col: Tensor
    values: Tensor
    perm: Tensor
    n_nodes: int
    workspace: Workspace = field(default_factory=Workspace, repr=False, compare=False)

    @classmethod
    def from_scipy(cls, adj: sp.csr_matrix, device: torch.device | str = "cpu") -> Graph:
        adj = adj.tocsr()
        adj.sort_indices()
        n = int(adj.shape[0])
        # int32 indices: MKL's CSR product is ~25% faster with them on CPU.
        idx_dtype = torch.int32 if adj.nnz < 2**31 else torch.int64
        perm = _transpose_permutation(adj.indptr, adj.indices, n)
        return cls(
            crow=torch.from_numpy(adj.indptr.astype(np.int64)).to(device, idx_dtype),
            col=torch.from_numpy(adj.indices.astype(np.int64)).to(device, idx_dtype),
            values=torch.from_numpy(adj.data.astype(np.float32)).to(device),
            perm=torch.from_numpy(perm).to(device),
            n_nodes=n,
        )

    @classmethod
    def from_edges(cls, rows: Tensor, cols: Tensor, values: Tensor, n: int) -> Graph:
        """A graph from an edge list sorted by (row, col) with a symmetric pattern."""
        p = EdgePattern.from_sorted(rows, cols, n)
        return cls(p.crow, p.cols, values, p.perm, n)

    def pattern(self) -> EdgePattern:
        """This graph's sparsity pattern, for per-edge kernels (shares its index arrays)."""
        return EdgePattern(self.edges()[0], self.col, self.crow, self.perm, self.n_nodes)

    def edges(self) -> tuple[Tensor, Tensor]:
        """Row and column of every stored entry, in CSR order (int64, on the device)."""
        rows = torch.repeat_interleave(torch.arange(self.n_nodes, device=self.device), self.crow.long().diff())
        return rows, self.col.long()

    @property
    def nnz(self) -> int:
        return int(self.values.numel())

    @property
    def device(self) -> torch.device:
        return self.values.device

    def operator(self, values: Tensor | None = None) -> Propagation:
        """A propagation operator; ``values`` replaces the edge weights (same pattern).

        Built for the active sparse backend (:mod:`rlmrec.sparse`)."""
        v = self.values if values is None else values
        if sparse.active() == "pyg":
            return PygOperator(self.crow, self.col, v, self.n_nodes)
        a = _csr(self.crow, self.col, v, self.n_nodes)
        # Untouched normalized weights are symmetric, so A^T is A itself. (index_select:
        # a 1-D gather 4x faster than v[perm] here.)
        a_t = a if values is None else _csr(self.crow, self.col, v.index_select(0, self.perm), self.n_nodes)
        return GraphOperator(a, a_t, self.workspace)

    def dropped(self, keep_rate: float) -> Propagation:
        """Edge dropout as in the reference: each stored entry (both directions
        independently) survives with probability ``keep_rate``; values are not rescaled."""
        if keep_rate >= 1.0:
            return self.operator()
        # values * mask, not where(mask, values, 0): the same numbers, half the time.
        return self.operator(self.values * self._kept(keep_rate))

    def _kept(self, keep_rate: float) -> Tensor:
        """Whether each stored entry survives: a float32 uniform per entry below
        ``keep_rate``. On CPU, NumPy's PCG64 is twice as fast as torch's Mersenne
        Twister here; it is reseeded from torch's RNG on every call, so
        ``torch.manual_seed`` determines every draw and there is no extra RNG state
        to checkpoint."""
        if self.device.type != "cpu":
            return torch.rand(self.nnz, device=self.device) < keep_rate
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        # float32 on both sides, as torch compares a float32 tensor with a scalar.
        return torch.from_numpy(rng.random(self.nnz, dtype=np.float32) < np.float32(keep_rate))


class Propagation(Protocol):
    """``x -> A x`` for one graph, whatever the backend."""

    def __call__(self, x: Tensor) -> Tensor: ...

    def power_sum(self, x: Tensor, n_layers: int) -> Tensor: ...


@dataclass
class GraphOperator:
    """``A`` and ``A^T`` as CSR tensors; calling it propagates with a cheap backward."""

    a: Tensor
    a_t: Tensor
    workspace: Workspace = field(default_factory=Workspace)

    def __call__(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return spmm(self.a, x.contiguous())
        out: Tensor = _SymmetricPatternSpMM.apply(x, self.a, self.a_t)
        return out

    def power_sum(self, x: Tensor, n_layers: int) -> Tensor:
        """``x + A x + A^2 x + ... + A^n x`` (LightGCN's layer sum) as one autograd
        node whose backward is Horner's rule, ``g + A^T (g + A^T (g + ...))``:
        the same n sparse products as layer-by-layer autograd, without its per-layer
        bookkeeping and gradient accumulation buffers."""
        if not torch.is_grad_enabled() or not x.requires_grad:
            return _power_sum(self.a, x, n_layers, self.workspace)
        out: Tensor = _PowerSum.apply(x, self.a, self.a_t, n_layers, self.workspace)
        return out


def _power_sum(a: Tensor, x: Tensor, n_layers: int, ws: Workspace) -> Tensor:
    x = x.contiguous()
    if n_layers == 0:
        return x.clone()
    buffers = ws.pair(x)
    layer = spmm(a, x, out=buffers[0])
    out = x + layer  # the first add makes the result: no separate copy of x
    for i in range(1, n_layers):
        layer = spmm(a, layer, out=buffers[i % 2])
        out.add_(layer)
    return out


class _PowerSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, a_t: Tensor, n_layers: int, ws: Workspace) -> Tensor:
        ctx.a_t, ctx.n_layers, ctx.ws = a_t, n_layers, ws
        return _power_sum(a, x, n_layers, ws)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        grad = grad.contiguous()
        buffers = ctx.ws.pair(grad)
        acc = grad
        for i in range(ctx.n_layers):
            # Horner's step A^T acc + grad, as torch.sparse.mm then add_ (bit for bit);
            # the last one into fresh memory, which autograd keeps.
            acc = spmm(ctx.a_t, acc, out=buffers[i % 2] if i < ctx.n_layers - 1 else None).add_(grad)
        return acc, None, None, None, None


class PygOperator:
    """The same product through torch-sparse (``[pyg]`` extra): its ``SparseTensor``
    matmul with its own autograd (which also differentiates the edge values)."""

    def __init__(self, crow: Tensor, col: Tensor, values: Tensor, n: int) -> None:
        from torch_sparse import SparseTensor

        self.a = SparseTensor(
            rowptr=crow.long(), col=col.long(), value=values, sparse_sizes=(n, n), is_sorted=True, trust_data=True
        )

    def __call__(self, x: Tensor) -> Tensor:
        out: Tensor = self.a.matmul(x)
        return out

    def power_sum(self, x: Tensor, n_layers: int) -> Tensor:
        out, layer = x, x
        for _ in range(n_layers):
            layer = self(layer)
            out = out + layer
        return out


def propagation_probe(train: sp.csr_matrix, device: torch.device) -> Callable[[], None]:
    """A representative sparse workload on ``train``'s graph for timing the backends:
    a 3-layer propagation and an edge scatter, forward and backward. The graph is
    built only when the probe first runs (the ``torch``/``pyg`` settings never do)."""
    state: dict[str, Any] = {}

    def probe() -> None:
        if not state:
            graph = Graph.from_scipy(normalized_adjacency(train), device)
            state["graph"], state["edges"] = graph, graph.edges()
            state["x"] = torch.randn(graph.n_nodes, 32, device=device, requires_grad=True)
        graph, (rows, cols), x = state["graph"], state["edges"], state["x"]
        out = graph.operator().power_sum(x, 3)
        out = out + sparse.scatter_sum(x.index_select(0, cols), rows, graph.n_nodes)
        out.sum().backward()

    return probe
