"""Worker pieces that need no child process: slots, GPU parsing, the live-worker
listing, and ``rlmrec run`` recording into the store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rlmrec.cli.main import app
from typer.testing import CliRunner

from rlmrec.errors import ConfigError
from rlmrec.store import Store
from rlmrec.worker.gpus import parse_gpus, slots
from rlmrec.worker.pool import pid_alive


def test_slots_per_gpu_and_cpu() -> None:
    assert slots([0, 2], 2) == ["cuda:0", "cuda:0", "cuda:2", "cuda:2"]
    assert slots([], 3) == ["cpu", "cpu", "cpu"]
    with pytest.raises(ConfigError, match="per-gpu"):
        slots([0], 0)


def test_parse_gpus() -> None:
    assert parse_gpus("none") == [] and parse_gpus("1,0") == [1, 0]
    for bad in ("0,x", "0,0", "-1"):
        with pytest.raises(ConfigError, match="--gpus"):
            parse_gpus(bad)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(2**22 + 12345)  # beyond Linux's pid_max default


def test_workers_listing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    runner = CliRunner()
    store = Store(url)  # `workers` reads a store; it never creates one
    assert "no live workers" in runner.invoke(app, ["workers", "--db", url]).stdout
    store.register_worker("gpu-box:42:1", "gpu-box", 42, ["cuda:0", "cuda:1"])
    for args in (["workers", "--db", url], ["worker", "--status", "--db", url]):
        out = runner.invoke(app, args)
        assert out.exit_code == 0 and "gpu-box:42:1" in out.stdout and "cuda:0, cuda:1" in out.stdout
    listed = json.loads(runner.invoke(app, ["workers", "--json", "--db", url]).stdout)
    assert listed[0]["slots"] == ["cuda:0", "cuda:1"] and listed[0]["runs"] == []


def test_run_is_recorded_in_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["run", "lightgcn", "gen", "demo", "--max-epochs", "4", "--json", "--device", "cpu", "--db", url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    [run] = Store(url).runs(with_config=True)
    assert (run.status, run.model, run.variant, run.epoch, run.attempt) == ("succeeded", "lightgcn", "gen", 3, 1)
    assert run.test_metrics == summary["test"] and run.config == summary["config"]
    store = Store(url)
    assert [e.epoch for e in store.epochs(run.id)] == [0, 1, 2, 3]
    assert summary["out_dir"] == str(store.run_dir(run.id)) and (store.run_dir(run.id) / "best.pt").is_file()
    assert store.user_metrics(run.id) is not None


def test_run_no_record_leaves_the_store_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["run", "lightgcn", "base", "demo", "--max-epochs", "1", "--json", "--no-record", "--db", url]
    args += ["--out", str(tmp_path / "out")]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert not (tmp_path / "runs.db").exists()
