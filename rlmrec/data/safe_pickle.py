"""Load untrusted pickles (the published dataset files) without running their code.

A pickle can name any importable callable and have it called on load, so a
downloaded ``.pkl`` could run ``os.system``. :func:`safe_load` only lets a pickle
rebuild numpy arrays, scipy sparse matrices and plain builtin containers; any
other global is refused with a :class:`DataError` before it is imported. Sparse
matrices are rebuilt from arrays checked first (``safe_sparse.py``): SciPy trusts
the arrays it is given, and a lying index crashes it.
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import pickle
from pathlib import Path
from typing import Any

import scipy.sparse as sp

from rlmrec.data.safe_sparse import SparseRebuilder, is_stand_in
from rlmrec.errors import DataError

_BUILTINS = (
    "dict", "list", "tuple", "set", "frozenset",
    "str", "bytes", "bytearray", "int", "float", "complex", "bool",
)  # fmt: skip
_SPARSE = ("coo", "csr", "csc")

# Protocols 0-2 write Python 2 module names; Python 3 maps them back the same way.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it (bytes as latin-1 text), nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r})")
    return codecs.encode(text, "latin1")


def _plain_reconstructor(cls: type, base: type, state: object) -> object:
    """``copyreg._reconstructor`` limited to a bare sparse matrix awaiting its state.

    Protocols 0/1 rebuild a sparse matrix as ``_reconstructor(coo_matrix, object, None)``;
    any other base would run that base's ``__new__``/``__init__`` on pickle data, and
    nothing else in the allow-list pickles this way.
    """
    if base is not object or state is not None or not is_stand_in(cls):
        raise pickle.UnpicklingError("copyreg._reconstructor is only allowed for a sparse matrix with base=object")
    return cls.__new__(cls)  # type: ignore[call-overload]  # _reconstructor's object.__new__, with bookkeeping


def _numpy_module(name: str) -> Any:
    """numpy 2 moved ``numpy.core`` to ``numpy._core``; importing the old name warns."""
    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{name}")


def _build_allowlist() -> dict[tuple[str, str], Any]:
    """(module, name) as written in the pickle -> the object to hand back."""
    import numpy as np

    multiarray, numeric = _numpy_module("multiarray"), _numpy_module("numeric")
    allowed: dict[tuple[str, str], Any] = {("builtins", n): getattr(builtins, n) for n in _BUILTINS}
    allowed[("builtins", "object")] = object  # the base argument of _plain_reconstructor
    allowed[("copyreg", "_reconstructor")] = _plain_reconstructor
    allowed[("_codecs", "encode")] = _latin1_encode
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for core in ("numpy.core", "numpy._core"):  # pickles from numpy 1.x and 2.x
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    for kind in _SPARSE:
        for cls in (f"{kind}_matrix", f"{kind}_array"):
            # Public path, current private module, and the pre-1.8 module (deprecated).
            for module in ("scipy.sparse", f"scipy.sparse._{kind}", f"scipy.sparse.{kind}"):
                allowed[(module, cls)] = getattr(sp, cls)
    return allowed


_ALLOWED = _build_allowlist()
# Handed out as stand-ins that check the arrays before SciPy sees them.
_SPARSE_KIND = {getattr(sp, f"{kind}_{form}"): kind for kind in _SPARSE for form in ("matrix", "array")}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals from :data:`_ALLOWED` only; never imports what the pickle names."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self._path = path
        self.sparse = SparseRebuilder(path)

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((_PY2_MODULES.get(module, module), name))
        if found is None:
            raise DataError(
                f"{self._path}: refusing to unpickle {module}.{name}: only numpy arrays, "
                "scipy sparse matrices and plain containers are allowed"
            )
        kind = _SPARSE_KIND.get(found)
        return self.sparse.stand_in(found, kind) if kind is not None else found


def safe_load(path: Path) -> object:
    """Unpickle ``path`` allowing only numpy arrays, scipy sparse matrices and builtins.

    Raises :class:`DataError` (one line) for a missing, unreadable, corrupt or
    disallowed file.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            unpickler = _RestrictedUnpickler(fh, path)
            obj = unpickler.load()
        unpickler.sparse.finish()
        return obj
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable pickle ({reason}); re-download or regenerate it") from None
