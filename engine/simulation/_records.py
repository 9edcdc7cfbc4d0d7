"""One simulated patient as dated case-file records, to replay through the workflow engine."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._generate import Cohort, dose_on

__all__ = ["PatientPathway", "patient_pathway"]

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
    recs: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    visits = [v for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)) for v in p.visits]
    for v in visits:
        d = float(c.visit_day[v.id][i])
        if np.isnan(d):
            continue
        when = date(d).isoformat()
        for kind in dict.fromkeys(v.kinds):
            rec: dict[str, Any] | None = None
            if kind == "tg":
                value = float(_per_visit(c, "tg", v.id, functools.partial(c.tg_value, v.id))[i])
                rec = (
                    {"kind": "tg", "date": when, "value": f"<{sc.tg_loq:g}", "unit": "ug/L"}
                    if value < sc.tg_loq
                    else {"kind": "tg", "date": when, "value": value, "unit": "ug/L", "loq": sc.tg_loq}
                )
            elif kind == "tgab":
                rec = {
                    "kind": "tgab",
                    "date": when,
                    "result": "positive" if c.tgab_positive[i] else "negative",
                }
            elif kind == "ct":
                rec = _ct(c, i, v.id, d, when)
            elif kind == "rai_scan":
                avid = (
                    [f"new avid lesion {k + 1}" for k in range(int(c.new_avid_lesions[i]))]
                    if c.reinduced[i] and d > day0
                    else []
                )
                rec = {
                    "kind": "rai_scan",
                    "date": when,
                    "modalities": ["planar", "spect"],
                    "avid_lesions": avid,
                }
            if rec is not None:
                recs.append((d, order, rec))
                order += 1
        if v.treatment is not None and v.activity_mbq:
            recs.append((d, order, {"kind": "rai_therapy", "date": when, "activity_mbq": v.activity_mbq}))
            order += 1
    for seg in c.segments[:1]:  # the dose reductions, while on the first treatment that has doses
        start_dose = next(
            (p.dose_mg_per_day for p in pw.before_decision if p.treatment == seg.treatment), None
        )
        if start_dose is None:
            continue
        on_until = (
            max(float(s.stop[i]) for s in c.segments if s.stop[i] > s.start[i])
            if any(s.stop[i] > s.start[i] for s in c.segments)
            else day0
        )
        for r in c.reduction_days[i]:
            if day0 <= r < on_until:
                dose = float(dose_on(c, seg.treatment, start_dose, np.full(c.size, r))[i])
                recs.append(
                    (
                        r,
                        order,
                        {
                            "kind": "dose_change",
                            "date": date(r).isoformat(),
                            "dose_mg_per_day": dose,
                            "reason": "toxicity (simulated)",
                        },
                    )
                )
                order += 1
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
