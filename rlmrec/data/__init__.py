"""Datasets in the RLMRec folder format: loading, validation and the generated demo.

``layout`` (paths and checks) imports without NumPy/SciPy; the loaders load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlmrec.data.layout import resolve_data_root
from rlmrec.lazy import lazy_attributes

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset, load_dataset, load_folder, load_profiles

_LAZY = {"Dataset", "load_dataset", "load_folder", "load_profiles"}


__getattr__ = lazy_attributes("rlmrec.data", dict.fromkeys(_LAZY, "rlmrec.data.dataset"))


__all__ = ["Dataset", "load_dataset", "load_folder", "load_profiles", "resolve_data_root"]
