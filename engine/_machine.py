"""The phase state machine of a protocol version, built on ``transitions``: the one place where the legal
moves, their guards and their effects live.

One machine per protocol version (cached by content hash), configured entirely from the protocol model.
What it moves is a :class:`Move`: a patient's folded state, the date and what the command says; the machine
never holds patients (``add_model`` scans a list and is O(n) per patient), so a cohort of any size costs one
machine. For each move:

- **guards** (``transitions`` conditions) consult the patient's state and the command: a move dated before
  the patient entered the phase, a withdrawal for a reason the protocol does not list, a branch taken while
  the decision is not ready, ... Every failing guard's reason is kept and the move is refused with all of
  them (:class:`TransitionRefused`); a move the protocol does not have is refused with what is possible;
- **effects** (``transitions`` callbacks) produce the events the move appends: the withdrawal or decision
  record before it, the phase change itself after it.

Callbacks are never strings, so nothing from the YAML is imported or looked up by name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from transitions import EventData, Machine, MachineError

from trialflow.protocol import Protocol, suggest

from ._readings import leads_to_decision
from ._state import DECISION, PHASE_CHANGED, WITHDRAWN, PatientState

if TYPE_CHECKING:
    from ._store import NewEvent

__all__ = ["Move", "PhaseMachine", "TransitionRefused", "branch_trigger", "machine_for", "phase_diagram"]

WITHDRAW = "withdraw"


def branch_trigger(branch_id: str) -> str:
    """The machine event that takes a decision branch."""
    return f"branch_{branch_id}"


class TransitionRefused(Exception):
    """The move is not allowed: the protocol has no such move from the patient's phase, or a guard refused.

    ``reasons`` holds every refusing guard's reason (empty when the move does not exist at all)."""

    def __init__(self, patient: str, trigger: str, phase: str, allowed: list[str], reasons: tuple[str, ...] = ()):
        self.patient, self.trigger, self.phase, self.allowed, self.reasons = patient, trigger, phase, allowed, reasons
        if reasons:
            message = "; ".join(reasons)
        else:
            message = (f"{patient}: {trigger!r} is not possible from phase {phase!r} "
                       f"(possible there: {', '.join(allowed) or 'nothing, the phase is terminal'})")
        super().__init__(message)


@dataclass
class Move:
    """What the machine moves: a patient's state, the date and the command's details; and what the move
    produced (``events``, in the order they are appended) or why it was refused (``refusals``).

    ``phase`` and ``entered`` follow the patient through a chain of moves fired on the same Move (into the
    decision phase, then down a branch)."""

    state: PatientState
    protocol: Protocol
    when: dt.date
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    phase: str = ""
    entered: dt.date = dt.date.min
    events: list[NewEvent] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.phase = self.phase or self.state.phase
        self.entered = self.entered if self.entered != dt.date.min else self.state.phase_entered

    @property
    def patient(self) -> str:
        return self.state.patient


Guard = Callable[[Move, EventData], tuple[str, ...]]  # why it refuses (empty: it allows the move)


def _move_of(ev: EventData) -> Move:
    """The Move a ``transitions`` event was fired on."""
    return cast(Move, ev.model)


# -- guards ---------------------------------------------------------------------------------------
def _in_order(m: Move, ev: EventData) -> tuple[str, ...]:
    if m.when >= m.entered:
        return ()
    if ev.event is not None and ev.event.name == m.protocol.triggers.start_treatment:
        return (f"{m.patient}: day 0 ({m.when}) cannot be before enrolment ({m.state.enrolled_on})",)
    return (f"{m.patient}: {m.when} is before the patient entered {m.phase} ({m.entered})",)


def _eligible(m: Move, ev: EventData) -> tuple[str, ...]:
    if not m.state.eligible:
        return (f"{m.patient} did not meet eligibility at screening: treatment cannot start",)
    # the answers under the patient's version: one it migrated to may ask what its enrolment did not
    asked = m.protocol.eligibility
    unanswered = [c for c in asked.ids if c not in m.state.eligibility]
    unmet = ([c.id for c in asked.inclusion if m.state.eligibility.get(c.id) == "no"]
             + [c.id for c in asked.exclusion if m.state.eligibility.get(c.id) == "yes"])
    why = [f"{m.patient} has no answer to eligibility criterion {c!r} of v{m.protocol.version}" for c in unanswered]
    why += [f"{m.patient} does not meet eligibility criterion {c!r} of v{m.protocol.version}" for c in unmet]
    if why:
        why.append(f"treatment cannot start: answer under v{m.protocol.version} (trialflow rescreen {m.patient} "
                   "--eligibility FILE)")
    return tuple(why)


def _not_the_decision(m: Move, ev: EventData) -> tuple[str, ...]:
    """A phase that ends with the decision (engine/_readings.leads_to_decision) is left by the investigator's
    decision, not by a coordinator's move (withdrawal aside)."""
    if m.details.get("deciding"):
        return ()
    return (f"{m.patient}: {m.phase} ends with the decision: use trialflow decide {m.patient}",)


def _known_reason(m: Move, ev: EventData) -> tuple[str, ...]:
    reasons = m.protocol.early_termination.reason_ids
    reason = m.details.get("withdrawal_reason")
    if reason in reasons:
        return ()
    return (f"unknown withdrawal reason {reason!r}{suggest(str(reason), reasons)} "
            f"(one of: {', '.join(reasons)})",)


def _decision_ready(m: Move, ev: EventData) -> tuple[str, ...]:
    preview = m.details.get("preview")
    if preview is not None and preview.ready:
        return ()
    return (f"{m.patient}: the decision is not ready on {m.when}; it waits for:",
            *(preview.missing if preview is not None else ()),
            f"to end treatment early, use trialflow withdraw {m.patient}")


def _guarded(guards: tuple[Guard, ...]) -> Callable[[EventData], bool]:
    """One ``transitions`` condition that runs every guard and keeps each refusal's reason."""

    def condition(ev: EventData) -> bool:
        m = _move_of(ev)
        why = [r for g in guards for r in g(m, ev)]
        m.refusals.extend(why)
        return not why

    return condition


# -- effects --------------------------------------------------------------------------------------
def _new_event(kind: str, when: dt.date, payload: dict[str, Any], reason: str | None) -> NewEvent:
    from ._store import NewEvent  # the store's append form (imported when a move is made, never to draw)

    return NewEvent(kind, when, payload, reason)


def _record_withdrawal(ev: EventData) -> None:
    m = _move_of(ev)
    reason, note = m.details["withdrawal_reason"], m.details.get("note")
    m.events.append(_new_event(WITHDRAWN, m.when, {"reason": reason, "note": note}, m.reason))


def _record_decision(ev: EventData) -> None:
    m = _move_of(ev)
    m.events.append(_new_event(DECISION, m.when, dict(m.details["decision_payload"]), m.reason))


def _record_phase_change(extra: Callable[[Move, EventData], dict[str, Any]]) -> Callable[[EventData], None]:
    def effect(ev: EventData) -> None:
        m = _move_of(ev)
        assert ev.transition is not None and ev.event is not None
        payload = {"from": ev.transition.source, "to": ev.transition.dest, "trigger": ev.event.name,
                   **extra(m, ev)}
        m.events.append(_new_event(PHASE_CHANGED, m.when, payload, m.reason))
        m.entered = m.when

    return effect


def _nothing(m: Move, ev: EventData) -> dict[str, Any]:
    return {}


def _day0(m: Move, ev: EventData) -> dict[str, Any]:
    return {"day0": True, "day0_event": m.protocol.day0_event}


def _branch(branch_id: str) -> Callable[[Move, EventData], dict[str, Any]]:
    return lambda m, ev: {"branch": branch_id}


def _moves(protocol: Protocol) -> list[dict[str, Any]]:
    """Every move of the protocol with its guards and effects (``transitions`` configuration)."""
    tr = protocol.triggers
    decision_phase = protocol.decision.phase
    moves: list[dict[str, Any]] = []
    for t in protocol.transitions:
        guards: tuple[Guard, ...] = (_in_order,)
        extra = _nothing
        if t.trigger == tr.start_treatment and t.source == protocol.initial_phase.id:
            guards, extra = (_eligible, _in_order), _day0
        elif leads_to_decision(protocol, t.source):  # such a phase ends with the decision (or a withdrawal)
            guards = (_not_the_decision, _in_order)
        moves.append({"trigger": t.trigger, "source": t.source, "dest": t.dest,
                      "conditions": [_guarded(guards)], "after": [_record_phase_change(extra)]})
    for b in protocol.decision.branches:
        moves.append({"trigger": branch_trigger(b.id), "source": decision_phase, "dest": b.to,
                      "conditions": [_guarded((_in_order, _decision_ready))], "before": [_record_decision],
                      "after": [_record_phase_change(_branch(b.id))]})
    et = protocol.early_termination
    moves.append({"trigger": WITHDRAW, "source": list(et.from_phases), "dest": et.dest,
                  "conditions": [_guarded((_known_reason, _in_order))], "before": [_record_withdrawal],
                  "after": [_record_phase_change(_nothing)]})
    return moves


def _config(protocol: Protocol, *, guards: bool = True) -> dict[str, Any]:
    moves = _moves(protocol)
    if not guards:  # the diagram draws the moves only
        moves = [{k: v for k, v in m.items() if k in ("trigger", "source", "dest")} for m in moves]
    return {
        "states": [p.id for p in protocol.phases],
        "transitions": moves,
        "initial": protocol.initial_phase.id,
        "auto_transitions": False,
        "model_attribute": "phase",
        "send_event": True,
    }


class PhaseMachine:
    """Fires protocol moves on patients; raises :class:`TransitionRefused` for impossible or refused moves."""

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self._machine = Machine(model=None, **_config(protocol))

    def triggers_from(self, phase: str) -> list[str]:
        return sorted(self._machine.get_triggers(phase))

    def move(self, move: Move, trigger: str) -> Move:
        """Fire ``trigger`` on ``move``: its guards either refuse (with every reason) or its effects append
        the move's events to ``move.events``; ``move.phase`` is then the patient's new phase."""
        event = self._machine.events.get(trigger)
        before = move.phase
        move.refusals.clear()
        try:
            if event is None:
                raise MachineError(trigger)
            if not event.trigger(move):
                raise TransitionRefused(move.patient, trigger, before, self.triggers_from(before),
                                        tuple(move.refusals))
        except MachineError:
            raise TransitionRefused(move.patient, trigger, before, self.triggers_from(before)) from None
        return move

    def fire(self, patient: str, phase: str, trigger: str) -> str:
        """The phase ``patient`` would be in after ``trigger`` fires in ``phase`` (the graph only, no guards)."""
        dest = [t.dest for t in self._machine.events[trigger].transitions.get(phase, [])] \
            if trigger in self._machine.events else []
        if not dest:
            raise TransitionRefused(patient, trigger, phase, self.triggers_from(phase))
        return str(dest[0])

    def path_to(self, source: str, dest: str) -> str | None:
        """The trigger that moves directly from ``source`` to ``dest``, if any."""
        for name, event in self._machine.events.items():
            for t in event.transitions.get(source, []):
                if t.dest == dest:
                    return str(name)
        return None


_MACHINES: dict[str, PhaseMachine] = {}


def machine_for(protocol: Protocol) -> PhaseMachine:
    """The machine of one protocol version, built once per content hash."""
    machine = _MACHINES.get(protocol.content_hash)
    if machine is None:
        machine = _MACHINES[protocol.content_hash] = PhaseMachine(protocol)
    return machine


def phase_diagram(protocol: Protocol) -> str:
    """The phase graph as Mermaid ``stateDiagram-v2`` text, drawn by transitions' GraphMachine."""
    from transitions.extensions import GraphMachine

    class _Model:
        pass

    model = _Model()
    cfg = _config(protocol, guards=False)
    cfg.pop("send_event")
    title = f"{protocol.study.id} v{protocol.version}"
    GraphMachine(model=model, graph_engine="mermaid", title=title, show_conditions=False, **cfg)
    text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]  # added by GraphMachine
    # transitions writes the bare title between the front-matter fences; Mermaid reads a YAML mapping there
    text = text.replace(f"---\n{title}\n---", f"---\ntitle: {json.dumps(title)}\n---", 1)
    names = {p.id: p.name for p in protocol.phases}
    # Label states with their names; transitions writes `state "id" as id`.
    for pid, name in names.items():
        label = name.replace('"', "'")
        text = text.replace(f'state "{pid}" as {pid}', f'state "{label}" as {pid}')
    # a protocol has no current state: do not paint the initial phase as "active"
    return text.replace(f"Class {protocol.initial_phase.id} s_active", f"Class {protocol.initial_phase.id} s_default")
