"""One simulated patient as dated case-file records, to replay through the workflow engine.

Each record kind's declaration (rules/kinds.py) names the synthesiser here that makes its records;
:func:`patient_pathway` calls the synthesiser of every kind that has one."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from trialflow.rules.kinds import KINDS

from ._generate import Cohort, dose_on
from ._pathways import VisitPlan as Visit

__all__ = [
    "PatientPathway",
    "patient_pathway",
    "synthesise_ct",
    "synthesise_dose_change",
    "synthesise_rai_scan",
    "synthesise_rai_therapy",
    "synthesise_tg",
    "synthesise_tgab",
]

_ORGANS = ("lung", "liver", "bone", "pleura", "soft tissue", "kidney", "adrenal", "brain", "skin", "muscle")


@dataclass(frozen=True, slots=True)
class PatientPathway:
    """A simulated patient: dates, records (``{"kind": ..., "date": ...}``) and what the simulator decided."""

    patient: str
    enrolled: dt.date
    day0: dt.date | None
    records: tuple[dict[str, Any], ...]
    decision_date: dt.date | None
    outcomes: dict[str, str]
    favourable: bool
    branch: str | None
    end_state: str
    end_date: dt.date
    withdrawal: tuple[dt.date, str] | None

    def records_until(self, day: dt.date, *, after: dt.date | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if dt.date.fromisoformat(r["date"]) <= day
            and (after is None or dt.date.fromisoformat(r["date"]) > after)
        ]


def patient_pathway(
    c: Cohort, i: int, start: dt.date | None = None, patient: str | None = None
) -> PatientPathway:
    """Patient ``i`` of ``c`` with dates counted from ``start`` (default: the scenario's study start)."""
    sc, pw = c.scenario, c.pathway
    origin = start or sc.study_start

    def date(x: float) -> dt.date:
        return origin + dt.timedelta(days=int(x))

    day0 = float(c.day0[i])
    visits = [v for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)) for v in p.visits]
    at = _Patient(c, i, visits, date, day0)
    # each kind's records by the synthesiser its declaration names (rules/kinds.py), in date order; on one
    # day a visit's records in the order the visit asks for their kinds, its treatment, then dose changes
    recs = [r for k in KINDS.values() if k.synthesis is not None for r in _synthesiser(k.synthesis)(at)]
    recs.sort(key=lambda t: (t[0], t[1]))
    decided = bool(c.decided[i])
    quit_early = (
        not c.screen_failed[i]
        and np.isfinite(c.withdraw_day[i])
        and pw.end_states[int(c.end_state[i])] == pw.withdraw_dest
    )
    reason = ("death", "toxicity", sc.dropout_reason)[int(c.withdraw_reason[i])]
    b = int(c.branch[i])
    return PatientPathway(
        patient=patient or f"SIM-{i + 1:05d}",
        enrolled=date(float(c.enrol[i])),
        day0=None if c.screen_failed[i] else date(day0),
        records=tuple(r for _, _, r in recs),
        decision_date=date(float(c.decision_day[i])) if decided else None,
        outcomes={k: c.labels[k][int(v[i])] for k, v in c.codes.items()} if decided else {},
        favourable=bool(c.favourable[i]),
        branch=pw.branches[b].id if b >= 0 else None,
        end_state=pw.end_states[int(c.end_state[i])],
        end_date=date(float(c.end_day[i])),
        withdrawal=(date(float(c.withdraw_day[i])), reason) if quit_early else None,
    )


@dataclass(frozen=True, slots=True)
class _Patient:
    """What a kind's synthesiser reads: patient ``i`` of cohort ``c``, the visits of its pathway (in order),
    how a day number becomes a date, and its day 0."""

    c: Cohort
    i: int
    visits: list[Visit]
    date: Callable[[float], dt.date]
    day0: float


#: one synthesised record: (day, (visit index, place in the visit), the record)
Synthesised = tuple[float, tuple[int, int], dict[str, Any]]


@functools.cache
def _synthesiser(ref: str) -> Callable[[_Patient], Iterator[Synthesised]]:
    """The function a kind's ``synthesis`` names ('module:function')."""
    module, _, name = ref.partition(":")
    return cast(Callable[[_Patient], Iterator[Synthesised]], getattr(importlib.import_module(module), name))


def _at_visits(
    at: _Patient, kind: str, make: Callable[[Visit, float, str], dict[str, Any]]
) -> Iterator[Synthesised]:
    """A record of ``kind`` at each visit the patient had that asks for it."""
    for n, v in enumerate(at.visits):
        kinds = list(dict.fromkeys(v.kinds))
        if kind not in kinds:
            continue
        d = float(at.c.visit_day[v.id][at.i])
        if not np.isnan(d):
            yield d, (n, kinds.index(kind)), make(v, d, at.date(d).isoformat())


def synthesise_tg(at: _Patient) -> Iterator[Synthesised]:
    c, i, sc = at.c, at.i, at.c.scenario

    def make(v: Visit, d: float, when: str) -> dict[str, Any]:
        value = float(_per_visit(c, "tg", v.id, functools.partial(c.tg_value, v.id))[i])
        if value < sc.tg_loq:
            return {"kind": "tg", "date": when, "value": f"<{sc.tg_loq:g}", "unit": "ug/L"}
        return {"kind": "tg", "date": when, "value": value, "unit": "ug/L", "loq": sc.tg_loq}

    return _at_visits(at, "tg", make)


def synthesise_tgab(at: _Patient) -> Iterator[Synthesised]:
    result = "positive" if at.c.tgab_positive[at.i] else "negative"
    return _at_visits(at, "tgab", lambda v, d, when: {"kind": "tgab", "date": when, "result": result})


def synthesise_ct(at: _Patient) -> Iterator[Synthesised]:
    return _at_visits(at, "ct", lambda v, d, when: _ct(at.c, at.i, v.id, d, when))


def synthesise_rai_scan(at: _Patient) -> Iterator[Synthesised]:
    c, i = at.c, at.i

    def make(v: Visit, d: float, when: str) -> dict[str, Any]:
        avid = (
            [f"new avid lesion {k + 1}" for k in range(int(c.new_avid_lesions[i]))]
            if c.reinduced[i] and d > at.day0
            else []
        )
        return {"kind": "rai_scan", "date": when, "modalities": ["planar", "spect"], "avid_lesions": avid}

    return _at_visits(at, "rai_scan", make)


def synthesise_rai_therapy(at: _Patient) -> Iterator[Synthesised]:
    """The visits' treatment: after the records the visit asks for."""
    for n, v in enumerate(at.visits):
        d = float(at.c.visit_day[v.id][at.i])
        if not np.isnan(d) and v.treatment is not None and v.activity_mbq:
            rec = {"kind": "rai_therapy", "date": at.date(d).isoformat(), "activity_mbq": v.activity_mbq}
            yield d, (n, len(dict.fromkeys(v.kinds))), rec


def synthesise_dose_change(at: _Patient) -> Iterator[Synthesised]:
    """The dose reductions, while on the first treatment that has doses (after every visit's records)."""
    c, i, pw, day0 = at.c, at.i, at.c.pathway, at.day0
    n = 0
    for seg in c.segments[:1]:
        start_dose = next((p.dose_mg_per_day for p in pw.before_decision if p.treatment == seg.treatment), None)
        if start_dose is None:
            continue
        on = [float(s.stop[i]) for s in c.segments if s.stop[i] > s.start[i]]
        on_until = max(on) if on else day0
        for r in c.reduction_days[i]:
            if day0 <= r < on_until:
                dose = float(dose_on(c, seg.treatment, start_dose, np.full(c.size, r))[i])
                rec = {"kind": "dose_change", "date": at.date(r).isoformat(), "dose_mg_per_day": dose,
                       "reason": "toxicity (simulated)"}
                yield r, (len(at.visits), n), rec
                n += 1


def _per_visit(c: Cohort, what: str, visit: str, make: Callable[[], Any]) -> Any:
    """A visit's values for every patient, computed once per cohort (each patient's at their own visit
    date): reading patients one by one must not cost a pass over the cohort per record."""
    key = f"{what}/{visit}"
    got = c.memo.get(key)
    if got is None:
        got = c.memo[key] = make()
    return got


def _ct(c: Cohort, i: int, visit: str, d: float, when: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "ct", "date": when, "slice_thickness_mm": 5}
    if c.ct_ne[visit][i]:
        return {**rec, "target": [], "non_target": [], "new_lesions": [], "not_evaluated": True}
    tenths = _per_visit(c, "ct", visit, lambda: c.lesion_tenths(c.visit_day[visit]))[i]
    n = int((~np.isnan(c.diameter0[i])).sum())
    rec["target"] = [
        {"id": f"T{k + 1}", "organ": _ORGANS[k % len(_ORGANS)], "diameter_mm": int(tenths[k]) / 10}
        for k in range(n)
    ]
    rec["non_target"] = [{"id": "N1", "organ": "bone", "status": "present"}] if c.has_non_target[i] else []
    rec["new_lesions"] = ["new lesion 1"] if c.new_lesion_day[i] <= d - c.day0[i] else []
    return rec
