"""The checkpoint format (rlmrec/checkpoint.py) and atomic_write (rlmrec/atomic.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rlmrec import checkpoint
from rlmrec.atomic import atomic_write
from rlmrec.config import resolve_config
from rlmrec.data import load_dataset
from rlmrec.errors import ConfigError
from rlmrec.trainer import Trainer


def test_atomic_write_replaces_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers see the old file until the end
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "best.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left


def test_atomic_write_creates_an_ordinary_file(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def _trainer(seed: int = 1, **overrides: object) -> Trainer:
    cfg = resolve_config("lightgcn", "gen", "demo", {"epochs": 3, "test_step": 1, **overrides}, seed=seed, device="cpu")
    return Trainer(cfg, load_dataset("demo"))


def test_a_checkpoint_round_trips_through_its_file(tmp_path: Path) -> None:
    states: list[checkpoint.State] = []
    _trainer().fit(on_checkpoint=states.append)
    path = tmp_path / checkpoint.FILENAME
    assert checkpoint.load(path) is None
    checkpoint.save(states[0], path)
    loaded = checkpoint.load(path)
    assert loaded is not None and loaded["version"] == checkpoint.VERSION
    assert loaded["progress"]["next_epoch"] == 1 and loaded["progress"]["best_epoch"] == 0
    for key, value in states[0]["model"].items():
        assert torch.equal(loaded["model"][key], value), key
    # Resuming from the file continues exactly as the run did.
    resumed = _trainer().fit(resume=loaded)
    again = _trainer().fit()
    assert resumed.test_metrics == again.test_metrics
    assert [h["losses"] for h in resumed.history] == [h["losses"] for h in again.history]


def test_another_config_or_version_is_refused(tmp_path: Path) -> None:
    states: list[checkpoint.State] = []
    _trainer().fit(on_checkpoint=states.append)
    with pytest.raises(ConfigError, match="different config"):
        _trainer(lr=2e-3).fit(resume=states[0])
    with pytest.raises(ConfigError, match="version 0 is not 1"):
        _trainer().fit(resume={**states[0], "version": 0})
