"""Rebuild pickled SciPy sparse matrices from checked arrays only.

A sparse matrix pickles as its attribute dict: the shape, the index arrays and the
values. SciPy's compiled routines trust those arrays, so a file that lies crashes the
process or corrupts data: a negative row index in a COO matrix makes ``tocsr()`` write
outside its buffer (a segmentation fault, or an interaction silently lost), and an
``indptr`` past the end reads outside it. :class:`SparseRebuilder` gives the unpickler,
in place of each sparse class, a stand-in subclass whose ``__setstate__`` checks every
array (dtype, 1-D, lengths, ``indptr`` from 0 and never decreasing, 0 <= index < shape,
finite values) before SciPy's public constructor builds the matrix from copies of
them; SciPy never sees an unchecked array. Once the pickle is read,
:meth:`SparseRebuilder.finish` turns each object into an instance of the real class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlmrec.errors import DataError

_INT64_MAX = int(np.iinfo(np.int64).max)


class _Corrupt(ValueError):
    """What is wrong with one matrix's state; :class:`SparseRebuilder` adds the file."""


class SparseRebuilder:
    """The stand-in classes of one unpickling, and the objects they created."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self._classes: dict[type, type] = {}
        self._created: list[Any] = []  # keeps them alive, so ids stay unique
        self._built: set[int] = set()

    def stand_in(self, real: type, kind: str) -> type:
        """What the unpickler hands out for ``real`` (``kind``: coo, csr or csc)."""
        cls = self._classes.get(real)
        if cls is None:
            cls = self._classes[real] = self._make(real, kind)
        return cls

    def _make(self, real: type, kind: str) -> type:
        rebuilder, where = self, self.where

        def __new__(klass: type, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs:  # REDUCE calling the class: SciPy's constructor on raw arrays
                raise DataError(
                    f"{where}: refusing to call {real.__name__}(...): sparse matrices are rebuilt from their state only"
                )
            obj: Any = object.__new__(klass)
            rebuilder._created.append(obj)
            return obj

        def __init__(obj: Any, *args: Any, **kwargs: Any) -> None:
            raise DataError(
                f"{where}: refusing to call {real.__name__}(): sparse matrices are rebuilt from their state only"
            )

        def __setstate__(obj: Any, state: object) -> None:
            if id(obj) in rebuilder._built:  # a second BUILD would replace checked arrays
                raise rebuilder._error(real, "state set twice")
            try:
                fresh = rebuild(real, kind, state)
            except _Corrupt as problem:
                raise rebuilder._error(real, str(problem)) from None
            obj.__dict__.clear()
            obj.__dict__.update(fresh.__dict__)
            rebuilder._built.add(id(obj))

        # No __slots__ of its own: the same layout as ``real``, so ``__class__`` can be switched back.
        namespace = {"__slots__": (), "__new__": __new__, "__init__": __init__, "__setstate__": __setstate__}
        stand_in: type = type(real.__name__, (real,), namespace)
        stand_in._rlmrec_real = real  # type: ignore[attr-defined]
        return stand_in

    def _error(self, real: type, problem: str) -> DataError:
        return DataError(
            f"{self.where}: corrupt sparse matrix ({real.__name__}): {problem}; re-download or regenerate it"
        )

    def finish(self) -> None:
        """Every object is built: each becomes its real class. One without state (the
        pickle never set its arrays) is refused."""
        for obj in self._created:
            real = type(obj)._rlmrec_real
            if id(obj) not in self._built:
                raise self._error(real, "rebuilt without its arrays")
            obj.__class__ = real


def is_stand_in(cls: object) -> bool:
    return isinstance(cls, type) and "_rlmrec_real" in cls.__dict__


def rebuild(real: type, kind: str, state: object) -> Any:
    """A new ``real`` matrix from a pickled state dict, every array checked first.
    Flags in the state (sorted, canonical) are dropped: SciPy recomputes them."""
    if not isinstance(state, dict):
        raise _Corrupt(f"its state is a {type(state).__name__}, not a dict")
    shape = _shape(state.get("_shape", state.get("shape")))
    try:
        if kind == "coo":
            data, rows, cols = _coo(state, shape)
            return real((data, (rows, cols)), shape=shape)
        data, indices, indptr = _compressed(state, shape, kind)
        return real((data, indices, indptr), shape=shape)
    except (ValueError, TypeError) as error:  # e.g. a value dtype SciPy does not support
        if isinstance(error, _Corrupt):
            raise
        raise _Corrupt(str(error).splitlines()[0]) from None


def _shape(value: object) -> tuple[int, int]:
    dims = list(value) if isinstance(value, tuple | list) else []
    integers = all(isinstance(n, int | np.integer) and not isinstance(n, bool | np.bool_) for n in dims)
    if len(dims) != 2 or not integers or not all(0 <= int(n) <= _INT64_MAX for n in dims):
        raise _Corrupt(f"shape {value!r}: expected (rows, columns), two integers >= 0")
    return int(dims[0]), int(dims[1])


def _array(value: object, what: str) -> np.ndarray:
    if value is None:
        raise _Corrupt(f"no {what}")
    if not isinstance(value, np.ndarray):
        raise _Corrupt(f"{what}: expected a numpy array, got {type(value).__name__}")
    if value.ndim != 1:
        raise _Corrupt(f"{what}: expected a 1-D array, got shape {value.shape}")
    return value


def _integers(value: object, what: str) -> np.ndarray:
    """A private int64 copy (a file may hand the same array to two matrices, or a read-only buffer)."""
    array = _array(value, what)
    if array.dtype.kind not in "iu":
        raise _Corrupt(f"{what} of dtype {array.dtype}; expected integers")
    if array.size and array.dtype.kind == "u" and int(array.max()) > _INT64_MAX:
        raise _Corrupt(f"{what}: value {int(array.max())} is too large")
    return array.astype(np.int64)


def _in_range(indices: np.ndarray, axis: str, bound: int) -> None:
    if not indices.size:
        return
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= bound:
        bad = lo if lo < 0 else hi
        where = f"outside 0..{bound - 1}" if bound else f"in a matrix with 0 {axis}s"
        raise _Corrupt(f"{axis} index {bad} {where}")


def _values(value: object, count: int, of: str) -> np.ndarray:
    array = _array(value, "values")
    if array.dtype.kind not in "biufc":
        raise _Corrupt(f"values of dtype {array.dtype}; expected numbers")
    if len(array) != count:
        raise _Corrupt(f"{len(array)} values for {count} {of}")
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise _Corrupt("non-finite values (NaN/inf) among the stored entries")
    return array.astype(array.dtype.newbyteorder("="))  # a private, native-order copy


def _coo(state: dict[Any, Any], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "coords" in state:  # scipy >= 1.13
        coords = state["coords"]
        if not isinstance(coords, tuple | list) or len(coords) != 2:
            raise _Corrupt("coords: expected (row indices, column indices)")
        raw_rows, raw_cols = coords
    else:  # the published files' layout (scipy < 1.13)
        raw_rows, raw_cols = state.get("row"), state.get("col")
    rows = _integers(raw_rows, "row indices")
    cols = _integers(raw_cols, "column indices")
    if len(cols) != len(rows):
        raise _Corrupt(f"{len(cols)} column indices for {len(rows)} row indices")
    data = _values(state.get("data"), len(rows), "row indices")
    _in_range(rows, "row", shape[0])
    _in_range(cols, "column", shape[1])
    return data, rows, cols


def _compressed(state: dict[Any, Any], shape: tuple[int, int], kind: str) -> tuple[np.ndarray, ...]:
    """CSR (rows compressed, column indices) or CSC (the transpose)."""
    major, minor = shape if kind == "csr" else shape[::-1]
    major_axis, minor_axis = ("row", "column") if kind == "csr" else ("column", "row")
    indptr = _integers(state.get("indptr"), "indptr")
    if len(indptr) != major + 1:
        raise _Corrupt(f"indptr has {len(indptr)} entries; expected {major + 1} ({major_axis}s + 1)")
    if indptr[0] != 0:
        raise _Corrupt(f"indptr starts at {indptr[0]}, not 0")
    drops = np.flatnonzero(np.diff(indptr) < 0)
    if drops.size:
        raise _Corrupt(f"indptr decreases (at position {drops[0] + 1})")
    indices = _integers(state.get("indices"), f"{minor_axis} indices")
    nnz = int(indptr[-1])
    if nnz > len(indices):
        raise _Corrupt(f"indptr ends at {nnz} but there are {len(indices)} indices")
    data = _values(state.get("data"), len(indices), f"{minor_axis} indices")
    # Entries past indptr[-1] are unused; SciPy would prune them, so only the rest must be valid.
    indices, data = indices[:nnz], data[:nnz]
    _in_range(indices, minor_axis, minor)
    return data, indices, indptr
