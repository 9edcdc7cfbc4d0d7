"""The decision preview: which criteria are ready, what each rule says, which branch the protocol takes.

The engine recommends; an investigator confirms (or overrides with a reason). A criterion waits
while one of its visits is neither done nor closed; once every window has closed the rule is run
on what there is, and too little data is the rule's own ``not_evaluable`` outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trialflow.protocol import Criterion, Protocol
from trialflow.rules import get_rule
from trialflow.rules.observations import OBSERVATION_TYPES, Case, Observation

from ._schedule import ScheduledVisit, schedule
from ._state import PatientState

__all__ = ["DecisionPreview", "decision_applies", "evaluate_decision", "pending_criterion_visits"]

OBSERVATION_CLASSES = tuple(OBSERVATION_TYPES.values())
PROGRESSION_OUTCOMES = frozenset({"progression", "PD"})
NOT_EVALUABLE_OUTCOMES = frozenset({"not_evaluable", "NE"})


@dataclass(frozen=True, slots=True)
class DecisionPreview:
    """What ``trialflow evaluate`` answers; nothing is changed by computing it."""

    patient: str
    decision: str
    phase: str
    as_of: dt.date
    applicable: bool
    ready: bool
    missing: tuple[str, ...]
    criteria: dict[str, dict[str, Any]]
    outcomes: dict[str, str]
    favourable: bool
    favourable_criteria: tuple[str, ...]
    recommended_branch: str | None
    recommended_phase: str | None
    flags: tuple[str, ...]


def decision_applies(protocol: Protocol, phase: str) -> bool:
    """The patient is in the decision phase or in a phase that leads into it."""
    dec = protocol.decision.phase
    return phase == dec or any(t.source == phase and t.dest == dec for t in protocol.transitions)


def pending_criterion_visits(protocol: Protocol, visits: list[ScheduledVisit]) -> dict[str, list[ScheduledVisit]]:
    """Per criterion, its visits that are still open (neither done nor closed)."""
    by_id = {v.visit: v for v in visits}
    out: dict[str, list[ScheduledVisit]] = {}
    for c in protocol.decision.criteria:
        waiting = [by_id[v] for v in c.visits if v in by_id and by_id[v].status in ("upcoming", "due", "overdue")]
        unscheduled = [v for v in c.visits if v not in by_id]
        if unscheduled:  # the phase holding them has not started (e.g. no day 0 yet)
            waiting += [ScheduledVisit("", v, protocol.visit(v).name, protocol.visit(v).phase, dt.date.max,
                                       dt.date.max, dt.date.max, "upcoming", None, (), "not scheduled yet")
                        for v in unscheduled]
        out[c.id] = waiting
    return out


def criterion_case(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit],
                   criterion: Criterion) -> Case:
    """The observations a criterion may judge: those its declared visits asked for, in their windows.

    A scan or CT taken outside the criterion's visits (an unscheduled week-4 CT, say) is part of the
    record but not of the 6-month decision; a missed 6-month CT leaves the rule without a follow-up,
    which it reports as not evaluable.
    """
    by_id = {v.visit: v for v in visits}
    windows = []
    for vid in criterion.visits:
        sv = by_id.get(vid)
        if sv is None or sv.status == "not_required":
            continue
        windows.append((sv.window_start, sv.window_end, set(sv.kinds)))
    observations: tuple[Observation, ...] = tuple(
        r.record for r in state.records
        if isinstance(r.record, OBSERVATION_CLASSES)
        and any(start <= r.record.date <= end and r.record.kind in kinds for start, end, kinds in windows)
    )
    return Case(state.patient, state.day0, observations)


def _flags(protocol: Protocol, outcomes: dict[str, str], results: dict[str, dict[str, Any]]) -> list[str]:
    flags = []
    fav = set(protocol.decision.favourable_criteria(outcomes))
    progressing = [c for c, o in outcomes.items() if o in PROGRESSION_OUTCOMES]
    if fav and progressing:
        flags.append(
            "discordant: " + ", ".join(f"{c} {outcomes[c]}" for c in progressing) + " while "
            + ", ".join(f"{c} {outcomes[c]}" for c in sorted(fav))
            + " is favourable; the protocol as written counts this as favourable: investigator to confirm"
        )
    for c, o in outcomes.items():
        if o in NOT_EVALUABLE_OUTCOMES:
            flags.append(f"{c} not evaluable: {results[c].get('reason', '')}")
    return flags


def evaluate_decision(protocol: Protocol, state: PatientState, as_of: dt.date) -> DecisionPreview:
    """Preview the decision for ``state`` on clinical date ``as_of`` (``state`` already cut at ``as_of``)."""
    dec = protocol.decision
    applicable = decision_applies(protocol, state.phase)
    visits = schedule(protocol, state, as_of)
    pending = pending_criterion_visits(protocol, visits)
    missing = tuple(
        f"{cid}: {v.visit} ({v.status}{'' if v.window_end == dt.date.max else f', window closes {v.window_end}'})"
        for cid, vs in pending.items() for v in vs
    )
    results: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, str] = {}
    for c in dec.criteria:
        case = criterion_case(protocol, state, visits, c)
        res = get_rule(c.rule).evaluate(case, c.params, as_of=as_of).to_dict()
        res["waiting_on"] = [v.visit for v in pending[c.id]]
        res["favourable"] = res["outcome"] in c.favourable
        results[c.id] = res
        outcomes[c.id] = res["outcome"]
    ready = applicable and not missing
    branch = dec.choose(outcomes) if ready else None
    if not applicable:
        flags = [f"not at the decision: the patient is in phase {state.phase!r}"]
        if state.decisions:
            d = state.decisions[-1]
            flags.append(f"decided on {d.effective_date} by {d.user} → {d.payload['to']}; the recorded evidence "
                         f"is in trialflow history {state.patient} (or evaluate --as-of the day before)")
    else:
        flags = _flags(protocol, outcomes, results) if ready else []
    return DecisionPreview(
        patient=state.patient, decision=dec.id, phase=state.phase, as_of=as_of, applicable=applicable,
        ready=ready, missing=missing, criteria=results, outcomes=outcomes, favourable=dec.is_favourable(outcomes),
        favourable_criteria=dec.favourable_criteria(outcomes),
        recommended_branch=branch.id if branch else None, recommended_phase=branch.to if branch else None,
        flags=tuple(flags),
    )
