"""The blocked profile MLP equals the plain nn.Sequential, values and gradients."""

from __future__ import annotations

import pytest
import torch

import rlmrec.align.mlp as mlp_module
from rlmrec.align.mlp import apply_mlp, profile_mlp


@pytest.mark.parametrize("input_grad", [False, True])
def test_blocked_mlp_matches_sequential(monkeypatch: pytest.MonkeyPatch, input_grad: bool) -> None:
    monkeypatch.setattr(mlp_module, "_BLOCK_ELEMENTS", 64)  # 64-row blocks: several of them
    torch.manual_seed(0)
    mlp = profile_mlp(12, 6).double()  # hidden (12 + 6) // 2 = 9
    assert [tuple(p.shape) for p in mlp.parameters()] == [(9, 12), (9,), (6, 9), (6,)]
    x = torch.randn(150, 12, dtype=torch.float64, requires_grad=input_grad)
    weight = torch.randn(150, 6, dtype=torch.float64)
    got = apply_mlp(mlp, x)
    expected = mlp(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    inputs = [*mlp.parameters(), *([x] if input_grad else [])]
    grads = torch.autograd.grad((got * weight).sum(), inputs)
    reference = torch.autograd.grad((expected * weight).sum(), inputs)
    for g, r in zip(grads, reference, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_blocked_mlp_without_grad() -> None:
    mlp = profile_mlp(8, 4)
    x = torch.randn(70, 8)
    with torch.no_grad():
        torch.testing.assert_close(apply_mlp(mlp, x), mlp(x))
