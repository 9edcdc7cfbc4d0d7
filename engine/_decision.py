"""The decision preview: which criteria are ready, what each rule says, which branch the protocol takes.

The engine recommends; an investigator confirms (or overrides with a reason). A criterion waits
while one of its visits is neither done nor closed; once every window has closed the rule is run
on what there is, and too little data is the rule's own ``not_evaluable`` outcome.

What each rule judges is the protocol's ``evidence`` selection of the criterion (:mod:`._evidence`):
the evidence lists every record used and not used with the reason, the rule is also run on all the
patient's records of its kinds (what ``trialflow rules eval`` says), and when the two differ the
criterion names the settings that made the difference, as a flag that says whether the arm changes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen
from trialflow.rules import get_rule
from trialflow.rules.observations import OBSERVATION_TYPES, Case, Observation

from ._base import Problem
from ._evidence import CriterionEvidence, select_evidence
from ._readings import choose_branch
from ._schedule import ScheduledVisit, schedule
from ._state import PatientState

if TYPE_CHECKING:
    from trialflow.protocol import Criterion, Protocol

__all__ = ["DecisionPreview", "criterion_evidence", "decision_applies", "evaluate_decision",
           "pending_criterion_visits"]

OBSERVATION_CLASSES = tuple(OBSERVATION_TYPES.values())
PROGRESSION_OUTCOMES = frozenset({"progression", "PD"})
NOT_EVALUABLE_OUTCOMES = frozenset({"not_evaluable", "NE"})


@frozen
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
    #: criterion visits missed (window closed without them): not waited for, judged on what there is
    missed: tuple[str, ...] = ()


def decision_applies(protocol: Protocol, phase: str) -> bool:
    """The patient is in the decision phase or in a phase that leads into it (engine/_readings.py)."""
    from ._readings import leads_to_decision

    return leads_to_decision(protocol, phase)


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


def _observations(state: PatientState) -> list[tuple[Observation, int | None]]:
    # (the kind first: a treatment record is not built only to be left out)
    return [(r.record, r.event_id) for r in state.records
            if r.kind in OBSERVATION_TYPES and isinstance(r.record, OBSERVATION_CLASSES)]


def criterion_evidence(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit],
                       criterion: Criterion) -> CriterionEvidence:
    """The records a criterion may judge, by its protocol ``evidence`` settings (kinds, study days,
    unscheduled records, final visit), each listed as used or not with the reason."""
    return select_evidence(criterion, state.day0, _observations(state), visits)


def criterion_case(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit],
                   criterion: Criterion) -> Case:
    """The observations a criterion judges, as the rule's case (see :func:`criterion_evidence`)."""
    ev = criterion_evidence(protocol, state, visits, criterion)
    return Case(state.patient, state.day0, ev.observations)


def _not_evaluable(outcomes: tuple[str, ...]) -> str | None:
    return next((o for o in outcomes if o in NOT_EVALUABLE_OUTCOMES), None)


def _same_reading(kinds: tuple[str, ...], selected: tuple[Observation, ...],
                  everything: tuple[Observation, ...]) -> bool:
    """Whether a rule reading ``kinds`` sees the same records in both cases: the selection left none of its
    kinds out (the usual case), so its answer on every record is the one it gave on the selection. A rule
    reads only its declared ``observation_kinds`` (the records a decision's signature binds, engine/_signature.py,
    are those); a decision evaluates each rule once instead of twice."""
    mine = [o for o in everything if o.kind in kinds]
    chosen = [o for o in selected if o.kind in kinds]
    return len(mine) == len(chosen) and all(a is b for a, b in zip(mine, chosen, strict=True))


def _judge(protocol: Protocol, state: PatientState, visits: list[ScheduledVisit], c: Criterion,
           as_of: dt.date) -> dict[str, Any]:
    """The rule on the selected records, the final-visit check, and the rule on every record of its
    kinds (what ``trialflow rules eval`` says on the same records), with what makes them differ."""
    rule = get_rule(c.rule)
    ev = criterion_evidence(protocol, state, visits, c)
    judged = rule.evaluate(Case(state.patient, state.day0, ev.observations), c.params, as_of=as_of)
    res = judged.to_dict()
    settings = sorted({u.setting for u in ev.not_used if u.setting})
    ne = _not_evaluable(tuple(rule.outcomes))
    if ev.final_problem and ne is not None and res["outcome"] not in PROGRESSION_OUTCOMES:
        res["rule_outcome"], res["rule_reason"] = res["outcome"], res["reason"]
        res["outcome"], res["reason"] = ne, f"{ev.final_problem}: {ne}"
        settings.append("evidence.final_visit")
    everything = tuple(o for o, _ in _observations(state))
    full = judged if _same_reading(rule.observation_kinds, ev.observations, everything) else rule.evaluate(
        Case(state.patient, state.day0, everything), c.params, as_of=as_of)
    res["evidence"] = ev.to_dict()
    res["rules_eval"] = {"outcome": full.outcome, "reason": full.reason}
    res["differs_from_rules_eval"] = full.outcome != res["outcome"]
    res["differs_because"] = settings if full.outcome != res["outcome"] else []
    return res


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
    for c, res in results.items():
        flags += [f"{c}: {f}" for f in res.get("findings", ())]
        for u in res["evidence"]["records"]:
            if not u["used"]:
                flags.append(f"{c}: the {u['kind']} of {u['date']} ({u['visit']}) is not used: {u['reason']} "
                             f"({u['setting']})")
        if res["differs_from_rules_eval"]:
            other = dict(outcomes, **{c: res["rules_eval"]["outcome"]})
            here, there = protocol.decision.choose(outcomes), protocol.decision.choose(other)
            arm = (f"; on all records the arm would be {there.to} instead of {here.to}: investigator to confirm"
                   if here.id != there.id else "; the arm is the same")
            flags.append(f"{c}: {outcomes[c]} here, {res['rules_eval']['outcome']} by the rule on all the "
                         f"patient's records (trialflow rules eval), because of "
                         f"{', '.join(res['differs_because']) or 'the evidence settings'}{arm}")
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
    by_id = {v.visit: v for v in visits}
    missed = tuple(
        f"{c.id}: {v} (missed{': ' + by_id[v].missing_text if by_id[v].records else ''}"
        f"{', deviation recorded' if by_id[v].deviations else ''})"
        for c in dec.criteria for v in c.visits if v in by_id and by_id[v].status == "missed")
    results: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, str] = {}
    for c in dec.criteria:
        res = _judge(protocol, state, visits, c, as_of)
        res["waiting_on"] = [v.visit for v in pending[c.id]]
        res["favourable"] = res["outcome"] in c.favourable
        results[c.id] = res
        outcomes[c.id] = res["outcome"]
    ready = applicable and not missing
    branch = choose_branch(dec, outcomes) if ready else None
    if not applicable:
        flags = [f"not at the decision: the patient is in phase {state.phase!r}"]
        if state.decisions:
            d = state.decisions[-1]
            flags.append(Problem(f"decided on {d.effective_date} by {d.user} → {d.payload['to']}",
                                 f"; the recorded evidence is in trialflow history {state.patient} (or evaluate "
                                 "--as-of the day before)"))
    else:
        flags = _flags(protocol, outcomes, results) if ready else []
    return DecisionPreview(
        patient=state.patient, decision=dec.id, phase=state.phase, as_of=as_of, applicable=applicable,
        ready=ready, missing=missing, criteria=results, outcomes=outcomes, favourable=dec.is_favourable(outcomes),
        favourable_criteria=dec.favourable_criteria(outcomes),
        recommended_branch=branch.id if branch else None, recommended_phase=branch.to if branch else None,
        flags=tuple(flags), missed=missed,
    )
