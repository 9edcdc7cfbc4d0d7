"""The visit ledger of one patient: target dates, windows, and the one definition of a visit's state.

Targets are offsets from the anchor of their phase (enrolment, study day 0, or the day the patient
entered the phase), never from the previous actual visit, so a late visit does not drift the rest.

A visit is ``done`` when every record kind it asks for (a Tg sample *and* its TgAb) has a record
inside its window. Otherwise, on the clinical date ``as_of``:

- ``skipped``: someone recorded that it will not be done, with the reason;
- ``not_required``: the patient left the study (withdrawal, screen failure, off study) before its
  window closed, so it is no longer asked for;
- ``upcoming`` (window not open), ``due`` (open, target not passed), ``overdue`` (target passed,
  window still open);
- ``missed``: the window closed, or the patient moved on to the next phase, without it. A missed
  visit stays unresolved until a deviation is recorded for it.

The worklist, ``status``, the decision preview and ``trialflow visits`` all read this one answer.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from trialflow.documents._frozen import frozen

from ._readings import Offsets, defining_kinds, visit_window, window_offsets
from ._state import PatientState

if TYPE_CHECKING:
    from trialflow.protocol import Phase, Protocol, Visit

__all__ = [
    "OPEN_STATUSES",
    "ScheduledVisit",
    "VisitDeviation",
    "VisitRecord",
    "VisitStatus",
    "at_date",
    "defining_kinds",
    "kind_label",
    "phase_anchor",
    "placed",
    "schedule",
]

VisitStatus = Literal["done", "upcoming", "due", "overdue", "missed", "skipped", "not_required"]
OPEN_STATUSES = frozenset({"upcoming", "due", "overdue"})
_LABELS = {"tg": "Tg", "tgab": "TgAb", "ct": "CT", "rai_scan": "RaI scan", "rai_therapy": "131I therapy",
           "dispense": "dispensing", "adverse_event": "adverse events", "dose_change": "dose change"}


def kind_label(kind: str) -> str:
    """How a record kind is named for people ("TgAb missing")."""
    return _LABELS.get(kind, kind)


@frozen
class VisitRecord:
    """A record that counts for a visit: its kind, date and the event holding it."""

    kind: str
    date: dt.date
    event: int


@frozen
class VisitDeviation:
    """A protocol deviation recorded for a visit."""

    event: int
    kind: str
    date: dt.date
    reason: str


@frozen
class ScheduledVisit:
    """One visit of one patient, placed in calendar time, with its state on a date."""

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
    records: tuple[VisitRecord, ...] = ()
    missing: tuple[str, ...] = ()
    deviations: tuple[VisitDeviation, ...] = ()
    skip_reason: str | None = None

    @property
    def resolved(self) -> bool:
        """Nothing more to do about it: done, skipped, not required, or missed with a deviation recorded."""
        return self.status in ("done", "skipped", "not_required") or (self.status == "missed" and
                                                                     bool(self.deviations))

    @property
    def missing_text(self) -> str:
        return ", ".join(kind_label(k) for k in self.missing) + " missing" if self.missing else ""


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


def _first_inside(records: list[VisitRecord], dates: list[dt.date], first: dt.date,
                  last: dt.date) -> VisitRecord | None:
    """The earliest record dated in [``first``, ``last``] (the one :func:`completion` counts): ``records`` are
    in (date, event) order, as a state holds them, and ``dates`` are their dates."""
    i = bisect_left(dates, first)
    return records[i] if i < len(dates) and dates[i] <= last else None


def _window_records(kinds: tuple[str, ...], by_kind: dict[str, tuple[list[VisitRecord], list[dt.date]]],
                    first: dt.date,
                    last: dt.date) -> tuple[dt.date | None, tuple[str, ...], tuple[VisitRecord, ...]]:
    """:func:`completion`, :func:`missing_kinds` and each kind's :func:`_first_inside` of one visit's window,
    from each kind's records in date order (a projection places every visit of every patient it writes)."""
    records: list[VisitRecord] = []
    missing: list[str] = []
    for k in kinds:
        of_kind = by_kind.get(k)
        f = _first_inside(*of_kind, first, last) if of_kind is not None else None
        if f is None:
            missing.append(k)
        else:
            records.append(f)
    # done: every kind has a record inside, on the latest of the kinds' earliest days
    done_on = max(r.date for r in records) if kinds and not missing else None
    return done_on, tuple(missing), tuple(records)


def at_date(v: ScheduledVisit, by_clock: bool, as_of: dt.date) -> ScheduledVisit:
    """A placed visit on ``as_of``: a settled state stays, a state ``by_clock`` follows the date alone.

    Holds for any ``as_of`` on or after every date of the records it was placed from (the store keeps
    :func:`placed` visits beside each patient's events and reads them back through this).
    """
    if not by_clock:
        return v
    status = _status(as_of, v.window_start, v.target_date, v.window_end)
    return v if status == v.status else replace(v, status=status)


@frozen
class _Plan:
    """What placing one visit takes from the protocol, the same for every patient: its defining kinds and the
    reason the ledger gives for it."""

    visit: Visit
    kinds: tuple[str, ...]
    reason: str
    offsets: Offsets  # the visit's window_offsets


def _plan(protocol: Protocol, phase: Phase, v: Visit) -> _Plan:
    what = ", ".join(v.assessments) if v.assessments else ""
    if v.treatment is not None:
        what = (what + ", " if what else "") + v.treatment.id
    anchor = "study day 0" if phase.anchor == "day0" else phase.anchor
    return _Plan(v, defining_kinds(protocol, v), f"{phase.id} visit {v.id} ({what}), day {v.day} from {anchor}, "
                                                 f"window -{v.window.before}/+{v.window.after}", window_offsets(v))


#: each protocol model's visit plans by phase, worked out on first use (keyed by the model's identity: the model
#: is frozen, and kept here so that its id is not reused; a handful of versions at most, so the dict stays small)
_PLANS: dict[int, tuple[Protocol, dict[str, tuple[_Plan, ...]]]] = {}


def _plans(protocol: Protocol, phase: Phase) -> tuple[_Plan, ...]:
    """The plans of ``phase``'s visits (in the protocol's order), once per protocol model and phase."""
    hit = _PLANS.get(id(protocol))
    if hit is None or hit[0] is not protocol:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        hit = _PLANS[id(protocol)] = (protocol, {})
    plans = hit[1].get(phase.id)
    if plans is None:
        plans = hit[1][phase.id] = tuple(_plan(protocol, phase, v) for v in phase.visits)
    return plans


def schedule(protocol: Protocol, state: PatientState, as_of: dt.date) -> list[ScheduledVisit]:
    """Every visit of every phase the patient has entered, with its state on ``as_of``, in target-date order."""
    return [v for v, _ in placed(protocol, state, as_of)]


def placed(protocol: Protocol, state: PatientState, as_of: dt.date) -> list[tuple[ScheduledVisit, bool]]:
    """:func:`schedule`, each visit with whether its state follows the clock alone (``by_clock``: not done,
    skipped, or ended by leaving its phase), so that it can be read on a later date with :func:`at_date`."""
    out: list[tuple[ScheduledVisit, bool]] = []
    # each kind's records and their dates, in (date, event) order: the order of a state's records (fold)
    by_kind: dict[str, tuple[list[VisitRecord], list[dt.date]]] = {}
    for r in state.records:  # (their kinds and dates: the records themselves are not built for this)
        if r.date <= as_of:
            kept, dates = by_kind.get(r.kind) or by_kind.setdefault(r.kind, ([], []))
            kept.append(VisitRecord(r.kind, r.date, r.event_id))
            dates.append(r.date)
    deviations: dict[str, list[VisitDeviation]] = {}
    for e in state.deviations:
        if e.effective_date <= as_of:
            deviations.setdefault(e.payload["visit"], []).append(
                VisitDeviation(e.id, e.payload["kind"], e.effective_date, e.payload.get("reason", "")))
    skips = {e.payload["visit"]: e.payload.get("reason", "") for e in state.skips if e.effective_date <= as_of}
    seen: set[str] = set()
    stints = list(state.stints)
    for i in range(len(stints) - 1, -1, -1):  # the latest stay in a phase counts
        stint = stints[i]
        if stint.phase in seen:
            continue
        seen.add(stint.phase)
        phase = protocol.phase(stint.phase)
        anchor = phase_anchor(phase, state, stint.entered)
        if anchor is None:
            continue
        left = stint.left if stint.left is not None and stint.left <= as_of else None
        # leaving the study (withdrawal, screen failure, off study) ends what was still to come; moving on
        # to the next phase leaves what was not done missed
        left_study = left is not None and i + 1 < len(stints) and protocol.phase(stints[i + 1].phase).terminal
        for plan in _plans(protocol, phase):
            v, kinds = plan.visit, plan.kinds
            target, start, end = visit_window(anchor, v, plan.offsets)
            # once the patient has left the phase, its visits can no longer be done (a CT after day 0
            # is no baseline CT)
            last = min(end, left) if left is not None else end
            # a visit is done when every defining kind has a record in the window (the shared readings)
            done_on, missing, records = _window_records(kinds, by_kind, start, last)
            status: VisitStatus
            by_clock = False
            if done_on is not None:
                status = "done"
            elif v.id in skips:
                status = "skipped"
            elif left is not None:
                status = "not_required" if left_study and left <= end else "missed"
            else:
                status, by_clock = _status(as_of, start, target, end), True
            out.append((ScheduledVisit(
                patient=state.patient, visit=v.id, name=v.name, phase=phase.id, target_date=target,
                window_start=start, window_end=end, status=status,
                done_on=done_on, kinds=kinds, reason=plan.reason,
                records=records, missing=missing if status != "done" else (),
                deviations=tuple(deviations.get(v.id, ())), skip_reason=skips.get(v.id),
            ), by_clock))
    return sorted(out, key=lambda s: (s[0].target_date, s[0].visit))
