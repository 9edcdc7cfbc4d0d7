"""The phase state machine of a protocol version, built on ``transitions``.

One machine per protocol version (cached by content hash), configured entirely from the protocol
model. Patients are plain objects with a ``phase`` attribute that the machine's events are fired on;
they are never added to the machine (``add_model`` scans a list and is O(n) per patient), so a cohort
of any size costs one machine. Callbacks are never strings, so nothing from the YAML is imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transitions import Machine, MachineError

from trialflow.protocol import Protocol

__all__ = ["PhaseMachine", "TransitionRefused", "machine_for", "phase_diagram"]

WITHDRAW = "withdraw"


def branch_trigger(branch_id: str) -> str:
    """The machine event that takes a decision branch."""
    return f"branch_{branch_id}"


class TransitionRefused(Exception):
    """The protocol has no such move from the patient's current phase."""

    def __init__(self, patient: str, trigger: str, phase: str, allowed: list[str]):
        self.patient, self.trigger, self.phase, self.allowed = patient, trigger, phase, allowed
        super().__init__(
            f"{patient}: {trigger!r} is not possible from phase {phase!r} "
            f"(possible there: {', '.join(allowed) or 'nothing, the phase is terminal'})"
        )


@dataclass
class _Cursor:
    """What the machine moves: a patient's study id and current phase, nothing else."""

    patient: str
    phase: str


def _config(protocol: Protocol) -> dict[str, Any]:
    transitions: list[dict[str, Any]] = [
        {"trigger": t.trigger, "source": t.source, "dest": t.dest} for t in protocol.transitions
    ]
    dec = protocol.decision
    transitions += [{"trigger": branch_trigger(b.id), "source": dec.phase, "dest": b.to} for b in dec.branches]
    et = protocol.early_termination
    transitions += [{"trigger": WITHDRAW, "source": list(et.from_phases), "dest": et.dest}]
    return {
        "states": [p.id for p in protocol.phases],
        "transitions": transitions,
        "initial": protocol.initial_phase.id,
        "auto_transitions": False,
        "model_attribute": "phase",
    }


class PhaseMachine:
    """Fires protocol events on patients' phases; raises :class:`TransitionRefused` for impossible moves."""

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self._machine = Machine(model=None, **_config(protocol))

    def triggers_from(self, phase: str) -> list[str]:
        return sorted(self._machine.get_triggers(phase))

    def fire(self, patient: str, phase: str, trigger: str) -> str:
        """The phase ``patient`` is in after ``trigger`` fires in ``phase``."""
        cursor = _Cursor(patient, phase)
        event = self._machine.events.get(trigger)
        try:
            if event is None or not event.trigger(cursor):
                raise MachineError(trigger)
        except MachineError:
            raise TransitionRefused(patient, trigger, phase, self.triggers_from(phase)) from None
        return cursor.phase

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
    cfg = _config(protocol)
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
