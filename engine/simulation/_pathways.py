"""The protocol graph as the simulator walks it: phases in order, visits with windows, criteria, branches.

Everything here is read from the :class:`~trialflow.protocol.Protocol` model, so an amended protocol is
simulated as it stands. The walk is the engine's own reading of the phase graph (engine/_readings.py
``phase_after`` and ``route``): the initial phase, the protocol's start-treatment trigger into day 0, the
route from there into the decision phase, the decision's branches (first match wins), and from each
branch the route its ``complete`` moves take to a terminal phase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trialflow.engine._readings import choose_branches as _choose_branches
from trialflow.engine._readings import defining_kinds, phase_after, route
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
    # for each criterion visit, by each kind that marks it done, the visits before the decision whose
    # records of that kind can fall in its window (see _completion_sources): the protocol's, made once here
    completion_sources: Mapping[str, Mapping[str, tuple[str, ...]]]

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


def _route_to_decision(protocol: Protocol) -> list[str]:
    """The phases before the decision: the initial phase, then the engine's route (engine/_readings.py
    ``route``) from the phase day 0 enters into the decision phase."""
    start, tr = protocol.initial_phase.id, protocol.triggers
    begin = phase_after(protocol, start, tr.start_treatment)
    if begin is None:
        raise SimulationError(
            "the decision must follow a treatment phase entered on day 0 "
            f"(trigger {tr.start_treatment!r} from {start!r})"
        )
    passed, end = route(protocol, begin)
    if not passed:
        raise SimulationError(
            f"the decision must follow a treatment phase entered on day 0 ({tr.start_treatment!r} from {start!r} "
            f"goes straight to {begin!r})"
        )
    if end != protocol.decision.phase:
        raise SimulationError(
            f"no chain of {tr.complete!r} transitions leads from {begin!r} to the decision phase "
            f"{protocol.decision.phase!r} (it stops in {end!r})"
        )
    return [start, *passed]


def _branch_route(protocol: Protocol, first: str) -> tuple[list[str], str]:
    """From a branch's phase, the engine's route to a terminal phase: (non-terminal phases, terminal)."""
    passed, end = route(protocol, first)
    if not protocol.phase(end).terminal:
        raise SimulationError(
            f"from {first!r} the route stops in {end!r}, which is not terminal, so a simulated patient would "
            f"stay there or decide again; give {end!r} a {protocol.triggers.complete!r} transition towards a "
            "terminal phase"
        )
    return list(passed), end


def pathway_of(protocol: Protocol) -> Pathway:
    """Interpret ``protocol`` for simulation."""
    chain = _route_to_decision(protocol)
    branches = []
    for b in protocol.decision.branches:
        phases, end = _branch_route(protocol, b.to)
        branches.append(
            BranchPlan(b.id, tuple(_phase_plan(protocol, protocol.phase(p)) for p in phases), end)
        )
    initial = protocol.initial_phase.id
    failing = phase_after(protocol, initial, protocol.triggers.screen_fail)
    et = protocol.early_termination
    before = tuple(_phase_plan(protocol, protocol.phase(p)) for p in chain)
    criteria_visits = {c.id: c.visits for c in protocol.decision.criteria}
    return Pathway(
        protocol=protocol,
        before_decision=before,
        criteria_visits=criteria_visits,
        branches=tuple(branches),
        withdraw_dest=et.dest,
        withdraw_from=frozenset(et.from_phases),
        screen_fail_dest=failing,
        dose_levels={
            t.id: t.dose_levels_mg_per_day or ((t.dose_mg_per_day,) if t.dose_mg_per_day else ())
            for t in protocol.treatments
        },
        end_states=tuple(p.id for p in protocol.phases if p.terminal),
        completion_sources=_completion_sources(before, criteria_visits),
    )


def _static_range(before: tuple[PhasePlan, ...], v: VisitPlan) -> tuple[str, int, int] | None:
    """(reference, first, last day) where visit ``v`` can fall relative to its anchor, when its phase is
    entered on that anchor (so the clamp to the phase entry is known); None otherwise."""
    ids = [p.id for p in before]
    idx = ids.index(v.phase) if v.phase in ids else -1
    if v.anchor == "phase_entry":
        ref = "enrolment" if idx == 0 else "day0" if idx == 1 else v.phase
    elif (v.anchor, idx) in (("enrolment", 0), ("day0", 1)):
        ref = v.anchor
    else:
        return None
    return ref, max(v.day - v.before, 0), max(v.day + v.after, 0)


def _completion_sources(
    before: tuple[PhasePlan, ...], criteria_visits: Mapping[str, tuple[str, ...]]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """For each criterion visit, the visits whose records of each of its kinds can fall in its window
    (those its window and theirs cannot share statically are left out)."""
    visits = tuple(v for p in before for v in p.visits)
    wanted = sorted({vid for vids in criteria_visits.values() for vid in vids})
    by_id = {v.id: v for v in visits}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for vid in wanted:
        v = by_id.get(vid)
        if v is None:
            continue  # criterion_windows says so
        own = _static_range(before, v)
        days: dict[str, list[str]] = {}
        for kind in v.defining:
            for w in visits:
                if not (kind in w.kinds or kind in w.defining):
                    continue
                other = _static_range(before, w) if own is not None else None
                if other is not None and own is not None and other[0] == own[0] and (
                    other[2] < v.day - v.before or other[1] > v.day + v.after
                ):
                    continue  # w cannot fall in v's window
                days.setdefault(kind, []).append(w.id)
        out[vid] = {kind: tuple(ws) for kind, ws in days.items()}
    return out


# -- the decision, vectorised: the engine's reading (engine/_readings.py) --------------------------------
Codes = Mapping[str, NDArray[np.integer[Any]]]
Labels = Mapping[str, Sequence[str]]


def choose_branches(
    protocol: Protocol, codes: Codes, labels: Labels
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """(favourable, branch index) per patient: the engine's branch choice over arrays of outcome codes."""
    return _choose_branches(protocol.decision, codes, labels)
