"""Backbones: one file each, all behind the interface in ``base.py``.

The configs import without torch; the modules (and torch) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlmrec.lazy import lazy_attributes
from rlmrec.models.configs import AutoCFConfig, DCCFConfig, GCCFConfig, LightGCNConfig, SGLConfig, SimGCLConfig

if TYPE_CHECKING:
    from rlmrec.models.autocf import AutoCF
    from rlmrec.models.base import Backbone, Batch
    from rlmrec.models.dccf import DCCF
    from rlmrec.models.gccf import GCCF
    from rlmrec.models.lightgcn import LightGCN
    from rlmrec.models.sgl import SGL
    from rlmrec.models.simgcl import SimGCL

_LAZY = {
    "AutoCF": "rlmrec.models.autocf",
    "Backbone": "rlmrec.models.base",
    "Batch": "rlmrec.models.base",
    "DCCF": "rlmrec.models.dccf",
    "GCCF": "rlmrec.models.gccf",
    "LightGCN": "rlmrec.models.lightgcn",
    "SGL": "rlmrec.models.sgl",
    "SimGCL": "rlmrec.models.simgcl",
}


__getattr__ = lazy_attributes("rlmrec.models", _LAZY)


__all__ = [
    "DCCF",
    "GCCF",
    "SGL",
    "AutoCF",
    "AutoCFConfig",
    "Backbone",
    "Batch",
    "DCCFConfig",
    "GCCFConfig",
    "LightGCN",
    "LightGCNConfig",
    "SGLConfig",
    "SimGCL",
    "SimGCLConfig",
]
