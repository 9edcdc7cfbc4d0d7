"""The patient projection: the row and work items the events call for, written with the events.

The projection is a cache: :func:`rebuild_projections` recomputes it from the events at any time.

A change to what a stored row holds for the same events (``placed``'s windows, statuses or reasons, a visit's
defining kinds, ``visit_row``'s encoding, the work items' rules) ships with a migration that sets every
patient's ``valid_from`` to NULL, as ``0004_visit_states`` does: readers then fold until ``trialflow init``
rebuilds the rows. Without one, the rows written before the change stay as they were: an import rewrites only
the visits its new records change (``BulkTransaction._visit_plan``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from ._identity import SYSTEM
from ._schedule import ScheduledVisit, VisitDeviation, VisitRecord, at_date, placed
from ._state import PatientState, fold
from ._store import ProjectionUpdate, Store, Transaction, visit_row
from ._tables import PatientRow

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

__all__ = ["projection", "projection_of", "rebuild_projections", "stored_visit", "visit_row"]


def stored_visit(patient: str, row: Any, as_of: dt.date) -> ScheduledVisit:
    """A ``visit_state`` row read back as the visit's state on ``as_of`` (on or after the patient's ``valid_from``)."""
    body = json.loads(row.body)
    v = ScheduledVisit(
        patient=patient, visit=row.visit, name=row.name, phase=row.phase, target_date=row.target_date,
        window_start=row.window_start, window_end=row.window_end, status=row.status, done_on=row.done_on,
        kinds=tuple(body["kinds"]), reason=row.reason,
        records=tuple(VisitRecord(k, dt.date.fromisoformat(d), e) for k, d, e in body["records"]),
        missing=tuple(body["missing"]),
        deviations=tuple(VisitDeviation(e, k, dt.date.fromisoformat(d), r) for e, k, d, r in body["deviations"]),
        skip_reason=body["skip_reason"])
    return at_date(v, bool(row.by_clock), as_of)


def projection_of(protocol: Protocol, after: PatientState, version_id: int | None = None) -> ProjectionUpdate:
    """The patient row, work items and visit states that the events of ``after`` call for."""
    from ._endpoint import line_json, report_line  # (with the report's and safety's models)
    from ._worklist import open_items  # the worklist's rules (decisions, evidence): only where a patient is written

    phase = protocol.phase(after.phase)
    start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
    # every record is dated on or before valid_from, so the visits placed now hold on any later date
    visits = placed(protocol, after, dt.date.max)
    return ProjectionUpdate(
        phase=after.phase, phase_entered_on=after.phase_entered, day0=after.day0,
        dose_mg_per_day=after.dose_mg_per_day(start_dose) if phase.kind != "terminal" else None,
        items=tuple(open_items(protocol, after, [v for v, _ in visits])),
        valid_from=max(e.effective_date for e in after.events),
        protocol_version_id=version_id,
        decision=after.decisions[-1].payload["to"] if after.decisions else None,
        visits=tuple(visits),
        report=line_json(report_line(protocol, after)),
    )


def projection(protocol: Protocol, version_id: int | None = None) -> Callable[[PatientState], ProjectionUpdate]:
    """``projection_of`` for one protocol version, as :meth:`Transaction.append` takes it."""
    def project(after: PatientState) -> ProjectionUpdate:
        return projection_of(protocol, after, version_id)
    return project


def rebuild_projections(store: Store, *, only_missing: bool = False) -> int:
    """Recompute every patient's row and work items from its events; answers how many.

    ``only_missing`` limits it to patients written by a trialflow that kept no work items, or no report line.
    """
    q = select(col(PatientRow.id), col(PatientRow.last_seq))
    if only_missing:
        q = q.where(col(PatientRow.valid_from).is_(None) | col(PatientRow.report).is_(None))
    with store.engine.connect() as conn:
        todo = list(conn.execute(q))  # (anything to do? a store that needs nothing takes no write lock)

    def work(tx: Transaction) -> int:
        # read again in the write transaction: a patient written meanwhile is rebuilt from its new last event
        # (and an attempt that meets a concurrent writer reads the rows afresh when it runs again)
        todo = list(tx.session.execute(q))
        for patient, last_seq in todo:
            state = fold(tx.events(patient))
            tx.project(patient, last_seq, last_seq, projection_of(store.protocol(state.protocol_hash)[0], state))
        return len(todo)

    return store.write(SYSTEM, work) if todo else 0
