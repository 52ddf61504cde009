"""Backbones: one file each, all behind the interface in ``base.py``.

The configs import without torch; the modules (and torch) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlmrec.models.configs import GCCFConfig, LightGCNConfig

if TYPE_CHECKING:
    from rlmrec.models.base import Backbone, Batch
    from rlmrec.models.gccf import GCCF
    from rlmrec.models.lightgcn import LightGCN

_LAZY = {
    "Backbone": "rlmrec.models.base",
    "Batch": "rlmrec.models.base",
    "GCCF": "rlmrec.models.gccf",
    "LightGCN": "rlmrec.models.lightgcn",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlmrec.models' has no attribute {name!r}")


__all__ = ["GCCF", "Backbone", "Batch", "GCCFConfig", "LightGCN", "LightGCNConfig"]
