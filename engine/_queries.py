"""Read-only answers: the worklist, the decision preview, patient status, history, the endpoint report.

``as_of`` is the clinical date (observations effective after it do not count); ``known_at`` is the
store as it stood at a moment (events recorded after it are ignored, corrections included).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trialflow.protocol import Protocol

from ._base import Refused, today
from ._decision import DecisionPreview, evaluate_decision
from ._state import CORRECTION, DECISION, Event, PatientState, fold
from ._store import Store
from ._worklist import Action, patient_actions, sort_actions

__all__ = [
    "EndpointReport",
    "HistoryEntry",
    "PatientStatus",
    "evaluate",
    "history",
    "next_actions",
    "report",
    "status",
]


def _state(store: Store, patient: str, known_at: dt.datetime | None) -> PatientState:
    state = store.state(patient, known_at=known_at)
    if state is None:
        when = f" at {known_at.isoformat(' ', 'seconds')}" if known_at else ""
        raise Refused(f"unknown patient {patient!r}{when}: see trialflow status for the enrolled patients")
    return state


def _states(store: Store, known_at: dt.datetime | None, patients: list[str] | None = None) -> list[PatientState]:
    out = []
    for evs in store.events_of(patients).values():
        try:
            out.append(fold(evs, known_at=known_at))
        except LookupError:
            continue  # enrolled after known_at
    return out


def _protocols(store: Store) -> Callable[[str], Protocol]:
    """Protocol versions by content hash, each read once per call (not one query per patient)."""
    cache: dict[str, Protocol] = {}

    def get(content_hash: str) -> Protocol:
        if content_hash not in cache:
            cache[content_hash] = store.protocol(content_hash)[0]
        return cache[content_hash]
    return get


# -- worklist -------------------------------------------------------------------------------------
def next_actions(store: Store, patient: str | None = None, *, as_of: dt.date | None = None,
                 known_at: dt.datetime | None = None, horizon: int = 28) -> list[Action]:
    """The worklist, most urgent first.

    Read from the work items the store keeps beside each patient's events; a patient is replayed from
    its events only when the stored items do not hold: for ``known_at``, or a clinical date before the
    patient's latest record.
    """
    as_of = as_of or today()
    protocols = _protocols(store)

    def replay(states: list[PatientState]) -> list[Action]:
        return [a for st in states if st.enrolled_on <= as_of
                for a in patient_actions(protocols(st.protocol_hash), st.until(as_of), as_of, horizon)]

    if known_at is not None:
        return sort_actions(replay([_state(store, patient, known_at)] if patient else _states(store, known_at)))
    if patient is not None and not store.exists(patient):
        _state(store, patient, None)  # raises the "unknown patient" refusal
    items, stale = store.work_items(as_of, horizon, patient)
    actions = [i.at(as_of) for i in items if i.visible(as_of, horizon)]
    return sort_actions(actions + replay(_states(store, None, stale)) if stale else actions)


# -- decision preview -----------------------------------------------------------------------------
def evaluate(store: Store, patient: str, *, as_of: dt.date | None = None,
             known_at: dt.datetime | None = None) -> DecisionPreview:
    as_of = as_of or today()
    state = _state(store, patient, known_at).until(as_of)
    return evaluate_decision(store.protocol(state.protocol_hash)[0], state, as_of)


# -- status ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatientStatus:
    patient: str
    phase: str
    phase_name: str
    phase_entered: dt.date
    protocol_version: str
    enrolled_on: dt.date
    day0: dt.date | None
    study_day: int | None
    dose_mg_per_day: float | None
    decision: str | None
    visits_done: int
    visits_missed: int
    next_action: str | None
    next_action_date: dt.date | None


def status(store: Store, patient: str | None = None, *, as_of: dt.date | None = None,
           known_at: dt.datetime | None = None) -> list[PatientStatus]:
    from ._schedule import schedule

    as_of = as_of or today()
    states = [_state(store, patient, known_at)] if patient else _states(store, known_at)
    out = []
    protocols = _protocols(store)
    for st in sorted(states, key=lambda s: s.patient):
        if st.enrolled_on > as_of:
            continue
        cut = st.until(as_of)
        protocol = protocols(cut.protocol_hash)
        phase = protocol.phase(cut.phase)
        visits = schedule(protocol, cut, as_of)
        acts = patient_actions(protocol, cut, as_of)
        decision = cut.decisions[-1].payload["to"] if cut.decisions else None
        start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
        out.append(PatientStatus(
            patient=cut.patient, phase=cut.phase, phase_name=phase.name, phase_entered=cut.phase_entered,
            protocol_version=protocol.version, enrolled_on=cut.enrolled_on, day0=cut.day0,
            study_day=(as_of - cut.day0).days if cut.day0 and not phase.terminal else None,
            dose_mg_per_day=cut.dose_mg_per_day(start_dose) if not phase.terminal else None, decision=decision,
            visits_done=sum(v.status == "done" for v in visits),
            visits_missed=sum(v.status == "missed" for v in visits),
            next_action=acts[0].detail if acts else None, next_action_date=acts[0].target_date if acts else None,
        ))
    return out


# -- history --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: int
    seq: int
    kind: str
    effective_date: dt.date
    recorded_at: dt.datetime
    user: str
    reason: str | None
    summary: str
    corrects: int | None
    corrected_by: int | None
    payload: dict[str, Any]


def _summary(e: Event) -> str:
    p = e.payload
    if e.kind == "enrolled":
        verdict = "eligible" if p.get("eligible") else "not eligible: " + ", ".join(p.get("unmet", []))
        return f"enrolled under protocol v{p.get('protocol_version')} ({verdict})"
    if e.kind == "phase_changed":
        return f"{p['from']} → {p['to']} ({p['trigger']})"
    if e.kind == "observation":
        return _record_summary(p)
    if e.kind == CORRECTION:
        return f"retracts event {e.corrects}" if p.get("retracted") else \
            f"corrects event {e.corrects}: {_record_summary(p['record'])}"
    if e.kind == DECISION:
        outs = ", ".join(f"{k}={v}" for k, v in p["outcomes"].items())
        how = " OVERRIDE" if p.get("override") else ""
        return f"decision {p['decision']}: {outs}; favourable={p['favourable']} → {p['to']}{how}"
    if e.kind == "withdrawn":
        return f"withdrawn: {p['reason']}"
    if e.kind == "migrated":
        return f"migrated v{p.get('from_version')} → v{p.get('to_version')}"
    return e.kind


def _record_summary(p: Mapping[str, Any]) -> str:
    kind = p["kind"]
    if kind == "tg":
        v = f"<{p.get('loq')}" if p.get("below_loq") else p.get("value")
        return f"tg {v} ug/L" + (" (stimulated)" if p.get("stimulated") else "")
    if kind == "tgab":
        return f"tgab {p['result']}"
    if kind == "ct":
        if p.get("not_evaluated"):
            return "ct not evaluated"
        total = sum((t.get("diameter_mm") or 0) for t in p.get("target", []))
        return f"ct {len(p.get('target', []))} targets, {total:g} mm; new lesions {len(p.get('new_lesions', []))}"
    if kind == "rai_scan":
        return f"rai_scan {'/'.join(p.get('modalities', []))}: {len(p.get('avid_lesions', []))} avid lesions"
    if kind == "adverse_event":
        return f"adverse event {p['term']} grade {p['grade']}"
    if kind == "dose_change":
        return f"dose {p['dose_mg_per_day']:g} mg/day" + (f" ({p['reason']})" if p.get("reason") else "")
    if kind == "rai_therapy":
        return f"131I {p['activity_mbq']:g} MBq administered"
    if kind == "dispense":
        return f"dispensed {p['dose_mg_per_day']:g} mg/day for {p['days_supply']} days"
    return kind


def history(store: Store, patient: str, *, known_at: dt.datetime | None = None) -> list[HistoryEntry]:
    """The full audit trail, corrections and the values they replaced included."""
    state = _state(store, patient, known_at)
    corrected_by = {e.corrects: e.id for e in state.events if e.corrects is not None}
    return [HistoryEntry(e.id, e.seq, e.kind, e.effective_date, e.recorded_at, e.user, e.reason, _summary(e),
                         e.corrects, corrected_by.get(e.id), dict(e.payload)) for e in state.events]


# -- the primary endpoint -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EndpointReport:
    """The primary endpoint: proportion of patients with a favourable response, exact 95 % CI.

    Two denominators, as a single-arm trial reports them: patients evaluated at the decision
    (``evaluable``), and every treated patient whose 6-month course is over (``treated``: evaluated,
    or withdrawn before the decision, counted as not favourable). Patients still before the decision
    are in neither.
    """

    as_of: dt.date
    enrolled: int
    screen_failures: int
    started: int
    evaluable: int
    favourable: int
    proportion: float | None
    ci95: tuple[float, float] | None
    ci_method: str
    criteria: dict[str, dict[str, int]]
    per_phase: dict[str, int]
    per_arm: dict[str, int]
    withdrawn_before_decision: dict[str, int]
    patients: list[dict[str, Any]]
    treated: int = 0
    proportion_treated: float | None = None
    ci95_treated: tuple[float, float] | None = None
    before_decision: int = 0


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval (Clopper & Pearson, Biometrika 1934)."""
    from scipy.special import betaincinv

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a))
    return lo, hi


def report(store: Store, *, as_of: dt.date | None = None, known_at: dt.datetime | None = None) -> EndpointReport:
    as_of = as_of or today()
    states = [s.until(as_of) for s in _states(store, known_at) if s.enrolled_on <= as_of]
    per_phase: dict[str, int] = {}
    per_arm: dict[str, int] = {}
    withdrawn: dict[str, int] = {}
    criteria: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    evaluable = favourable = started = screen_failures = before_decision = withdrawn_treated = 0
    for st in sorted(states, key=lambda s: s.patient):
        per_phase[st.phase] = per_phase.get(st.phase, 0) + 1
        if not st.eligible:
            screen_failures += 1
            continue
        if st.day0 is not None:
            started += 1
        if not st.decisions:
            if st.withdrawal is not None:
                r = st.withdrawal.payload["reason"]
                withdrawn[r] = withdrawn.get(r, 0) + 1
                withdrawn_treated += st.day0 is not None
            elif st.day0 is not None:
                before_decision += 1
            continue
        d = st.decisions[-1].payload
        evaluable += 1
        favourable += bool(d["favourable"])
        per_arm[d["to"]] = per_arm.get(d["to"], 0) + 1
        for cid, outcome in d["outcomes"].items():
            c = criteria.setdefault(cid, {"favourable": 0})
            c[outcome] = c.get(outcome, 0) + 1
            c["favourable"] += cid in d["favourable_criteria"]
        rows.append({"patient": st.patient, "decided_on": st.decisions[-1].effective_date.isoformat(),
                     "outcomes": d["outcomes"], "favourable": d["favourable"], "arm": d["to"],
                     "override": d.get("override", False)})
    ci = clopper_pearson(favourable, evaluable) if evaluable else None
    treated = evaluable + withdrawn_treated
    return EndpointReport(
        as_of=as_of, enrolled=len(states), screen_failures=screen_failures, started=started, evaluable=evaluable,
        favourable=favourable, proportion=favourable / evaluable if evaluable else None, ci95=ci,
        ci_method="Clopper-Pearson exact", criteria=criteria, per_phase=per_phase, per_arm=per_arm,
        withdrawn_before_decision=withdrawn, patients=rows, treated=treated,
        proportion_treated=favourable / treated if treated else None,
        ci95_treated=clopper_pearson(favourable, treated) if treated else None, before_decision=before_decision,
    )
