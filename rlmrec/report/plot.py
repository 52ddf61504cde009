"""Learning curves of one or more runs, overlaid: each loss term and validation
metrics per epoch, one panel each (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from rlmrec.errors import RLMRecError
from rlmrec.outputs import replacing
from rlmrec.report import present
from rlmrec.store import Store

DEFAULT_SERIES = ("loss", "recall@20", "ndcg@20")


def plot_runs(store: Store, run_ids: list[int], out: Path, series: list[str] | None = None) -> list[str]:
    """Write the figure to ``out`` (.png, .svg or .pdf); returns the panels drawn.
    ``series``: ``loss`` (every loss term), a loss term by name, or a validation metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise RLMRecError(f"--out {out}: expected a .png, .svg or .pdf file")
    runs = [store.get(i, with_config=False) for i in run_ids]
    curves = {run.id: store.epochs(run.id) for run in runs}
    if not any(curves.values()):
        raise RLMRecError(f"run(s) {', '.join(map(str, run_ids))} have no recorded epochs yet")
    terms = present.loss_terms(curves.values())
    valid = present.valid_metrics(curves.values())
    panels: list[str] = []
    for name in series or DEFAULT_SERIES:
        if name == "loss":
            panels += [t for t in terms if t not in panels]
        elif name in terms or name in valid:
            panels.append(name)
        else:
            known = ", ".join(["loss", *terms, *valid]) or "nothing recorded yet"
            raise RLMRecError(f"unknown series '{name}'; these runs have: {known}")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, dpi=100)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for run in runs:
            points = present.series(curves[run.id], panel)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o" if panel not in terms else None, markersize=3, label=present.run_title(run))
        ax.set_title(panel if panel not in terms else f"loss: {panel}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    try:
        with replacing(out) as tmp:  # never a half-written image; an OS error is one line
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return panels
