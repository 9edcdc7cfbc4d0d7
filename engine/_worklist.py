"""The worklist: what is due next, for whom, by when, and why.

Each patient's open items follow from the protocol and the patient's records alone; their status on
a date follows from their dates. The store keeps the items beside the events (written in the same
transaction), so the cohort's worklist is one indexed query instead of a replay of every patient.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from ._decision import decision_applies
from ._readings import ready_date
from ._schedule import ScheduledVisit, kind_label, phase_anchor, schedule
from ._state import PatientState
from ._workitems import HORIZON, URGENCY, Action, ActionStatus, Clock, WorkItem, sort_actions

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

__all__ = ["URGENCY", "Action", "ActionStatus", "WorkItem", "open_items", "patient_actions", "sort_actions"]

SUPPLY_WARNING_DAYS = 7  # dispense a new supply this many days before the current one runs out
DECISION_DAYS = 14  # a ready decision becomes overdue after this many days


def visit_detail(protocol: Protocol, v: ScheduledVisit) -> tuple[str, str]:
    """The worklist's action and text for a visit: what it asks for, and what is still missing."""
    visit = protocol.visit(v.visit)
    if visit.treatment is not None:
        t = protocol.treatment(visit.treatment.id)
        amount = f"{visit.treatment.activity_mbq:g} MBq " if visit.treatment.activity_mbq else ""
        return "administer", f"administer {amount}{t.name}"
    asked = " + ".join(kind_label(k) for k in v.kinds)
    if v.records and v.missing:  # partly done: say exactly what is still to record
        return "visit", f"{v.name}: {v.missing_text}"
    return "visit", f"{v.name} ({asked})"


def _visit_items(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit]) -> list[WorkItem]:
    out = []
    for v in visits:
        if v.resolved:
            continue
        if v.phase != state.phase and v.status != "missed":
            continue
        action, detail = visit_detail(protocol, v)
        reason = v.reason
        clock: Clock = "window" if v.phase == state.phase else "missed"
        out.append(WorkItem(state.patient, action, v.visit, v.target_date, v.window_start, v.window_end,
                            v.window_start, clock, reason, detail))
    return out


def _open_ended(patient: str, action: str, target: dt.date, start: dt.date, reason: str, detail: str) -> WorkItem:
    return WorkItem(patient, action, None, target, start, None, start, "open_ended", reason, detail)


def _treatment_items(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit]) -> list[WorkItem]:
    out: list[WorkItem] = []
    phase = protocol.phase(state.phase)
    start_dose = phase.treatment.dose_mg_per_day if phase.treatment else None
    dose = state.dose_mg_per_day(start_dose)
    if phase.kind == "screening":
        begin = protocol.transition(phase.id, protocol.triggers.start_treatment)
        if begin is not None and state.eligible:
            dest = protocol.phase(begin.dest)
            treatment = f" {dest.treatment.id} {dest.treatment.dose_mg_per_day:g} mg/day" if dest.treatment and \
                dest.treatment.dose_mg_per_day else ""
            mine = [v for v in visits if v.phase == phase.id]
            open_visits = [v for v in mine if v.status not in ("done", "skipped")]
            # Day 0 follows the baseline: due from the day it is complete until the screening windows close.
            closes = max((v.window_end for v in mine), default=state.phase_entered)
            waiting = None
            if open_visits:
                ready = max(v.window_end for v in open_visits) + dt.timedelta(days=1)
                names = ", ".join(v.visit for v in open_visits)
                waiting = f"start{treatment} (day 0) after {names}"
                detail = (f"baseline incomplete ({names}, window closed): repeat it, or record a screen failure "
                          f"(trialflow screen-fail {state.patient})")
                reason = f"{phase.id}: day 0 follows the baseline assessments"
            else:
                ready = max((v.done_on for v in mine if v.done_on), default=state.phase_entered)
                detail = f"start{treatment} (day 0)"
                reason = f"{phase.id}: baseline complete ({begin.description or begin.trigger})"
            item = _open_ended(state.patient, "start_treatment", max(ready, closes), ready, reason, detail)
            out.append(dataclasses.replace(item, waiting_detail=waiting))
    elif phase.kind == "treatment" and phase.treatment is not None and dose:
        t = protocol.treatment(phase.treatment.id)
        # the latest supply dispensed since a week before the phase began (records are in (date, event) order;
        # only that one's record is built: a patient on treatment holds a dispense a month)
        since = state.phase_entered - dt.timedelta(days=7)
        last: Any = next((r.record for r in reversed(state.records) if r.kind == "dispense" and r.date >= since), None)
        runs_out = (last.date + dt.timedelta(days=last.days_supply)) if last is not None else state.phase_entered
        reason = f"{phase.id}: continuous {t.name}; " + (
            f"supply of {last.date} runs out" if last is not None else "no supply dispensed yet")
        detail = f"dispense {t.name} {dose:g} mg/day"
        reduce = _pending_reduction(state, t.dose_levels_mg_per_day, dose)
        if reduce is not None:
            lower, ae = reduce
            detail = (f"dispense {t.name} {lower:g} mg/day: dose reduced from {dose:g} after grade {ae.grade} "
                      f"{ae.term} ({ae.date})")
            reason += f"; adverse event of {ae.date} with action dose reduced: next dose level {lower:g} mg/day"
        out.append(_open_ended(state.patient, "dispense", runs_out, runs_out - dt.timedelta(days=SUPPLY_WARNING_DAYS),
                               reason, detail))
    if phase.kind == "terminal" and len(state.stints) > 1:
        # The phase the patient was treated in: a decision phase passed through on the way does not count.
        prev = next((p for p in (protocol.phase(s.phase) for s in reversed(state.stints[:-1]))
                     if p.kind != "decision"), protocol.phase(state.stints[-2].phase))
        prev_dose = state.dose_mg_per_day(prev.treatment.dose_mg_per_day if prev.treatment else None)
        if prev.kind == "treatment" and prev_dose:
            entered = state.phase_entered
            out.append(_open_ended(state.patient, "stop_treatment", entered, entered,
                                   f"moved to {phase.id} on {entered}; record when the drug was stopped "
                                   f"(trialflow stop-drug {state.patient})",
                                   f"stop {prev.treatment.id if prev.treatment else 'treatment'}"))
    if phase.duration_days and phase.kind == "treatment":
        ends = protocol.transition(phase.id, protocol.triggers.complete)
        if ends is not None and protocol.phase(ends.dest).kind != "decision" and any(
                v.phase == phase.id for v in visits):
            anchor = phase_anchor(phase, state, state.phase_entered) or state.phase_entered
            end = anchor + dt.timedelta(days=phase.duration_days)
            out.append(_open_ended(state.patient, "complete_phase", end, end,
                                   f"{phase.id} lasts {phase.duration_days} days from its start",
                                   f"complete {phase.id} → {ends.dest} (trialflow complete {state.patient})"))
    return out


def _pending_reduction(state: PatientState, levels: tuple[float, ...], dose: float) -> tuple[float, Any] | None:
    """The next lower dose level when an adverse event's action was "dose reduced" and no dispensing or dose
    change at a lower dose has followed it yet (None otherwise)."""
    reducing = [ae for ae in state.of_kind("adverse_event") if ae.action == "dose_reduced"]
    if not reducing:
        return None
    ae = reducing[-1]
    followed = [r for kind in ("dose_change", "dispense") for r in state.of_kind(kind)
                if r.date >= ae.date and r.dose_mg_per_day < dose]
    lower = [lv for lv in levels if 0 < lv < dose]
    if followed or not lower:
        return None
    return max(lower), ae


def _decision_items(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit]) -> list[WorkItem]:
    if not decision_applies(protocol, state.phase):
        return []
    dec = protocol.decision
    by_id = {v.visit: v for v in visits}
    wanted = [v for c in dec.criteria for v in c.visits]
    if any(v not in by_id for v in wanted):
        return []  # a criterion's visits are not scheduled yet (no day 0): nothing to wait for yet
    crit = [v for v in dict.fromkeys(by_id[v] for v in wanted) if v.status != "skipped"]
    not_done = [v for v in crit if v.status != "done"]
    # ready once every criterion visit is done or its window has closed
    ready = ready_date((v.done_on if v.status == "done" else None, v.window_end) for v in crit) if crit \
        else state.phase_entered
    # shown once the window of the last assessment it waits for opens: earlier it is only noise
    opens = max((v.window_start for v in not_done), default=ready)
    waiting = ", ".join(f"{v.visit} (window closes {v.window_end})" for v in not_done)
    return [WorkItem(state.patient, "decide", None, ready, ready, ready + dt.timedelta(days=DECISION_DAYS), opens,
                     "decision", f"decision {dec.id}: every criterion's assessments are in or their windows have "
                     "closed" + (f"; waits for {waiting}" if waiting else ""),
                     f"{dec.name}: ready (trialflow evaluate {state.patient})", f"{dec.name}: waiting")]


def open_items(protocol: Protocol, state: PatientState,
               visits: list[ScheduledVisit] | None = None) -> list[WorkItem]:
    """Every worklist item the patient's records call for, independent of the date of looking
    (``visits``: the patient's ``schedule`` on ``dt.date.max``, when the caller has it already)."""
    if visits is None:
        visits = schedule(protocol, state, dt.date.max)
    return [
        *_visit_items(protocol, state, visits),
        *_treatment_items(protocol, state, visits),
        *_decision_items(protocol, state, visits),
    ]


def patient_actions(protocol: Protocol, state: PatientState, as_of: dt.date, horizon: int = HORIZON) -> list[Action]:
    """Everything on this patient's worklist on ``as_of`` (``state`` already cut at ``as_of``)."""
    return sort_actions([i.at(as_of) for i in open_items(protocol, state) if i.visible(as_of, horizon)])
