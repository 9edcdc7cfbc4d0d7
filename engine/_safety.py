"""Safety: the adverse events of the cohort by patient, CTCAE v5 grade and term, SAEs and dose reductions.

Counts follow the usual safety table of a single-arm trial: per patient the worst grade of any
adverse event, patients with any grade ≥ 3 event, patients with a serious adverse event, and patients
whose Sorafenib dose was reduced (a dose change to a lower, non-zero dose, or an adverse event whose
action was "dose reduced").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._state import PatientState

__all__ = ["PatientSafety", "SafetyEvent", "SafetyReport", "safety_of"]


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class PatientSafety:
    patient: str
    events: tuple[SafetyEvent, ...]
    worst_grade: int | None
    serious: int
    dose_reduced: bool


@dataclass(frozen=True, slots=True)
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


def safety_of(states: Iterable[PatientState], as_of: dt.date) -> SafetyReport:
    """The safety summary of ``states`` (each already cut at ``as_of``)."""
    rows: list[PatientSafety] = []
    by_grade: dict[int, int] = {}
    by_worst: dict[int, int] = {}
    terms: dict[str, dict[int, int]] = {}
    treated = 0
    for st in sorted(states, key=lambda s: s.patient):
        treated += st.day0 is not None
        aes: list[tuple[int, Any]] = [(r.event_id, r.record) for r in st.records if r.record.kind == "adverse_event"]
        events = tuple(SafetyEvent(st.patient, eid, ae.term, ae.grade, ae.date, ae.resolved, ae.serious,
                                   ae.relatedness, ae.action) for eid, ae in aes)
        reduced = _dose_reduced(st)
        if not events and not reduced:
            continue
        for e in events:
            by_grade[e.grade] = by_grade.get(e.grade, 0) + 1
            per = terms.setdefault(e.term, {})
            per[e.grade] = per.get(e.grade, 0) + 1
        worst = max((e.grade for e in events), default=None)
        if worst is not None:
            by_worst[worst] = by_worst.get(worst, 0) + 1
        rows.append(PatientSafety(st.patient, events, worst, sum(e.serious for e in events), reduced))
    return SafetyReport(
        as_of=as_of, treated=treated, patients=tuple(rows), events_by_grade=dict(sorted(by_grade.items())),
        patients_by_worst_grade=dict(sorted(by_worst.items())),
        terms={t: dict(sorted(g.items())) for t, g in sorted(terms.items())},
        patients_grade3_plus=sum(1 for p in rows if p.worst_grade is not None and p.worst_grade >= 3),
        patients_with_sae=sum(1 for p in rows if p.serious), serious_events=sum(p.serious for p in rows),
        patients_dose_reduced=sum(p.dose_reduced for p in rows),
    )
