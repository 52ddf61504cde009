"""Backbone settings: plain dataclasses, importable without torch (the queue and
the run store validate configs without loading the training stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class LightGCNConfig:
    embedding_size: int = 32  # paper: 32 for every backbone
    layer_num: int = 3  # published default; presets set 2 or 3 per dataset
    keep_rate: float = 0.8  # reference QUIRK: drops 20% of edges on every training pass
    reg_weight: float = 1e-6  # times the summed squared norm of ALL parameters


@dataclass
class GCCFConfig:
    embedding_size: int = 32  # paper: 32 for every backbone
    layer_num: int = 3  # published default; presets use 2 on all three datasets
    reg_weight: float = 1e-6  # times the summed squared norm of ALL parameters
    # Reference QUIRK: self-loops are added for plain GCCF only; its Con/Gen variants
    # train without them. "reference" reproduces that; "always"/"never" are the fixes.
    self_loops: Literal["reference", "always", "never"] = "reference"
