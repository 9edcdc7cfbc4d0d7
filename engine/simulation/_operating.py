"""Operating characteristics of a design, simulated through the protocol beside the exact binomial answer.

For a true favourable-response rate p the scenario's latent courses are re-weighted so that a patient
is favourable (intention to treat: no decision counts as not) with probability p: each course c has its
own favourable rate f_c (estimated by simulating it alone), and the weights
``w_c(t) ∝ w_c exp(t f_c)`` (exponential tilting of the scenario's mixture, t = 0 is the scenario
itself) give ``sum_c w_c(t) f_c = p`` for one t. Every run is then one trial of the design, simulated
with its futility stop inside the pathways; the exact answer is computed at the rate the simulation
achieved (estimated from every first-stage patient), so the two agree within Monte-Carlo error when
the simulator is right.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trialflow.engine.design import ExactCharacteristics, SingleStageDesign, TwoStageDesign, exact_characteristics
from trialflow.protocol import Protocol, load_bundled_protocol

from ._pathways import SimulationError
from ._result import DesignRun
from ._scenario import Scenario
from ._simulate import simulate

__all__ = ["CourseRates", "OperatingPoint", "course_rates", "operating_point", "tilted"]

Design = SingleStageDesign | TwoStageDesign
PILOT = 20_000  # patients simulated per course to estimate its favourable rate (SE <= 0.004)


@dataclass(frozen=True, slots=True)
class CourseRates:
    """Each course's favourable rate (intention to treat) under a scenario, from ``PILOT`` patients each."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    rates: tuple[float, ...]

    @property
    def reachable(self) -> tuple[float, float]:
        used = [r for r, w in zip(self.rates, self.weights, strict=True) if w > 0]
        return min(used), max(used)


def course_rates(scenario: Scenario, protocol: Protocol, seed: int) -> CourseRates:
    rates = []
    for i, c in enumerate(scenario.courses):
        alone = _with_weights(scenario, [1.0 if j == i else 0.0 for j in range(len(scenario.courses))])
        r = simulate(PILOT, seed + 7919 * (i + 1), protocol=protocol, scenario=alone)
        rates.append(r.endpoint.favourable / r.pathways)
        del c
    return CourseRates(
        tuple(c.name for c in scenario.courses), tuple(c.probability for c in scenario.courses), tuple(rates)
    )


def _with_weights(scenario: Scenario, weights: Sequence[float]) -> Scenario:
    courses = tuple(
        dataclasses.replace(c, probability=float(w)) for c, w in zip(scenario.courses, weights, strict=True)
    )
    data = dict(scenario.data)
    data["courses"] = {
        c.name: {**dict(scenario.data.get("courses", {}).get(c.name, {})), "probability": c.probability}
        for c in courses
    }
    return dataclasses.replace(scenario, courses=courses, data=data)


def _tilt(cr: CourseRates, t: float) -> list[float]:
    top = max(r for r, w in zip(cr.rates, cr.weights, strict=True) if w > 0)
    raw = [w * math.exp(t * (r - top)) if w > 0 else 0.0 for r, w in zip(cr.rates, cr.weights, strict=True)]
    s = sum(raw)
    return [x / s for x in raw]


def tilted(scenario: Scenario, cr: CourseRates, rate: float) -> Scenario:
    """The scenario with its course weights tilted so that the favourable rate is ``rate``."""
    lo, hi = cr.reachable
    if not lo < rate < hi:
        raise SimulationError(
            f"a favourable-response rate of {rate:g} is outside what this scenario's courses give "
            f"({lo:.3f} to {hi:.3f}); change the courses' outcomes to reach it"
        )

    def mean(t: float) -> float:
        return sum(w * r for w, r in zip(_tilt(cr, t), cr.rates, strict=True))

    a, b = -1.0, 1.0
    while mean(a) > rate:
        a *= 2
    while mean(b) < rate:
        b *= 2
    for _ in range(200):
        m = (a + b) / 2
        if mean(m) < rate:
            a = m
        else:
            b = m
    return _with_weights(scenario, _tilt(cr, (a + b) / 2))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A design at one true rate: simulated through the protocol, and exact at the rate achieved."""

    target_rate: float
    simulated: DesignRun
    exact: ExactCharacteristics
    course_weights: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "course_weights": {k: round(v, 6) for k, v in self.course_weights.items()},
            "simulated": self.simulated.to_dict(),
            "exact_at_simulated_rate": self.exact.to_dict(),
        }


def operating_point(
    design: Design,
    rate: float,
    scenario: Scenario,
    cr: CourseRates,
    *,
    runs: int,
    seed: int,
    protocol: Protocol | None = None,
    cluster: Any = None,
) -> OperatingPoint:
    proto = protocol or load_bundled_protocol()
    sc = tilted(scenario, cr, rate)
    r = simulate(design.n, seed, protocol=proto, scenario=sc, runs=runs, design=design, cluster=cluster)
    assert r.design is not None
    (exact,) = exact_characteristics(design, [r.design.rate])
    return OperatingPoint(rate, r.design, exact, {c.name: c.probability for c in sc.courses})
