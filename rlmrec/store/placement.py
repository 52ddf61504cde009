"""Which worker slot may run which run: a run whose config asks for a GPU (``cuda``)
needs a GPU slot, one pinned to ``cuda:N`` needs that GPU's slot; ``auto`` and ``cpu``
run anywhere. Claims filter with it (so a CPU worker never takes, and fails, a GPU
run) and ``rlmrec ls`` says why a queued run waits."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


def fits(wanted: str | None, slot: str) -> bool:
    """Whether a slot (``cpu``, ``cuda:N``) can run a run that asks for ``wanted``."""
    if wanted is None or not wanted.startswith("cuda"):
        return True
    return slot.startswith("cuda") and (wanted == "cuda" or wanted == slot)


def fits_sql(wanted: ColumnElement[str], slot: str) -> ColumnElement[bool]:
    """:func:`fits` as a SQL condition on the run's requested device."""
    anywhere = sa.or_(wanted.is_(None), sa.not_(wanted.like("cuda%")))
    if not slot.startswith("cuda"):
        return anywhere
    return sa.or_(anywhere, wanted == "cuda", wanted == slot)


def waits_for(wanted: str | None, slots: Iterable[str]) -> str | None:
    """What a claimable run waits for when none of the live ``slots`` fits it."""
    slots = list(slots)
    if any(fits(wanted, slot) for slot in slots) or wanted is None or not wanted.startswith("cuda"):
        return None
    return "a GPU worker" if wanted == "cuda" else f"a worker on {wanted}"
