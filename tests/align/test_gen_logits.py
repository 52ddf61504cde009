"""Gen's hidden-space logits (rlmrec/align/gen_logits.py) against their definition,
``reconstruction_contrast(F.linear(h, W, b), y)``: the same loss and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from rlmrec import losses
from rlmrec.align import gen_logits
from rlmrec.align.base import profile_mlp
from rlmrec.align.gen_logits import choose_path, linear_reconstruction_contrast, path_flops
from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.losses import reconstruction_contrast
from rlmrec.trainer import Trainer

F64 = torch.float64


def _inputs(
    n: int, hidden: int, d: int, seed: int, dtype: torch.dtype = F64, bias: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g, dtype=dtype).requires_grad_()
    w = (torch.randn(d, hidden, generator=g, dtype=dtype) / hidden**0.5).requires_grad_()
    b = torch.randn(d, generator=g, dtype=dtype).requires_grad_() if bias else None
    y = F.normalize(torch.randn(n, d, generator=g, dtype=dtype))
    return h, w, b, y


def _plain(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor, t: float) -> torch.Tensor:
    """The definition."""
    return reconstruction_contrast(F.linear(h, w, b), y, t, y_normalized=True)


def _assert_same(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor, t: float, tol: float
) -> None:
    params = [p for p in (h, w, b) if p is not None]
    got = linear_reconstruction_contrast(h, w, b, y, t, path="hidden")
    expected = _plain(h, w, b, y, t)
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    for a, r in zip(torch.autograd.grad(got, params), torch.autograd.grad(expected, params), strict=True):
        # Relative to the largest entry (a gradient's small entries are sums that
        # cancel), with a floor for gradients that are zero up to rounding (n = 1).
        torch.testing.assert_close(a, r, rtol=0.0, atol=tol * float(r.abs().max()) + 1e-15)


# Masked counts below, near and above the hidden width; a single row; one block or many.
@pytest.mark.parametrize(
    ("n", "hidden", "d"), [(1, 6, 10), (5, 40, 70), (40, 40, 70), (90, 12, 30), (200, 24, 48), (33, 7, 5)]
)
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_hidden_path_equals_the_definition_in_float64(n: int, hidden: int, d: int, t: float) -> None:
    _assert_same(*_inputs(n, hidden, d, seed=n + hidden), t, tol=1e-10)


def test_hidden_path_equals_the_definition_without_bias() -> None:
    _assert_same(*_inputs(30, 9, 20, seed=3, bias=False), 0.3, tol=1e-10)


def test_hidden_path_equals_the_definition_over_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 64)  # 16-row blocks (the minimum)
    _assert_same(*_inputs(70, 11, 25, seed=4), 0.2, tol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
def test_a_zero_output_row_takes_the_norm_clamp_on_both_paths(bias: bool) -> None:
    # x_i = W h_i + b = 0 needs h_i = 0 and b = 0: F.normalize then divides by 1e-12
    # and the norm's Jacobian drops out; the hidden path must do the same.
    h, w, b, y = _inputs(12, 8, 15, seed=5, bias=bias)
    with torch.no_grad():
        h[3] = 0.0
        if b is not None:
            b.zero_()
    _assert_same(h, w, b, y, 0.4, tol=1e-10)


@pytest.mark.parametrize(("n", "hidden", "d", "t"), [(360, 144, 256, 0.2), (700, 60, 150, 0.5), (50, 96, 192, 0.1)])
def test_hidden_path_in_float32_is_as_close_to_float64_as_the_plain_path(n: int, hidden: int, d: int, t: float) -> None:
    exact = _inputs(n, hidden, d, seed=6)
    params64 = [p for p in exact[:3] if p is not None]
    loss64 = _plain(*exact, t)
    ref = [loss64.detach(), *torch.autograd.grad(loss64, params64)]
    single = [None if p is None else p.detach().float().requires_grad_() for p in exact[:3]]
    h, w, b = single
    assert h is not None and w is not None
    y = exact[3].float()
    params32 = [p for p in single if p is not None]
    for path in ("plain", "hidden"):
        loss = linear_reconstruction_contrast(h, w, b, y, t, path=path)
        got = [loss.detach(), *torch.autograd.grad(loss, params32)]
        for a, r in zip(got, ref, strict=True):
            err = float((a.double() - r).abs().max() / r.abs().max())
            assert err < 2e-5, (path, err)


@pytest.mark.parametrize(("need_h", "need_w"), [(True, False), (False, True), (False, False)])
def test_partial_gradients_and_no_grad(need_h: bool, need_w: bool) -> None:
    h, w, b, y = _inputs(25, 7, 13, seed=7)
    assert b is not None
    h.requires_grad_(need_h)
    w.requires_grad_(need_w)
    b.requires_grad_(need_w)
    got = linear_reconstruction_contrast(h, w, b, y, 0.3, path="hidden")
    expected = _plain(h, w, b, y, 0.3)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    params = [p for p in (h, w, b) if p.requires_grad]
    if params:
        for a, r in zip(torch.autograd.grad(got, params), torch.autograd.grad(expected, params), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(
            linear_reconstruction_contrast(h, w, b, y, 0.3, path="hidden"), expected.detach(), rtol=1e-10, atol=1e-10
        )


def test_targets_that_need_a_gradient_take_the_plain_path() -> None:
    h, w, b, y = _inputs(10, 5, 9, seed=8)
    y.requires_grad_()
    got = linear_reconstruction_contrast(h, w, b, y, 0.5, path="hidden")
    grad_y = torch.autograd.grad(got, y)[0]
    torch.testing.assert_close(grad_y, torch.autograd.grad(_plain(h, w, b, y, 0.5), y)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d_in", [32, 96])
def test_through_the_whole_mlp_into_the_cf_embeddings(d_in: int) -> None:
    # As GenerativeAlignment uses it: masked final embeddings -> first layer ->
    # LeakyReLU -> the fused last layer; every parameter and the embeddings match.
    torch.manual_seed(9)
    mlp = profile_mlp(d_in, 300).double()
    first, act, last = mlp
    assert isinstance(last, torch.nn.Linear)
    final = torch.randn(400, d_in, dtype=F64, requires_grad=True)
    seeds = torch.randperm(400)[:220]  # above the hidden width (166 or 198)
    y = F.normalize(torch.randn(400, 300, dtype=F64))[seeds]
    params = [final, *mlp.parameters()]
    hidden = act(first(final[seeds]))
    got = linear_reconstruction_contrast(hidden, last.weight, last.bias, y, 0.2, path="hidden")
    expected = reconstruction_contrast(mlp(final[seeds]), y, 0.2, y_normalized=True)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    for a, r in zip(torch.autograd.grad(got, params), torch.autograd.grad(expected, params), strict=True):
        torch.testing.assert_close(a, r, rtol=0.0, atol=1e-10 * float(r.abs().max()))


@pytest.mark.parametrize("n", [20, 300])
@pytest.mark.parametrize(("need_h", "need_w"), [(True, True), (True, False), (False, True), (False, False)])
def test_the_multiply_add_count_is_what_torch_counts(n: int, need_h: bool, need_w: bool) -> None:
    hidden, d = 40, 90
    for i, path in enumerate(("plain", "hidden")):
        h, w, b, y = _inputs(n, hidden, d, seed=10, dtype=torch.float32)
        assert b is not None
        h.requires_grad_(need_h)
        w.requires_grad_(need_w)
        b.requires_grad_(need_w)
        with FlopCounterMode(display=False) as counter:
            loss = linear_reconstruction_contrast(h, w, b, y, 0.3, path=path)  # type: ignore[arg-type]
            if loss.requires_grad:
                loss.backward()
        assert counter.get_total_flops() == 2 * path_flops(n, d, hidden, need_h, need_w)[i], path


def test_the_path_is_chosen_by_the_count() -> None:
    # Amazon-book, 1,536-d profiles, hidden width 784: masked counts of the presets.
    assert choose_path(1016, 1536, 784, True, True) == "plain"  # DCCF, SimGCL (mask 0.05)
    for n in (2033, 3049, 4066):  # GCCF 0.1, LightGCN 0.15, SGL/AutoCF 0.2
        assert choose_path(n, 1536, 784, True, True) == "hidden"
    # The demo's LightGCN Gen preset (360 of 3,600 nodes, 256-d profiles) stays plain.
    assert choose_path(360, 256, 144, True, True) == "plain"
    # auto follows choose_path.
    h, w, b, y = _inputs(30, 4, 40, seed=11)
    assert choose_path(30, 40, 4, True, True) == "hidden"
    torch.testing.assert_close(
        linear_reconstruction_contrast(h, w, b, y, 0.5), _plain(h, w, b, y, 0.5), rtol=1e-10, atol=1e-10
    )


def _demo_losses(monkeypatch: pytest.MonkeyPatch, path: str) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    monkeypatch.setattr(gen_logits, "choose_path", lambda *_: path)
    calls = []
    hidden_impl = gen_logits._blocked_hidden

    def counted(*args: object, **kwargs: object) -> tuple[torch.Tensor, ...]:
        calls.append(1)
        return hidden_impl(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gen_logits, "_blocked_hidden", counted)
    cfg = resolve_config("lightgcn", "gen", "demo", {"epochs": 2}, seed=3, device="cpu")
    trainer = Trainer(cfg, load_dataset("demo"))
    losses = [trainer.train_epoch() for _ in range(2)]
    assert len(calls) == (2 * trainer.n_batches if path == "hidden" else 0)  # every step took the forced path
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_lightgcn_gen_on_the_demo_trains_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    hidden_losses, hidden_state = _demo_losses(monkeypatch, "hidden")
    plain_losses, plain_state = _demo_losses(monkeypatch, "plain")
    assert [set(e) for e in hidden_losses] == [{"bpr", "reg", "recon"}] * 2
    for got, expected in zip(hidden_losses, plain_losses, strict=True):
        for name in expected:
            assert got[name] == pytest.approx(expected[name], rel=1e-6), name
    for name, value in plain_state.items():
        torch.testing.assert_close(hidden_state[name], value, rtol=1e-4, atol=1e-6, msg=name)
