"""Layered run configuration: defaults < preset < --set < flags."""

from __future__ import annotations

import json

import pytest

from rlmrec.align import ConConfig, GenConfig
from rlmrec.config import RunConfig, TrainConfig, parse_overrides, parse_value, preset, resolve_config
from rlmrec.errors import ConfigError
from rlmrec.models.gccf import GCCFConfig
from rlmrec.models.lightgcn import LightGCNConfig

# ---------------------------------------------------------------------------
# Layering
# ---------------------------------------------------------------------------


def test_published_preset_for_a_paper_dataset() -> None:
    cfg = resolve_config("lightgcn", "gen", "amazon")
    assert isinstance(cfg.model_cfg, LightGCNConfig)
    assert isinstance(cfg.align_cfg, GenConfig)
    # hyperparameters.json: models.lightgcn.gen.amazon overrides the common values.
    assert cfg.model_cfg.layer_num == 2  # common: 3
    assert cfg.model_cfg.reg_weight == 1e-7
    assert cfg.model_cfg.keep_rate == 0.8
    assert cfg.align_cfg.mask_ratio == 0.15  # common: 0.1
    assert cfg.align_cfg.recon_weight == 0.1
    assert cfg.align_cfg.re_temperature == 0.5  # common: 0.2
    # The train section: epoch_cap is renamed to epochs; topk becomes a tuple.
    t = cfg.train
    assert (t.lr, t.batch_size, t.epochs, t.test_step, t.patience, t.seed) == (1e-3, 4096, 3000, 3, 5, 2023)
    assert t.topk == (5, 10, 20)
    assert t.test_mask_valid is False


def test_dataset_outside_the_paper_gets_common_values() -> None:
    cfg = resolve_config("lightgcn", "gen", "demo")
    assert isinstance(cfg.align_cfg, GenConfig)
    assert cfg.model_cfg.layer_num == 3
    assert cfg.model_cfg.reg_weight == 1e-7
    assert cfg.align_cfg.mask_ratio == 0.1
    assert cfg.align_cfg.re_temperature == 0.2
    assert cfg.dataset == "demo"


def test_con_preset_and_base_has_no_alignment() -> None:
    con = resolve_config("gccf", "con", "steam")
    assert isinstance(con.align_cfg, ConConfig)
    assert (con.align_cfg.kd_weight, con.align_cfg.kd_temperature) == (0.01, 0.5)
    assert con.model_cfg.layer_num == 2
    base = resolve_config("lightgcn", "base", "steam")
    assert base.align_cfg is None
    assert base.model_cfg.layer_num == 2


def test_set_overrides_preset_and_flags_override_set() -> None:
    cfg = resolve_config("lightgcn", "gen", "amazon", ["layer_num=4", "seed=5", "lr=0.002"])
    assert cfg.model_cfg.layer_num == 4
    assert cfg.train.seed == 5
    assert cfg.train.lr == 0.002
    cfg = resolve_config("lightgcn", "gen", "amazon", ["seed=5"], seed=7)
    assert cfg.train.seed == 7
    # None flags mean "not given": lower layers stay.
    cfg = resolve_config("lightgcn", "gen", "amazon", ["seed=5"], seed=None, epochs=None)
    assert cfg.train.seed == 5
    assert cfg.train.epochs == 3000


def test_overrides_as_a_dict_of_json_values() -> None:
    cfg = resolve_config("lightgcn", "base", "yelp", {"layer_num": 1, "topk": [10, 20], "test_mask_valid": True})
    assert cfg.model_cfg.layer_num == 1
    assert cfg.train.topk == (10, 20)
    assert cfg.train.test_mask_valid is True


def test_resolve_does_not_leak_between_calls() -> None:
    resolve_config("lightgcn", "base", "amazon", ["layer_num=7", "seed=1"])
    again = resolve_config("lightgcn", "base", "amazon")
    assert again.model_cfg.layer_num == 3
    assert again.train.seed == 2023
    assert TrainConfig().seed == 2023


# ---------------------------------------------------------------------------
# Names: aliases, unknown model / variant / key
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "canonical"), [("plus", "con"), ("gene", "gen"), ("PLUS", "con"), ("Gen", "gen")])
def test_variant_aliases(given: str, canonical: str) -> None:
    cfg = resolve_config("lightgcn", given, "amazon")
    assert cfg.variant == canonical
    assert isinstance(cfg.align_cfg, ConConfig if canonical == "con" else GenConfig)


def test_model_name_is_case_insensitive() -> None:
    assert resolve_config("LightGCN", "base", "amazon").model == "lightgcn"


def test_unknown_model() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config("lightgnc", "base", "amazon")
    msg = str(info.value)
    assert "did you mean 'lightgcn'" in msg
    assert "lightgcn" in msg and "gccf" in msg  # the available choices
    with pytest.raises(ConfigError, match=r"available: .*lightgcn"):
        resolve_config("matrixfactorization", "base", "amazon")


def test_unknown_variant() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config("lightgcn", "gem", "amazon")
    msg = str(info.value)
    assert "did you mean" in msg
    assert "base" in msg and "con" in msg and "gen" in msg
    with pytest.raises(ConfigError, match=r"base, con .*gen"):
        resolve_config("lightgcn", "xyz", "amazon")


def test_unknown_key() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config("lightgcn", "base", "amazon", ["layer_nm=2"])
    msg = str(info.value)
    assert "layer_nm" in msg and "did you mean 'layer_num'" in msg
    assert "valid keys:" in msg and "reg_weight" in msg and "batch_size" in msg
    # An alignment key on the base variant is unknown too.
    with pytest.raises(ConfigError, match="kd_weight"):
        resolve_config("lightgcn", "base", "amazon", ["kd_weight=0.1"])
    with pytest.raises(ConfigError, match="unknown option key 'bogus'"):
        resolve_config("lightgcn", "base", "amazon", bogus=1)


@pytest.mark.parametrize("pair", ["lr", "=3", " =3", ""])
def test_malformed_set(pair: str) -> None:
    with pytest.raises(ConfigError, match="malformed --set"):
        parse_overrides([pair])
    with pytest.raises(ConfigError, match="malformed --set"):
        resolve_config("lightgcn", "base", "amazon", [pair])


def test_parse_overrides_strips_and_keeps_later_value() -> None:
    assert parse_overrides([" lr = 0.01 ", "topk=5,20", "lr=0.02"]) == {"lr": "0.02", "topk": "5,20"}
    assert parse_overrides(["device=cuda:0"]) == {"device": "cuda:0"}
    assert parse_overrides(["a=b=c"]) == {"a": "b=c"}


# ---------------------------------------------------------------------------
# Type coercion
# ---------------------------------------------------------------------------


def test_coercion_from_strings() -> None:
    cfg = resolve_config(
        "lightgcn",
        "gen",
        "amazon",
        [
            "layer_num=4",
            "lr=1e-3",
            "reg_weight=2.5e-7",
            "batch_size=1e3",
            "topk=5,20",
            "test_mask_valid=true",
            "mask_ratio=0.25",
        ],
    )
    assert cfg.model_cfg.layer_num == 4 and isinstance(cfg.model_cfg.layer_num, int)
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)
    assert cfg.model_cfg.reg_weight == 2.5e-7
    assert cfg.train.batch_size == 1000 and isinstance(cfg.train.batch_size, int)
    assert cfg.train.topk == (5, 20)
    assert cfg.train.test_mask_valid is True
    assert isinstance(cfg.align_cfg, GenConfig) and cfg.align_cfg.mask_ratio == 0.25


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("yes", True), ("ON", True), ("0", False), ("false", False), ("off", False), (True, True)],
)
def test_bool_coercion(raw: object, value: bool) -> None:
    assert parse_value("test_mask_valid", raw, bool) is value


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("layer_num", "2.5"),
        ("layer_num", "two"),
        ("lr", "fast"),
        ("lr", ""),
        ("test_mask_valid", "maybe"),
        ("topk", "5,x"),
        ("topk", ""),
    ],
)
def test_bad_values_are_config_errors(key: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"bad value for '{key}'"):
        resolve_config("lightgcn", "base", "amazon", [f"{key}={raw}"])


def test_int_from_json_float() -> None:
    assert parse_value("layer_num", 2.0, int) == 2
    with pytest.raises(ConfigError):
        parse_value("layer_num", 2.5, int)


def test_gccf_self_loops_literal() -> None:
    cfg = resolve_config("gccf", "base", "amazon")
    assert isinstance(cfg.model_cfg, GCCFConfig)
    assert cfg.model_cfg.self_loops == "reference"
    cfg = resolve_config("gccf", "con", "amazon", ["self_loops=always"])
    assert cfg.model_cfg.self_loops == "always"
    with pytest.raises(ConfigError) as info:
        resolve_config("gccf", "base", "amazon", ["self_loops=sometimes"])
    msg = str(info.value)
    assert "sometimes" in msg and "reference" in msg and "always" in msg and "never" in msg


# ---------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "pair", "fragment"),
    [
        ("base", "keep_rate=0", "keep_rate"),
        ("base", "keep_rate=1.5", "keep_rate"),
        ("gen", "mask_ratio=1.5", "mask_ratio"),
        ("gen", "mask_ratio=0", "mask_ratio"),
        ("gen", "re_temperature=0", "re_temperature"),
        ("con", "kd_temperature=-1", "kd_temperature"),
        ("base", "lr=0", "lr"),
        ("base", "lr=nan", "lr"),
        ("base", "batch_size=0", "batch_size"),
        ("base", "topk=0,20", "topk"),
        ("base", "layer_num=-1", "layer_num"),
        ("base", "device=tpu", "device"),
    ],
)
def test_invalid_ranges_rejected(variant: str, pair: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve_config("lightgcn", variant, "amazon", [pair])


def test_boundary_values_accepted() -> None:
    cfg = resolve_config("lightgcn", "base", "amazon", ["keep_rate=1", "layer_num=0", "device=cuda:1"])
    assert cfg.model_cfg.keep_rate == 1.0
    assert cfg.model_cfg.layer_num == 0
    assert cfg.train.device == "cuda:1"


# ---------------------------------------------------------------------------
# GCCF and keep_rate; to_dict
# ---------------------------------------------------------------------------


def test_gccf_ignores_the_presets_keep_rate() -> None:
    assert "keep_rate" not in preset("gccf", "base", "amazon")
    assert preset("lightgcn", "base", "amazon")["keep_rate"] == 0.8
    cfg = resolve_config("gccf", "base", "amazon")
    assert not hasattr(cfg.model_cfg, "keep_rate")
    assert "keep_rate" not in cfg.to_dict()
    # Set explicitly, it is an unknown key for GCCF.
    with pytest.raises(ConfigError, match="unknown --set key 'keep_rate'"):
        resolve_config("gccf", "base", "amazon", ["keep_rate=0.5"])


def test_to_dict_is_flat_and_json_serializable() -> None:
    cfg = resolve_config("lightgcn", "con", "amazon", ["topk=5,20"])
    d = cfg.to_dict()
    assert list(d)[:3] == ["model", "variant", "dataset"]
    assert (d["model"], d["variant"], d["dataset"]) == ("lightgcn", "con", "amazon")
    assert d["topk"] == [5, 20]
    for key in ("lr", "seed", "layer_num", "keep_rate", "reg_weight", "kd_weight", "kd_temperature"):
        assert key in d
    assert all(not isinstance(v, dict | tuple) for v in d.values())
    assert json.loads(json.dumps(d)) == d
    # Every setting of every section appears, and nothing else.
    assert isinstance(cfg, RunConfig)
    n_fields = sum(len(vars(s)) for s in cfg.sections())
    assert len(d) == 3 + n_fields


def test_to_dict_of_gen_and_base() -> None:
    gen = resolve_config("gccf", "gen", "yelp").to_dict()
    assert gen["mask_ratio"] == 0.05 and gen["self_loops"] == "reference"
    assert "kd_weight" not in gen
    base = resolve_config("gccf", "base", "yelp").to_dict()
    assert "mask_ratio" not in base and "kd_weight" not in base
    json.dumps(base)


# ---------------------------------------------------------------------------
# Regressions: bugs found while writing these tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["2.5e0", "5e-1"])
def test_int_with_fractional_exponent_is_rejected(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_value("layer_num", raw, int)
