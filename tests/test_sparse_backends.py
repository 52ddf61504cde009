"""The optional torch-sparse/torch-scatter backend gives the numbers of the native
one: losses, gradients and metrics on the same inputs, within 1e-5.

Without the [pyg] extra the equivalence cases skip locally; in CI (``CI`` set) they
fail instead, since CI installs the extra (scripts/install-pyg.sh).
"""

from __future__ import annotations

import os
import time

import pytest
import torch
from helpers import random_batch

from rlmrec import sparse
from rlmrec.config import resolve_config
from rlmrec.data import Dataset, load_dataset
from rlmrec.errors import ConfigError
from rlmrec.registry import build_model
from rlmrec.trainer import Trainer

CPU = torch.device("cpu")
# torch-sparse still compiles some helpers with torch.jit.script, deprecated in torch 2.13.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
MODELS = ["lightgcn", "gccf", "sgl", "simgcl", "dccf", "autocf"]


@pytest.fixture(scope="module")
def pyg() -> None:
    if not sparse.pyg_available():
        if os.environ.get("CI"):
            pytest.fail("CI installs the [pyg] extra, but torch-sparse/torch-scatter are missing")
        pytest.skip("torch-sparse/torch-scatter not installed (scripts/install-pyg.sh)")


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset("demo")


def _step(model: str, variant: str, data: Dataset, backend: str) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Loss terms and gradients of one batch from identically seeded weights and draws."""
    cfg = resolve_config(model, variant, "demo", device="cpu")
    with sparse.using(backend):
        torch.manual_seed(11)
        rec = build_model(model, variant, cfg.model_cfg, cfg.align_cfg, data, CPU)
        torch.manual_seed(12)
        losses = rec.train_losses(random_batch(data.train, 512), step=0)
        torch.stack(list(losses.values())).sum().backward()
    grads = {n: p.grad.clone() for n, p in rec.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in losses.items()}, grads


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("variant", ["base", "con", "gen"])
def test_losses_and_gradients_match(pyg: None, demo: Dataset, model: str, variant: str) -> None:
    native_losses, native_grads = _step(model, variant, demo, "torch")
    pyg_losses, pyg_grads = _step(model, variant, demo, "pyg")
    assert native_losses.keys() == pyg_losses.keys()
    for name, value in native_losses.items():
        assert pyg_losses[name] == pytest.approx(value, rel=1e-5, abs=1e-5), name
    assert native_grads.keys() == pyg_grads.keys() and native_grads
    for name, grad in native_grads.items():
        torch.testing.assert_close(pyg_grads[name], grad, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("model", MODELS)
def test_training_and_metrics_match(pyg: None, demo: Dataset, model: str) -> None:
    """Two epochs under each backend: per-epoch losses agree; then the same weights
    evaluate to the same metrics under either backend."""
    runs = {}
    for backend in ("torch", "pyg"):
        cfg = resolve_config(model, "base", "demo", {"sparse_backend": backend, "batch_size": 2048}, device="cpu")
        trainer = Trainer(cfg, demo)
        assert trainer.sparse_backend == backend
        runs[backend] = (trainer, [trainer.train_epoch() for _ in range(2)])
    (native, native_losses), (other, pyg_losses) = runs["torch"], runs["pyg"]
    for a, b in zip(native_losses, pyg_losses, strict=True):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-5)
    want = native.evaluate("valid").metrics
    native.sparse_backend = "pyg"  # the same weights, evaluated through the other backend
    got = native.evaluate("valid").metrics
    assert got == pytest.approx(want, abs=1e-5)
    assert other.evaluate("valid").metrics == pytest.approx(want, abs=1e-3)  # trained apart: rounding drifts


def test_auto_keeps_the_faster_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparse, "pyg_available", lambda: True)
    for slow, fast in (("torch", "pyg"), ("pyg", "torch")):

        def probe(slow: str = slow) -> None:
            time.sleep(0.02 if sparse.active() == slow else 0.0)

        assert sparse.resolve("auto", probe) == fast
    assert sparse.active() == "torch"  # timing leaves the backend as it was


def test_trainers_do_not_leak_their_backend(pyg: None, demo: Dataset) -> None:
    cfg = resolve_config("lightgcn", "base", "demo", {"sparse_backend": "pyg"}, device="cpu")
    trainer = Trainer(cfg, demo)
    trainer.train_epoch()
    trainer.evaluate()
    assert sparse.active() == "torch"


def test_auto_is_native_torch_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparse, "pyg_available", lambda: False)
    assert sparse.resolve("auto", lambda: pytest.fail("nothing to time")) == "torch"
    with pytest.raises(ConfigError, match=r"pip install 'rlmrec\[pyg\]'"):
        sparse.set_backend("pyg")
    with pytest.raises(ConfigError, match="unknown sparse_backend 'scipy'"):
        sparse.resolve("scipy", lambda: None)


def test_the_config_key_is_validated() -> None:
    with pytest.raises(ConfigError, match="sparse_backend"):
        resolve_config("lightgcn", "base", "demo", {"sparse_backend": "cusparse"})
