"""How a (backbone, variant) pair becomes a model: one constructor, one registry line.

The seeded-initialization test writes out, independently of the models, the order
in which the reference creates parameters (ID tables, then the backbone's own,
then the alignment's) and replays the draws: a reordering, a missing or an extra
draw anywhere changes a tensor or the generator's next number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from helpers import random_batch, tiny_dataset
from torch import Tensor, nn

from rlmrec.align import ConConfig, GenConfig
from rlmrec.align.base import profile_mlp
from rlmrec.data import Dataset
from rlmrec.errors import ConfigError
from rlmrec.models.base import IDBackbone
from rlmrec.recommender import Recommender
from rlmrec.registry import MODELS, ModelSpec, build_model

CPU = torch.device("cpu")
SEED, D = 7, 8
CASES = [(model, variant) for model, spec in MODELS.items() for variant in spec.variants]


def _data() -> Dataset:
    return tiny_dataset(3, 12, 10, 6)


def _configs(model: str, variant: str) -> tuple[Any, ConConfig | GenConfig | None]:
    cfg = MODELS[model].config()
    if hasattr(cfg, "embedding_size"):
        cfg = dataclasses.replace(cfg, embedding_size=D)
    return cfg, {"base": None, "con": ConConfig(), "gen": GenConfig()}[variant]


def _build(model: str, variant: str, data: Dataset) -> Recommender:
    cfg, align = _configs(model, variant)
    torch.manual_seed(SEED)
    return build_model(model, variant, cfg, align, data, CPU)


def _xavier(*shape: int) -> Tensor:
    return nn.init.xavier_uniform_(torch.empty(*shape))


def _reference_draws(model: str, variant: str, cfg: Any, data: Dataset) -> list[tuple[str, Tensor]]:
    """Every parameter as the reference creates it, in its order, from ``SEED``."""
    torch.manual_seed(SEED)
    if model == "semantic":
        return []  # fixed profiles, nothing drawn
    params = [("backbone.user_embeds", _xavier(data.n_users, D)), ("backbone.item_embeds", _xavier(data.n_items, D))]
    if model == "gccf":
        params += [(f"backbone.layer_weights.{k}", _xavier(D, D)) for k in range(cfg.layer_num)]
    elif model == "dccf":
        params += [(f"backbone.{side}_intent", _xavier(D, cfg.intent_num)) for side in ("user", "item")]
    elif model == "autocf":
        params += [(f"backbone.gt_layers.{k}.{w}", _xavier(D, D)) for k in range(cfg.gt_layer) for w in "qkv"]
    out_dim = D * (cfg.layer_num + 1) if model == "gccf" else D
    assert data.user_emb is not None
    profile_dim = data.user_emb.shape[1]
    if variant == "con":
        mlp = profile_mlp(profile_dim, out_dim)
        params += [(f"alignment.mlp.{name}", p.detach()) for name, p in mlp.named_parameters()]
    elif variant == "gen":
        params.append(("alignment.mask_token", torch.zeros(1, D)))
        mlp = profile_mlp(out_dim, profile_dim)
        params += [(f"alignment.mlp.{name}", p.detach()) for name, p in mlp.named_parameters()]
    return params


@pytest.mark.parametrize(("model", "variant"), CASES)
def test_seeded_build_creates_the_reference_parameters_in_order(model: str, variant: str) -> None:
    data = _data()
    rec = _build(model, variant, data)
    after_build = torch.rand(4)
    expected = _reference_draws(model, variant, _configs(model, variant)[0], data)
    after_replay = torch.rand(4)
    got = [(name, p.detach()) for name, p in rec.named_parameters()]
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (name, actual), (_, wanted) in zip(got, expected, strict=True):
        assert torch.equal(actual, wanted), name
    # Building draws nothing beyond the parameters (graphs and buffers are deterministic).
    assert torch.equal(after_build, after_replay)


def test_the_reference_draws_differ_if_the_order_does() -> None:
    # The check above can fail: swapping two same-shaped draws changes the tensors.
    torch.manual_seed(SEED)
    first, second = _xavier(D, D), _xavier(D, D)
    assert not torch.equal(first, second)
    bound = (6.0 / (D + D)) ** 0.5  # xavier_uniform's bound
    assert 0.9 * bound < float(first.abs().max()) <= bound


def test_a_variant_a_model_lacks_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no variant 'con'"):
        build_model("semantic", "con", MODELS["semantic"].config(), ConConfig(), _data(), CPU)


@dataclass
class ToyConfig:
    embedding_size: int = 4
    reg_weight: float = 1e-3


class Toy(IDBackbone[ToyConfig]):
    """The least a backbone needs: ID tables (inherited) and a propagation."""

    def propagate(self, ego: Tensor, training: bool) -> Tensor:
        return 2 * ego


def test_a_new_backbone_is_one_class_and_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "toy", ModelSpec("toy", f"{__name__}:Toy", ToyConfig, "a toy"))
    data = _data()
    for variant, align, terms in (
        ("base", None, {"bpr", "reg"}),
        ("con", ConConfig(), {"bpr", "reg", "kd"}),
        ("gen", GenConfig(), {"bpr", "reg", "recon"}),
    ):
        rec = build_model("toy", variant, ToyConfig(), align, data, CPU)
        assert isinstance(rec.backbone, Toy) and rec.backbone.out_dim == 4
        losses = rec.train_losses(random_batch(data.train, 6))
        assert set(losses) == terms and all(torch.isfinite(v) for v in losses.values())
