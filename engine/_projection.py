"""The patient projection: the row and work items the events call for, written with the events.

The projection is a cache: :func:`rebuild_projections` recomputes it from the events at any time.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import col, select

from trialflow.protocol import Protocol

from ._identity import SYSTEM
from ._state import PatientState, fold
from ._store import ProjectionUpdate, Store, Transaction
from ._tables import PatientRow
from ._worklist import open_items

__all__ = ["projection", "projection_of", "rebuild_projections"]


def projection_of(protocol: Protocol, after: PatientState, version_id: int | None = None) -> ProjectionUpdate:
    """The patient row and work items that the events of ``after`` call for."""
    phase = protocol.phase(after.phase)
    start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
    return ProjectionUpdate(
        phase=after.phase, phase_entered_on=after.phase_entered, day0=after.day0,
        dose_mg_per_day=after.dose_mg_per_day(start_dose) if phase.kind != "terminal" else None,
        items=tuple(open_items(protocol, after)),
        valid_from=max(e.effective_date for e in after.events),
        protocol_version_id=version_id,
    )


def projection(protocol: Protocol, version_id: int | None = None) -> Callable[[PatientState], ProjectionUpdate]:
    """``projection_of`` for one protocol version, as :meth:`Transaction.append` takes it."""
    def project(after: PatientState) -> ProjectionUpdate:
        return projection_of(protocol, after, version_id)
    return project


def rebuild_projections(store: Store, *, only_missing: bool = False) -> int:
    """Recompute every patient's row and work items from its events; answers how many.

    ``only_missing`` limits it to patients written by a trialflow that kept no work items.
    """
    with store.engine.connect() as conn:
        q = select(col(PatientRow.id), col(PatientRow.last_seq))
        if only_missing:
            q = q.where(col(PatientRow.valid_from).is_(None))
        todo = list(conn.execute(q))

    def work(tx: Transaction) -> int:
        for patient, last_seq in todo:
            state = fold(tx.events(patient))
            tx.project(patient, last_seq, last_seq, projection_of(store.protocol(state.protocol_hash)[0], state))
        return len(todo)

    return store.write(SYSTEM, work) if todo else 0
