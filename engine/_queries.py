"""Read-only answers: the worklist, the decision preview, patient status, history, the endpoint report.

``as_of`` is the clinical date (observations effective after it do not count); ``known_at`` is the
store as it stood at a moment (events recorded after it are ignored, corrections included).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._access import check_patient, reader, site_filter
from ._base import Refused, today
from ._identity import Actor, Login
from ._state import (
    CORRECTION,
    DECISION,
    DEVIATION,
    REVERSAL,
    SCREEN_FAILED,
    SIGNATURE,
    VISIT_SKIPPED,
    Event,
    NotEnrolled,
    PatientState,
    fold,
)
from ._store import Store
from ._workitems import HORIZON, Action, sort_actions

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

    from ._decision import DecisionPreview
    from ._endpoint import EndpointReport, ReportLine
    from ._safety import SafetyReport
    from ._signature import SignatureStatus

__all__ = [
    "HistoryEntry",
    "PatientStatus",
    "evaluate",
    "history",
    "next_actions",
    "patient_status",
    "report",
    "safety",
    "status",
]


def _state(store: Store, patient: str, known_at: dt.datetime | None) -> PatientState:
    state = store.state(patient, known_at=known_at)
    if state is None:
        when = f" at {known_at.isoformat(' ', 'seconds')}" if known_at else ""
        raise Refused(f"unknown patient {patient!r}{when}: see trialflow status for the enrolled patients")
    return state


Who = str | Actor | Login | None


def _states(store: Store, known_at: dt.datetime | None, patients: list[str] | None = None,
            visible: Callable[[str], bool] | None = None, records: tuple[str, ...] | None = None) -> list[PatientState]:
    out = []
    for pid, evs in store.events_of(patients, records=records).items():
        if visible is not None and not visible(pid):
            continue
        try:
            out.append(fold(evs, known_at=known_at))
        except NotEnrolled:
            continue  # enrolled after known_at (a damaged history, DamagedEvent, stops the read: it names the patient)
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
                 known_at: dt.datetime | None = None, horizon: int = 28, actor: Who = None) -> list[Action]:
    """The worklist, most urgent first (the actor's sites only; open data queries included).

    Read from the work items the store keeps beside each patient's events; a patient is replayed from
    its events only when the stored items do not hold: a clinical date before the patient's latest record,
    or a ``known_at`` after which something was recorded for the patient.
    """
    from ._dataqueries import query_actions

    as_of = as_of or today()
    protocols = _protocols(store)
    who = reader(store, actor)
    if patient is not None and store.exists(patient):
        check_patient(store, who, patient)
    visible = site_filter(store, who)
    queries = query_actions(store, who, as_of, patient) if known_at is None else []

    def replay(states: list[PatientState]) -> list[Action]:
        from ._worklist import patient_actions

        return [a for st in states if st.enrolled_on <= as_of
                for a in patient_actions(protocols(st.protocol_hash), st.until(as_of), as_of, horizon)]

    if known_at is not None and patient is not None:
        return sort_actions(replay([_state(store, patient, known_at)]))
    if patient is not None and not store.exists(patient):
        _state(store, patient, None)  # raises the "unknown patient" refusal
    items, stale = store.work_items(as_of, horizon, patient)
    if known_at is not None:  # a patient with nothing recorded since stood then as the store holds it now
        changed = store.recorded_after(known_at)
        items = [i for i in items if i.patient not in changed]
        stale = sorted({*stale, *changed})
    actions = [i.at(as_of) for i in items if i.visible(as_of, horizon) and (visible is None or visible(i.patient))]
    if stale:
        actions += replay(_states(store, known_at, stale, visible))
    return sort_actions(actions + queries)


# -- decision preview -----------------------------------------------------------------------------
def evaluate(store: Store, patient: str, *, as_of: dt.date | None = None,
             known_at: dt.datetime | None = None, actor: Who = None) -> DecisionPreview:
    """The decision preview; an open data query on a record it rests on is flagged."""
    import dataclasses

    from ._dataqueries import open_queries_on
    from ._decision import evaluate_decision
    from ._signature import evidence_kinds

    as_of = as_of or today()
    who = reader(store, actor)
    if store.exists(patient):
        check_patient(store, who, patient)
    whole = _state(store, patient, known_at)
    if as_of < whole.enrolled_on:  # (nothing to preview: the patient was not in the study yet)
        raise Refused(f"{patient} was enrolled on {whole.enrolled_on}, after {as_of}")
    state = whole.until(as_of)
    protocol = store.protocol(state.protocol_hash)[0]
    preview = evaluate_decision(protocol, state, as_of)
    kinds = evidence_kinds(protocol)
    by_id = {e.id: e for e in state.events}
    roots = {r.event_id: r for r in state.records if r.kind in kinds}
    for e in state.events:  # a correction's root counts as the record it now holds
        if e.kind == CORRECTION and e.id in roots:
            roots[int(e.payload["root"])] = roots[e.id]
    flags = [f"open data query {q.id} on event {q.event} ({by_id[q.event].payload.get('kind', by_id[q.event].kind)}"
             f" the decision rests on): {q.text}" for q in open_queries_on(store, patient)
             if q.event in roots and q.event in by_id]
    return dataclasses.replace(preview, flags=(*preview.flags, *flags)) if flags else preview


# -- status ---------------------------------------------------------------------------------------
@frozen
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
    visits_skipped: int = 0
    visits_unresolved: int = 0  # missed and no deviation recorded yet
    as_of: dt.date | None = None


def patient_status(protocol: Protocol, state: PatientState, as_of: dt.date) -> PatientStatus:
    """One patient's line of ``status`` (``state`` already cut at ``as_of``), from the visit ledger."""
    from ._schedule import schedule
    from ._worklist import patient_actions

    phase = protocol.phase(state.phase)
    start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
    visits = schedule(protocol, state, as_of)
    counts = (sum(v.status == "done" for v in visits), sum(v.status == "missed" for v in visits),
              sum(v.status == "skipped" for v in visits), sum(v.status == "missed" and not v.resolved for v in visits))
    return _status_line(
        protocol, state.patient, state.phase, state.phase_entered, state.enrolled_on, state.day0,
        state.dose_mg_per_day(start_dose) if not phase.terminal else None,
        state.decisions[-1].payload["to"] if state.decisions else None,
        counts, patient_actions(protocol, state, as_of), as_of)


def _status_line(protocol: Protocol, patient: str, phase_id: str, entered: dt.date, enrolled_on: dt.date,
                 day0: dt.date | None, dose: float | None, decision: str | None, visits: tuple[int, ...],
                 acts: list[Action], as_of: dt.date) -> PatientStatus:
    """A line of ``status`` from the patient's facts, its visits (done, missed, skipped, missed without a
    deviation) and its worklist on ``as_of`` (the fold's or the stored projection's: counted alike)."""
    phase = protocol.phase(phase_id)
    done, missed, skipped, unresolved = visits
    return PatientStatus(
        patient=patient, phase=phase_id, phase_name=phase.name, phase_entered=entered,
        protocol_version=protocol.version, enrolled_on=enrolled_on, day0=day0,
        study_day=(as_of - day0).days if day0 and not phase.terminal else None,
        dose_mg_per_day=float(dose) if dose is not None else None, decision=decision,  # a float either way
        visits_done=done, visits_missed=missed,
        next_action=acts[0].detail if acts else None, next_action_date=acts[0].target_date if acts else None,
        visits_skipped=skipped, visits_unresolved=unresolved, as_of=as_of,
    )


def status(store: Store, patient: str | None = None, *, as_of: dt.date | None = None,
           known_at: dt.datetime | None = None, actor: Who = None) -> list[PatientStatus]:
    as_of = as_of or today()
    who = reader(store, actor)
    if patient is not None and store.exists(patient):
        check_patient(store, who, patient)
    visible = site_filter(store, who) if patient is None else None
    protocols = _protocols(store)

    def replay(states: list[PatientState]) -> list[PatientStatus]:
        return [patient_status(protocols(st.protocol_hash), st.until(as_of), as_of)
                for st in states if st.enrolled_on <= as_of]

    if patient is not None and (known_at is not None or not store.exists(patient)):
        return replay([_state(store, patient, known_at)])
    # the stored projection, for every patient whose latest record is on or before as_of and, for known_at, with
    # nothing recorded since; the rest replayed
    only = [patient] if patient else None
    rows, _, stale = store.projected(as_of, only, visits=False)
    if known_at is not None:
        changed = store.recorded_after(known_at)
        stale = sorted({*stale, *(pid for pid in rows if pid in changed)})
        rows = {pid: r for pid, r in rows.items() if pid not in changed}
    counts = store.visit_counts(as_of, only)
    items: dict[str, list[Action]] = {}
    for i in store.work_items(as_of, HORIZON, patient)[0]:
        if i.visible(as_of, HORIZON):
            items.setdefault(i.patient, []).append(i.at(as_of))
    out = replay(_states(store, known_at, stale, visible)) if stale else []
    for pid, r in rows.items():
        if visible is not None and not visible(pid):
            continue
        out.append(_status_line(protocols(r.content_hash), pid, r.phase, r.phase_entered_on, r.enrolled_on, r.day0,
                                r.dose_mg_per_day, r.decision, counts.get(pid, (0, 0, 0, 0)),
                                sort_actions(items.get(pid, [])), as_of))
    return sorted(out, key=lambda s: s.patient)


# -- history --------------------------------------------------------------------------------------
@frozen
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
    user_id: int | None = None  # None: a free-text (legacy or single-user) name, not an authenticated user
    signature: SignatureStatus | None = None  # for a signature event: does it still stand?


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
    if e.kind == SIGNATURE:
        return f"signed by {p.get('full_name')} ({p.get('signer')}) at {p.get('signed_at')}: {p.get('meaning')}"
    if e.kind == "query_opened":
        return f"data query on event {p.get('event')}: {p.get('text')}"
    if e.kind == "query_answered":
        return f"answers query {p.get('query')}: {p.get('text')}"
    if e.kind == "query_closed":
        return f"closes query {p.get('query')}" + (f": {p['text']}" if p.get("text") else "")
    if e.kind == "casebook_locked":
        return "case book locked"
    if e.kind == "casebook_unlocked":
        return "case book unlocked"
    if e.kind == DEVIATION:
        return f"deviation ({p['kind']}) for visit {p['visit']}: {p.get('reason', '')}"
    if e.kind == VISIT_SKIPPED:
        return f"visit {p['visit']} skipped: {p.get('reason', '')}"
    if e.kind == SCREEN_FAILED:
        return f"screen failure: {p.get('reason', '')}"
    if e.kind == "eligibility_answered":
        answers = ", ".join(f"{k} {v}" for k, v in sorted(dict(p.get("answers") or {}).items()))
        return f"eligibility answered under v{p.get('version', '?')}: {answers}"
    if e.kind == REVERSAL:
        # a reversal restored from a file may lack what the engine's own reversal states (corrects, from, to)
        target = e.corrects if e.corrects is not None else ", ".join(str(i) for i in p.get("reverses", ())) or "?"
        back = f"back from {p['from']} to {p['to']}" if p.get("from") and p.get("to") else ""
        why = ": ".join(str(x) for x in (p.get("trigger"), back) if x)
        return f"reverses event {target}" + (f" ({why})" if why else "")
    return e.kind


def _record_summary(p: Mapping[str, Any]) -> str:
    """A record's one line: its kind's declared summary (trialflow.rules.kinds)."""
    from trialflow.rules.kinds import record_summary

    return record_summary(p)


def history(store: Store, patient: str, *, known_at: dt.datetime | None = None,
            actor: Who = None) -> list[HistoryEntry]:
    """The full audit trail, corrections and the values they replaced included.

    A signature shows whether it still stands: a later change to the evidence it signed marks it
    invalidated (nothing is deleted).
    """
    from ._signature import signature_status

    who = reader(store, actor)
    if store.exists(patient):
        check_patient(store, who, patient)
    state = _state(store, patient, known_at)
    corrected_by = {e.corrects: e.id for e in state.events if e.corrects is not None}
    for e in state.events:  # a reversal marks every event it takes back (a withdrawal and its phase change)
        if e.kind == REVERSAL:
            corrected_by.update({i: e.id for i in e.payload.get("reverses", [])})
    users = store.event_users(patient)
    protocol = store.protocol(state.protocol_hash)[0]
    out = []
    for e in state.events:
        sig = signature_status(protocol, state, e) if e.kind == SIGNATURE else None
        summary = _summary(e)
        if sig is not None and not sig.valid:
            summary += " — INVALIDATED: " + "; ".join(sig.invalidated_by)
        out.append(HistoryEntry(e.id, e.seq, e.kind, e.effective_date, e.recorded_at, e.user, e.reason, summary,
                                e.corrects, corrected_by.get(e.id), dict(e.payload), users.get(e.id), sig))
    return out


# -- the primary endpoint -------------------------------------------------------------------------
#: the record kinds the endpoint report reads (its safety part: adverse events, and the doses taken)
REPORT_RECORDS = ("adverse_event", "dose_change", "dispense")


def _report_lines(store: Store, as_of: dt.date, known_at: dt.datetime | None,
                  visible: Callable[[str], bool] | None) -> Iterator[ReportLine]:
    """Every visible patient's report line on ``as_of``, in study-id order: the stored line where it holds
    (the patient's latest record is on or before ``as_of`` and, for ``known_at``, nothing was recorded for it
    since), the fold of the patient's events otherwise."""
    from ._endpoint import line_from_json  # (the report's modules: only the commands that report)

    stored, stale = store.report_rows(as_of)
    if known_at is not None:
        changed = store.recorded_after(known_at)
        stale += [pid for pid, _, _ in stored if pid in changed]
        stored = [r for r in stored if r[0] not in changed]
    folded = _folded_lines(store, stale, as_of, known_at, visible) if stale else []
    lines = (line_from_json(pid, phase, text) for pid, phase, text in stored if visible is None or visible(pid))
    return heapq.merge(lines, folded, key=lambda x: x.patient)


def _folded_lines(store: Store, patients: list[str], as_of: dt.date, known_at: dt.datetime | None,
                  visible: Callable[[str], bool] | None) -> list[ReportLine]:
    """The report lines of ``patients`` from their events, in study-id order."""
    from ._endpoint import report_line

    protocols = _protocols(store)
    # Every event but the observations the report does not read (Tg, TgAb, CT, scans: most of the table);
    # a patient whose last decision is signed is read whole, since its signature's validity rests on them.
    states = [s.until(as_of) for s in _states(store, known_at, patients, visible=visible, records=REPORT_RECORDS)
              if s.enrolled_on <= as_of]
    signed = [s.patient for s in states if s.decisions and any(e.kind == SIGNATURE for e in s.events)]
    whole = {s.patient: s.until(as_of) for s in _states(store, known_at, signed)} if signed else {}
    return sorted((report_line(protocols(s.protocol_hash), whole.get(s.patient, s)) for s in states),
                  key=lambda x: x.patient)


def report(store: Store, *, as_of: dt.date | None = None, known_at: dt.datetime | None = None,
           actor: Who = None) -> EndpointReport:
    """The primary endpoint over the patients the actor may see (every patient for study-wide roles)."""
    from ._endpoint import endpoint_report

    as_of = as_of or today()
    visible = site_filter(store, reader(store, actor))
    return endpoint_report(_report_lines(store, as_of, known_at, visible), as_of)


def safety(store: Store, *, as_of: dt.date | None = None, known_at: dt.datetime | None = None,
           actor: Who = None) -> SafetyReport:
    """Every adverse event of the patients the actor may see, by patient and grade, with SAEs and dose reductions."""
    from ._endpoint import safety_report

    as_of = as_of or today()
    visible = site_filter(store, reader(store, actor))
    return safety_report(_report_lines(store, as_of, known_at, visible), as_of)
