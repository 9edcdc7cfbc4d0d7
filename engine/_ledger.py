"""The visit ledger: every visit of a patient with its dates, state, records and what is still missing.

The ledger is :func:`trialflow.engine.schedule` read through the store: the worklist, ``status`` and the
decision preview read the same answer, so they cannot disagree about a visit.
"""

from __future__ import annotations

import datetime as dt

from trialflow.documents._frozen import frozen

from ._access import check_patient, reader, site_code, site_filter
from ._base import Refused, today
from ._projection import stored_visit
from ._queries import Who, _protocols, _state, _states
from ._schedule import ScheduledVisit, VisitStatus, schedule
from ._state import PatientState
from ._store import Store

__all__ = ["VISIT_STATUSES", "PatientVisits", "cohort_visits", "visits"]

VISIT_STATUSES: tuple[VisitStatus, ...] = ("upcoming", "due", "overdue", "done", "missed", "skipped", "not_required")


@frozen
class PatientVisits:
    """A patient's ledger on a clinical date; ``unscheduled`` names phases whose visits have no dates yet."""

    patient: str
    as_of: dt.date
    phase: str
    protocol_version: str
    visits: tuple[ScheduledVisit, ...]
    unscheduled: tuple[str, ...]


def visits(store: Store, patient: str, *, as_of: dt.date | None = None,
           known_at: dt.datetime | None = None, actor: Who = None) -> PatientVisits:
    """Every visit of the patient's protocol version that has a date, with its state on ``as_of``."""
    as_of = as_of or today()
    who = reader(store, actor)
    if store.exists(patient):
        check_patient(store, who, patient)
    state = _state(store, patient, known_at)
    if state.enrolled_on > as_of:
        raise Refused(f"{patient} was enrolled on {state.enrolled_on}, after {as_of}")
    cut = state.until(as_of)
    protocol = _protocols(store)(cut.protocol_hash)
    ledger = schedule(protocol, cut, as_of)
    placed = {v.phase for v in ledger}
    # phases the patient is on the way to whose visits have no dates yet (the treatment before day 0)
    ahead = [t.dest for t in protocol.transitions
             if t.source == cut.phase and t.trigger == protocol.triggers.start_treatment]
    unscheduled = tuple(p for p in ahead if p not in placed and protocol.phase(p).visits)
    return PatientVisits(patient, as_of, cut.phase, protocol.version, tuple(ledger), unscheduled)


def cohort_visits(store: Store, *, status: VisitStatus | None = None, unresolved: bool = False,
                  as_of: dt.date | None = None, known_at: dt.datetime | None = None,
                  patients: list[str] | None = None, site: str | None = None,
                  actor: Who = None) -> list[ScheduledVisit]:
    """Visits of every patient (or ``patients``, or the patients of ``site``) with ``status`` on ``as_of``,
    by target date; the reader's own sites only, as every read.

    ``unresolved`` keeps only those still calling for action (a missed visit without a deviation).
    """
    as_of = as_of or today()
    who = reader(store, actor)
    visible = site_filter(store, who)
    if site is not None:
        code = site_code(store, who, site)
        at_site = {p for p, s in store.sites_of().items() if s == code}
        allowed = visible
        visible = (lambda p: p in at_site and allowed(p)) if allowed is not None else at_site.__contains__
    protocols = _protocols(store)
    out: list[ScheduledVisit] = []

    def keep(v: ScheduledVisit) -> None:
        if (status is None or v.status == status) and not (unresolved and v.resolved):
            out.append(v)

    def replay(states: list[PatientState]) -> None:
        for st in states:
            if st.enrolled_on <= as_of:
                cut = st.until(as_of)
                for v in schedule(protocols(cut.protocol_hash), cut, as_of):
                    keep(v)

    # the stored visits, for every patient whose latest record is on or before as_of and, for known_at, with
    # nothing recorded since; the rest replayed
    held, stored, stale = store.projected(as_of, patients, status)
    changed = store.recorded_after(known_at) if known_at is not None else set()
    if changed:
        stale = sorted({*stale, *(pid for pid in held if pid in changed)})
    for pid, rows in stored.items():
        if (visible is None or visible(pid)) and pid not in changed:
            for r in rows:
                keep(stored_visit(pid, r, as_of))
    if stale:
        replay(_states(store, known_at, stale, visible))
    return sorted(out, key=lambda v: (v.target_date, v.patient, v.visit))
