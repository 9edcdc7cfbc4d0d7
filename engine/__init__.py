"""The engine: state machine, schedule, worklist, decisions, persistence, simulation."""

from ._machine import PhaseMachine, TransitionRefused, machine_for, phase_diagram

__all__ = ["PhaseMachine", "TransitionRefused", "machine_for", "phase_diagram"]
