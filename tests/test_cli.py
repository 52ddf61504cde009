"""The command line: ``rlmrec run`` and ``rlmrec models``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from rlmrec.cli.main import app
from typer.testing import CliRunner, Result


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _demo_run(runner: CliRunner, tmp_path: Path, out: Path, *extra: str) -> Result:
    """``rlmrec run lightgcn base demo`` on CPU into ``out``, which must succeed."""
    args = ["run", "lightgcn", "base", "demo", "--out", str(out), "--data-root", str(tmp_path), "--device", "cpu"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_run_json_prints_one_object_with_config_and_test_metrics(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _demo_run(runner, tmp_path, out, "--max-epochs", "3", "--json")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert {"model": "lightgcn", "variant": "base", "dataset": "demo", "epochs": 3}.items() <= summary["config"].items()
    assert summary["config"]["test_step"] == 3  # the preset
    assert set(summary["test"]) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}
    assert all(0.0 <= v <= 1.0 for v in summary["test"].values())
    assert summary["epochs_run"] == 3 and summary["best_epoch"] == 0  # evaluated at epoch 0 only
    assert summary["out_dir"] == str(out)
    assert (out / "result.json").is_file() and (out / "best.pt").is_file()


def test_run_without_a_terminal_logs_a_line_per_validation(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "a folder whose name is long enough to pass eighty columns on its own, at least"
    result = _demo_run(runner, tmp_path, out, "--max-epochs", "7", "--no-record")
    lines = result.stderr.strip().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d lightgcn/base on demo, seed 2023: 2,000 users, .* sparse torch", lines[0])
    logged = [line for line in lines if re.fullmatch(r"\d\d:\d\d:\d\d epoch \d+: bpr .*", line)]
    assert [line.split()[2] for line in logged] == ["0:", "3:", "6:"]  # test_step 3: every validation
    assert all("valid recall@20 0." in line and "patience left" in line for line in logged)
    assert f"artifacts in {out}" in result.stdout  # whole, though wider than 80 columns


def test_run_set_and_flags_are_reflected_in_the_config(runner: CliRunner, tmp_path: Path) -> None:
    args = ["run", "gccf", "gene", "demo", "--max-epochs", "2", "--set", "test_step=1", "--set", "patience=7",
            "--set", "mask_ratio=0.2", "--seed", "5", "--json", "--out", str(tmp_path / "o"),
            "--data-root", str(tmp_path), "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    cfg = summary["config"]
    assert (cfg["model"], cfg["variant"]) == ("gccf", "gen")  # alias resolved
    assert (cfg["test_step"], cfg["patience"], cfg["mask_ratio"], cfg["seed"], cfg["epochs"]) == (1, 7, 0.2, 5, 2)
    assert summary["best_epoch"] in (0, 1)
    history = json.loads((tmp_path / "o" / "result.json").read_text())["history"]
    assert [("valid" in h) for h in history] == [True, True]  # test_step=1: every epoch


def test_run_threads_sets_the_training_threads_and_a_crowded_cpu_warns(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--threads 1`` is torch's count while this (in-process) run trains, and the
    run's log says so; other processes busy on its cores: one warning on stderr, and
    in the run's log."""
    from rlmrec import contention
    from rlmrec.store import Store
    from rlmrec.trainer import Trainer

    seen: list[int] = []
    epoch = Trainer.train_epoch

    def counted_epoch(self: Trainer) -> dict[str, float]:
        seen.append(torch.get_num_threads())
        return epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", counted_epoch)
    monkeypatch.setattr(contention, "measure", lambda _window: [contention.Busy(1.9, 2, "cores")])
    before = torch.get_num_threads()
    args = ["run", "lightgcn", "base", "demo", "--max-epochs", "1", "--json", "--threads", "1",
            "--data-root", str(tmp_path), "--device", "cpu"]  # fmt: skip
    try:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert seen == [1]  # torch's count while the one epoch trained
    finally:
        torch.set_num_threads(before)
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "1.9 of the 2 cores" in warning and "1 thread" in warning and "several times slower" in warning
    store = Store()  # the suite's private store (conftest)
    [run] = store.runs()
    logs = store.logs(run.id)
    assert any(log.level == "warning" and "1.9 of the 2 cores" in log.message for log in logs)
    assert any(re.match(r"started on cpu with 1 thread, gemm (onednn|blas): ", log.message) for log in logs)
    assert json.loads(result.stdout)["epochs_run"] == 1  # stdout: the JSON alone


def test_threads_must_be_positive(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["run", "lightgcn", "base", "demo", "--threads", "0"])
    assert result.exit_code == 1 and "--threads" in result.stderr
    monkeypatch.setenv("RLMREC_THREADS", "many")
    args = ["run", "lightgcn", "base", "demo", "--max-epochs", "1", "--no-record", "--data-root", str(tmp_path)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "RLMREC_THREADS='many'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


ERRORS = {
    "unknown model": (["run", "lightgcm", "base", "demo"], ["unknown model 'lightgcm'", "did you mean 'lightgcn'"]),
    "unknown variant": (["run", "lightgcn", "contra", "demo"], ["unknown variant 'contra'", "base", "con", "gen"]),
    "unknown --set key": (
        ["run", "lightgcn", "base", "demo", "--set", "learning_rate=0.1"],
        ["unknown --set key 'learning_rate'", "valid keys:", "lr", "layer_num", "keep_rate"],
    ),
    "malformed --set": (["run", "lightgcn", "base", "demo", "--set", "lr"], ["malformed --set 'lr'", "key=value"]),
    "bad --set value": (["run", "lightgcn", "base", "demo", "--set", "layer_num=two"], ["bad value for 'layer_num'"]),
    "missing dataset": (["run", "lightgcn", "base", "nosuch"], ["unknown dataset 'nosuch'", "available: mine", "demo"]),
}


def _invoke_error(runner: CliRunner, tmp_path: Path, args: list[str], json_flag: bool):  # type: ignore[no-untyped-def]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "trn_mat.pkl").write_bytes(b"")  # enough to be listed as a dataset
    extra = ["--data-root", str(tmp_path), "--out", str(tmp_path / "out")] + (["--json"] if json_flag else [])
    return runner.invoke(app, [*args, *extra])


def _assert_error(result, fragments: list[str], one_line: bool = True) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[-1]
    if one_line:
        assert len(lines) == 1, lines


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line_on_stderr(runner: CliRunner, tmp_path: Path, case: str) -> None:
    args, fragments = ERRORS[case]
    _assert_error(_invoke_error(runner, tmp_path, args, json_flag=True), fragments)


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_without_json_name_the_problem_without_traceback(runner: CliRunner, tmp_path: Path, case: str) -> None:
    args, fragments = ERRORS[case]
    _assert_error(_invoke_error(runner, tmp_path, args, json_flag=False), fragments, one_line=False)


@pytest.mark.parametrize("case", ["unknown model", "missing dataset"])
def test_errors_without_json_are_one_line_on_stderr(runner: CliRunner, tmp_path: Path, case: str) -> None:
    args, fragments = ERRORS[case]
    _assert_error(_invoke_error(runner, tmp_path, args, json_flag=False), fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_gpu_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    result = _invoke_error(runner, tmp_path, ["run", "lightgcn", "base", "demo", "--device", "cuda"], json_flag=True)
    _assert_error(result, ["device 'cuda'", "no CUDA GPU"])
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_models_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    catalog = json.loads(result.stdout)
    assert {"lightgcn", "gccf"} <= set(catalog)
    for name in ("lightgcn", "gccf"):
        variants = catalog[name]["variants"]
        assert set(variants) == {"base", "con", "gen"}
        for presets in variants.values():
            assert {"common", "amazon", "yelp", "steam"} <= set(presets)
    # Published values (hyperparameters.json).
    assert catalog["lightgcn"]["variants"]["gen"]["amazon"]["mask_ratio"] == 0.15
    assert catalog["lightgcn"]["variants"]["con"]["amazon"]["kd_weight"] == 0.01
    assert catalog["gccf"]["variants"]["base"]["amazon"]["layer_num"] == 2
    assert "keep_rate" not in catalog["gccf"]["variants"]["base"]["amazon"]  # GCCF never drops edges
    assert catalog["gccf"]["defaults"]["self_loops"] == "reference"
    assert np.isclose(catalog["lightgcn"]["defaults"]["keep_rate"], 0.8)


def test_models_table_mentions_both_models(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "lightgcn" in result.stdout and "gccf" in result.stdout
    assert "LightGCN" in result.stdout and "GCCF" in result.stdout
