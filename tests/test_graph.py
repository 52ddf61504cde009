"""The normalized bipartite adjacency and its propagation operator (docs/protocol.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from helpers import dense_normalized, random_interactions

from rlmrec.graph import Graph, normalized_adjacency

# 3 users x 4 items. User 2 and item 3 have no interactions (degree 0).
# Non-binary values: any non-zero entry is one interaction.
R = np.array(
    [
        [1.0, 0.0, 3.0, 0.0],
        [2.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
)


def _random_r(seed: int, n_users: int, n_items: int, density: float) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))


@pytest.mark.parametrize("self_loops", [False, True])
def test_normalized_adjacency_matches_dense_formula(self_loops: bool) -> None:
    adj = normalized_adjacency(sp.csr_matrix(R), self_loops=self_loops)
    assert adj.shape == (7, 7)
    got = adj.toarray()
    np.testing.assert_allclose(got, dense_normalized(R, self_loops), rtol=1e-6, atol=1e-7)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, got.T, rtol=0, atol=0)  # symmetric
    assert adj.has_sorted_indices


def test_normalized_adjacency_hand_values() -> None:
    # Degrees without self-loops: u0 2, u1 2, u2 0, i0 2, i1 1, i2 1, i3 0.
    got = normalized_adjacency(sp.csr_matrix(R)).toarray()
    assert got[0, 3] == pytest.approx(1 / 2)  # u0-i0: 1/sqrt(2*2)
    assert got[1, 4] == pytest.approx(1 / np.sqrt(2))  # u1-i1: 1/sqrt(2*1)
    assert got[2 + 3, 0] == pytest.approx(1 / np.sqrt(2))  # i2-u0
    # Degree-0 user 2 and item 3 (node 6): zero rows and columns, not inf/nan.
    assert not got[2].any() and not got[:, 2].any()
    assert not got[6].any() and not got[:, 6].any()
    # With self-loops every node has degree >= 1; the isolated ones get 1 on the diagonal.
    loops = normalized_adjacency(sp.csr_matrix(R), self_loops=True).toarray()
    assert loops[2, 2] == pytest.approx(1.0) and loops[6, 6] == pytest.approx(1.0)
    assert loops[0, 0] == pytest.approx(1 / 3)  # u0: degree 2 + 1


def test_normalized_adjacency_larger_random_is_symmetric() -> None:
    r = _random_r(0, 40, 30, 0.1)
    adj = normalized_adjacency(r)
    np.testing.assert_allclose(adj.toarray(), dense_normalized(r.toarray(), False), rtol=1e-6, atol=1e-7)
    assert (adj != adj.T).nnz == 0


# ---------------------------------------------------------------------------
# Graph.operator: forward and the custom backward vs dense autograd
# ---------------------------------------------------------------------------


def _check_operator_against_dense(op, dense: torch.Tensor, n: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 5, generator=gen)
    w = torch.randn(n, 5, generator=gen)

    x = x0.clone().requires_grad_(True)
    out = op(x)
    (out * w).sum().backward()

    x_ref = x0.clone().requires_grad_(True)
    out_ref = dense @ x_ref
    (out_ref * w).sum().backward()

    torch.testing.assert_close(out, out_ref, rtol=1e-6, atol=1e-6)
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)


def test_operator_forward_and_backward_match_dense() -> None:
    r = _random_r(1, 25, 15, 0.2)
    adj = normalized_adjacency(r)
    graph = Graph.from_scipy(adj)
    dense = torch.from_numpy(adj.toarray())
    _check_operator_against_dense(graph.operator(), dense, graph.n_nodes, seed=0)
    # Without grad the operator takes the plain path; same forward.
    x = torch.randn(graph.n_nodes, 3)
    with torch.no_grad():
        torch.testing.assert_close(graph.operator()(x), dense @ x, rtol=1e-6, atol=1e-6)


def test_operator_with_self_loops_and_two_layers() -> None:
    adj = normalized_adjacency(_random_r(2, 12, 9, 0.3), self_loops=True)
    graph = Graph.from_scipy(adj)
    op, dense = graph.operator(), torch.from_numpy(adj.toarray())
    x0 = torch.randn(graph.n_nodes, 4)
    x, x_ref = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    op(op(x)).square().sum().backward()
    (dense @ (dense @ x_ref)).square().sum().backward()
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)


def test_operator_with_custom_asymmetric_values() -> None:
    # operator(values) with arbitrary weights on the same pattern: its A^T is the transpose.
    graph = Graph.from_scipy(normalized_adjacency(_random_r(3, 10, 8, 0.3)))
    values = torch.rand(graph.nnz)
    op = graph.operator(values)
    a = op.a.to_dense()
    assert not torch.equal(a, a.T)
    assert torch.equal(op.a_t.to_dense(), a.T)
    _check_operator_against_dense(op, a, graph.n_nodes, seed=1)


# ---------------------------------------------------------------------------
# Edge dropout
# ---------------------------------------------------------------------------


def test_dropped_transpose_is_the_transpose() -> None:
    graph = Graph.from_scipy(normalized_adjacency(_random_r(4, 30, 20, 0.2)))
    torch.manual_seed(0)
    op = graph.dropped(0.5)
    a = op.a.to_dense()
    assert torch.equal(op.a_t.to_dense(), a.T)
    # Both directions of an edge are dropped independently, so A itself is not symmetric.
    assert not torch.equal(a, a.T)


def test_dropped_survival_rate_and_unscaled_values() -> None:
    graph = Graph.from_scipy(normalized_adjacency(_random_r(5, 300, 200, 0.1)))
    assert graph.nnz > 10_000
    torch.manual_seed(1)
    op = graph.dropped(0.8)
    values = op.a.values()
    kept = values != 0
    # Binomial(n, 0.8): std of the fraction is ~0.003 here.
    assert kept.float().mean().item() == pytest.approx(0.8, abs=0.02)
    # Survivors keep their exact normalized weight: no 1/keep_rate rescaling.
    assert torch.equal(values[kept], graph.values[kept])
    assert torch.equal(op.a.col_indices(), graph.col) and torch.equal(op.a.crow_indices(), graph.crow)


def test_keep_rate_one_is_the_full_graph() -> None:
    graph = Graph.from_scipy(normalized_adjacency(_random_r(6, 10, 10, 0.3)))
    op = graph.dropped(1.0)
    assert torch.equal(op.a.to_dense(), graph.operator().a.to_dense())


def test_gradients_through_dropped_operator_match_dense() -> None:
    graph = Graph.from_scipy(normalized_adjacency(_random_r(7, 20, 16, 0.25)))
    torch.manual_seed(2)
    op = graph.dropped(0.7)
    dense = op.a.to_dense()  # the same dropped matrix, densely
    _check_operator_against_dense(op, dense, graph.n_nodes, seed=2)


def test_manual_seed_makes_dropout_deterministic() -> None:
    adj = normalized_adjacency(_random_r(8, 30, 20, 0.2))

    def masks(seed: int) -> list[torch.Tensor]:
        graph = Graph.from_scipy(adj)  # a fresh graph, as each model builds its own
        torch.manual_seed(seed)
        return [graph.dropped(0.8).a.values() != 0 for _ in range(3)]

    first, again, other = masks(0), masks(0), masks(1)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], first[1])  # fresh draws on every pass
    assert not torch.equal(first[0], other[0])


def test_manual_seed_resets_dropout_of_an_existing_graph() -> None:
    graph = Graph.from_scipy(normalized_adjacency(_random_r(9, 30, 20, 0.2)))
    torch.manual_seed(0)
    a = graph.dropped(0.8).a.values()
    torch.manual_seed(0)
    b = graph.dropped(0.8).a.values()
    assert torch.equal(a, b)


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_power_sum_matches_layer_by_layer_autograd(n_layers: int) -> None:
    # LightGCN's layer sum is a single autograd node with a Horner-rule backward; it
    # must equal plain layer-by-layer autograd, with dropout.
    graph = Graph.from_scipy(normalized_adjacency(random_interactions(3, 9, 7, 0.3)))
    torch.manual_seed(1)
    op = graph.dropped(0.7)
    a = op.a.to_dense().double()
    x = torch.randn(graph.n_nodes, 4, dtype=torch.float64, requires_grad=True)
    layers = [x]
    for _ in range(n_layers):
        layers.append(a @ layers[-1])
    naive = sum(layers)
    x_fused = x.detach().clone().requires_grad_()
    got = op.power_sum(x_fused.float(), n_layers).double()
    torch.testing.assert_close(got, naive, rtol=1e-5, atol=1e-6)
    weight = torch.randn_like(naive)
    (got * weight).sum().backward()
    (expected,) = torch.autograd.grad((naive * weight).sum(), [x])
    assert x_fused.grad is not None
    torch.testing.assert_close(x_fused.grad, expected, rtol=1e-5, atol=1e-5)


def _plain_power_sum(
    a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor, n_layers: int, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The propagation as it was written before its buffers were reused: a new tensor
    for every product."""
    out, layer = x.clone(), x
    for _ in range(n_layers):
        layer = torch.sparse.mm(a, layer)
        out = out + layer
    acc = grad
    for _ in range(n_layers):
        acc = torch.sparse.mm(a_t, acc).add_(grad)
    return out, acc


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_reused_buffers_give_bit_identical_results_and_never_overwrite_a_kept_one(n_layers: int) -> None:
    graph = Graph.from_scipy(normalized_adjacency(random_interactions(5, 40, 30, 0.2)))
    torch.manual_seed(2)
    kept = []
    for _ in range(3):  # the same graph's buffers, reused call after call
        op = graph.dropped(0.8)
        x = torch.randn(graph.n_nodes, 8, requires_grad=True)
        grad = torch.randn(graph.n_nodes, 8)
        out = op.power_sum(x, n_layers)
        out.backward(grad)
        assert x.grad is not None
        want_out, want_grad = _plain_power_sum(op.a, op.a_t, x.detach(), n_layers, grad)
        assert torch.equal(out, want_out) and torch.equal(x.grad, want_grad)
        with torch.no_grad():
            assert torch.equal(op.power_sum(x, n_layers), want_out)  # the evaluation path
        kept.append((out.detach(), x.grad, want_out, want_grad))
    for out, got_grad, want_out, want_grad in kept:
        assert torch.equal(out, want_out) and torch.equal(got_grad, want_grad)


def test_dropout_mask_is_the_seeded_uniform_draw_below_keep_rate() -> None:
    """The kept entries are exactly those whose float32 uniform (NumPy PCG64 seeded
    from torch's RNG) is below keep_rate compared in float32, as torch compares: the
    draw that every earlier version made, so seeded runs keep their numbers."""
    graph = Graph.from_scipy(normalized_adjacency(_random_r(8, 200, 150, 0.1)))
    torch.manual_seed(3)
    values = graph.dropped(0.8).a.values()
    torch.manual_seed(3)
    seed = int(torch.randint(0, 2**62, (1,)))
    uniform = torch.from_numpy(np.random.default_rng(seed).random(graph.nnz, dtype=np.float32))
    assert torch.equal(values, torch.where(uniform < 0.8, graph.values, 0.0))
