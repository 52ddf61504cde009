"""AutoCF (docs/protocol.md §7): subgraph masking, the seed scores, the graph
transformer, each loss term against its formula, the trainer hook, and training."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from helpers import dense_normalized, random_batch, random_interactions, tiny_dataset, train_only

from rlmrec.align import ConConfig, ContrastiveAlignment, GenConfig
from rlmrec.config import resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.errors import ConfigError
from rlmrec.graph import EdgePattern
from rlmrec.models.autocf import AutoCF
from rlmrec.models.configs import AutoCFConfig
from rlmrec.models.graph_attention import GraphTransformerLayer, _gather_attention
from rlmrec.registry import build_model
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")


def _model(train: sp.csr_matrix, **kw: object) -> AutoCF:
    torch.manual_seed(0)
    return AutoCF(AutoCFConfig(**kw), train_only(train), CPU)  # type: ignore[arg-type]


def _bfs(train: sp.csr_matrix, seeds: list[int]) -> np.ndarray:
    """Hop distance of every node from the nearest seed (inf when unreachable)."""
    b = (train.toarray() != 0).astype(np.int64)
    u, i = b.shape
    a = np.zeros((u + i, u + i), dtype=bool)
    a[:u, u:], a[u:, :u] = b, b.T
    dist = np.full(u + i, np.inf)
    queue = deque(seeds)
    dist[seeds] = 0
    while queue:
        node = queue.popleft()
        for nb in np.flatnonzero(a[node]):
            if dist[nb] == np.inf:
                dist[nb] = dist[node] + 1
                queue.append(nb)
    return dist


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_masking_removes_exactly_the_edges_within_mask_depth_hops_of_the_seeds(depth: int) -> None:
    train = random_interactions(3, 30, 25, 0.06)
    model = _model(train, mask_depth=depth)
    seeds = [0, 7, 31]
    masked = model.mask(torch.tensor(seeds))
    dist = _bfs(train, seeds)
    rows, cols = model.rows.numpy(), model.cols.numpy()
    # An edge goes when one of its ends is fewer than ``depth`` hops from a seed:
    # then the edge lies on a path of at most ``depth`` hops from that seed.
    want_removed = np.minimum(dist[rows], dist[cols]) <= depth - 1
    assert 0 < want_removed.sum() < len(rows)  # the case is not trivial
    np.testing.assert_array_equal(~masked.kept_edges.numpy(), want_removed)
    # The masked nodes hold the seeds and every node fewer than depth - 1 hops on.
    near = set(np.flatnonzero(dist <= depth - 1).tolist())
    assert near <= set(masked.mask_nodes.tolist())


def test_encoder_graph_is_the_kept_edges_renormalized() -> None:
    train = random_interactions(4, 20, 18, 0.12)
    model = _model(train, mask_depth=1)
    masked = model.mask(torch.tensor([2, 25]))
    kept = np.zeros((38, 38))
    kept[model.rows[masked.kept_edges].numpy(), model.cols[masked.kept_edges].numpy()] = 1
    deg = kept.sum(1)
    want = kept * np.outer((deg + 1e-12) ** -0.5, (deg + 1e-12) ** -0.5)
    x = torch.randn(38, 4, dtype=torch.float64)
    got = masked.encoder(x.float()).double()
    torch.testing.assert_close(got, torch.from_numpy(want) @ x, atol=1e-5, rtol=1e-5)


def test_decoder_graph_holds_self_loops_kept_edges_and_pairs_of_masked_nodes() -> None:
    train = random_interactions(5, 20, 18, 0.12)
    model = _model(train, mask_depth=2, keep_rate=0.1)
    masked = model.mask(torch.tensor([1, 30]))
    n = model.n_nodes
    dec = masked.decoder
    pairs = set(zip(dec.rows.tolist(), dec.cols.tolist(), strict=True))
    assert len(pairs) == dec.rows.numel()  # no duplicates
    keys = dec.rows * n + dec.cols
    assert bool((keys[1:] > keys[:-1]).all())  # sorted by row, then column
    assert {(v, v) for v in range(n)} <= pairs
    kept = set(zip(model.rows[masked.kept_edges].tolist(), model.cols[masked.kept_edges].tolist(), strict=True))
    assert kept <= pairs
    assert all((c, r) in pairs for r, c in pairs)  # symmetric
    nodes = set(masked.mask_nodes.tolist())
    random_pairs = pairs - kept - {(v, v) for v in range(n)}
    assert random_pairs and all(r in nodes and c in nodes for r, c in random_pairs)
    # Random pairs: as many draws as the full graph has entries (duplicates removed).
    assert len(random_pairs) <= 2 * model.rows.numel()


def _naive_gt(layer: GraphTransformerLayer, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The reference's per-edge formulation, edge ends projected after the gather."""
    n, d = x.shape
    h = layer.head_num
    q = (x[rows] @ layer.q).view(-1, h, d // h)
    k = (x[cols] @ layer.k).view(-1, h, d // h)
    v = (x[cols] @ layer.v).view(-1, h, d // h)
    att = torch.exp(torch.clamp(torch.einsum("ehd,ehd->eh", q, k), -10.0, 10.0))
    norm = torch.zeros(n, h, dtype=x.dtype).index_add_(0, rows, att)[rows]
    res = torch.einsum("eh,ehd->ehd", att / (norm + 1e-8), v).reshape(-1, d)
    return torch.zeros(n, d, dtype=x.dtype).index_add_(0, rows, res)


@pytest.mark.parametrize("kernel", ["pattern", "gather"])
@pytest.mark.parametrize("scale", [6.0, 0.3])
def test_graph_transformer_matches_the_per_edge_formula_with_gradients(kernel: str, scale: float) -> None:
    torch.manual_seed(1)
    layer = GraphTransformerLayer(8, 4).double()
    with torch.no_grad():
        layer.q.mul_(scale)  # 6: large logits, the clamp at +-10 is exercised; 0.3: none clamped
    # Node 12 has no edge at all (an empty CSR row).
    x = torch.randn(13, 8, dtype=torch.float64, requires_grad=True)
    edges = {(0, 1), (0, 4), (0, 9), (3, 3), (3, 8), (5, 2), (7, 6), (7, 7), (7, 10), (11, 11)}
    edges |= {(c, r) for r, c in edges}  # the decoder's pattern is symmetric
    rows, cols = (torch.tensor(v) for v in zip(*sorted(edges), strict=True))
    pattern = EdgePattern.from_sorted(rows, cols, 13)
    q_e, k_e = (x @ layer.q)[rows].view(-1, 4, 2), (x @ layer.k)[cols].view(-1, 4, 2)
    logits = torch.einsum("ehd,ehd->eh", q_e, k_e)
    assert bool((logits.abs() > 10).any()) == (scale > 1)
    if kernel == "pattern":
        got = layer(x, pattern)
    else:
        got = _gather_attention(x @ layer.q, x @ layer.k, x @ layer.v, pattern, 4)
    want = _naive_gt(layer, x, rows, cols)
    torch.testing.assert_close(got, want)
    assert bool((got[[6, 8]] != 0).all()) and bool((got[9] != 0).all())
    params = (x, layer.q, layer.k, layer.v)
    g = torch.randn_like(want)  # a non-uniform upstream gradient
    got_grads = torch.autograd.grad((got * g).sum(), params)
    for a, b in zip(got_grads, torch.autograd.grad((want * g).sum(), params), strict=True):
        torch.testing.assert_close(a, b)


def test_seed_scores_follow_the_reference_formula() -> None:
    train = random_interactions(6, 15, 12, 0.2)
    model = _model(train, seed_num=5)
    e = model.layer0().detach().double()
    b = (train.toarray() != 0).astype(np.float64)
    a = np.zeros((27, 27))
    a[:15, 15:], a[15:, :15] = b, b.T
    a_t = torch.from_numpy(a)
    order = a_t.sum(1, keepdim=True)
    first = a_t @ e - e
    second = (a_t @ first - first) - order * e
    second_n = (a_t @ order - order) - order
    sub = F.normalize((first + second) / (order + second_n + 1e-8))
    torch.manual_seed(9)
    noise = torch.rand(27)
    want = torch.log(torch.sigmoid((sub * F.normalize(e)).sum(1))) - torch.log(-torch.log(noise.double()))
    torch.manual_seed(9)
    got, seeds = model.seed_scores(model.layer0())
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    assert set(seeds.tolist()) == set(torch.topk(want, 5).indices.tolist())
    assert got.requires_grad  # the seed term trains the ID embeddings


def test_loss_terms_match_their_formulas() -> None:
    train = random_interactions(7, 16, 13, 0.25)
    model = _model(train, ssl_reg=0.7)
    batch = random_batch(train, 12)
    extra = model.before_batch(model.layer0(), 0)
    losses, final = model.train_losses(model.layer0(), batch)
    m = model.masked
    assert m is not None
    torch.testing.assert_close(final, model.forward_graphs(model.layer0(), m.encoder, m.decoder))
    users, items = final[:16].double(), final[16:].double()
    anc, pos = users[batch.users], items[batch.pos]
    torch.testing.assert_close(losses["rec"].double(), -(anc * pos).sum(1).mean(), rtol=1e-5, atol=1e-6)

    def lse(x: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.exp(x @ pool.T).sum(1)).mean()  # the reference's direct form

    u_uniq, i_uniq = torch.unique(batch.users), torch.unique(batch.pos)
    cl = 0.7 * (lse(users[u_uniq], users) + lse(items[i_uniq], items)) + lse(anc, items)
    torch.testing.assert_close(losses["cl"].double(), cl, rtol=1e-5, atol=1e-6)
    assert set(extra) == {"infomax"}
    assert "neg" not in str(losses)  # no negatives anywhere in AutoCF's loss


def test_evaluation_runs_both_stages_on_the_full_graph() -> None:
    train = random_interactions(8, 10, 9, 0.3)
    model = _model(train, gcn_layer=2)
    ego = model.layer0().detach()
    a = torch.from_numpy(dense_normalized(train)).float()
    l1 = a @ ego
    l2 = a @ l1
    rows, cols = (torch.from_numpy(v) for v in np.nonzero(a.numpy()))
    l3 = _naive_gt(model.gt_layers[0], l2, rows, cols)
    torch.testing.assert_close(model.propagate(ego, training=False), ego + l1 + l2 + l3, atol=1e-5, rtol=1e-5)


def test_graphs_are_resampled_every_fix_steps_batches_only() -> None:
    train = random_interactions(9, 12, 10, 0.3)
    model = _model(train, fix_steps=3)
    seen = []
    for step in range(7):
        extra = model.before_batch(model.layer0(), step)
        seen.append((bool(extra), id(model.masked)))
    assert [resampled for resampled, _ in seen] == [True, False, False, True, False, False, True]
    assert seen[0][1] == seen[2][1] != seen[3][1]


def test_trainer_resamples_at_the_start_of_every_epoch_and_every_fix_steps_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = load_dataset("demo")
    cfg = resolve_config("autocf", "base", "demo", {"batch_size": 1000, "fix_steps": 4}, device="cpu")
    trainer = Trainer(cfg, data)
    calls: list[int] = []
    real = AutoCF.mask

    def spy(self: AutoCF, seeds: torch.Tensor) -> object:
        calls.append(len(seeds))
        return real(self, seeds)

    monkeypatch.setattr(AutoCF, "mask", spy)
    losses = trainer.train_epoch()
    n = trainer.n_batches  # 19 batches: resampled at 0, 4, 8, 12, 16
    assert len(calls) == -(-n // 4) and set(calls) == {100}
    assert {"rec", "cl", "reg", "infomax"} == set(losses)
    trainer.train_epoch()
    assert len(calls) == 2 * -(-n // 4)


def test_contrastive_alignment_has_no_negative_term_for_autocf() -> None:
    data = tiny_dataset(2, 12, 10, 6)
    torch.manual_seed(0)
    rec = build_model("autocf", "con", AutoCFConfig(), ConConfig(kd_weight=1.0, kd_temperature=0.5), data, CPU)
    assert isinstance(rec.alignment, ContrastiveAlignment) and not rec.alignment.negatives
    batch = random_batch(data.train, 9)
    final = rec.backbone.propagate(rec.backbone.layer0(), training=False)
    got = rec.alignment.loss(final, batch, None)["kd"]
    other = random_batch(data.train, 9)
    same_but_negs = type(batch)(batch.users, batch.pos, other.neg)
    torch.testing.assert_close(rec.alignment.loss(final, same_but_negs, None)["kd"], got)  # negatives unread

    def nce(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        a, b, pool = F.normalize(a), F.normalize(b), F.normalize(pool)
        return (-(a * b).sum(1) / 0.5 + torch.log(torch.exp(a @ pool.T / 0.5).sum(1))).sum()

    with torch.no_grad():
        user_p = rec.alignment.mlp(rec.alignment.user_prf)
        pos_p = rec.alignment.mlp(rec.alignment.item_prf)[batch.pos]
        want = nce(final[batch.users], user_p[batch.users], user_p) + nce(final[12 + batch.pos], pos_p, pos_p)
    torch.testing.assert_close(got.detach(), want / 9, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_gradients_reach_every_parameter(variant: str) -> None:
    data = tiny_dataset(3, 14, 12, 8)
    align = {"base": None, "con": ConConfig(), "gen": GenConfig(mask_ratio=0.3)}[variant]
    torch.manual_seed(0)
    rec = build_model("autocf", variant, AutoCFConfig(), align, data, CPU)
    losses = rec.train_losses(random_batch(data.train, 16), step=0)
    torch.stack(list(losses.values())).sum().backward()
    for name, p in rec.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_presets_resolve_per_dataset() -> None:
    cfg = resolve_config("autocf", "base", "yelp").model_cfg
    assert (cfg.gcn_layer, cfg.reg_weight, cfg.ssl_reg, cfg.fix_steps, cfg.seed_num) == (3, 1e-7, 2.0, 10, 100)
    gen = resolve_config("autocf", "gen", "amazon")
    assert gen.align_cfg is not None and gen.align_cfg.mask_ratio == 0.2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("head_num", 3, "head_num must divide embedding_size"), ("fix_steps", 0, "fix_steps must be > 0")],
)
def test_inconsistent_settings_are_refused_before_training(key: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config("autocf", "base", "demo", {key: value})


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_a_few_epochs_on_demo_lower_the_loss_and_repeat_exactly(demo: Dataset, variant: str) -> None:
    def run() -> list[dict[str, float]]:
        cfg = resolve_config("autocf", variant, "demo", {"epochs": 4, "batch_size": 2048}, device="cpu", seed=7)
        trainer = Trainer(cfg, demo)
        return [trainer.train_epoch() for _ in range(4)]

    first = run()
    assert first[-1]["rec"] < first[0]["rec"]
    assert sum(first[-1].values()) < sum(first[0].values())
    assert run() == first  # same seed, same numbers
