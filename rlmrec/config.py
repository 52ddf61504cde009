"""Typed, layered run configuration.

Layers, later ones winning: dataclass defaults < published preset (per model,
variant and dataset) < ``--set key=value`` overrides < explicit flags. Keys are
flat (``lr``, ``layer_num``, ``kd_weight``...): the three sections never share a name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args, get_origin, get_type_hints

from rlmrec.align import ConConfig, GenConfig
from rlmrec.errors import ConfigError
from rlmrec.models.configs import AutoCFConfig
from rlmrec.registry import MODELS, VARIANT_ALIASES, VARIANTS

PAPER_DATASETS = ("amazon", "yelp", "steam")


@dataclass
class TrainConfig:
    lr: float = 1e-3  # Adam, as the reference
    weight_decay: float = 0.0  # regularization is the explicit reg term instead
    batch_size: int = 4096
    epochs: int = 3000  # the reference's epoch cap; early stopping ends runs long before
    test_step: int = 3  # validate after epochs 0, 3, 6, ...
    patience: int = 5  # evaluations without a better validation Recall@K before stopping
    seed: int = 2023  # the reference's seed
    topk: tuple[int, ...] = (5, 10, 20)  # the last K is the selection metric's
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Sparse products and scatter reductions: native torch, torch-sparse/torch-scatter
    # (the [pyg] extra), or auto (pyg when installed and faster on this run's graph).
    # Same numbers either way (to float rounding); only the speed differs.
    sparse_backend: Literal["torch", "pyg", "auto"] = "torch"
    # Deviation from the reference (off = faithful): also hide validation items when
    # ranking for the test split. The reference masks training items only.
    test_mask_valid: bool = False


# Preset keys in the published train section that are not settings here: Adam is the
# only optimizer; the selection metric is fixed by the protocol; evaluation batching
# changes speed, not results, so the evaluator picks its own chunk size.
_IGNORED_TRAIN_KEYS = {"optimizer", "selection_metric", "eval_batch_size"}
_RENAMED_TRAIN_KEYS = {"epoch_cap": "epochs"}


@dataclass
class RunConfig:
    """Everything that determines a run."""

    model: str
    variant: str
    dataset: str
    train: TrainConfig = field(default_factory=TrainConfig)
    model_cfg: Any = None
    align_cfg: ConConfig | GenConfig | None = None

    def sections(self) -> list[Any]:
        return [s for s in (self.train, self.model_cfg, self.align_cfg) if s is not None]

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: identity keys first, then every setting."""
        out: dict[str, Any] = {"model": self.model, "variant": self.variant, "dataset": self.dataset}
        for section in self.sections():
            for key, value in dataclasses.asdict(section).items():
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


def canonical_variant(variant: str) -> str:
    v = VARIANT_ALIASES.get(variant.lower(), variant.lower())
    if v not in VARIANTS:
        hint = _suggest(variant, [*VARIANTS, *VARIANT_ALIASES])
        raise ConfigError(f"unknown variant '{variant}'{hint}; choose one of: base, con (plus), gen (gene)")
    return v


def canonical_model(model: str) -> str:
    m = model.lower()
    if m not in MODELS:
        raise ConfigError(f"unknown model '{model}'{_suggest(model, list(MODELS))}; available: {', '.join(MODELS)}")
    return m


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@cache
def _presets() -> dict[str, Any]:
    text = resources.files("rlmrec.presets").joinpath("hyperparameters.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def preset(model: str, variant: str, dataset: str) -> dict[str, Any]:
    """The published settings: train section, then the model's ``common`` values,
    then the dataset's own (datasets outside the paper use ``common`` only)."""
    data = _presets()
    out: dict[str, Any] = {}
    for key, value in data["train"].items():
        if key not in _IGNORED_TRAIN_KEYS:
            out[_RENAMED_TRAIN_KEYS.get(key, key)] = value
    spec = MODELS[model]
    entry = data["models"].get(model, {}).get(variant, {"common": {}})  # "semantic" has no preset
    out.update(entry["common"])
    out.update(entry.get(dataset, {}))
    for key in spec.common_only_keys & set(entry["common"]):
        out[key] = entry["common"][key]  # the reference reads this one from the model level only
    for old, new in spec.renamed_preset_keys:
        if old in out:
            out[new] = out.pop(old)
    for key in spec.unused_preset_keys:
        out.pop(key, None)
    return out


def _section_types(section: Any) -> dict[str, Any]:
    return get_type_hints(type(section))


def valid_keys(cfg: RunConfig) -> list[str]:
    return [f.name for s in cfg.sections() for f in dataclasses.fields(s)]


def parse_value(key: str, raw: Any, kind: Any) -> Any:
    """Coerce ``raw`` (a string from the command line, or a JSON value) to ``kind``."""
    origin = get_origin(kind)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind is int:
            if isinstance(raw, str) and not raw.strip().lstrip("+-").isdigit():
                raw = float(raw)  # "1e3" is an integer; "2.5" and "5e-1" are not
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if kind is float:
            return float(raw)
        if origin is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(int(x) for x in items)
        if origin is Literal:
            if raw not in get_args(kind):
                raise ValueError
            return raw
        return str(raw)
    except (TypeError, ValueError):
        expected = " | ".join(map(str, get_args(kind))) if origin is Literal else getattr(kind, "__name__", str(kind))
        raise ConfigError(f"bad value for '{key}': {raw!r} (expected {expected})") from None


def apply(cfg: RunConfig, values: dict[str, Any], source: str) -> None:
    """Set flat ``values`` on the sections of ``cfg``; unknown keys are errors."""
    for key, raw in values.items():
        for section in cfg.sections():
            types = _section_types(section)
            if key in types:
                setattr(section, key, parse_value(key, raw, types[key]))
                break
        else:
            keys = valid_keys(cfg)
            hint = _suggest(key, keys)
            raise ConfigError(
                f"unknown {source} key '{key}'{hint} for {cfg.model}/{cfg.variant}; valid keys: {', '.join(keys)}"
            )


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``["lr=0.01", "topk=5,20"]`` -> ``{"lr": "0.01", "topk": "5,20"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --set '{pair}': expected key=value, e.g. --set lr=0.002")
        out[key.strip()] = value.strip()
    return out


def resolve_config(
    model: str,
    variant: str,
    dataset: str,
    overrides: list[str] | dict[str, Any] | None = None,
    **flags: Any,
) -> RunConfig:
    """Build the run config for ``model``/``variant``/``dataset`` from all layers.

    ``flags`` are explicit options (``seed``, ``epochs``, ``device``...); ``None``
    values mean "not given" and leave lower layers in place.
    """
    model, variant = canonical_model(model), canonical_variant(variant)
    spec = MODELS[model]
    if variant not in spec.variants:
        raise ConfigError(f"model '{model}' has no variant '{variant}'; it has: {', '.join(spec.variants)}")
    align_cfg = {"base": None, "con": ConConfig(), "gen": GenConfig()}[variant]
    cfg = RunConfig(model, variant, dataset, TrainConfig(), spec.config(), align_cfg)
    apply(cfg, preset(model, variant, dataset), "preset")
    if overrides:
        apply(cfg, parse_overrides(overrides) if isinstance(overrides, list) else overrides, "--set")
    apply(cfg, {k: v for k, v in flags.items() if v is not None}, "option")
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Range checks that would otherwise surface as obscure tensor errors."""
    t = cfg.train
    checks = [
        (t.lr > 0, "lr must be > 0"),
        (t.batch_size > 0, "batch_size must be > 0"),
        (t.epochs > 0, "epochs must be > 0"),
        (t.test_step > 0, "test_step must be > 0"),
        (t.patience > 0, "patience must be > 0"),
        (len(t.topk) > 0 and min(t.topk) > 0, "topk must be positive integers, e.g. 5,10,20"),
        (getattr(cfg.model_cfg, "layer_num", 0) >= 0, "layer_num must be >= 0"),
        (getattr(cfg.model_cfg, "embedding_size", 1) > 0, "embedding_size must be > 0"),
        (0 < getattr(cfg.model_cfg, "keep_rate", 1.0) <= 1, "keep_rate must be in (0, 1]"),
        (getattr(cfg.model_cfg, "cl_temperature", 1.0) > 0, "cl_temperature must be > 0"),
        (getattr(cfg.model_cfg, "eps", 0.0) >= 0, "eps must be >= 0"),
    ]
    if isinstance(cfg.model_cfg, AutoCFConfig):
        m = cfg.model_cfg
        checks.append((m.head_num > 0 and m.embedding_size % m.head_num == 0, "head_num must divide embedding_size"))
        checks.append((m.seed_num > 0 and m.fix_steps > 0, "seed_num and fix_steps must be > 0"))
        checks.append((m.mask_depth >= 1 and m.gcn_layer >= 0 and m.gt_layer >= 0, "mask_depth must be >= 1"))
    if isinstance(cfg.align_cfg, GenConfig):
        checks.append((0 < cfg.align_cfg.mask_ratio < 1, "mask_ratio must be in (0, 1)"))
        checks.append((cfg.align_cfg.re_temperature > 0, "re_temperature must be > 0"))
    if isinstance(cfg.align_cfg, ConConfig):
        checks.append((cfg.align_cfg.kd_temperature > 0, "kd_temperature must be > 0"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid config: {message}")
    if not (t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda")):
        raise ConfigError(f"bad value for 'device': {t.device!r} (expected auto, cpu, cuda or cuda:N)")
