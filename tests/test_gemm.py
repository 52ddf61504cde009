"""The GEMM engine of the hot loops (rlmrec/gemm.py): both engines compute the same
products and exponentials, the choice follows RLMREC_GEMM and the CPU, FLOP counts do
not depend on it, and the fused profile MLP matches autograd's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rlmrec import gemm, losses
from rlmrec.align import base as align_base
from rlmrec.align.base import ProfileMLP, profile_mlp
from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.errors import ConfigError
from rlmrec.trainer import Trainer

ONEDNN = pytest.mark.skipif(not gemm._onednn_available(), reason="this torch build has no oneDNN")


@pytest.fixture
def use_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def set_engine(name: str) -> None:
        monkeypatch.setenv(gemm.ENV, name)
        gemm.engine.cache_clear()

    yield set_engine
    gemm.engine.cache_clear()  # the next test reads its own environment


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    # Float32 products whose sums run in another order: equal to rounding.
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


@ONEDNN
@pytest.mark.parametrize("name", ["onednn", "blas"])
def test_both_engines_compute_torch_s_products(use_engine, name: str) -> None:  # type: ignore[no-untyped-def]
    use_engine(name)
    assert gemm.engine() == name
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(37, 24, generator=g), torch.randn(19, 24, generator=g), torch.randn(19, generator=g)
    _close(gemm.linear(x, w, b), x @ w.T + b)
    _close(gemm.linear(x, w), x @ w.T)
    _close(gemm.linear(x, w, b, leaky_slope=0.01), torch.nn.functional.leaky_relu(x @ w.T + b, 0.01))
    _close(gemm.linear(x, w.T.contiguous().T, b), x @ w.T + b)  # a transposed view as weight
    a, m = torch.randn(24, 37, generator=g), torch.randn(24, 11, generator=g)
    _close(gemm.mm(a.T, m), a.T @ m)  # a transposed view as left operand
    _close(gemm.mm(x, m), x @ m)
    acc = torch.randn(37, 11, generator=g)
    expected = acc - 0.5 * (a.T @ m)
    out = gemm.add_mm_(acc, a.T, m, alpha=-0.5)
    assert out.data_ptr() == acc.data_ptr()  # in place
    _close(acc, expected)
    assert gemm.linear(x[:0], w, b).shape == (0, 19)


def test_an_unknown_engine_is_one_clear_line(use_engine) -> None:  # type: ignore[no-untyped-def]
    use_engine("mkl")
    with pytest.raises(ConfigError, match=r"^RLMREC_GEMM='mkl': expected one of auto, onednn, blas") as err:
        gemm.engine()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("vendor", "expected"), [("AuthenticAMD", "onednn"), ("GenuineIntel", "blas"), ("", "blas")])
def test_auto_picks_onednn_on_amd_only(use_engine, monkeypatch: pytest.MonkeyPatch, vendor: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gemm, "_onednn_available", lambda: True)
    monkeypatch.setattr(gemm, "_cpu_vendor", lambda: vendor)
    use_engine("auto")
    assert gemm.engine() == expected
    use_engine("")  # unset and empty mean auto
    assert gemm.engine() == expected


def test_without_onednn_every_choice_is_blas(use_engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gemm, "_onednn_available", lambda: False)
    for name in ("auto", "onednn", "blas"):
        use_engine(name)
        assert gemm.engine() == "blas"


def test_the_vendor_is_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert gemm._cpu_vendor(info) == "AuthenticAMD"
    assert gemm._cpu_vendor(tmp_path / "missing") == ""


@ONEDNN
def test_flop_counts_do_not_depend_on_the_engine(use_engine) -> None:  # type: ignore[no-untyped-def]
    x, w, b = torch.randn(8, 6), torch.randn(5, 6), torch.randn(5)
    counts = []
    for name in ("onednn", "blas"):
        use_engine(name)
        with FlopCounterMode(display=False) as counter:
            gemm.linear(x, w, b)
            gemm.mm(x, w.T)
        counts.append(counter.get_total_flops())
    assert counts == [2 * 2 * 8 * 6 * 5] * 2


@ONEDNN
@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("block", [64, 2048])  # several row blocks in the backward, or one
def test_the_fused_profile_mlp_matches_autograd(  # type: ignore[no-untyped-def]
    use_engine, monkeypatch: pytest.MonkeyPatch, x_grad: bool, block: int
) -> None:
    use_engine("onednn")
    monkeypatch.setattr(align_base, "_BACKWARD_ROWS", block)
    torch.manual_seed(0)
    mlp = profile_mlp(48, 10)
    plain = nn.Sequential(nn.Linear(48, 29), nn.LeakyReLU(), nn.Linear(29, 10))
    plain.load_state_dict(mlp.state_dict())
    x = torch.randn(300, 48)
    x[:, :5] *= 20  # some hidden units negative for every row, some positive
    outs, grads = [], []
    for module in (mlp, plain):
        xi = x.clone().requires_grad_(x_grad)
        out = module(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad for p in module.parameters()] + ([xi.grad] if x_grad else []))
    assert outs[0].grad_fn is None and isinstance(mlp, ProfileMLP)
    _close(outs[0], outs[1])
    for got, expected in zip(grads[0], grads[1], strict=True):
        _close(got, expected)
    assert list(mlp.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # checkpoints unchanged


@ONEDNN
def test_the_fused_mlp_is_used_only_where_it_applies(use_engine) -> None:  # type: ignore[no-untyped-def]
    mlp = profile_mlp(6, 4)
    use_engine("onednn")
    assert mlp(torch.randn(3, 6, requires_grad=True)).grad_fn.name().endswith("_FusedMLPBackward")  # type: ignore[union-attr]
    assert "Addmm" in mlp.double()(torch.randn(3, 6, dtype=torch.float64)).grad_fn.name()  # type: ignore[union-attr]
    use_engine("blas")
    assert "Addmm" in mlp.float()(torch.randn(3, 6)).grad_fn.name()  # type: ignore[union-attr]


def _demo_epochs(variant: str) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    cfg = resolve_config("lightgcn", variant, "demo", {"epochs": 2}, seed=3, device="cpu")
    trainer = Trainer(cfg, load_dataset("demo"))
    losses = [trainer.train_epoch() for _ in range(2)]
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@ONEDNN
@pytest.mark.parametrize("variant", ["con", "gen"])
def test_demo_training_is_the_same_on_both_engines(use_engine, variant: str) -> None:  # type: ignore[no-untyped-def]
    use_engine("onednn")
    fast_losses, fast_state = _demo_epochs(variant)
    use_engine("blas")
    blas_losses, blas_state = _demo_epochs(variant)
    for got, expected in zip(fast_losses, blas_losses, strict=True):
        assert got.keys() == expected.keys()
        for name in expected:
            assert got[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-9), name
    for name, value in blas_state.items():
        torch.testing.assert_close(fast_state[name], value, rtol=1e-4, atol=1e-6, msg=name)


@ONEDNN
@pytest.mark.parametrize("name", ["onednn", "blas"])
def test_the_exponential_pair_is_exp(use_engine, name: str) -> None:  # type: ignore[no-untyped-def]
    # On oneDNN, logits are scaled by log2(e) and go through exp2 (MKL's exp is slow
    # on AMD); across float32's whole normal range of exp that is exp to rounding.
    use_engine(name)
    x = torch.linspace(-85.0, 85.0, 20_001)
    scale = gemm.exp_scale(x)
    assert scale == (1 / math.log(2) if name == "onednn" else 1.0)
    assert gemm.exp_scale(x.double()) == 1.0  # oneDNN's path is float32 only
    got = gemm.exp_(x * scale)
    torch.testing.assert_close(got.double(), torch.exp(x.double()), rtol=1e-5, atol=0.0)


@ONEDNN
@pytest.mark.parametrize("grads", [(False, False), (True, True)])
def test_the_reconstruction_contrast_is_the_same_on_both_engines(use_engine, grads: tuple[bool, bool]) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 40, generator=g)
    x[7] = 0.0  # a clamped norm
    y = torch.nn.functional.normalize(torch.randn(300, 40, generator=g))
    results = []
    for name in ("blas", "onednn"):
        use_engine(name)
        results.append(losses._blocked_recon(x, y, 0.2, *grads))
    (loss_b, *grads_b), (loss_o, *grads_o) = results
    torch.testing.assert_close(loss_o, loss_b, rtol=1e-5, atol=0.0)
    for got, expected in zip(grads_o, grads_b, strict=True):
        if expected.numel():
            _close(got, expected)


@ONEDNN
# (unit rows, spread): unit rows bound the logits by 1/t, so only raw rows can be spread
# so far apart that the max-shift runs.
@pytest.mark.parametrize(("unit_rows", "spread"), [(True, 1.0), (False, 1.0), (False, 10.0)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_rows", [203, 208])  # padded to 208, or a multiple of 16 already
def test_padding_to_stable_shapes_is_exact(  # type: ignore[no-untyped-def]
    use_engine, monkeypatch: pytest.MonkeyPatch, unit_rows: bool, spread: float, weighted: bool, n_rows: int
) -> None:
    # A batch's pool and row counts change every batch; on oneDNN they are padded so
    # that few shapes ever reach it (each costs a compiled kernel kept in memory).
    # Their exponentials run as exp2 there, in both the unshifted and shifted forms.
    g = torch.Generator().manual_seed(4)
    a = torch.nn.functional.normalize(torch.randn(n_rows, 8, generator=g))
    pool = torch.nn.functional.normalize(torch.randn(5_001, 8, generator=g))
    if not unit_rows:
        a, pool = a * 3 * spread, pool * 2 * spread
        assert losses._unshifted_exp_is_safe(a, pool, 0.3, None, False) == (spread == 1.0)
    row_w = torch.rand(n_rows, generator=g) + 0.5 if weighted else None
    logw = torch.rand(5_001, generator=g).log() if weighted else None
    use_engine("blas")
    expected = losses._blocked_lse_sum(a, pool, 0.3, row_w, logw, unit_rows, with_grad=True)
    use_engine("onednn")
    shapes: list[tuple[int, int, int]] = []
    linear = gemm.linear

    def recorded(x: torch.Tensor, w: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        shapes.append((x.shape[0], x.shape[1], w.shape[0]))
        return linear(x, w, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gemm, "linear", recorded)
    got = losses._blocked_lse_sum(a, pool, 0.3, row_w, logw, unit_rows, with_grad=True)
    logits_shapes = {s for s in shapes if s[1:] == (8, 5_056)}  # rows x dim x pool (5,001 padded to 64s)
    assert logits_shapes and all(rows % 16 == 0 for rows, _, _ in logits_shapes)
    assert got[1].shape == a.shape and got[2].shape == pool.shape
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=0.0)
    for g_got, g_expected in zip(got[1:], expected[1:], strict=True):
        if spread == 1.0:
            _close(g_got, g_expected)
        else:
            # Logits near 2,000 carry float32 rounding of ~1e-4, which the peaked
            # softmax passes on to the gradients: either engine is that far from
            # float64's result, so the two are compared at that scale.
            torch.testing.assert_close(g_got, g_expected, rtol=0.0, atol=1e-4 * float(g_expected.abs().max()))


@ONEDNN
def test_sizes_are_padded_only_for_onednn(use_engine) -> None:  # type: ignore[no-untyped-def]
    use_engine("onednn")
    assert gemm.stable_size(5_300, torch.zeros(1)) == 5_312
    assert gemm.stable_size(5_300, torch.zeros(1, dtype=torch.float64)) == 5_300  # oneDNN path is float32 only
    use_engine("blas")
    assert gemm.stable_size(5_300, torch.zeros(1)) == 5_300


@ONEDNN
def test_the_fused_mlp_counts_the_flops_autograd_does(use_engine) -> None:  # type: ignore[no-untyped-def]
    counts = []
    for name in ("onednn", "blas"):
        use_engine(name)
        torch.manual_seed(0)
        mlp = profile_mlp(64, 8)
        with FlopCounterMode(display=False) as counter:
            mlp(torch.randn(100, 64)).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] == 2 * 100 * 64 * 36 * 2 + 2 * 100 * 36 * 8 * 3


@ONEDNN
@pytest.mark.parametrize("failure", ["raises", "wrong"])
def test_a_missing_or_changed_onednn_op_means_blas(use_engine, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:  # type: ignore[no-untyped-def]
    # The op is torch-internal: a release that renames or changes it must not break training.
    def changed(x: torch.Tensor, w: torch.Tensor, *_: object) -> torch.Tensor:
        if failure == "raises":
            raise RuntimeError("mkldnn::_linear_pointwise() expected at most 5 arguments")
        return torch.zeros(x.shape[0], w.shape[0])

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", changed)
    gemm._onednn_available.cache_clear()
    try:
        assert not gemm._onednn_available()
        use_engine("onednn")
        assert gemm.engine() == "blas"
    finally:
        monkeypatch.undo()
        gemm._onednn_available.cache_clear()
    assert gemm._onednn_available()
