"""The report in five formats. Markdown, LaTeX and HTML lay it out as the paper's
Table 1 (backbone x variant rows, dataset x metric columns); CSV and JSON are tidy
(one row per run group x metric) for post-processing."""

from __future__ import annotations

import csv
import html
import io
import json

from rlmrec.report.build import VARIANT_NAMES, Block, Entry, Report
from rlmrec.report.published import SOURCE
from rlmrec.report.stats import ALPHA

FORMATS = ("markdown", "latex", "csv", "json", "html")
MODEL_NAMES = {
    "gccf": "GCCF", "lightgcn": "LightGCN", "sgl": "SGL", "simgcl": "SimGCL",
    "dccf": "DCCF", "autocf": "AutoCF", "semantic": "Semantic only",
}  # fmt: skip
DATASET_NAMES = {"amazon": "Amazon-book", "yelp": "Yelp", "steam": "Steam"}
DASH = "\u2013"  # en dash: an empty cell


def metric_name(metric: str) -> str:
    kind, _, k = metric.partition("@")
    return {"recall": "Recall", "ndcg": "NDCG"}.get(kind, kind) + (f"@{k}" if k else "")


def block_name(block: Block) -> str:
    name = MODEL_NAMES.get(block.model, block.model)
    return f"{name} ({block.setting})" if block.setting else name


def row_name(row: tuple[str, str]) -> str:
    name = VARIANT_NAMES.get(row[0], row[0])
    return f"{name} ({row[1]})" if row[1] else name


def _parts(entry: Entry | None, vs_paper: bool) -> tuple[str, str, bool, bool, str] | None:
    """(value, spread, significant, best, paper) pieces of a cell; None when empty."""
    if entry is None:
        return None
    spread = ""
    if not entry.complete:
        spread = f"({entry.n}/{entry.expected} †)"  # flagged, including groups with nothing finished yet
    elif entry.n > 1:
        spread = f"(n={entry.n})"
    if entry.mean is None:
        return DASH, spread, False, False, ""
    value = f"{entry.mean:.4f}" + (f" ± {entry.std:.4f}" if entry.std is not None else "")
    paper = ""
    if vs_paper:
        diff = entry.paper_diff_pct
        paper = f"paper {DASH}" if entry.paper is None else f"paper {entry.paper:.4f}, {diff:+.1f}%"
    sig = entry.significance is not None and entry.significance.significant
    return value, spread, sig, entry.best, paper


def _improvement(block: Block, dataset: str, metric: str) -> str:
    value = block.improvement.get((dataset, metric))
    return DASH if value is None else f"{value:+.1f}%"


def _has_improvement(block: Block) -> bool:
    return any(r[0] != "base" for r in block.rows) and any(r[0] == "base" for r in block.rows)


def notes(report: Report) -> list[str]:
    out = ["Cells: mean test metric over seeds, ± sample standard deviation and (n) with more than one seed."]
    out.append("Bold: best value in the column.")
    if any(_has_improvement(b) for b in report.blocks):
        out[-1] += " Improvement: best of RLMRec-Con/Gen against Base."
    if report.tests_used:
        out.append(f"*: differs from Base at p < {ALPHA} ({'; '.join(report.tests_used)}; two-sided).")
    if report.incomplete:
        out.append("†: incomplete group, finished/expected runs (queued, running, failed or lost runs excluded).")
    if report.vs_paper:
        out.append(f"paper: published value ({SOURCE}) and our relative difference.")
    return out


def _columns(report: Report) -> list[tuple[str, str]]:
    return [(d, m) for d in report.datasets for m in report.metrics]


# -- markdown ----------------------------------------------------------------


def _md_cell(entry: Entry | None, vs_paper: bool) -> str:
    parts = _parts(entry, vs_paper)
    if parts is None:
        return DASH
    value, spread, sig, best, paper = parts
    text = f"**{value}**" if best else value
    text += "\\*" if sig else ""
    text += f" {spread}" if spread else ""
    return text + (f" [{paper}]" if paper else "")


def markdown(report: Report) -> str:
    cols = _columns(report)
    head = ["Backbone", "Variant"] + [f"{DATASET_NAMES.get(d, d)} {metric_name(m)}" for d, m in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(cols)]
    for block in report.blocks:
        for i, row in enumerate(block.rows):
            cells = [_md_cell(report.entry(block, row, d, m), report.vs_paper) for d, m in cols]
            lines.append("| " + " | ".join([block_name(block) if i == 0 else "", row_name(row), *cells]) + " |")
        if _has_improvement(block):
            cells = [_improvement(block, d, m) for d, m in cols]
            lines.append("| " + " | ".join(["", "*Improvement*", *cells]) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"{n}  " for n in notes(report)).rstrip() + "\n"


# -- LaTeX -------------------------------------------------------------------

_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
        "±": r"$\pm$", "†": r"$^\dagger$", DASH: "--"}  # fmt: skip


def tex(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


def _tex_cell(entry: Entry | None, vs_paper: bool) -> str:
    parts = _parts(entry, vs_paper)
    if parts is None:
        return "--"
    value, spread, sig, best, paper = parts
    text = r"\textbf{" + tex(value) + "}" if best else tex(value)
    text += "$^{*}$" if sig else ""
    text += f" {tex(spread)}" if spread else ""
    return text + (f" [{tex(paper)}]" if paper else "")


def latex(report: Report) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    cols = _columns(report)
    k = len(report.metrics)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{ll" + ("r" * k) * len(report.datasets) + "}"]
    lines.append(r"\toprule")
    groups = [rf"\multicolumn{{{k}}}{{c}}{{{tex(DATASET_NAMES.get(d, d))}}}" for d in report.datasets]
    lines.append(" & & " + " & ".join(groups) + r" \\")
    rules = [rf"\cmidrule(lr){{{3 + i * k}-{2 + (i + 1) * k}}}" for i in range(len(report.datasets))]
    lines.append(" ".join(rules))
    lines.append("Backbone & Variant & " + " & ".join(tex(metric_name(m)) for _, m in cols) + r" \\")
    for block in report.blocks:
        lines.append(r"\midrule")
        for i, row in enumerate(block.rows):
            cells = [_tex_cell(report.entry(block, row, d, m), report.vs_paper) for d, m in cols]
            first = tex(block_name(block)) if i == 0 else ""
            lines.append(" & ".join([first, tex(row_name(row)), *cells]) + r" \\")
        if _has_improvement(block):
            cells = [tex(_improvement(block, d, m)) for d, m in cols]
            lines.append(" & ".join(["", r"\textit{Improvement}", *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines.append(r"\caption{" + tex(" ".join(notes(report))).replace("*:", "$^{*}$:") + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# -- HTML --------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.3rem .7rem;text-align:right;border-bottom:1px solid #ddd}
th{border-bottom:2px solid #444}td.name,th.name{text-align:left}
tr.improvement td{font-style:italic;color:#555;border-bottom:2px solid #999}
.spread,.paper{color:#777;font-size:.85em}p.note{color:#555;font-size:.9em;margin:.2rem 0}"""


def _html_cell(entry: Entry | None, vs_paper: bool) -> str:
    parts = _parts(entry, vs_paper)
    if parts is None:
        return DASH
    value, spread, sig, best, paper = parts
    text = f"<strong>{html.escape(value)}</strong>" if best else html.escape(value)
    text += "<sup>*</sup>" if sig else ""
    text += f' <span class="spread">{html.escape(spread)}</span>' if spread else ""
    return text + (f' <span class="paper">[{html.escape(paper)}]</span>' if paper else "")


def html_page(report: Report) -> str:
    """One self-contained file: inline CSS, no scripts, no external assets."""
    cols = _columns(report)
    k = len(report.metrics)
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', "<title>rlmrec report</title>"]
    out += [f"<style>{_CSS}</style>", "</head><body>", "<table>", "<thead>", '<tr><th class="name"></th><th></th>']
    out += [f'<th colspan="{k}">{html.escape(DATASET_NAMES.get(d, d))}</th>' for d in report.datasets]
    out += ["</tr>", '<tr><th class="name">Backbone</th><th class="name">Variant</th>']
    out += [f"<th>{html.escape(metric_name(m))}</th>" for _, m in cols]
    out += ["</tr>", "</thead>", "<tbody>"]
    for block in report.blocks:
        for i, row in enumerate(block.rows):
            first = html.escape(block_name(block)) if i == 0 else ""
            cells = "".join(f"<td>{_html_cell(report.entry(block, row, d, m), report.vs_paper)}</td>" for d, m in cols)
            name = html.escape(row_name(row))
            out.append(f'<tr><td class="name">{first}</td><td class="name">{name}</td>{cells}</tr>')
        if _has_improvement(block):
            cells = "".join(f"<td>{html.escape(_improvement(block, d, m))}</td>" for d, m in cols)
            out.append(f'<tr class="improvement"><td class="name"></td><td class="name">Improvement</td>{cells}</tr>')
    out += ["</tbody>", "</table>"]
    out += [f'<p class="note">{html.escape(n)}</p>' for n in notes(report)]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- tidy --------------------------------------------------------------------


def csv_text(report: Report) -> str:
    rows = report.tidy()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    return buf.getvalue()


def json_text(report: Report) -> str:
    return json.dumps(report.tidy(), indent=1) + "\n"


def render(report: Report, fmt: str) -> str:
    return {"markdown": markdown, "latex": latex, "csv": csv_text, "json": json_text, "html": html_page}[fmt](report)
