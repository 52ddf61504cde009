"""``--out`` where nothing can be written (under a regular file, or in /proc: as root,
permission bits stop nothing) is one line and exit 1 from ``report``, ``plot`` and
``run``, leaves no temporary file, and ``run`` records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import Invoke, one_line_error
from hostile.crafted import write_dataset

from rlmrec.config import resolve_config
from rlmrec.store import RunSpec, Store


def _places(tmp_path: Path, name: str) -> list[Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return [blocker / name, Path("/proc") / name]


def _finished_run(store: Store) -> None:
    config = resolve_config("lightgcn", "base", "demo").to_dict()
    [run_id] = store.add_runs([RunSpec("lightgcn", "base", "demo", 2023, config)])
    run = store.claim("w", "h", 1, "cpu")
    assert run is not None and run.id == run_id
    for epoch in range(3):
        store.record_epoch(run_id, run.attempt, epoch, {"bpr": 0.5 - 0.1 * epoch}, 0.1, 0.1 * (epoch + 1))
    metrics = {"recall@20": 0.2, "ndcg@20": 0.1}
    store.finish(run_id, run.attempt, "succeeded", test_metrics=metrics, test_value=0.2)


@pytest.mark.parametrize("where", [0, 1], ids=["under a file", "in /proc"])
def test_report_out(cli: Invoke, tmp_path: Path, where: int) -> None:
    _finished_run(Store())
    out = _places(tmp_path, "table.md")[where]
    one_line_error(cli("report", "--out", out), f"--out {out}: cannot write")
    assert not list(tmp_path.rglob(".*tmp*"))


@pytest.mark.parametrize("where", [0, 1], ids=["under a file", "in /proc"])
def test_plot_out(cli: Invoke, tmp_path: Path, where: int) -> None:
    _finished_run(Store())
    out = _places(tmp_path, "curves.png")[where]
    one_line_error(cli("plot", 1, "--metric", "loss", "--out", out), f"--out {out}: cannot write")
    assert not list(tmp_path.rglob(".*tmp*"))


@pytest.mark.parametrize("record", ["--record", "--no-record"])
@pytest.mark.parametrize("where", [0, 1], ids=["under a file", "in /proc"])
def test_run_out_records_nothing(cli: Invoke, root: Path, tmp_path: Path, where: int, record: str) -> None:
    write_dataset(root, "toy", embeddings=False)
    out = _places(tmp_path, "rlmrec-run")[where]
    one_line_error(
        cli("run", "lightgcn", "base", "toy", "--max-epochs", "1", "--set", "topk=5", "--out", out, record),
        f"--out {out}",
    )
    assert Store().runs() == []  # no failed row left behind


def test_run_with_unwritable_artifacts_records_nothing(cli: Invoke, root: Path, tmp_path: Path) -> None:
    write_dataset(root, "toy", embeddings=False)
    artifacts = _places(tmp_path, "runs")[0]
    result = cli("run", "lightgcn", "base", "toy", "--max-epochs", "1", "--set", "topk=5", "--artifacts", artifacts)
    one_line_error(result, f"--artifacts {artifacts}: cannot write")
    assert Store().runs() == []
