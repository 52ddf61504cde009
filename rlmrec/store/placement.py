"""Which worker slot may run which run: a run whose config asks for a GPU (``cuda``)
needs a GPU slot, one pinned to ``cuda:N`` needs that GPU's slot; ``auto`` and ``cpu``
run anywhere. Claims filter with it (so a CPU worker never takes, and fails, a GPU
run) and ``rlmrec ls`` and the dashboard say why a queued run waits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from rlmrec.store.records import RunInfo
from rlmrec.store.schema import CLAIMABLE

NO_WORKER = "a worker"  # what every queued run waits for while no worker is running


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
    if not slots:
        return NO_WORKER
    if any(fits(wanted, slot) for slot in slots):
        return None
    return "a GPU worker" if wanted == "cuda" else f"a worker on {wanted}"


def queued_waits(runs: Sequence[RunInfo], slots: Iterable[str]) -> dict[int, str]:
    """Why each claimable run among ``runs`` (queued, or lost and to be resumed) waits,
    by id (:func:`waits_for`), given the live workers' ``slots``. Others wait for nothing."""
    slots = list(slots)
    return {run.id: why for run in runs if claimable(run) and (why := waits_for(run.requested_device, slots))}


def claimable(run: RunInfo) -> bool:
    """Whether a worker may still take ``run``: queued or lost, and not cancelled."""
    return run.status in CLAIMABLE and not run.cancel_requested
