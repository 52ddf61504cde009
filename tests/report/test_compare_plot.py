"""``rlmrec compare`` (deltas, the per-user test, config differences) and
``rlmrec plot`` (a real image with the expected size and content)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rlmrec.cli.main import app
from scipy import stats as sps
from typer.testing import CliRunner

from rlmrec.report.compare import compare, config_diff
from rlmrec.store import RunSpec, Store

from .conftest import add


def test_compare_deltas_and_wilcoxon_match_scipy(study: Store) -> None:
    [a] = study.runs(model=["gccf"], variant=["base"])
    [b] = study.runs(model=["gccf"], variant=["gen"])
    result = compare(study, a.id, b.id)
    ua, ub = study.user_metrics(a.id), study.user_metrics(b.id)
    assert ua is not None and ub is not None
    assert [m.metric for m in result.metrics] == list((a.test_metrics or {}).keys())
    for m in result.metrics:
        assert m.delta == pytest.approx((b.test_metrics or {})[m.metric] - (a.test_metrics or {})[m.metric])
        expected = sps.wilcoxon(ub[m.metric].astype(np.float64), ua[m.metric].astype(np.float64)).pvalue
        assert m.significance is not None and m.significance.p_value == pytest.approx(expected, rel=1e-9)
    assert set(result.config_diff) >= {"variant", "mask_ratio", "recon_weight"}  # gen-only keys appear
    assert "lr" not in result.config_diff and "dataset" not in result.config_diff


def test_config_diff_keeps_changed_keys_only() -> None:
    a = {"model": "lightgcn", "variant": "base", "lr": 0.001, "seed": 1, "topk": [5, 20]}
    b = {"model": "lightgcn", "variant": "con", "lr": 0.001, "seed": 2, "topk": [5, 20], "kd_weight": 0.01}
    assert config_diff(a, b) == {"variant": ("base", "con"), "seed": (1, 2), "kd_weight": (None, 0.01)}


def test_cli_compare_text_and_json(study: Store) -> None:
    [a] = study.runs(model=["gccf"], variant=["base"])
    [b] = study.runs(model=["gccf"], variant=["gen"])
    runner, db = CliRunner(), ["--db", study.url]
    text = runner.invoke(app, ["compare", str(a.id), str(b.id), *db])
    assert text.exit_code == 0 and "recall@20" in text.stdout and "mask_ratio" in text.stdout
    data = json.loads(runner.invoke(app, ["compare", str(a.id), str(b.id), "--json", *db]).stdout)
    assert data["a"]["id"] == a.id and data["metrics"][0]["users"] == 300
    missing = runner.invoke(app, ["compare", str(a.id), "999", *db])
    assert missing.exit_code == 1 and "no run with id 999" in missing.stderr


def _with_epochs(store: Store, seed: int, shift: float) -> int:
    [run_id] = store.add_runs([RunSpec("lightgcn", "gen", "demo", seed, {"seed": seed}, priority=5)])
    run = store.claim("w", "h", 1, "cpu")
    assert run is not None and run.id == run_id
    for epoch in range(12):
        losses = {"bpr": 0.7 - 0.03 * epoch + shift, "reg": 0.01, "recon": 0.6 - 0.01 * epoch}
        store.record_epoch(run_id, run.attempt, epoch, losses, 0.1, 0.1 * epoch)
        if epoch % 3 == 0:
            metrics = {"recall@20": 0.05 + 0.01 * epoch + shift, "ndcg@20": 0.03 + 0.005 * epoch}
            store.record_eval(run_id, run.attempt, epoch, metrics, 0.05, None)
    return run_id


def test_plot_writes_an_image_of_the_expected_size_with_content(study: Store, tmp_path: Path) -> None:
    import matplotlib.image

    ids = [_with_epochs(study, 1, 0.0), _with_epochs(study, 2, 0.02)]
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["plot", *map(str, ids), "--out", str(out), "--db", study.url])
    assert result.exit_code == 0, result.output
    pixels = matplotlib.image.imread(out)
    # loss (bpr, reg, recon) + recall@20 + ndcg@20 = 5 panels: 3 columns x 2 rows of 4.2 x 3.2 in at 100 dpi
    assert pixels.shape[:2] == (640, 1260)
    assert pixels[..., :3].std() > 0.05  # not blank
    assert (pixels[..., :3].reshape(-1, 3) != 1.0).any(axis=1).mean() > 0.02  # ink on the page
    svg = tmp_path / "recall.svg"
    one = CliRunner().invoke(app, ["plot", str(ids[0]), "--metric", "recall@20", "--out", str(svg), "--db", study.url])
    assert one.exit_code == 0 and svg.read_text().lstrip().startswith("<?xml") and "<path" in svg.read_text()


def test_plot_rejects_unknown_series_and_runs_without_epochs(study: Store, tmp_path: Path) -> None:
    run_id = _with_epochs(study, 3, 0.0)
    fresh = add(study, "lightgcn", "base", "demo", 7, None, "queued")
    runner, db = CliRunner(), ["--db", study.url]
    for args, message in [
        ([str(run_id), "--metric", "hit@20"], "unknown series 'hit@20'"),
        ([str(fresh)], "no recorded epochs"),
        ([str(run_id), "--out", str(tmp_path / "x.gif")], "expected a .png, .svg or .pdf"),
    ]:
        result = runner.invoke(
            app, ["plot", *args, *db] + ([] if "--out" in args else ["--out", str(tmp_path / "p.png")])
        )
        assert result.exit_code == 1 and message in result.stderr
