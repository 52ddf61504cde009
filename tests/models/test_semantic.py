"""The "semantic embeddings only" baseline: profile similarity, no training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_dataset

from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.errors import ConfigError
from rlmrec.metrics import Evaluator
from rlmrec.queueing import Submission, plan
from rlmrec.registry import build_model
from rlmrec.trainer import train

CPU = torch.device("cpu")


def test_embeddings_are_the_normalized_profiles_and_nothing_trains() -> None:
    data = tiny_dataset(0, 12, 9, 6)
    rec = build_model("semantic", "base", resolve_config("semantic", "base", "x").model_cfg, None, data, CPU)
    assert [p for p in rec.parameters() if p.requires_grad] == []
    users, items = rec.embeddings()
    assert data.user_emb is not None and data.item_emb is not None
    torch.testing.assert_close(users, F.normalize(torch.from_numpy(data.user_emb), dim=1))
    torch.testing.assert_close(items, F.normalize(torch.from_numpy(data.item_emb), dim=1))
    scores = (users @ items.T).numpy()
    u = data.user_emb / np.linalg.norm(data.user_emb, axis=1, keepdims=True)
    i = data.item_emb / np.linalg.norm(data.item_emb, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, u @ i.T, rtol=1e-5, atol=1e-6)  # cosine similarity


def test_the_protocol_validates_once_and_tests_with_profile_cosine() -> None:
    demo = load_dataset("demo")
    result = train(resolve_config("semantic", "base", "demo", device="cpu"), demo)
    assert (result.epochs_run, result.best_epoch) == (1, 0) and result.history[0]["losses"] == {}
    assert demo.user_emb is not None and demo.item_emb is not None
    users = F.normalize(torch.from_numpy(demo.user_emb), dim=1)
    items = F.normalize(torch.from_numpy(demo.item_emb), dim=1)
    direct = Evaluator(demo.test, demo.train, (5, 10, 20), CPU)(users, items)
    assert result.test_metrics == pytest.approx(direct.metrics, abs=1e-7)
    assert 0.05 < result.test_metrics["recall@20"] < 0.2  # informative, below collaborative filtering


def test_only_base_and_only_with_embeddings() -> None:
    with pytest.raises(ConfigError, match="no variant 'con'"):
        resolve_config("semantic", "con", "demo")
    data = tiny_dataset(1, 8, 6, 4)
    bare = type(data)("bare", data.train, data.valid, data.test, None, None)
    cfg = resolve_config("semantic", "base", "bare").model_cfg
    with pytest.raises(ConfigError, match="profile embeddings"):
        build_model("semantic", "base", cfg, None, bare, CPU)


def test_queue_all_variants_gives_semantic_its_base_only() -> None:
    specs = plan(Submission("semantic,lightgcn", "all", "demo"))
    assert sorted((s.model, s.variant) for s in specs) == [
        ("lightgcn", "base"), ("lightgcn", "con"), ("lightgcn", "gen"), ("semantic", "base")]  # fmt: skip
    with pytest.raises(ConfigError, match="no variant 'gen'"):
        plan(Submission("semantic", "gen", "demo"))
