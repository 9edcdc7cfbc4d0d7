"""What a simulation answers: frozen dataclasses with ``to_dict`` (the ``--json`` output)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._generate import Cohort

__all__ = ["Endpoint", "MonthWorkload", "Replicates", "SimulationResult"]


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The primary endpoint pooled over every simulated patient: favourable among those decided."""

    favourable: int
    evaluable: int
    started: int
    proportion: float | None
    ci95: tuple[float, float] | None
    proportion_of_started: float | None
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "favourable": self.favourable,
            "evaluable": self.evaluable,
            "started": self.started,
            "proportion": _r(self.proportion),
            "ci95": [_r(x) for x in self.ci95] if self.ci95 else None,
            "ci_method": "Clopper-Pearson exact",
            "proportion_of_started": _r(self.proportion_of_started),
            "definition": self.definition,
        }


@dataclass(frozen=True, slots=True)
class Replicates:
    """Operating characteristics over ``runs`` replicate trials of ``patients`` each."""

    runs: int
    patients: int
    null_rate: float | None
    proportion_mean: float | None
    proportion_sd: float | None
    proportion_quantiles: Mapping[str, float]
    evaluable_mean: float
    power: float | None  # share of runs whose exact 95 % CI lower bound exceeds null_rate
    favourable_counts: Mapping[int, int]  # favourable patients in a run → number of runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "patients_per_run": self.patients,
            "null_rate": self.null_rate,
            "proportion_mean": _r(self.proportion_mean),
            "proportion_sd": _r(self.proportion_sd),
            "proportion_quantiles": {k: _r(v) for k, v in self.proportion_quantiles.items()},
            "evaluable_mean": _r(self.evaluable_mean),
            "probability_ci_lower_bound_exceeds_null": _r(self.power),
            "favourable_count_distribution": {str(k): v for k, v in self.favourable_counts.items()},
        }


@dataclass(frozen=True, slots=True)
class MonthWorkload:
    month: str
    mean: Mapping[str, float]
    busiest: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "mean": {k: _r(v, 3) for k, v in self.mean.items()},
            "busiest_run": {k: _r(v, 3) for k, v in self.busiest.items()},
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Counts over all ``runs x patients`` simulated pathways, the replicate statistics, the workload."""

    protocol: Mapping[str, str]
    scenario: str
    seed: int
    patients: int
    runs: int
    per_branch: Mapping[str, int]
    per_arm: Mapping[str, int]
    per_end_state: Mapping[str, int]
    withdrawn_before_decision: Mapping[str, int]
    criteria: Mapping[str, Mapping[str, int]]
    endpoint: Endpoint
    replicates: Replicates
    workload_columns: Mapping[str, str]
    workload: tuple[MonthWorkload, ...]
    sample: Cohort | None = field(default=None, compare=False, repr=False)  # first patients of run 1

    @property
    def pathways(self) -> int:
        return self.patients * self.runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": dict(self.protocol),
            "scenario": self.scenario,
            "seed": self.seed,
            "patients": self.patients,
            "runs": self.runs,
            "pathways": self.pathways,
            "per_branch": dict(self.per_branch),
            "per_arm": dict(self.per_arm),
            "per_end_state": dict(self.per_end_state),
            "withdrawn_before_decision": dict(self.withdrawn_before_decision),
            "criteria": {k: dict(v) for k, v in self.criteria.items()},
            "primary_endpoint": self.endpoint.to_dict(),
            "replicates": self.replicates.to_dict(),
            "workload_columns": dict(self.workload_columns),
            "workload_per_month": [m.to_dict() for m in self.workload],
        }
