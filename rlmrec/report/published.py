"""The paper's main table (Ren et al., WWW 2024, Table 1), shipped as package data
from the reference's ``published-results.csv``: mean test metrics over 5 seeds."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

SOURCE = "Ren et al., WWW 2024, Table 1; published-results.csv"
# Our model names for the paper's rows.
_NAMES = {"semantic_only": "semantic"}


@cache
def published() -> dict[tuple[str, str, str, str], float]:
    """``(model, variant, dataset, metric) -> value``."""
    text = resources.files("rlmrec.presets").joinpath("published-results.csv").read_text()
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        model = _NAMES.get(row["backbone"], row["backbone"])
        out[(model, row["variant"], row["dataset"], row["metric"])] = float(row["value"])
    return out


def paper_value(model: str, variant: str, dataset: str, metric: str) -> float | None:
    return published().get((model, variant, dataset, metric))
