"""Suite-wide: no test writes a run store or run files into the working folder
(``rlmrec run`` records into ``./runs.db`` by default) or the demo into ~/.cache; and
the CLI fixtures the data, profile and hostile tests share: a private data root, the
CLI pointed at it, and the one-line error check."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_checks import one_line_error
from typer.testing import CliRunner, Result

Invoke = Callable[..., Result]

# make test runs one pytest-xdist worker per core. Each worker (and every rlmrec process
# it starts) gets its share of the cores: two workers each running torch's default of
# all cores would oversubscribe them and run several times slower, not two-fold. Set
# before any test module imports torch, which reads these once.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _share = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RLMREC_THREADS"):
        os.environ.setdefault(_var, _share)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One cache for the session: the demo is generated into it once (by the first test
    that names it), then read by every test and the processes they start."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RLMREC_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """``rlmrec run`` sets torch's thread count for its process; run in-process by a
    test, it must not leave the rest of the suite on one thread."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    yield
    torch = sys.modules.get("torch")
    if torch and before and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMREC_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.setenv("RLMREC_ARTIFACTS", str(tmp_path / "runs"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(root: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("data", "ls")``: the rlmrec CLI with the data root set to ``root``."""
    from rlmrec.cli.main import app  # not at collection time: most tests never need it

    monkeypatch.setenv("RLMREC_DATA", str(root))
    monkeypatch.delenv("RLMREC_DATA_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: Any) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture(name="one_line_error")
def _one_line_error() -> Callable[..., str]:
    return one_line_error
