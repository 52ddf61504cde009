"""The training protocol on the built-in demo (docs/protocol.md §3, §4, §5)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rlmrec import events as ev
from rlmrec.config import RunConfig, resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.errors import ConfigError, DataError
from rlmrec.metrics import EvalResult, Evaluator
from rlmrec.registry import build_model
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")
EXTRA_TERM = {"base": set(), "con": {"kd"}, "gen": {"recon"}}


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


def _cfg(model: str, variant: str, seed: int | None = None, dataset: str = "demo", **overrides: Any) -> RunConfig:
    return resolve_config(model, variant, dataset, overrides, seed=seed, device="cpu")


def _tiny(n_users: int = 30, n_items: int = 25, emb: bool = False, empty: str | None = None) -> Dataset:
    """Disjoint train/valid/test splits; ``empty`` names a split to leave empty."""
    rng = np.random.default_rng(0)
    split = rng.choice(4, size=(n_users, n_items), p=[0.7, 0.15, 0.075, 0.075])
    split[:, 0] = 1  # every user has a training item
    mats = {
        name: sp.csr_matrix((split == k).astype(np.float32)) for k, name in ((1, "train"), (2, "valid"), (3, "test"))
    }
    if empty:
        mats[empty] = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    user_emb = rng.standard_normal((n_users, 16)).astype(np.float32) if emb else None
    item_emb = rng.standard_normal((n_items, 16)).astype(np.float32) if emb else None
    return Dataset("tiny", mats["train"], mats["valid"], mats["test"], user_emb, item_emb)


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
@pytest.mark.parametrize("model", ["lightgcn", "gccf"])
def test_three_epochs_reduce_the_loss(demo: Dataset, model: str, variant: str) -> None:
    trainer = Trainer(_cfg(model, variant), demo)
    epochs = [trainer.train_epoch() for _ in range(3)]
    for losses in epochs:
        assert set(losses) == {"bpr", "reg"} | EXTRA_TERM[variant]
        assert all(np.isfinite(v) for v in losses.values())
    totals = [sum(losses.values()) for losses in epochs]
    assert totals[2] < totals[0], totals
    assert epochs[2]["bpr"] < epochs[0]["bpr"]


def _fit_summary(cfg: RunConfig, ds: Dataset) -> tuple[list[dict[str, float]], dict[str, float], dict[str, float]]:
    result = Trainer(cfg, ds).fit()
    return [h["losses"] for h in result.history], result.valid_metrics, result.test_metrics


@pytest.mark.parametrize(("model", "variant"), [("lightgcn", "base"), ("gccf", "gen")])
def test_same_seed_same_run_other_seed_other_run(demo: Dataset, model: str, variant: str) -> None:
    kw = {"epochs": 4, "test_step": 1, "patience": 10}
    first = _fit_summary(_cfg(model, variant, seed=11, **kw), demo)
    again = _fit_summary(_cfg(model, variant, seed=11, **kw), demo)
    other = _fit_summary(_cfg(model, variant, seed=12, **kw), demo)
    assert first == again  # bit-identical losses and metrics
    assert first[0] != other[0]
    assert first[2] != other[2]


def _script_validation(trainer: Trainer, values: list[float]) -> tuple[list[dict[str, torch.Tensor]], Any]:
    """Replace validation results with ``values`` (in order); record the state at each."""
    real = trainer.evaluate
    states: list[dict[str, torch.Tensor]] = []
    script = iter(values)

    def evaluate(split: str = "valid") -> EvalResult:
        if split != "valid":
            return real(split)
        states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        value = next(script)
        return EvalResult({"recall@20": value, "ndcg@20": value / 2}, np.arange(1), {})

    trainer.evaluate = evaluate  # type: ignore[method-assign]
    return states, real


@pytest.mark.parametrize(
    ("values", "patience", "epochs_run", "best_epoch"),
    [
        ([0.1, 0.2, 0.15, 0.3, 0.4], 1, 3, 1),  # stops at the first non-improving evaluation
        ([0.1, 0.2, 0.2, 0.19, 0.5], 2, 4, 1),  # equal is not better (strictly greater)
        ([0.1, 0.05, 0.2, 0.1, 0.1, 0.9], 2, 5, 2),  # an improvement resets the count
    ],
)
def test_early_stopping_restores_the_best_state(
    demo: Dataset, values: list[float], patience: int, epochs_run: int, best_epoch: int
) -> None:
    events: list[Any] = []
    trainer = Trainer(_cfg("lightgcn", "base", epochs=20, test_step=1, patience=patience), demo, [events.append])
    states, real_evaluate = _script_validation(trainer, values)
    result = trainer.fit()
    assert (result.epochs_run, result.best_epoch) == (epochs_run, best_epoch)
    assert result.valid_metrics["recall@20"] == values[best_epoch]
    assert len(states) == epochs_run
    finished = events[-1]
    assert isinstance(finished, ev.RunFinished) and finished.stopped_early
    assert [e.patience_left for e in events if isinstance(e, ev.Evaluated)][-1] == 0
    # The model now holds the best epoch's state, not the last one ...
    final_state = trainer.model.state_dict()
    for key, value in states[best_epoch].items():
        assert torch.equal(final_state[key], value), key
    assert not torch.equal(states[best_epoch]["backbone.user_embeds"], states[-1]["backbone.user_embeds"])
    # ... and the reported test metrics are an evaluation of that state.
    assert result.test_metrics == real_evaluate("test").metrics


@pytest.mark.parametrize(("test_step", "epochs", "expected"), [(1, 3, [0, 1, 2]), (3, 7, [0, 3, 6]), (4, 6, [0, 4])])
def test_validation_schedule(demo: Dataset, test_step: int, epochs: int, expected: list[int]) -> None:
    events: list[Any] = []
    result = Trainer(
        _cfg("lightgcn", "base", epochs=epochs, test_step=test_step, patience=50), demo, [events.append]
    ).fit()
    assert [e.epoch for e in events if isinstance(e, ev.Evaluated)] == expected
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == list(range(epochs))
    assert result.epochs_run == epochs
    assert [h["epoch"] for h in result.history if "valid" in h] == expected


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_events_in_order_with_loss_names(demo: Dataset, variant: str) -> None:
    events: list[Any] = []
    cfg = _cfg("lightgcn", variant, epochs=3, test_step=2, patience=50)
    trainer = Trainer(cfg, demo, [events.append])
    result = trainer.fit()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["RunStarted", "EpochEnded", "Evaluated", "EpochEnded", "EpochEnded", "Evaluated", "Tested",
                     "RunFinished"]  # fmt: skip
    started, tested, finished = events[0], events[-2], events[-1]
    assert isinstance(started, ev.RunStarted) and isinstance(tested, ev.Tested) and isinstance(finished, ev.RunFinished)
    assert (started.n_users, started.n_items, started.n_train) == (2000, 1600, demo.train.nnz)
    assert started.n_batches == -(-demo.train.nnz // 4096)
    assert started.n_params == sum(p.numel() for p in trainer.model.parameters())
    assert started.config == cfg.to_dict()
    for e in events:
        if isinstance(e, ev.EpochEnded):
            assert set(e.losses) == {"bpr", "reg"} | EXTRA_TERM[variant]
    assert tested.best_epoch == finished.best_epoch == result.best_epoch
    assert tested.metrics == finished.test_metrics == result.test_metrics
    assert finished.epochs_run == 3 and not finished.stopped_early
    assert set(result.test_metrics) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}


def test_artifacts_reproduce_the_test_metrics(demo: Dataset, tmp_path: Any) -> None:
    cfg = _cfg("lightgcn", "gen", epochs=2, test_step=1, patience=5)
    out = tmp_path / "run"
    result = Trainer(cfg, demo, out_dir=out).fit()
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "result.json", "test_per_user.npz"]

    torch.manual_seed(999)  # a different initialization, overwritten by the checkpoint
    fresh = build_model(cfg.model, cfg.variant, cfg.model_cfg, cfg.align_cfg, demo, CPU)
    fresh.load_state_dict(torch.load(out / "best.pt", weights_only=True), strict=True)
    fresh.eval()
    metrics = Evaluator(demo.test, demo.train, cfg.train.topk, CPU)(*fresh.embeddings()).metrics
    assert metrics == pytest.approx(result.test_metrics, rel=1e-6)

    with np.load(out / "test_per_user.npz") as npz:
        users = npz["users"]
        recall = npz["recall@20"]
    np.testing.assert_array_equal(users, np.flatnonzero(np.diff(demo.test.indptr) > 0))
    assert recall.shape == users.shape
    assert float(recall.astype(np.float64).mean()) == pytest.approx(result.test_metrics["recall@20"], rel=1e-5)

    saved = json.loads((out / "result.json").read_text())
    assert saved["test"] == result.test_metrics
    assert saved["config"] == cfg.to_dict()
    assert saved["best_epoch"] == result.best_epoch
    assert len(saved["history"]) == result.epochs_run == 2


@pytest.mark.parametrize("variant", ["con", "gen"])
def test_alignment_without_embeddings_is_a_config_error(variant: str) -> None:
    with pytest.raises(ConfigError, match="profile embeddings"):
        Trainer(_cfg("lightgcn", variant, dataset="tiny"), _tiny(emb=False))
    Trainer(_cfg("lightgcn", variant, dataset="tiny"), _tiny(emb=True))  # fine with them


@pytest.mark.parametrize("split", ["test", "valid"])
def test_empty_evaluation_split_is_a_data_error(split: str) -> None:
    with pytest.raises(DataError, match="empty"):
        Trainer(_cfg("lightgcn", "base", dataset="tiny"), _tiny(empty=split))
