"""Backbones: one file each, all behind the interface in ``base.py``."""

from rlmrec.models.base import Backbone, Batch
from rlmrec.models.gccf import GCCF, GCCFConfig
from rlmrec.models.lightgcn import LightGCN, LightGCNConfig

__all__ = ["GCCF", "Backbone", "Batch", "GCCFConfig", "LightGCN", "LightGCNConfig"]
