"""Safety: the adverse events of the cohort by patient, CTCAE v5 grade and term, SAEs and dose reductions.

Counts follow the usual safety table of a single-arm trial: per patient the worst grade of any
adverse event, patients with any grade ≥ 3 event, patients with a serious adverse event, and patients
whose Sorafenib dose was reduced (a dose change to a lower, non-zero dose, or an adverse event whose
action was "dose reduced").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from trialflow.documents._frozen import frozen

from ._state import PatientState

__all__ = ["PatientSafety", "SafetyEvent", "SafetyReport", "patient_safety", "safety_of", "summarise"]


@frozen
class SafetyEvent:
    """One adverse event as recorded (its latest correction)."""

    patient: str
    event: int
    term: str
    grade: int
    onset: dt.date
    resolved: dt.date | None
    serious: bool
    relatedness: str | None
    action: str


@frozen
class PatientSafety:
    patient: str
    events: tuple[SafetyEvent, ...]
    worst_grade: int | None
    serious: int
    dose_reduced: bool


@frozen
class SafetyReport:
    """The cohort's adverse events on ``as_of``; ``patients`` holds only patients with any event."""

    as_of: dt.date
    treated: int
    patients: tuple[PatientSafety, ...]
    events_by_grade: dict[int, int]
    patients_by_worst_grade: dict[int, int]
    terms: dict[str, dict[int, int]]
    patients_grade3_plus: int
    patients_with_sae: int
    serious_events: int
    patients_dose_reduced: int


def _dose_reduced(state: PatientState) -> bool:
    if any(ae.action == "dose_reduced" for ae in state.of_kind("adverse_event")):
        return True
    # a lower, non-zero dose than the last one taken (0 is an interruption or a stop, not a reduction)
    taken = sorted(((r.date, r.dose_mg_per_day) for k in ("dispense", "dose_change") for r in state.of_kind(k)),
                   key=lambda x: x[0])
    last = None
    for _, dose in taken:
        if dose > 0:
            if last is not None and dose < last:
                return True
            last = dose
    return False


def patient_safety(state: PatientState) -> PatientSafety:
    """One patient's adverse events (each as it now stands) and whether the dose was reduced (``state`` cut at
    the date asked)."""
    aes: list[tuple[int, Any]] = [(r.event_id, r.record) for r in state.records if r.kind == "adverse_event"]
    events = tuple(SafetyEvent(state.patient, eid, ae.term, ae.grade, ae.date, ae.resolved, ae.serious,
                               ae.relatedness, ae.action) for eid, ae in aes)
    return PatientSafety(state.patient, events, max((e.grade for e in events), default=None),
                         sum(e.serious for e in events), _dose_reduced(state))


def summarise(as_of: dt.date, treated: int, patients: Iterable[PatientSafety]) -> SafetyReport:
    """The safety summary of the cohort's patients (by study id), ``treated`` of whom started treatment."""
    rows: list[PatientSafety] = []
    by_grade: dict[int, int] = {}
    by_worst: dict[int, int] = {}
    terms: dict[str, dict[int, int]] = {}
    for p in sorted(patients, key=lambda p: p.patient):
        if not p.events and not p.dose_reduced:
            continue
        for e in p.events:
            by_grade[e.grade] = by_grade.get(e.grade, 0) + 1
            per = terms.setdefault(e.term, {})
            per[e.grade] = per.get(e.grade, 0) + 1
        if p.worst_grade is not None:
            by_worst[p.worst_grade] = by_worst.get(p.worst_grade, 0) + 1
        rows.append(p)
    return SafetyReport(
        as_of=as_of, treated=treated, patients=tuple(rows), events_by_grade=dict(sorted(by_grade.items())),
        patients_by_worst_grade=dict(sorted(by_worst.items())),
        terms={t: dict(sorted(g.items())) for t, g in sorted(terms.items())},
        patients_grade3_plus=sum(1 for p in rows if p.worst_grade is not None and p.worst_grade >= 3),
        patients_with_sae=sum(1 for p in rows if p.serious), serious_events=sum(p.serious for p in rows),
        patients_dose_reduced=sum(p.dose_reduced for p in rows),
    )


def safety_of(states: Iterable[PatientState], as_of: dt.date) -> SafetyReport:
    """The safety summary of ``states`` (each already cut at ``as_of``)."""
    states = list(states)
    return summarise(as_of, sum(st.day0 is not None for st in states), map(patient_safety, states))
