"""The worklist: what is due next, for whom, by when, and why.

Built per patient from the protocol and the patient's state; the store only narrows which patients
need looking at (the projection's indexed ``next_due``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from trialflow.protocol import Protocol

from ._decision import decision_applies, pending_criterion_visits
from ._schedule import ScheduledVisit, schedule
from ._state import PatientState

__all__ = ["URGENCY", "Action", "ActionStatus", "next_due_date", "patient_actions"]

ActionStatus = Literal["overdue", "due", "missed", "upcoming"]
URGENCY: dict[str, int] = {"overdue": 0, "due": 1, "missed": 2, "upcoming": 3}
SUPPLY_WARNING_DAYS = 7  # dispense a new supply this many days before the current one runs out
RECENTLY_MISSED_DAYS = 28  # missed visits stay on the worklist this long, so someone notes why
DECISION_DAYS = 14  # a ready decision becomes overdue after this many days


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the worklist."""

    patient: str
    action: str
    visit: str | None
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date | None
    status: ActionStatus
    reason: str
    detail: str


def _timed(as_of: dt.date, start: dt.date, target: dt.date, end: dt.date | None) -> ActionStatus:
    if as_of < start:
        return "upcoming"
    if as_of <= target:
        return "due"
    if end is None or as_of <= end:
        return "overdue"
    return "missed"


def _visit_actions(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit], as_of: dt.date,
                   horizon: int) -> list[Action]:
    out = []
    for v in visits:
        if v.phase != state.phase or v.status in ("done", "not_required"):
            continue
        if v.status == "upcoming" and v.window_start > as_of + dt.timedelta(days=horizon):
            continue
        if v.status == "missed" and v.window_end < as_of - dt.timedelta(days=RECENTLY_MISSED_DAYS):
            continue
        visit = protocol.visit(v.visit)
        if visit.treatment is not None:
            t = protocol.treatment(visit.treatment.id)
            amount = f"{visit.treatment.activity_mbq:g} MBq " if visit.treatment.activity_mbq else ""
            action, detail = "administer", f"administer {amount}{t.name}"
        else:
            action, detail = "visit", f"{v.name} ({', '.join(visit.assessments)})"
        out.append(Action(state.patient, action, v.visit, v.target_date, v.window_start, v.window_end,
                          v.status, v.reason, detail))  # type: ignore[arg-type]  # done/not_required filtered
    return out


def _treatment_actions(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit],
                       as_of: dt.date) -> list[Action]:
    out: list[Action] = []
    phase = protocol.phase(state.phase)
    start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
    dose = state.dose_mg_per_day(start_dose)
    if phase.kind == "screening":
        begin = next((t for t in protocol.transitions if t.source == phase.id and t.trigger == "start_treatment"),
                     None)
        if begin is not None and state.eligible:
            open_visits = [v for v in visits if v.phase == phase.id and v.status != "done"]
            dest = protocol.phase(begin.dest)
            treatment = f" {dest.treatment.id} {dest.treatment.dose_mg_per_day:g} mg/day" if dest.treatment and \
                dest.treatment.dose_mg_per_day else ""
            if open_visits:
                last = max(v.window_end for v in open_visits)
                out.append(Action(state.patient, "start_treatment", None, last, last, None, "upcoming",
                                  f"{phase.id}: day 0 follows the baseline assessments", f"start{treatment} "
                                  f"(day 0) after {', '.join(v.visit for v in open_visits)}"))
            else:
                ready = max((v.done_on for v in visits if v.phase == phase.id and v.done_on), default=as_of)
                out.append(Action(state.patient, "start_treatment", None, ready, ready, None, "due",
                                  f"{phase.id}: baseline complete ({begin.description or begin.trigger})",
                                  f"start{treatment} (day 0)"))
    elif phase.kind == "treatment" and phase.treatment is not None and dose:
        t = protocol.treatment(phase.treatment.id)
        dispensed = [r for r in state.of_kind("dispense") if r.date >= state.phase_entered - dt.timedelta(days=7)]
        runs_out = (dispensed[-1].date + dt.timedelta(days=dispensed[-1].days_supply)) if dispensed \
            else state.phase_entered
        start = runs_out - dt.timedelta(days=SUPPLY_WARNING_DAYS)
        out.append(Action(state.patient, "dispense", None, runs_out, start, None,
                          _timed(as_of, start, runs_out, None),
                          f"{phase.id}: continuous {t.name}; "
                          + (f"supply of {dispensed[-1].date} runs out" if dispensed else "no supply dispensed yet"),
                          f"dispense {t.name} {dose:g} mg/day"))
    if phase.kind == "terminal" and len(state.stints) > 1:
        # The phase the patient was treated in: a decision phase passed through on the way does not count.
        prev = next((p for p in (protocol.phase(s.phase) for s in reversed(state.stints[:-1]))
                     if p.kind != "decision"), protocol.phase(state.stints[-2].phase))
        prev_dose = state.dose_mg_per_day(prev.treatment.dose_mg_per_day if prev.treatment else None)
        if prev.kind == "treatment" and prev_dose:
            entered = state.phase_entered
            out.append(Action(state.patient, "stop_treatment", None, entered, entered, None,
                              "due" if as_of == entered else "overdue",
                              f"moved to {phase.id} on {entered}; record a dose change to 0 when stopped",
                              f"stop {prev.treatment.id if prev.treatment else 'treatment'}"))
    if phase.duration_days and phase.kind == "treatment":
        ends = next((t for t in protocol.transitions if t.source == phase.id and t.trigger == "complete"), None)
        anchor_v = [v for v in visits if v.phase == phase.id]
        if ends is not None and protocol.phase(ends.dest).kind != "decision" and anchor_v:
            from ._schedule import phase_anchor

            anchor = phase_anchor(phase, state, state.phase_entered) or state.phase_entered
            end = anchor + dt.timedelta(days=phase.duration_days)
            out.append(Action(state.patient, "complete_phase", None, end, end, None, _timed(as_of, end, end, None),
                              f"{phase.id} lasts {phase.duration_days} days from its start",
                              f"complete {phase.id} → {ends.dest} (trialflow complete {state.patient})"))
    return out


def _decision_action(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit], as_of: dt.date,
                     horizon: int) -> list[Action]:
    if not decision_applies(protocol, state.phase):
        return []
    pending = [v for vs in pending_criterion_visits(protocol, visits).values() for v in vs]
    dec = protocol.decision
    if pending:
        opens = min(v.window_start for v in pending)
        if opens > as_of + dt.timedelta(days=horizon):
            return []
        ready_on = max(v.window_end for v in pending)
        waiting = ", ".join(sorted({v.visit for v in pending}))
        return [Action(state.patient, "decide", None, ready_on, ready_on, None, "upcoming",
                       f"decision {dec.id} waits for {waiting}", f"{dec.name}: waiting")]
    crit_visits = [v for v in visits if any(v.visit in c.visits for c in dec.criteria)]
    ready_on = min(max((v.done_on or v.window_end for v in crit_visits), default=as_of), as_of)
    deadline = ready_on + dt.timedelta(days=DECISION_DAYS)
    return [Action(state.patient, "decide", None, ready_on, ready_on, deadline,
                   "due" if as_of <= deadline else "overdue",
                   f"decision {dec.id}: every criterion's assessments are in or their windows have closed",
                   f"{dec.name}: ready (trialflow evaluate {state.patient})")]


def patient_actions(protocol: Protocol, state: PatientState, as_of: dt.date, horizon: int = 28) -> list[Action]:
    """Everything on this patient's worklist on ``as_of`` (``state`` already cut at ``as_of``)."""
    visits = schedule(protocol, state, as_of)
    actions = [
        *_visit_actions(protocol, state, visits, as_of, horizon),
        *_treatment_actions(protocol, state, visits, as_of),
        *_decision_action(protocol, state, visits, as_of, horizon),
    ]
    latest = as_of + dt.timedelta(days=horizon)
    actions = [a for a in actions if a.status != "upcoming" or a.window_start <= latest]
    return sorted(actions, key=lambda a: (URGENCY[a.status], a.target_date, a.patient, a.action))


def next_due_date(protocol: Protocol, state: PatientState, as_of: dt.date) -> dt.date | None:
    """The earliest date something for this patient opens (for the projection's index)."""
    acts = patient_actions(protocol, state, as_of, horizon=100_000)
    open_acts = [a for a in acts if a.status != "missed"]
    return min((a.window_start for a in open_acts), default=None)
