"""The protocol audit: each place where rlmrec's training could differ from the
reference's in what it computes (not in its random draws), stated as an equivalence
and tested. The reference's behaviour is docs/protocol.md; the
"reference" functions below are transcriptions of that description, written
the way the reference writes it (loops, float64 NumPy), not rlmrec's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rlmrec.config import RunConfig, resolve_config
from rlmrec.data import Dataset
from rlmrec.graph import Graph, normalized_adjacency
from rlmrec.metrics import Evaluator
from rlmrec.models import Batch
from rlmrec.sampling import NegativeSampler
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")


def _dataset(n_users: int = 300, n_items: int = 80, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    split = rng.choice(4, size=(n_users, n_items), p=[0.8, 0.1, 0.05, 0.05])
    split[:, 0] = 1  # everyone has a training item
    mats = [sp.csr_matrix((split == k).astype(np.float32)) for k in (1, 2, 3)]
    return Dataset("audit", *mats, None, None)


def _cfg(model: str = "lightgcn", **overrides: Any) -> RunConfig:
    return resolve_config(model, "base", "audit", {"batch_size": 1000, **overrides}, device="cpu")


class _Recorder:
    """Wraps a model's ``train_losses`` to keep every batch and its loss terms."""

    def __init__(self, trainer: Trainer) -> None:
        self.batches: list[Batch] = []
        self.losses: list[dict[str, float]] = []
        self.params: list[list[torch.Tensor]] = []
        model = trainer.model
        real = model.train_losses

        def train_losses(batch: Batch, step: int = 0) -> dict[str, torch.Tensor]:
            self.batches.append(batch)
            self.params.append([p.detach().clone() for p in model.parameters()])
            out = real(batch, step)
            self.losses.append({k: float(v.detach()) for k, v in out.items()})
            return out

        model.train_losses = train_losses  # type: ignore[method-assign]


# --- The optimizer -------------------------------------------------------------


def test_fused_adam_makes_the_same_updates_as_plain_adam() -> None:
    """rlmrec uses ``Adam(fused=True)`` (one kernel; ~20% faster epochs on CPU), the
    reference the default implementation. Given the same gradients for 2,000 steps
    (some tiny, some large, as early and late training give), the parameters agree
    to float32 rounding: the same update, not merely a similar one."""
    torch.manual_seed(0)
    start = torch.randn(500, 32)
    fused, plain = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt_fused = torch.optim.Adam([fused], lr=1e-3, fused=True)
    opt_plain = torch.optim.Adam([plain], lr=1e-3, foreach=False)
    gen = torch.Generator().manual_seed(1)
    for step in range(2000):
        grad = torch.randn(500, 32, generator=gen) * (1e-4 if step % 7 == 0 else 0.1)
        fused.grad, plain.grad = grad.clone(), grad.clone()
        opt_fused.step()
        opt_plain.step()
    moved = (plain.detach() - start).abs().max().item()
    assert moved > 0.1  # it really trained
    assert (fused.detach() - plain.detach()).abs().max().item() < 1e-6


def test_the_trainer_optimizes_every_parameter_with_adam_at_the_configured_rate() -> None:
    trainer = Trainer(_cfg("gccf"), _dataset())
    opt = trainer.optimizer
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["amsgrad"]) == (1e-3, 0.0, False)
    # GCCF's unused layer weights included: the reference passes model.parameters().
    assert {id(p) for p in group["params"]} == {id(p) for p in trainer.model.parameters()}


# --- What each epoch's batches contain ---------------------------------------


def test_each_epoch_visits_every_interaction_once_in_a_fresh_order() -> None:
    data = _dataset()
    trainer = Trainer(_cfg(), data)
    rec = _Recorder(trainer)
    n = data.train.nnz
    orders = []
    for _ in range(2):
        rec.batches.clear()
        trainer.train_epoch()
        # ceil(n / 1000) batches; all full but the last, which keeps the remainder
        # (the reference's DataLoader does not drop it).
        assert [len(b) for b in rec.batches] == [1000] * (n // 1000) + [n % 1000]
        users = torch.cat([b.users for b in rec.batches]).numpy()
        pos = torch.cat([b.pos for b in rec.batches]).numpy()
        negs = torch.cat([b.neg for b in rec.batches]).numpy()
        pairs = users * data.n_items + pos
        expected = np.sort(data.train.tocoo().row * data.n_items + data.train.tocoo().col)
        np.testing.assert_array_equal(np.sort(pairs), expected)  # each interaction exactly once
        assert not np.asarray(data.train[users.copy(), negs.copy()]).any()  # every negative is outside the training set
        orders.append(pairs)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    # Shuffled, not in storage order: the first batch holds users from everywhere.
    assert np.unique(orders[0][:1000] // data.n_items).size > 200


def test_batch_losses_are_means_over_their_own_batch_and_the_epoch_loss_their_mean() -> None:
    data = _dataset()
    # keep_rate 1: no edge dropout, so a batch's loss is a function of the parameters it saw.
    trainer = Trainer(_cfg(keep_rate=1.0), data)
    rec = _Recorder(trainer)
    epoch = trainer.train_epoch()
    last = rec.batches[-1]
    assert len(last) < 1000
    # The partial batch's BPR is a mean over its own rows (the reference divides its
    # sum by anc_embeds.shape[0]), not over the nominal batch size.
    model = trainer.model
    with torch.no_grad():
        for p, saved in zip(model.parameters(), rec.params[-1], strict=True):
            p.copy_(saved)
        final = model.backbone.propagate(model.backbone.layer0(), training=False)
    u, i, j = final[last.users], final[data.n_users + last.pos], final[data.n_users + last.neg]
    per_row = torch.nn.functional.softplus((u * j).sum(1) - (u * i).sum(1))
    assert rec.losses[-1]["bpr"] == pytest.approx(per_row.mean().item(), rel=1e-5)
    assert rec.losses[-1]["bpr"] != pytest.approx(per_row.sum().item() / 1000, rel=1e-3)
    # An epoch's reported loss per term is the mean of its batches' values (the
    # reference's log divides each batch's value by the number of batches).
    for name in epoch:
        assert epoch[name] == pytest.approx(np.mean([b[name] for b in rec.losses]), rel=1e-5)


def test_regularization_is_added_every_batch_over_all_parameters_unscaled() -> None:
    """reg = reg_weight * sum of squared Frobenius norms of ALL parameters (GCCF's
    unused layer weights too), on every batch, the partial one included, and not
    divided by the batch size."""
    trainer = Trainer(_cfg("gccf", reg_weight=1e-3), _dataset())
    rec = _Recorder(trainer)
    trainer.train_epoch()
    assert len(rec.losses) >= 2
    for params, losses in zip(rec.params, rec.losses, strict=True):
        expected = 1e-3 * sum(float(p.double().square().sum()) for p in params)
        assert losses["reg"] == pytest.approx(expected, rel=1e-5)
    assert len(rec.params[0]) == 2 + trainer.cfg.model_cfg.layer_num


# --- Negative sampling ----------------------------------------------------------


def test_validation_and_test_items_are_ordinary_negatives() -> None:
    """Only training items count as positives when sampling: an item the user has in
    the validation or test split is drawn as often as any other non-training item."""
    n_items = 12
    train = sp.csr_matrix(np.isin(np.arange(n_items), [0, 1, 2]).astype(np.float32)[None, :])
    held_out = [3, 4]  # the user's validation / test items (not given to the sampler)
    sampler = NegativeSampler(train)
    negs = sampler.sample(np.random.default_rng(5), np.zeros(90_000, dtype=np.int64))
    counts = np.bincount(negs, minlength=n_items)
    assert counts[:3].sum() == 0
    share = counts[3:] / counts[3:].sum()  # 9 candidates: 1/9 each, std ~0.001
    assert np.abs(share - 1 / 9).max() < 0.006
    assert share[[h - 3 for h in held_out]].min() > 0.1


# --- Edge dropout ------------------------------------------------------------------


def test_edge_dropout_is_independent_per_direction_and_per_pass() -> None:
    rng = np.random.default_rng(3)
    r = sp.csr_matrix((rng.random((300, 200)) < 0.1).astype(np.float32))
    graph = Graph.from_scipy(normalized_adjacency(r))
    torch.manual_seed(4)
    first = graph.dropped(0.8).a.values() != 0
    second = graph.dropped(0.8).a.values() != 0
    mirror = first[graph.perm]  # the same edge in the other direction
    # Independent Bernoulli(0.8) draws: both directions kept 64% of the time (if one
    # mask served both directions it would be 80%), and a fresh mask per pass.
    assert (first & mirror).float().mean().item() == pytest.approx(0.64, abs=0.01)
    assert (first & second).float().mean().item() == pytest.approx(0.64, abs=0.01)
    assert (first == second).float().mean().item() == pytest.approx(0.68, abs=0.01)


# --- The validation metric's arithmetic ------------------------------------------------


def _reference_metric(split: sp.csr_matrix, train: sp.csr_matrix, scores: np.ndarray, ks: tuple[int, ...]) -> dict:
    """Recall/NDCG as the reference evaluates: users with >= 1 split item, in batches
    of 1,024; training items scored ``s * 0 - 1e8``; top max(K) by ``torch.topk``;
    per batch the SUM of per-user values, each batch's sum divided by the number of
    evaluated users and added up, in float64."""
    coo = split.tocoo()
    positives: list[list[int]] = [[] for _ in range(split.shape[0])]
    for row, col in zip(coo.row, coo.col, strict=True):
        positives[row].append(int(col))
    users = np.array(sorted({int(r) for r in coo.row}))
    mask = (train.toarray() != 0) * 1.0
    result = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for start in range(0, len(users), 1024):
        batch = users[start : start + 1024]
        preds = torch.from_numpy(scores[batch] * (1 - mask[batch]) - 1e8 * mask[batch])
        top = torch.topk(preds, k=max(ks)).indices.numpy()
        r = np.array([[float(i in positives[u]) for i in row] for u, row in zip(batch, top, strict=True)])
        n_rel = np.array([len(positives[u]) for u in batch])
        for k in ks:
            result[f"recall@{k}"] += np.sum(r[:, :k].sum(1) / n_rel) / len(users)
            ideal = np.zeros((len(batch), k))
            for row, n in enumerate(n_rel):
                ideal[row, : min(k, n)] = 1
            discount = 1.0 / np.log2(np.arange(2, k + 2))
            idcg = (ideal * discount).sum(1)
            idcg[idcg == 0.0] = 1.0
            result[f"ndcg@{k}"] += np.sum((r[:, :k] * discount).sum(1) / idcg) / len(users)
    return result


def test_validation_metrics_equal_the_reference_arithmetic_to_double_precision() -> None:
    rng = np.random.default_rng(11)
    n_users, n_items, ks = 2500, 60, (5, 10, 20)
    train_d = rng.random((n_users, n_items)) < 0.15
    valid_d = (rng.random((n_users, n_items)) < 0.2) & ~train_d
    valid_d[rng.random(n_users) < 0.1] = False  # users without validation items are not counted
    valid_d[:5, :] = ~train_d[:5, :]  # and some with more than K of them (recall is not capped)
    test_d = (rng.random((n_users, n_items)) < 0.1) & ~train_d & ~valid_d
    train, valid, test = (sp.csr_matrix(d.astype(np.float32)) for d in (train_d, valid_d, test_d))
    # Distinct scores per user (a permutation), so the ranking itself has no ties.
    scores = np.stack([rng.permutation(n_items) for _ in range(n_users)]).astype(np.float32)
    user_emb, item_emb = torch.from_numpy(scores), torch.eye(n_items)
    ours = Evaluator(valid, train, ks, CPU)(user_emb, item_emb).metrics
    reference = _reference_metric(valid, train, scores, ks)
    assert ours.keys() == reference.keys()
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    # Testing masks training items only: validation items stay rankable (the quirk).
    ours_test = Evaluator(test, train, ks, CPU)(user_emb, item_emb).metrics
    assert ours_test == pytest.approx(_reference_metric(test, train, scores, ks), rel=1e-12)
