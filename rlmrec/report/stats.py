"""Significance of an alignment variant against its base, as the report uses it.

Two tests, chosen by what the store holds:

* **paired t-test over seeds** (``scipy.stats.ttest_rel``) when both sides have at
  least 3 finished runs with matching seeds: the unit is a training run, which is
  what varies between repetitions of an experiment;
* otherwise a **Wilcoxon signed-rank test over test users**
  (``scipy.stats.wilcoxon``) on the stored per-user metrics, each side averaged
  over its finished runs: with one or two seeds, the users are the only
  replication there is.

Both two-sided; ``p < ALPHA`` marks a difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
SEED_TEST = "paired t-test over seeds"
USER_TEST = "Wilcoxon signed-rank test over test users"


@dataclass(frozen=True)
class Significance:
    test: str
    p_value: float
    n: int  # seeds or users paired

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def over_seeds(base: dict[int, float], other: dict[int, float]) -> Significance | None:
    """Paired over the seeds both sides finished; None with fewer than 3."""
    seeds = sorted(set(base) & set(other))
    if len(seeds) < 3:
        return None
    from scipy.stats import ttest_rel  # lazy: scipy.stats costs ~1 s to import

    a = np.array([base[s] for s in seeds])
    b = np.array([other[s] for s in seeds])
    if np.allclose(a, b):
        return Significance(SEED_TEST, 1.0, len(seeds))
    p = float(ttest_rel(b, a).pvalue)
    return Significance(SEED_TEST, p if np.isfinite(p) else 1.0, len(seeds))


def over_users(
    base_users: np.ndarray, base: np.ndarray, other_users: np.ndarray, other: np.ndarray
) -> Significance | None:
    """Paired over the users both sides evaluated; None when nothing pairs."""
    common, ia, ib = np.intersect1d(base_users, other_users, return_indices=True)
    if common.size == 0:
        return None
    a, b = base[ia].astype(np.float64), other[ib].astype(np.float64)
    if np.all(a == b):
        return Significance(USER_TEST, 1.0, int(common.size))
    from scipy.stats import wilcoxon

    p = float(wilcoxon(b, a).pvalue)
    return Significance(USER_TEST, p if np.isfinite(p) else 1.0, int(common.size))
