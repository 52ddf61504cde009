"""What ``rlmrec queue`` submits: the cross product of models, variants, datasets,
seeds and an override grid, each fully resolved and validated before anything is
written, so a typo fails at queue time instead of hours later on a worker.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_origin

from rlmrec.config import _section_types, canonical_model, canonical_variant, parse_overrides, resolve_config
from rlmrec.data.layout import available_datasets, check_dataset, dataset_names, resolve_data_root
from rlmrec.data.preflight import DatasetFacts, check_fit, folder_facts
from rlmrec.errors import ConfigError
from rlmrec.registry import MODELS, VARIANTS, embeddings_reason
from rlmrec.store.records import RunSpec


def names(value: str, what: str, options: Sequence[str]) -> list[str]:
    """``all``, one name, or a comma list, de-duplicated in order."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"empty {what}: give a name, a comma list or 'all'")
    if parts == ["all"]:
        return list(options)
    return list(dict.fromkeys(parts))


def _list_keys() -> set[str]:
    """Keys whose value is itself a list (``topk=5,10,20``): never expanded as a grid."""
    keys = set()
    for model, spec in MODELS.items():
        for variant in spec.variants:
            cfg = resolve_config(model, variant, "any")
            for section in cfg.sections():
                keys |= {k for k, kind in _section_types(section).items() if get_origin(kind) is tuple}
    return keys


def grid(overrides: Sequence[str]) -> list[dict[str, str]]:
    """``["lr=1e-3,1e-4", "kd_weight=0.01"]`` -> one dict per grid point."""
    pairs = parse_overrides(list(overrides))
    list_keys = _list_keys()
    axes = [
        [(key, v.strip()) for v in value.split(",")] if key not in list_keys and "," in value else [(key, value)]
        for key, value in pairs.items()
    ]
    for axis in axes:
        if any(not v for _, v in axis):
            raise ConfigError(f"malformed --set '{axis[0][0]}=...': empty value in the comma list")
    return [dict(point) for point in itertools.product(*axes)]


@dataclass(frozen=True)
class Submission:
    models: str
    variants: str
    datasets: str
    n_seeds: int | None = None
    seeds: Sequence[int] = ()
    overrides: Sequence[str] = ()
    epochs: int | None = None
    device: str | None = None
    priority: int = 0
    tags: Sequence[str] = ()
    note: str | None = None
    group: str | None = None
    data_root: str | None = None


def new_group() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def plan(sub: Submission) -> list[RunSpec]:
    """Every run of the submission, validated; raises before anything is queued."""
    models = [canonical_model(m) for m in names(sub.models, "model", list(MODELS))]
    variants = list(dict.fromkeys(canonical_variant(v) for v in names(sub.variants, "variant", list(VARIANTS))))
    root = resolve_data_root(sub.data_root)
    # "all" is the researcher's own datasets (the data root's), so a queue over
    # amazon/yelp/steam does not also train the demo; the demo only when there are none.
    datasets = names(sub.datasets, "dataset", available_datasets(root) or dataset_names(root))
    facts: dict[str, DatasetFacts] = {}
    for dataset in datasets:
        # Con, Gen and the semantic baseline read the profile embeddings.
        folder = check_dataset(dataset, root, embeddings=any(embeddings_reason(m, v) for m in models for v in variants))
        # Read as training will read it: once per dataset, whatever the number of runs.
        facts[dataset] = folder_facts(folder, dataset)
    if sub.n_seeds is not None and sub.n_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1 (got {sub.n_seeds})")
    if sub.n_seeds is not None and sub.seeds:
        raise ConfigError("give --seeds N or --seed S (repeatable), not both")
    points = grid(sub.overrides)
    group = sub.group or new_group()
    flags: dict[str, Any] = {"epochs": sub.epochs, "device": sub.device}
    specs = []
    every_variant = sub.variants.strip() == "all"
    for model, variant, dataset, point in itertools.product(models, variants, datasets, points):
        if every_variant and variant not in MODELS[model].variants:
            continue  # "all" means the variants each model has ("semantic" is base only)
        cfg = resolve_config(model, variant, dataset, point, **flags)
        check_fit(facts[dataset], cfg)
        seeds = list(sub.seeds) if sub.seeds else [cfg.train.seed + i for i in range(sub.n_seeds or 1)]
        for seed in seeds:
            cfg.train.seed = seed
            specs.append(
                RunSpec(
                    model=model,
                    variant=variant,
                    dataset=dataset,
                    seed=seed,
                    config=cfg.to_dict(),
                    group=group,
                    priority=sub.priority,
                    tags=tuple(sub.tags),
                    note=sub.note,
                    data_root=str(root),
                )
            )
    return specs
