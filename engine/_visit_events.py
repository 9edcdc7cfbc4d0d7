"""The coordinator's commands about visits and the study course: deviations, skipped visits, screen
failures after enrolment, stopping the drug, and recorded reversals of a completion or a withdrawal.

Like every write, each runs in one transaction through :meth:`Store.write`, refuses with
:class:`Refused` (writing nothing) and appends events; nothing is ever changed in place. A reversal is
a new event pointing at the event it reverses; the history shows both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ._base import Problem, Refused
from ._machine import WITHDRAW
from ._projection import projection
from ._schedule import OPEN_STATUSES, schedule
from ._state import DEVIATION, OBSERVATION, PHASE_CHANGED, REVERSAL, SCREEN_FAILED, VISIT_SKIPPED, WITHDRAWN
from ._store import NewEvent, Store, Transaction
from ._workflow import Written, _check_date, _move, _state, protocol_of

__all__ = ["DEVIATION_KINDS", "deviation", "reverse", "screen_fail", "skip_visit", "stop_drug"]

DEVIATION_KINDS = ("missed", "out_of_window", "not_done", "other")


def _reason(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise Refused(Problem(f"{what} needs a reason", " (--reason)"))
    return text


def _visit(tx: Transaction, store: Store, patient: str, visit: str, when: dt.date) -> tuple[Any, Any, Any]:
    state = _state(tx, patient)
    protocol = protocol_of(store, state)
    visits = {v.visit: v for v in schedule(protocol, state.until(when), when)}
    if visit not in visits:
        from trialflow.protocol import suggest

        known = [v.id for p in protocol.phases for v in p.visits]
        hint = suggest(visit, known) if visit not in known else \
            f": it is not scheduled for {patient} (the phase holding it has not started)"
        raise Refused(f"{patient}: no visit {visit!r}{hint} (see trialflow visits {patient})")
    return state, protocol, visits[visit]


def deviation(store: Store, patient: str, visit: str, kind: str, reason: str, when: dt.date, user: str) -> Written:
    """Record a protocol deviation for a visit; a missed visit leaves the worklist once it has one."""
    _check_date(when)
    text = _reason(reason, "a deviation")
    if kind not in DEVIATION_KINDS:
        raise Refused(f"unknown deviation kind {kind!r} (one of: {', '.join(DEVIATION_KINDS)})")

    def work(tx: Transaction) -> Written:
        state, protocol, sv = _visit(tx, store, patient, visit, when)
        if sv.status in OPEN_STATUSES:
            raise Refused(Problem(f"{patient}: visit {visit} is {sv.status} on {when} (window {sv.window_start} to "
                                  f"{sv.window_end}): a deviation is recorded once it is missed",
                                  f"; to not do it, use trialflow skip {patient} {visit} --reason ..."))
        if sv.status in ("not_required", "skipped"):
            raise Refused(f"{patient}: visit {visit} is {sv.status.replace('_', ' ')}: there is nothing to deviate "
                          "from")
        ev = NewEvent(DEVIATION, when, {"visit": visit, "kind": kind, "reason": text}, text)
        events = tx.append(patient, state, [ev], projection(protocol))
        return Written(patient, tuple(events), state.phase, f"{patient}: deviation ({kind}) recorded for {visit} "
                       f"on {when}")

    return store.write(user, work)


def skip_visit(store: Store, patient: str, visit: str, reason: str, when: dt.date, user: str) -> Written:
    """Mark a visit as deliberately not done; it leaves the worklist and the decision no longer waits for it."""
    _check_date(when)
    text = _reason(reason, "skipping a visit")

    def work(tx: Transaction) -> Written:
        state, protocol, sv = _visit(tx, store, patient, visit, when)
        if sv.status in ("done", "skipped", "not_required"):
            raise Refused(f"{patient}: visit {visit} is {sv.status.replace('_', ' ')}: it cannot be skipped")
        ev = NewEvent(VISIT_SKIPPED, when, {"visit": visit, "reason": text}, text)
        events = tx.append(patient, state, [ev], projection(protocol))
        return Written(patient, tuple(events), state.phase, f"{patient}: visit {visit} skipped on {when}")

    return store.write(user, work)


def screen_fail(store: Store, patient: str, when: dt.date, reason: str, user: str) -> Written:
    """A patient still in screening found not to qualify (baseline incomplete, a criterion unmet after all)."""
    _check_date(when)
    text = _reason(reason, "a screen failure")

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        phase = protocol.phase(state.phase)
        if phase.kind != "screening":
            raise Refused(f"{patient} is in phase {state.phase!r}, not in screening: a patient who has started "
                          f"treatment leaves the study with trialflow withdraw {patient}")
        if when < state.phase_entered:
            raise Refused(f"{patient}: {when} is before enrolment ({state.phase_entered})")
        move = _move(state, protocol, protocol.triggers.screen_fail, when, text)
        events = tx.append(patient, state, [NewEvent(SCREEN_FAILED, when, {"reason": text}, text), *move.events],
                           projection(protocol))
        return Written(patient, tuple(events), move.phase, f"{patient}: screen failure on {when} ({text})")

    return store.write(user, work)


def stop_drug(store: Store, patient: str, when: dt.date, reason: str, user: str) -> Written:
    """The study drug is stopped: a dose change to 0 mg/day with the reason."""
    _check_date(when)
    text = _reason(reason, "stopping the drug")
    from ._workflow import record

    return record(store, patient, {"kind": "dose_change", "date": when.isoformat(), "dose_mg_per_day": 0,
                                   "reason": text}, user)


def reverse(store: Store, patient: str, event_id: int, reason: str, user: str) -> Written:
    """Undo a mistaken completion, withdrawal or screen failure with a new event pointing at it.

    Only the patient's latest phase change can be reversed; the patient returns to the phase it left,
    and the reversed events stay in history, marked as reversed.
    """
    text = _reason(reason, "a reversal")

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        active = {e.id for e in state.events if e.kind == REVERSAL}
        reversed_ids = {i for e in state.events if e.kind == REVERSAL for i in e.payload.get("reverses", [])}
        target = next((e for e in state.events if e.id == event_id), None)
        if target is None or target.id in active:
            raise Refused(f"{patient} has no event {event_id} to reverse (see trialflow history {patient})")
        if target.id in reversed_ids:
            raise Refused(f"event {event_id} is already reversed")
        live = [e for e in state.events if e.id not in reversed_ids and e.kind != REVERSAL]
        changes = [e for e in live if e.kind == PHASE_CHANGED]
        last = changes[-1] if changes else None
        if target.kind in (WITHDRAWN, SCREEN_FAILED):
            follow = next((e for e in live if e.seq > target.seq and e.kind == PHASE_CHANGED), None)
            if follow is None or follow is not last:
                raise Refused(f"event {event_id} is not the patient's latest change of phase: reverse the later "
                              "ones first")
            undone = [target.id, follow.id]
        elif target.kind == PHASE_CHANGED and target.payload.get("trigger") in (
                protocol.triggers.complete, WITHDRAW, protocol.triggers.screen_fail):
            if target is not last:
                raise Refused(f"event {event_id} is not the patient's latest change of phase: reverse the later "
                              "ones first")
            paired = next((e for e in live if e.seq == target.seq - 1 and e.kind in (WITHDRAWN, SCREEN_FAILED)), None)
            undone = [target.id] + ([paired.id] if paired else [])
        else:
            what = target.payload.get("trigger", target.kind)
            hint = f" (an observation is corrected or retracted: trialflow correct {patient} {event_id})" \
                if target.kind == OBSERVATION else ""
            raise Refused(f"event {event_id} ({what}) cannot be reversed: only a completion, a withdrawal or a "
                          f"screen failure can{hint}")
        change = next(e for e in state.events if e.id in undone and e.kind == PHASE_CHANGED)
        later = [e for e in live if e.seq > change.seq and e.kind == OBSERVATION]
        if later:
            raise Refused(f"records were added after event {event_id} (event {later[0].id}): retract them first")
        payload = {"reverses": sorted(undone), "from": change.payload["to"], "to": change.payload["from"],
                   "trigger": change.payload.get("trigger")}
        ev = NewEvent(REVERSAL, change.effective_date, payload, text, corrects=event_id)
        events = tx.append(patient, state, [ev], projection(protocol))
        return Written(patient, tuple(events), change.payload["from"], f"{patient}: event {event_id} reversed by "
                       f"event {events[0].id}; back in {change.payload['from']}")

    return store.write(user, work)
