"""The visit schedule of one patient: target dates from phase anchors, windows, and statuses.

Targets are offsets from the anchor of their phase (enrolment, study day 0, or the day the patient
entered the phase), never from the previous actual visit, so a late visit does not drift the rest.
A visit is ``done`` when a record of its defining kind falls inside its window; otherwise, on the
clinical date ``as_of``, it is ``upcoming`` (window not open), ``due`` (open, target not passed),
``overdue`` (target passed, window still open) or ``missed`` (window closed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from trialflow.protocol import Phase, Protocol, Visit

from ._readings import completion, visit_window
from ._state import PatientState

__all__ = ["ScheduledVisit", "VisitStatus", "defining_kinds", "phase_anchor", "schedule"]

VisitStatus = Literal["done", "upcoming", "due", "overdue", "missed", "not_required"]
_TREATMENT_KINDS = {"activity_mbq": "rai_therapy", "dose_mg_per_day": "dispense"}


@dataclass(frozen=True, slots=True)
class ScheduledVisit:
    """One visit of one patient, placed in calendar time."""

    patient: str
    visit: str
    name: str
    phase: str
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date
    status: VisitStatus
    done_on: dt.date | None
    kinds: tuple[str, ...]
    reason: str


def defining_kinds(protocol: Protocol, visit: Visit) -> tuple[str, ...]:
    """The record kinds that mark the visit done: every kind of its assessments (Tg with its TgAb), and
    the record of its treatment action."""
    kinds = [k for a in visit.assessments for k in protocol.assessment(a).observation_kinds]
    if visit.treatment is not None:
        kinds.append("rai_therapy" if visit.treatment.activity_mbq else "dispense")
    return tuple(kinds)


def phase_anchor(phase: Phase, state: PatientState, entered: dt.date) -> dt.date | None:
    """The calendar date of day 0 of ``phase``'s schedule for this patient (None: not known yet)."""
    if phase.anchor == "enrolment":
        return state.enrolled_on
    if phase.anchor == "day0":
        return state.day0
    return entered


def _status(as_of: dt.date, start: dt.date, target: dt.date, end: dt.date) -> VisitStatus:
    if as_of < start:
        return "upcoming"
    if as_of <= target:
        return "due"
    if as_of <= end:
        return "overdue"
    return "missed"


def schedule(protocol: Protocol, state: PatientState, as_of: dt.date) -> list[ScheduledVisit]:
    """Every visit of every phase the patient has entered, in target-date order."""
    out: list[ScheduledVisit] = []
    by_kind: dict[str, list[dt.date]] = {}
    for r in state.records:
        if r.record.date <= as_of:
            by_kind.setdefault(r.record.kind, []).append(r.record.date)
    seen: set[str] = set()
    for stint in reversed(state.stints):  # the latest stay in a phase counts
        if stint.phase in seen:
            continue
        seen.add(stint.phase)
        phase = protocol.phase(stint.phase)
        anchor = phase_anchor(phase, state, stint.entered)
        if anchor is None:
            continue
        left = stint.left if stint.left is not None and stint.left <= as_of else None
        for v in phase.visits:
            target, start, end = visit_window(anchor, v)
            # once the patient has left the phase, its visits can no longer be done (a CT after day 0
            # is no baseline CT)
            last = min(end, left) if left is not None else end
            kinds = defining_kinds(protocol, v)
            # a visit is done when every defining kind has a record in the window (the shared reading)
            done_on = completion(kinds, by_kind, start, last)
            complete = done_on is not None
            status: VisitStatus
            if complete:
                status = "done"
            elif left is not None:
                status = "not_required" if left < start else "missed"
            else:
                status = _status(as_of, start, target, end)
            what = ", ".join(v.assessments) if v.assessments else ""
            if v.treatment is not None:
                what = (what + ", " if what else "") + v.treatment.id
            out.append(ScheduledVisit(
                patient=state.patient, visit=v.id, name=v.name, phase=phase.id, target_date=target,
                window_start=start, window_end=end, status=status,
                done_on=done_on, kinds=kinds,
                reason=f"{phase.id} visit {v.id} ({what}), day {v.day} from "
                       f"{'study day 0' if phase.anchor == 'day0' else phase.anchor}, window "
                       f"-{v.window.before}/+{v.window.after}",
            ))
    return sorted(out, key=lambda s: (s.target_date, s.visit))
