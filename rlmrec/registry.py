"""The registry of backbones and variants, and how a (backbone, variant) pair
becomes a model.

A new backbone is one file (a :class:`~rlmrec.models.base.Backbone` subclass, built
as ``Cls(cfg, dataset, device)``), its settings dataclass in the torch-free
``models/configs.py``, and one ``MODELS`` entry naming both.

Importing this module does not import torch: the queue, the run store and the
CLI's listing commands validate names and configs without the training stack.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlmrec.errors import ConfigError
from rlmrec.models.configs import (
    AutoCFConfig,
    DCCFConfig,
    GCCFConfig,
    LightGCNConfig,
    SemanticConfig,
    SGLConfig,
    SimGCLConfig,
)

if TYPE_CHECKING:
    import torch

    from rlmrec.align import Alignment
    from rlmrec.data.dataset import Dataset
    from rlmrec.models.base import Backbone
    from rlmrec.recommender import Recommender


@dataclass(frozen=True)
class ModelSpec:
    """A backbone, its typed config, and the preset keys it deliberately ignores."""

    name: str
    backbone_path: str  # "module:Class" of a Backbone subclass, imported on first use
    config: type
    summary: str
    # Keys present in the published presets that this backbone does not use.
    unused_preset_keys: frozenset[str] = frozenset()
    # Preset names that differ from the config's (the base presets say "temperature").
    renamed_preset_keys: tuple[tuple[str, str], ...] = ()
    # Keys whose per-dataset preset values the reference never reads.
    common_only_keys: frozenset[str] = frozenset()
    variants: tuple[str, ...] = ("base", "con", "gen")
    # Reads the profile embeddings even as 'base' (the semantic baseline ranks by them).
    reads_profiles: bool = False

    def backbone(self) -> type[Backbone[Any]]:
        module, _, name = self.backbone_path.partition(":")
        cls: type[Backbone[Any]] = getattr(importlib.import_module(module), name)
        return cls


MODELS: dict[str, ModelSpec] = {
    "lightgcn": ModelSpec(
        "lightgcn", "rlmrec.models.lightgcn:LightGCN", LightGCNConfig, "LightGCN (He et al., SIGIR 2020)"
    ),
    "gccf": ModelSpec(
        "gccf",
        "rlmrec.models.gccf:GCCF",
        GCCFConfig,
        "LR-GCCF (Chen et al., AAAI 2020)",
        # The published GCCF configs carry keep_rate, but GCCF never drops edges.
        unused_preset_keys=frozenset({"keep_rate"}),
    ),
    "sgl": ModelSpec(
        "sgl",
        "rlmrec.models.sgl:SGL",
        SGLConfig,
        "SGL, edge drop (Wu et al., SIGIR 2021)",
        renamed_preset_keys=(("temperature", "cl_temperature"),),
        common_only_keys=frozenset({"layer_num"}),
    ),
    "simgcl": ModelSpec(
        "simgcl",
        "rlmrec.models.simgcl:SimGCL",
        SimGCLConfig,
        "SimGCL (Yu et al., SIGIR 2022)",
        # keep_rate 1.0 in every published SimGCL preset: it never drops edges.
        unused_preset_keys=frozenset({"keep_rate"}),
        renamed_preset_keys=(("temperature", "cl_temperature"),),
    ),
    "dccf": ModelSpec(
        "dccf",
        "rlmrec.models.dccf:DCCF",
        DCCFConfig,
        "DCCF (Ren et al., SIGIR 2023)",
        renamed_preset_keys=(("temperature", "cl_temperature"),),
    ),
    "autocf": ModelSpec(
        "autocf",
        "rlmrec.models.autocf:AutoCF",
        AutoCFConfig,
        "AutoCF, masked graph autoencoder (Xia et al., WWW 2023)",
    ),
    "semantic": ModelSpec(
        "semantic",
        "rlmrec.models.semantic:Semantic",
        SemanticConfig,
        "Semantic embeddings only: profile similarity, no training (the paper's first row)",
        variants=("base",),
        reads_profiles=True,
    ),
}

VARIANTS: dict[str, str] = {
    "base": "the backbone alone",
    "con": "RLMRec-Con: contrastive alignment with profile embeddings",
    "gen": "RLMRec-Gen: generative (masked reconstruction) alignment",
}
# The reference code's names for the variants.
VARIANT_ALIASES = {"plus": "con", "gene": "gen"}


def embeddings_reason(model: str, variant: str) -> str | None:
    """Why a (model, variant) run needs the dataset's profile embeddings, or None."""
    if variant != "base":
        return f"variant '{variant}' needs"
    spec = MODELS.get(model)
    return f"'{model}' ranks by" if spec is not None and spec.reads_profiles else None


def build_model(
    model: str, variant: str, model_cfg: Any, align_cfg: Any, dataset: Dataset, device: torch.device
) -> Recommender:
    """Instantiate backbone + alignment for ``dataset`` on ``device``."""
    import torch

    from rlmrec.align import ContrastiveAlignment, GenerativeAlignment
    from rlmrec.recommender import Recommender

    spec = MODELS[model]
    if variant not in spec.variants:
        raise ConfigError(f"model '{model}' has no variant '{variant}'; it has: {', '.join(spec.variants)}")
    # The backbone's parameters are created before the alignment's: that order fixes
    # the seeded initialization.
    backbone = spec.backbone().for_variant(model_cfg, dataset, device, variant)
    alignment: Alignment | None = None
    if variant != "base":
        if dataset.user_emb is None or dataset.item_emb is None:
            raise ConfigError(
                f"variant '{variant}' needs profile embeddings, but dataset '{dataset.name}' has no "
                "usr_emb_np.pkl/itm_emb_np.pkl; run the 'base' variant or add the embeddings"
            )
        user_prf = torch.from_numpy(dataset.user_emb).to(device)
        item_prf = torch.from_numpy(dataset.item_emb).to(device)
        if variant == "con":
            alignment = ContrastiveAlignment(align_cfg, user_prf, item_prf, backbone.out_dim, backbone.uses_negatives)
        else:
            alignment = GenerativeAlignment(align_cfg, user_prf, item_prf, backbone.out_dim, backbone.embedding_size)
    return Recommender(backbone, alignment, model_cfg.reg_weight).to(device)
