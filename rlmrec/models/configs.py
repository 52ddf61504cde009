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


@dataclass
class SGLConfig:
    embedding_size: int = 32
    # Reference QUIRK: SGL propagates with the model-level layer_num; the published
    # per-dataset values (steam: 2) are never read. The preset loader reproduces that.
    layer_num: int = 3
    keep_rate: float = 0.8  # edge keep rate of the two contrastive views
    reg_weight: float = 1e-5
    cl_weight: float = 0.1
    cl_temperature: float = 0.2  # the base presets call it "temperature"
    augmentation: Literal["edge_drop"] = "edge_drop"  # the published presets' only choice


@dataclass
class SimGCLConfig:
    embedding_size: int = 32
    layer_num: int = 3
    reg_weight: float = 1e-5
    cl_weight: float = 0.1
    cl_temperature: float = 0.2  # the base presets call it "temperature"
    eps: float = 0.9  # size of the uniform noise added after every propagation layer


@dataclass
class SemanticConfig:
    # The paper's "semantic embeddings only" row: no training, rank by the similarity
    # of a user's and an item's profile embeddings. Cosine (the published ada-002
    # embeddings are unit-length, so cosine and dot product agree on them).
    similarity: Literal["cosine", "dot"] = "cosine"
    reg_weight: float = 0.0  # nothing is trained


@dataclass
class DCCFConfig:
    embedding_size: int = 32
    layer_num: int = 2
    intent_num: int = 128  # model-level in the reference; no dataset sets its own
    reg_weight: float = 1e-4  # includes the two intent matrices: reg covers ALL parameters
    cl_weight: float = 1e-3
    cl_temperature: float = 0.1  # the base presets call it "temperature"


@dataclass
class AutoCFConfig:
    embedding_size: int = 32
    gcn_layer: int = 2  # encoder GCN layers (per dataset in the presets)
    gt_layer: int = 1  # graph-transformer decoder layers
    head_num: int = 4  # attention heads of the decoder; must divide embedding_size
    seed_num: int = 100  # subgraph seeds drawn at each resampling
    mask_depth: int = 2  # edges within this many hops of a seed leave the encoder graph
    fix_steps: int = 10  # resample seeds (and both graphs) every this many batches
    # Not an edge keep rate: the share of ALL nodes drawn at random, with
    # replacement, as extra endpoints for the decoder's random edges.
    keep_rate: float = 0.2
    reg_weight: float = 1e-6
    ssl_reg: float = 1.0  # weight of the two same-type uniformity terms
