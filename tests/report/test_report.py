"""``rlmrec report``: golden outputs per format, statistics against scipy, the
paper comparison, and the layout rules (missing cells, incomplete groups, grids)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from rlmrec.cli.main import app
from scipy import stats as sps
from typer.testing import CliRunner

from rlmrec.report.build import Entry, Report, build
from rlmrec.report.published import published
from rlmrec.report.render import render, tex
from rlmrec.store import Store

from .conftest import add

GOLDEN = Path(__file__).with_name("golden")
UPDATE = bool(os.environ.get("RLMREC_UPDATE_GOLDEN"))


def _entry(report: Report, model: str, variant: str, dataset: str, metric: str = "recall@20") -> Entry:
    [entry] = [
        e for e in report.entries.values()
        if (e.model, e.variant, e.dataset, e.metric) == (model, variant, dataset, metric)
    ]  # fmt: skip
    return entry


@pytest.mark.parametrize(
    ("name", "fmt", "vs_paper"),
    [("report.md", "markdown", False), ("report-vs-paper.md", "markdown", True), ("report.tex", "latex", False),
     ("report.csv", "csv", False), ("report.json", "json", False), ("report.html", "html", False)],
)  # fmt: skip
def test_golden_outputs(study: Store, name: str, fmt: str, vs_paper: bool) -> None:
    text = render(build(study, vs_paper=vs_paper), fmt)
    golden = GOLDEN / name
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()


def test_cells_are_means_and_sample_stds_over_seeds(study: Store) -> None:
    entry = _entry(build(study), "lightgcn", "base", "amazon")
    runs = [r for r in study.runs(model=["lightgcn"], variant=["base"], dataset=["amazon"])]
    values = [r.test_value for r in sorted(runs, key=lambda r: r.seed)]
    assert entry.values == values and entry.seeds == [1, 2, 3]
    assert entry.mean == pytest.approx(np.mean(values)) and entry.std == pytest.approx(np.std(values, ddof=1))


def test_seed_test_matches_scipy_ttest_rel(study: Store) -> None:
    report = build(study)
    for variant in ("con", "gen"):
        entry, base = _entry(report, "lightgcn", variant, "amazon"), _entry(report, "lightgcn", "base", "amazon")
        expected = sps.ttest_rel(entry.values, base.values).pvalue
        assert entry.significance is not None and entry.significance.test == "paired t-test over seeds"
        assert entry.significance.p_value == pytest.approx(expected, rel=1e-9)
    assert _entry(report, "lightgcn", "con", "amazon").significance.significant  # type: ignore[union-attr]
    assert not _entry(report, "lightgcn", "gen", "amazon").significance.significant  # type: ignore[union-attr]


def test_single_seed_uses_wilcoxon_over_users_matching_scipy(study: Store) -> None:
    entry = _entry(build(study), "gccf", "gen", "amazon", "ndcg@20")
    [base_run] = study.runs(model=["gccf"], variant=["base"])
    [gen_run] = study.runs(model=["gccf"], variant=["gen"])
    a, b = study.user_metrics(base_run.id), study.user_metrics(gen_run.id)
    assert a is not None and b is not None
    expected = sps.wilcoxon(b["ndcg@20"].astype(np.float64), a["ndcg@20"].astype(np.float64)).pvalue
    assert entry.significance is not None and entry.significance.test.startswith("Wilcoxon")
    assert entry.significance.n == 300
    assert entry.significance.p_value == pytest.approx(expected, rel=1e-9)


def test_improvement_is_best_alignment_against_base(study: Store) -> None:
    report = build(study)
    [block] = [b for b in report.blocks if b.model == "lightgcn"]
    base = _entry(report, "lightgcn", "base", "amazon").mean
    best = max(_entry(report, "lightgcn", v, "amazon").mean or 0 for v in ("con", "gen"))
    assert base is not None
    assert block.improvement[("amazon", "recall@20")] == pytest.approx(100 * (best - base) / base)


def test_incomplete_group_is_flagged_and_cancelled_runs_ignored(study: Store) -> None:
    report = build(study)
    con = _entry(report, "lightgcn", "con", "steam")
    assert (con.n, con.expected, con.complete) == (3, 5, False)  # a failed and a queued run
    assert "(3/5 †)" in render(report, "markdown")
    assert not any(e.variant == "gen" and e.dataset == "steam" for e in report.entries.values())


def test_best_value_per_column_is_marked(study: Store) -> None:
    report = build(study)
    column = [e for e in report.entries.values() if e.dataset == "amazon" and e.metric == "recall@20"]
    [best] = [e for e in column if e.best]
    assert best.mean == max(e.mean or 0 for e in column)
    assert f"**{best.mean:.4f} ± {best.std:.4f}**" in render(report, "markdown")


def test_vs_paper_values_and_relative_differences(study: Store) -> None:
    report = build(study, vs_paper=True)
    entry = _entry(report, "lightgcn", "con", "amazon")
    assert entry.paper == published()[("lightgcn", "con", "amazon", "recall@20")] == 0.1483
    assert entry.paper_diff_pct == pytest.approx(100 * (entry.mean - 0.1483) / 0.1483)  # type: ignore[operator]
    assert f"paper 0.1483, {entry.paper_diff_pct:+.1f}%" in render(report, "markdown")


def test_a_grid_splits_rows_but_presets_do_not(study: Store) -> None:
    report = build(study)
    assert [b.setting for b in report.blocks] == ["", ""]  # per-variant presets differ: not a grid
    add(study, "lightgcn", "base", "amazon", 1, 0.12, lr=0.002)
    report = build(study, metrics=["recall@20"])
    assert [(b.model, b.setting) for b in report.blocks] == [("gccf", ""), ("lightgcn", "lr=0.001"),
                                                             ("lightgcn", "lr=0.002")]  # fmt: skip
    assert "| LightGCN (lr=0.002) | Base | 0.1" in render(report, "markdown")


def test_tidy_formats_have_one_row_per_group_and_metric(study: Store) -> None:
    report = build(study, metrics=["all"])
    rows = json.loads(render(report, "json"))
    assert len(rows) == len(report.entries) == 7 * 6  # 7 groups x 6 metrics
    assert len(render(report, "csv").splitlines()) == 1 + len(rows)
    assert {r["metric"] for r in rows} == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}


def test_latex_escaping_and_html_is_self_contained(study: Store) -> None:
    assert tex("a_b & 5% #1 {x} ~^\\") == r"a\_b \& 5\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    page = render(build(study), "html")
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert not any(s in page for s in ("<script", "src=", "href=", "http"))


def test_cli_report_writes_a_file_and_rejects_bad_input(study: Store, tmp_path: Path) -> None:
    runner, db = CliRunner(), ["--db", str(study.url)]
    out = tmp_path / "table.tex"
    result = runner.invoke(app, ["report", "--format", "latex", "--out", str(out), *db])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render(build(study), "latex")
    shown = runner.invoke(app, ["report", "--model", "gccf", "--metric", "recall@20", *db])
    assert shown.exit_code == 0 and "GCCF" in shown.stdout and "LightGCN" not in shown.stdout
    for args, message in [
        (["--format", "pdf"], "unknown --format"),
        (["--metric", "recall@50"], "unknown metric 'recall@50'"),
        (["--dataset", "nowhere"], "no runs to report on"),
        (["--group-by", "nokey"], "not a config key"),
        (["--out", str(tmp_path / "missing" / "x.md")], "does not exist"),
    ]:
        bad = runner.invoke(app, ["report", *args, *db])
        assert bad.exit_code == 1 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
