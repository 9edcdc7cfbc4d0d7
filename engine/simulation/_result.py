"""What a simulation answers: frozen dataclasses with ``to_dict`` (the ``--json`` output)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from ._generate import Cohort

__all__ = ["MONTHLY_MONTHS", "DesignRun", "Endpoint", "MonthTable", "MonthWorkload", "Replicates", "SimulationResult"]

MONTHLY_MONTHS = 120  # the workload is given month by month for 10 years of the study, then by year


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
    proportion_quantiles: Mapping[str, float]  # p2.5 ... p97.5: proportions trials gave (``_simulate._quantiles``)
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


class MonthTable(Sequence[MonthWorkload]):
    """The workload per month as a read-only sequence of :class:`MonthWorkload`, built on access.

    A single run of a million patients at two a month spans ~500,000 months; the numbers stay in two
    arrays (months x columns) and a row becomes a :class:`MonthWorkload` only when it is read.
    """

    __slots__ = ("_keys", "_labels", "_mean", "_most", "_start")

    def __init__(self, start: np.datetime64, keys: Sequence[str], mean: NDArray[np.float64], most: NDArray[np.float64]):
        self._start = np.asarray(start).astype("datetime64[M]")[()]
        self._keys = tuple(keys)
        self._mean = mean
        self._most = most
        self._labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self._mean)

    def _row(self, m: int) -> MonthWorkload:
        label = str(self._start + np.timedelta64(m, "M"))
        return MonthWorkload(
            label,
            dict(zip(self._keys, self._mean[m].tolist(), strict=True)),
            dict(zip(self._keys, self._most[m].tolist(), strict=True)),
        )

    @overload
    def __getitem__(self, i: int) -> MonthWorkload: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[MonthWorkload, ...]: ...
    def __getitem__(self, i: int | slice) -> MonthWorkload | tuple[MonthWorkload, ...]:
        if isinstance(i, slice):
            return tuple(self._row(m) for m in range(*i.indices(len(self))))
        m = i + len(self) if i < 0 else i
        if not 0 <= m < len(self):
            raise IndexError(i)
        return self._row(m)

    def __iter__(self) -> Iterator[MonthWorkload]:
        labels = (self._start + np.arange(len(self)).astype("timedelta64[M]")).astype(str).tolist()
        mean, most = self._mean.tolist(), self._most.tolist()
        for label, a, b in zip(labels, mean, most, strict=True):
            yield MonthWorkload(label, dict(zip(self._keys, a, strict=True)), dict(zip(self._keys, b, strict=True)))

    def by_period(self, after: int, rows: int = 120) -> list[dict[str, Any]]:
        """The months from ``after`` on, in at most ``rows`` periods of whole calendar years (1, 2, 5, 10,
        20, 50, ... years each): each period's mean per month (over its months and the runs) and its
        busiest month (of any run)."""
        if len(self) <= after:
            return []
        months = self._start + np.arange(after, len(self)).astype("timedelta64[M]")
        year = months.astype("datetime64[Y]").astype(np.int64)
        span = int(year[-1] - year[0]) + 1
        step = next(s for k in range(30) for s in (10**k, 2 * 10**k, 5 * 10**k) if -(-span // s) <= rows)
        period = (year - year[0]) // step
        _, first = np.unique(period, return_index=True)
        cuts = [*first.tolist(), len(months)]
        out = []
        for a, b in itertools.pairwise(cuts):
            mean = self._mean[after + a : after + b].mean(axis=0).tolist()
            most = self._most[after + a : after + b].max(axis=0).tolist()
            out.append(
                {
                    "from": str(months[a]),
                    "to": str(months[b - 1]),
                    "months": b - a,
                    "mean_per_month": {k: _r(v, 3) for k, v in zip(self._keys, mean, strict=True)},
                    "busiest_month": {k: _r(v, 3) for k, v in zip(self._keys, most, strict=True)},
                }
            )
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MonthTable):
            return (
                self._start == other._start
                and self._keys == other._keys
                and np.array_equal(self._mean, other._mean)
                and np.array_equal(self._most, other._most)
            )
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MonthTable({len(self)} months, columns {list(self._keys)})"


@dataclass(frozen=True, slots=True)
class DesignRun:
    """A design's operating characteristics over the simulated trials (each run one trial of it)."""

    design: Mapping[str, Any]
    runs: int
    p_success: float
    p_success_ci95: tuple[float, float]
    p_early_stop: float
    p_early_stop_ci95: tuple[float, float]
    expected_n: float
    expected_n_ci95: tuple[float, float]
    rate: float  # favourable responses per first-stage patient (no decision counts as not favourable)
    rate_ci95: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": dict(self.design),
            "runs": self.runs,
            "p_success": _r(self.p_success),
            "p_success_ci95": [_r(x) for x in self.p_success_ci95],
            "p_early_stop": _r(self.p_early_stop),
            "p_early_stop_ci95": [_r(x) for x in self.p_early_stop_ci95],
            "expected_n": _r(self.expected_n),
            "expected_n_ci95": [_r(x) for x in self.expected_n_ci95],
            "true_rate_estimate": _r(self.rate),
            "true_rate_ci95": [_r(x) for x in self.rate_ci95],
            "counting": "intention to treat: a patient without a decision counts as not favourable",
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
    workload: Sequence[MonthWorkload]  # a MonthTable
    sample: Cohort | None = field(default=None, compare=False, repr=False)  # first patients of run 1
    design: DesignRun | None = None  # with a design: its simulated operating characteristics

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
            "workload_per_month": [m.to_dict() for m in self.workload[:MONTHLY_MONTHS]],
            "workload_after_month_120": _by_period(self.workload, MONTHLY_MONTHS),
            **({"design": self.design.to_dict()} if self.design is not None else {}),
        }


def _by_period(workload: Sequence[MonthWorkload], after: int) -> list[dict[str, Any]]:
    if not isinstance(workload, MonthTable):
        raise TypeError("the workload of a SimulationResult is a MonthTable")
    return workload.by_period(after)
