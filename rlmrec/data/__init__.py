"""Datasets in the RLMRec folder format: loading, validation and the built-in demo.

``layout`` (paths and checks) imports without NumPy/SciPy; the loaders load on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlmrec.data.layout import resolve_data_root

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset, load_dataset, load_folder, load_profiles

_LAZY = {"Dataset", "load_dataset", "load_folder", "load_profiles"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("rlmrec.data.dataset"), name)
    raise AttributeError(f"module 'rlmrec.data' has no attribute {name!r}")


__all__ = ["Dataset", "load_dataset", "load_folder", "load_profiles", "resolve_data_root"]
