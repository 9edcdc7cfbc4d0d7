"""The protocol graph as the simulator walks it: phases in order, visits with windows, criteria, branches.

Everything here is read from the :class:`~trialflow.protocol.Protocol` model, so an amended protocol is
simulated as it stands. The walk is the one the engine makes: the initial phase, the protocol's
start-treatment trigger into day 0, the phases that lead to the decision, the decision's branches
(first match wins), and from each branch the protocol's complete trigger to a terminal phase.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trialflow.engine._readings import choose_branches as _choose_branches
from trialflow.engine._schedule import defining_kinds
from trialflow.protocol import Phase, Protocol

__all__ = [
    "BranchPlan",
    "Pathway",
    "PhasePlan",
    "SimulationError",
    "VisitPlan",
    "choose_branches",
    "pathway_of",
]


class SimulationError(ValueError):
    """The protocol or scenario cannot be simulated as given (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class VisitPlan:
    id: str
    phase: str
    anchor: str  # enrolment, day0 or phase_entry
    day: int
    before: int
    after: int
    assessments: tuple[str, ...]
    kinds: tuple[str, ...]  # every observation kind its assessments record
    defining: tuple[str, ...]  # the kinds that mark it done (the engine's defining_kinds: every kind its
    #                            assessments record, and the treatment's record)
    treatment: str | None  # a treatment given at the visit (e.g. 131I)
    activity_mbq: float | None


@dataclass(frozen=True, slots=True)
class PhasePlan:
    id: str
    kind: str
    duration_days: int | None
    treatment: str | None
    dose_mg_per_day: float | None
    visits: tuple[VisitPlan, ...]

    @property
    def length_days(self) -> int:
        """How long a stay in the phase lasts when nothing ends it early."""
        if self.duration_days is not None:
            return self.duration_days
        return max((v.day + v.after for v in self.visits), default=0)


@dataclass(frozen=True, slots=True)
class BranchPlan:
    id: str
    phases: tuple[PhasePlan, ...]  # the branch phase and the non-terminal phases that follow it
    end_state: str  # the terminal phase reached when nothing ends the branch early


@dataclass(frozen=True, slots=True)
class Pathway:
    protocol: Protocol
    before_decision: tuple[PhasePlan, ...]  # initial phase first; the second is entered on day 0
    criteria_visits: Mapping[str, tuple[str, ...]]
    branches: tuple[BranchPlan, ...]
    withdraw_dest: str
    withdraw_from: frozenset[str]
    screen_fail_dest: str | None
    dose_levels: Mapping[str, tuple[float, ...]]
    end_states: tuple[str, ...]

    @property
    def visits_before_decision(self) -> tuple[VisitPlan, ...]:
        return tuple(v for p in self.before_decision for v in p.visits)

    @property
    def visits(self) -> tuple[VisitPlan, ...]:
        """Every visit: before the decision, then each branch's."""
        return (*self.visits_before_decision, *(v for b in self.branches for p in b.phases for v in p.visits))

    @property
    def branch_ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.branches)


def _phase_plan(protocol: Protocol, phase: Phase) -> PhasePlan:
    visits = []
    for v in phase.visits:
        kinds = tuple(k for a in v.assessments for k in protocol.assessment(a).observation_kinds)
        defining = defining_kinds(protocol, v)
        tr = v.treatment
        visits.append(
            VisitPlan(
                id=v.id,
                phase=phase.id,
                anchor=phase.anchor or "phase_entry",
                day=v.day,
                before=v.window.before,
                after=v.window.after,
                assessments=v.assessments,
                kinds=kinds,
                defining=defining,
                treatment=tr.id if tr is not None else None,
                activity_mbq=tr.activity_mbq if tr is not None else None,
            )
        )
    pt = phase.treatment
    return PhasePlan(
        phase.id,
        phase.kind,
        phase.duration_days,
        pt.id if pt else None,
        pt.dose_mg_per_day if pt else None,
        tuple(visits),
    )


def _path_to_decision(protocol: Protocol) -> list[str]:
    """Shortest chain of non-terminal phases from the initial phase to the decision phase."""
    start, goal = protocol.initial_phase.id, protocol.decision.phase
    prev: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            break
        for t in protocol.transitions:
            if t.source == here and t.dest not in prev and not protocol.phase(t.dest).terminal:
                prev[t.dest] = here
                queue.append(t.dest)
    if goal not in prev:
        raise SimulationError(f"no chain of transitions leads from {start!r} to the decision phase {goal!r}")
    chain: list[str] = []
    node: str | None = goal
    while node is not None:
        chain.append(node)
        node = prev[node]
    return chain[::-1][:-1]  # without the decision phase itself


def _follow(protocol: Protocol, first: str) -> tuple[list[str], str]:
    """From a branch's phase, the ``complete`` chain to a terminal phase: (non-terminal phases, terminal)."""
    chain: list[str] = []
    here = first
    while not protocol.phase(here).terminal:
        if here in chain:
            raise SimulationError(f"the phases after {first!r} complete in a loop through {here!r}")
        chain.append(here)
        nxt = [t.dest for t in protocol.transitions if t.source == here and t.trigger == protocol.triggers.complete]
        nxt = nxt or [t.dest for t in protocol.transitions if t.source == here]
        if not nxt:
            raise SimulationError(
                f"phase {here!r} has no transition out of it, so a simulated patient would "
                f"stay there forever; give it a {protocol.triggers.complete!r} transition"
            )
        here = nxt[0]
    return chain, here


def pathway_of(protocol: Protocol) -> Pathway:
    """Interpret ``protocol`` for simulation."""
    chain = _path_to_decision(protocol)
    begin = protocol.transition(protocol.initial_phase.id, protocol.triggers.start_treatment)
    if len(chain) < 2 or begin is None or chain[1] != begin.dest:
        raise SimulationError(
            "the decision must follow a treatment phase entered on day 0 "
            f"(trigger {protocol.triggers.start_treatment!r} from {protocol.initial_phase.id!r})"
        )
    branches = []
    for b in protocol.decision.branches:
        phases, end = _follow(protocol, b.to)
        branches.append(
            BranchPlan(b.id, tuple(_phase_plan(protocol, protocol.phase(p)) for p in phases), end)
        )
    initial = protocol.initial_phase.id
    failing = protocol.transition(initial, protocol.triggers.screen_fail)
    fail = [failing.dest] if failing is not None else []
    et = protocol.early_termination
    return Pathway(
        protocol=protocol,
        before_decision=tuple(_phase_plan(protocol, protocol.phase(p)) for p in chain),
        criteria_visits={c.id: c.visits for c in protocol.decision.criteria},
        branches=tuple(branches),
        withdraw_dest=et.dest,
        withdraw_from=frozenset(et.from_phases),
        screen_fail_dest=fail[0] if fail else None,
        dose_levels={
            t.id: t.dose_levels_mg_per_day or ((t.dose_mg_per_day,) if t.dose_mg_per_day else ())
            for t in protocol.treatments
        },
        end_states=tuple(p.id for p in protocol.phases if p.terminal),
    )


# -- the decision, vectorised: the engine's reading (engine/_readings.py) --------------------------------
Codes = Mapping[str, NDArray[np.integer[Any]]]
Labels = Mapping[str, Sequence[str]]


def choose_branches(
    protocol: Protocol, codes: Codes, labels: Labels
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """(favourable, branch index) per patient: the engine's branch choice over arrays of outcome codes."""
    return _choose_branches(protocol.decision, codes, labels)
