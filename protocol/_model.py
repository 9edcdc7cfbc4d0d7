"""The frozen protocol model: what a validated protocol YAML means, with no YAML left in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from types import MappingProxyType
from typing import Any, Literal

from trialflow.documents._frozen import frozen

__all__ = [
    "Assessment",
    "Branch",
    "Condition",
    "Criterion",
    "Decision",
    "EarlyTermination",
    "Eligibility",
    "EligibilityCriterion",
    "Phase",
    "PhaseTreatment",
    "PlausibleRange",
    "Protocol",
    "Study",
    "Transition",
    "Treatment",
    "Triggers",
    "Visit",
    "VisitTreatment",
    "Window",
]

Source = Literal["synopsis", "domain", "assumption"]
PhaseKind = Literal["screening", "treatment", "decision", "terminal"]
Anchor = Literal["enrolment", "day0", "phase_entry"]


def frozen_mapping(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view (rule parameters stay as JSON data but cannot be changed by a caller)."""
    return MappingProxyType(dict(data))


@frozen
class Study:
    id: str
    title: str
    version: str
    enrolment_target: int
    design: str | None
    objective: str | None
    migration_default: Literal["stay", "move"]
    migration_stay_from_phase: str | None
    source: Source


@frozen
class Treatment:
    id: str
    name: str
    dose_mg_per_day: float | None
    regimen: str | None
    dose_levels_mg_per_day: tuple[float, ...]
    activity_mbq: float | None
    source: Source
    note: str | None = None


@frozen
class EligibilityCriterion:
    id: str
    question: str
    source: Source
    note: str | None = None


@frozen
class Eligibility:
    inclusion: tuple[EligibilityCriterion, ...]
    exclusion: tuple[EligibilityCriterion, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in (*self.inclusion, *self.exclusion))


@frozen
class Assessment:
    id: str
    name: str
    observation_kinds: tuple[str, ...]
    source: Source
    note: str | None = None


@frozen
class Window:
    before: int
    after: int


@frozen
class VisitTreatment:
    """A treatment action at a visit: administer an activity or dispense a dose."""

    id: str
    activity_mbq: float | None
    dose_mg_per_day: float | None


@frozen
class Visit:
    id: str
    name: str
    phase: str
    day: int
    window: Window
    assessments: tuple[str, ...]
    treatment: VisitTreatment | None
    source: Source
    note: str | None = None

    @property
    def first_day(self) -> int:
        return self.day - self.window.before

    @property
    def last_day(self) -> int:
        return self.day + self.window.after


@frozen
class PhaseTreatment:
    id: str
    dose_mg_per_day: float | None


@frozen
class Phase:
    id: str
    name: str
    kind: PhaseKind
    anchor: Anchor | None
    duration_days: int | None
    treatment: PhaseTreatment | None
    visits: tuple[Visit, ...]
    source: Source
    note: str | None = None

    @property
    def terminal(self) -> bool:
        return self.kind == "terminal"


@frozen
class Transition:
    trigger: str
    source: str
    dest: str
    description: str | None = None


@frozen
class Triggers:
    """The trigger names the engine fires itself, per move (the protocol may rename them)."""

    start_treatment: str = "start_treatment"  # day 0: the first phase → treatment
    screen_fail: str = "screen_fail"  # enrolment of an ineligible patient: the first phase → a terminal phase
    complete: str = "complete"  # a treatment phase has run its course

    def as_dict(self) -> dict[str, str]:
        return {"start_treatment": self.start_treatment, "screen_fail": self.screen_fail, "complete": self.complete}


@frozen
class WithdrawalReason:
    id: str
    description: str | None


@frozen
class PlausibleRange:
    """A physiological range of one numeric field of a record kind; outside it a value needs confirming."""

    kind: str
    field: str
    minimum: float | None
    maximum: float | None
    unit: str | None
    source: Source
    note: str | None = None

    def describe(self) -> str:
        lo = "" if self.minimum is None else f"{self.minimum:g}"
        hi = "" if self.maximum is None else f"{self.maximum:g}"
        span = f"{lo}-{hi}" if lo and hi else (f"at most {hi}" if hi else f"at least {lo}")
        return f"{span}{' ' + self.unit if self.unit else ''}"


@frozen
class EarlyTermination:
    dest: str
    from_phases: tuple[str, ...]
    reasons: tuple[WithdrawalReason, ...]
    source: Source

    @property
    def reason_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.reasons)


@frozen
class Condition:
    """A structured branch condition; evaluated over criterion outcomes, never ``eval``-ed."""

    kind: Literal["criterion", "favourable", "any", "all", "not"]
    criterion: str | None = None
    outcomes: tuple[str, ...] = ()
    favourable: bool | None = None
    children: tuple[Condition, ...] = ()

    def holds(self, outcomes: Mapping[str, str], favourable: bool) -> bool:
        if self.kind == "criterion":
            return outcomes.get(self.criterion or "") in self.outcomes
        if self.kind == "favourable":
            return favourable is self.favourable
        if self.kind == "any":
            return any(c.holds(outcomes, favourable) for c in self.children)
        if self.kind == "all":
            return all(c.holds(outcomes, favourable) for c in self.children)
        return not self.children[0].holds(outcomes, favourable)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "criterion":
            return {"criterion": self.criterion, "in": list(self.outcomes)}
        if self.kind == "favourable":
            return {"favourable": self.favourable}
        if self.kind == "not":
            return {"not": self.children[0].to_dict()}
        return {self.kind: [c.to_dict() for c in self.children]}

    def describe(self) -> str:
        if self.kind == "criterion":
            return f"{self.criterion} in {{{', '.join(self.outcomes)}}}"
        if self.kind == "favourable":
            return "favourable response" if self.favourable else "no favourable response"
        if self.kind == "not":
            return f"not ({self.children[0].describe()})"
        joiner = " or " if self.kind == "any" else " and "
        return "(" + joiner.join(c.describe() for c in self.children) + ")"


@frozen
class EvidenceSelection:
    """Which records a criterion judges (``evidence:`` of a criterion; docs/DOMAIN.md, "What each criterion
    judges"). ``kinds`` empty means the rule's own observation kinds; a bound of None is open. A criterion
    without ``evidence:`` judges the records inside its visit windows only (``unscheduled`` exclude), the
    reading protocol versions written before the block existed were decided under."""

    # a tuple, or the rule's own kinds read when first used (a RuleKinds: not hashed, so hashing the model
    # loads no rule)
    kinds: Sequence[str] = field(default=(), hash=False)
    from_day: int | None = None
    to_day: int | None = None
    final_visit: str | None = None
    unscheduled: Literal["include", "exclude"] = "include"
    source: Source | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "study_days": {"from": self.from_day, "to": self.to_day},
            "final_visit": self.final_visit,
            "unscheduled": self.unscheduled,
            "source": self.source,
        }


@frozen
class Criterion:
    id: str
    name: str
    rule: str
    visits: tuple[str, ...]
    # the rule's defaults overlaid with the protocol's (a RuleParams, read-only); a mapping is unhashable and
    # machine_for hashes
    params: Mapping[str, Any] = field(hash=False)
    favourable: tuple[str, ...]
    source: Source
    note: str | None = None
    evidence: EvidenceSelection = EvidenceSelection()


@frozen
class Branch:
    id: str
    to: str
    when: Condition | None
    default: bool
    description: str | None
    source: Source


@frozen
class Decision:
    id: str
    name: str
    phase: str
    criteria: tuple[Criterion, ...]
    min_criteria: int
    favourable_description: str | None
    branches: tuple[Branch, ...]
    source: Source

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)

    def favourable_criteria(self, outcomes: Mapping[str, str]) -> tuple[str, ...]:
        """Ids of the criteria whose outcome counts as favourable."""
        return tuple(c.id for c in self.criteria if outcomes.get(c.id) in c.favourable)

    def is_favourable(self, outcomes: Mapping[str, str]) -> bool:
        return len(self.favourable_criteria(outcomes)) >= self.min_criteria

    def choose(self, outcomes: Mapping[str, str]) -> Branch:
        """The first branch whose condition holds; the default branch otherwise."""
        fav = self.is_favourable(outcomes)
        for b in self.branches:
            if b.default or (b.when is not None and b.when.holds(outcomes, fav)):
                return b
        raise LookupError("no branch matched and no default branch")  # prevented by validation


@frozen
class Protocol:
    """A validated protocol version. Build it with :func:`trialflow.protocol.load_protocol`."""

    study: Study
    day0_event: str
    treatments: tuple[Treatment, ...]
    eligibility: Eligibility
    assessments: tuple[Assessment, ...]
    phases: tuple[Phase, ...]
    transitions: tuple[Transition, ...]
    early_termination: EarlyTermination
    decision: Decision
    content_hash: str
    source_file: str
    data: Mapping[str, Any] = field(repr=False, compare=False)
    triggers: Triggers = Triggers()
    plausibility: tuple[PlausibleRange, ...] = ()

    # -- look-ups -------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.study.version

    @property
    def initial_phase(self) -> Phase:
        return self.phases[0]

    def phase(self, phase_id: str) -> Phase:
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)

    @property
    def visits(self) -> tuple[Visit, ...]:
        return tuple(v for p in self.phases for v in p.visits)

    def visit(self, visit_id: str) -> Visit:
        for v in self.visits:
            if v.id == visit_id:
                return v
        raise KeyError(visit_id)

    def transition(self, source: str, trigger: str) -> Transition | None:
        """The transition ``trigger`` fires from phase ``source`` (None: it does not leave that phase)."""
        return next((t for t in self.transitions if t.source == source and t.trigger == trigger), None)

    def treatment(self, treatment_id: str) -> Treatment:
        for t in self.treatments:
            if t.id == treatment_id:
                return t
        raise KeyError(treatment_id)

    def assessment(self, assessment_id: str) -> Assessment:
        for a in self.assessments:
            if a.id == assessment_id:
                return a
        raise KeyError(assessment_id)

    def criterion_params(self, rule_name: str) -> dict[str, Any]:
        """Parameters (defaults merged) of the decision criterion evaluated by ``rule_name``."""
        for c in self.decision.criteria:
            if c.rule == rule_name:
                return dict(c.params)
        raise KeyError(rule_name)

    def visits_observing(self, kind: str) -> tuple[Visit, ...]:
        """Visits whose assessments record observations of ``kind`` (e.g. ``tg``)."""
        wanted = {a.id for a in self.assessments if kind in a.observation_kinds}
        return tuple(v for v in self.visits if wanted.intersection(v.assessments))

    # -- output ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The validated model as JSON data: phases keyed by id, rule parameters with defaults."""
        from ._export import protocol_to_dict

        return protocol_to_dict(self)
