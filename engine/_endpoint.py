"""The primary endpoint report, counted from one line of facts per patient.

A patient's line holds what the report counts of it: the phase, whether treatment started, the
deviations, a screen failure with its reasons, a withdrawal, the latest decision with its signature,
and the safety facts. The line is computed from the patient's events by :func:`report_line`, either when
they are written (the projection keeps it beside the events, as JSON in ``patient.report``) or by a fold
when the past is asked for; :func:`endpoint_report` counts the lines, so both ways count alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import field
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._safety import PatientSafety, SafetyEvent, SafetyReport, patient_safety, summarise
from ._state import SIGNATURE, PatientState

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

__all__ = ["EndpointReport", "ReportLine", "clopper_pearson", "endpoint_report", "line_from_json", "line_json",
           "report_line", "safety_report"]


@frozen
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
    #: screen failures by reason (the unmet criteria at enrolment, or the recorded reason later)
    screen_failure_reasons: dict[str, int] = field(default_factory=dict)
    #: protocol deviations per kind, and per patient (kind → count)
    deviations: dict[str, int] = field(default_factory=dict)
    deviations_per_patient: dict[str, dict[str, int]] = field(default_factory=dict)
    safety: SafetyReport | None = None


@frozen
class ReportLine:
    """What the report counts of one patient on a date (see the module docstring).

    ``screen_failure``: the reasons, or None for a patient who qualified; ``withdrawn``: the reason;
    ``decision``: the patient's row of the report's ``patients`` (the latest decision, its signature).
    """

    patient: str
    phase: str
    started: bool
    deviations: tuple[str, ...]
    screen_failure: tuple[str, ...] | None
    withdrawn: str | None
    decision: dict[str, Any] | None
    favourable_criteria: tuple[str, ...]
    safety: PatientSafety


def _signed(protocol: Protocol, st: PatientState) -> dict[str, Any] | None:
    """The signature on the patient's last decision (who, when, meaning, still valid), or None if unsigned."""
    seq = st.decisions[-1].seq
    sig = next((e for e in st.events if e.kind == SIGNATURE and e.payload.get("decision_seq") == seq), None)
    if sig is None:
        return None
    from ._signature import signature_status

    s = signature_status(protocol, st, sig)
    return {"signer": s.signer, "full_name": s.full_name, "signed_at": s.signed_at, "meaning": s.meaning,
            "valid": s.valid, "invalidated_by": list(s.invalidated_by)}


def report_line(protocol: Protocol, st: PatientState) -> ReportLine:
    """The patient's line from its state cut at the date asked (its events whole where a decision is signed:
    the signature's validity rests on every later record)."""
    screen_failure = None
    if st.screen_failed:
        screen_failure = tuple(f"not met at enrolment: {u}" for u in st.enrolled_unmet) if not st.eligible else \
            (f"after enrolment: {st.screen_failure.payload.get('reason', '') if st.screen_failure else ''}",)
    decision, favourable_criteria = None, ()
    if st.decisions:
        d = st.decisions[-1].payload
        decision = {"patient": st.patient, "decided_on": st.decisions[-1].effective_date.isoformat(),
                    "outcomes": d["outcomes"], "favourable": d["favourable"], "arm": d["to"],
                    "override": d.get("override", False), "signature": _signed(protocol, st)}
        favourable_criteria = tuple(d["favourable_criteria"])
    return ReportLine(
        patient=st.patient, phase=st.phase, started=st.day0 is not None,
        deviations=tuple(dev.payload["kind"] for dev in st.deviations), screen_failure=screen_failure,
        withdrawn=st.withdrawal.payload["reason"] if st.withdrawal is not None else None,
        decision=decision, favourable_criteria=favourable_criteria, safety=patient_safety(st))


# -- stored as JSON beside the patient's row --------------------------------------------------------------
def line_json(line: ReportLine) -> str:
    """The line as the projection stores it (``patient.report``; the patient and phase are columns there)."""
    s = line.safety
    return json.dumps({
        "started": line.started, "deviations": line.deviations, "screen_failure": line.screen_failure,
        "withdrawn": line.withdrawn, "decision": line.decision, "favourable_criteria": line.favourable_criteria,
        "adverse_events": [[e.event, e.term, e.grade, e.onset.isoformat(), e.resolved.isoformat() if e.resolved
                            else None, e.serious, e.relatedness, e.action] for e in s.events],
        "dose_reduced": s.dose_reduced}, ensure_ascii=False, separators=(",", ":"))


def line_from_json(patient: str, phase: str, text: str) -> ReportLine:
    """A stored line read back (see :func:`line_json`)."""
    d = json.loads(text)
    events = tuple(SafetyEvent(patient, ev, term, grade, dt.date.fromisoformat(onset),
                               dt.date.fromisoformat(resolved) if resolved else None, serious, related, action)
                   for ev, term, grade, onset, resolved, serious, related, action in d["adverse_events"])
    safety = PatientSafety(patient, events, max((e.grade for e in events), default=None),
                           sum(e.serious for e in events), d["dose_reduced"])
    sf = d["screen_failure"]
    return ReportLine(patient, phase, d["started"], tuple(d["deviations"]), tuple(sf) if sf is not None else None,
                      d["withdrawn"], d["decision"], tuple(d["favourable_criteria"]), safety)


# -- counting -------------------------------------------------------------------------------------------
def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval (Clopper & Pearson, Biometrika 1934)."""
    from scipy.special import betaincinv

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a))
    return lo, hi


def _add(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def endpoint_report(lines: Iterable[ReportLine], as_of: dt.date) -> EndpointReport:
    """The report over ``lines``: one per patient enrolled on or before ``as_of``, in study-id order (read one
    at a time, so a stream of stored lines is never held whole)."""
    per_phase: dict[str, int] = {}
    per_arm: dict[str, int] = {}
    withdrawn: dict[str, int] = {}
    criteria: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    enrolled = evaluable = favourable = started = screen_failures = before_decision = withdrawn_treated = 0
    sf_reasons: dict[str, int] = {}
    deviations: dict[str, int] = {}
    dev_patient: dict[str, dict[str, int]] = {}
    safety: list[PatientSafety] = []
    treated_safety = 0  # the safety summary counts every patient whose treatment started, screen failures too
    for line in lines:
        enrolled += 1
        treated_safety += line.started
        if line.safety.events or line.safety.dose_reduced:
            safety.append(line.safety)
        _add(per_phase, line.phase)
        for kind in line.deviations:
            _add(deviations, kind)
            _add(dev_patient.setdefault(line.patient, {}), kind)
        if line.screen_failure is not None:
            screen_failures += 1
            for why in line.screen_failure:
                _add(sf_reasons, why)
            continue
        started += line.started
        d = line.decision
        if d is None:
            if line.withdrawn is not None:
                _add(withdrawn, line.withdrawn)
                withdrawn_treated += line.started
            elif line.started:
                before_decision += 1
            continue
        evaluable += 1
        favourable += bool(d["favourable"])
        _add(per_arm, d["arm"])
        for cid, outcome in d["outcomes"].items():
            c = criteria.setdefault(cid, {"favourable": 0})
            _add(c, outcome)
            c["favourable"] += cid in line.favourable_criteria
        rows.append(d)
    ci = clopper_pearson(favourable, evaluable) if evaluable else None
    treated = evaluable + withdrawn_treated
    return EndpointReport(
        as_of=as_of, enrolled=enrolled, screen_failures=screen_failures, started=started, evaluable=evaluable,
        favourable=favourable, proportion=favourable / evaluable if evaluable else None, ci95=ci,
        ci_method="Clopper-Pearson exact", criteria=criteria, per_phase=per_phase, per_arm=per_arm,
        withdrawn_before_decision=withdrawn, patients=rows, treated=treated,
        proportion_treated=favourable / treated if treated else None,
        ci95_treated=clopper_pearson(favourable, treated) if treated else None, before_decision=before_decision,
        screen_failure_reasons=sf_reasons, deviations=deviations, deviations_per_patient=dev_patient,
        safety=summarise(as_of, treated_safety, safety),
    )


def safety_report(lines: Iterable[ReportLine], as_of: dt.date) -> SafetyReport:
    """The safety summary over ``lines`` (in study-id order; read one at a time)."""
    treated, safety = 0, []
    for line in lines:
        treated += line.started
        if line.safety.events or line.safety.dose_reduced:
            safety.append(line.safety)
    return summarise(as_of, treated, safety)
