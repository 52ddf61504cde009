"""A short integration run on the published Amazon-book splits (skipped when absent)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import AMAZON_ROOT

from rlmrec import events as ev
from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.trainer import Trainer


@pytest.mark.skipif(AMAZON_ROOT is None, reason="Amazon-book splits absent (set RLMREC_DATA or ../shared/data)")
def test_lightgcn_base_learns_on_amazon() -> None:
    ds = load_dataset("amazon", AMAZON_ROOT)
    assert (ds.n_users, ds.n_items, ds.train.nnz) == (11000, 9332, 120464)
    assert ds.user_emb is None  # interaction splits only
    cfg = resolve_config("lightgcn", "base", "amazon", {"epochs": 2, "test_step": 1, "patience": 5}, device="cpu")
    assert cfg.model_cfg.layer_num == 3  # the published Amazon preset
    events: list[Any] = []
    result = Trainer(cfg, ds, [events.append]).fit()

    losses = [e.losses for e in events if isinstance(e, ev.EpochEnded)]
    assert len(losses) == 2
    assert sum(losses[1].values()) < sum(losses[0].values())
    assert losses[1]["bpr"] < losses[0]["bpr"]
    valid = {e.epoch: e.metrics for e in events if isinstance(e, ev.Evaluated)}
    assert set(valid) == {0, 1}
    assert valid[1]["recall@20"] > 0.03
    assert 0.03 < result.test_metrics["recall@20"] < 0.2
