"""Scenario grids: one scenario value swept over a list, the same seed for every point (common random
numbers: a difference between two points is the parameter's, not the dice's); one table, one figure."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._pathways import SimulationError
from ._result import SimulationResult
from ._scenario import Scenario, ScenarioError, parse_scenario

__all__ = ["GridPoint", "GridResult", "grid_scenarios", "parse_grid", "simulate_grid", "write_grid_plot"]


def parse_grid(text: str) -> tuple[str, tuple[float, ...]]:
    """``KEY=v1,v2,...`` → (dotted scenario key, values); :class:`SimulationError` names what is wrong."""
    key, eq, values = text.partition("=")
    key = key.strip()
    if not eq or not key or not values.strip():
        raise SimulationError(f"a grid is KEY=v1,v2,... (e.g. rai_reinduction_probability=0,0.1,0.2), got {text!r}")
    out = []
    for v in values.split(","):
        try:
            out.append(float(v))
        except ValueError:
            raise SimulationError(f"grid {key}: {v.strip()!r} is not a number") from None
    if len(set(out)) != len(out):
        raise SimulationError(f"grid {key}: a value is given twice")
    return key, tuple(out)


def grid_scenarios(base: Scenario, key: str, values: Sequence[float]) -> list[Scenario]:
    """``base`` with ``key`` (dotted, e.g. ``visits.missed_probability``) set to each value, each
    validated as a scenario file would be (:class:`SimulationError` names the key, the value and what it
    expects)."""
    path = key.split(".")
    node: Any = base.data
    for p in path:
        if not isinstance(node, dict) or p not in node:
            raise SimulationError(f"grid: {key!r} is not a scenario value (see the default scenario's keys)")
        node = node[p]
    if isinstance(node, dict | bool) or not isinstance(node, int | float):
        raise SimulationError(f"grid: {key!r} is not a number in the scenario")
    out = []
    where = base.located()  # a problem found later (against the protocol) is in the user's file, not in these
    for v in values:
        data = json.loads(json.dumps(base.data, default=str))
        here = data
        for p in path[:-1]:
            here = here[p]
        here[path[-1]] = int(v) if isinstance(node, int) and float(v).is_integer() else v
        try:
            sc = parse_scenario(json.dumps(data), file=f"{key}={v:g}")
        except ScenarioError as err:  # (the text checked is made here, not the user's: its positions mean nothing)
            raise SimulationError("; ".join(f"{key}={v:g}: {p.message}" for p in err.problems)) from None
        out.append(dataclasses.replace(sc, document=where))
    return out


@dataclass(frozen=True, slots=True)
class GridPoint:
    value: float
    result: SimulationResult

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        rep = r.replicates.to_dict()
        return {
            "value": self.value,
            "per_branch": dict(r.per_branch),
            "per_end_state": dict(r.per_end_state),
            "primary_endpoint": r.endpoint.to_dict(),
            "proportion_mean": rep["proportion_mean"],
            "probability_ci_lower_bound_exceeds_null": rep["probability_ci_lower_bound_exceeds_null"],
        }


@dataclass(frozen=True, slots=True)
class GridResult:
    key: str
    seed: int
    patients: int
    runs: int
    null_rate: float | None
    points: tuple[GridPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": self.key,
            "seed": self.seed,
            "patients": self.patients,
            "runs": self.runs,
            "null_rate": self.null_rate,
            "points": [p.to_dict() for p in self.points],
        }


def simulate_grid(
    key: str,
    values: Sequence[float],
    base: Scenario,
    run: Callable[[Scenario], SimulationResult],
    *,
    seed: int,
    patients: int,
    runs: int,
    null_rate: float | None,
) -> GridResult:
    """``run`` (a simulation with everything but the scenario fixed) at each point of the grid."""
    points = tuple(GridPoint(v, run(sc)) for v, sc in zip(values, grid_scenarios(base, key, values), strict=True))
    return GridResult(key, seed, patients, runs, null_rate, points)


GRID_FIGURE = "grid.png"


def grid_plot_problem(directory: str | Path, *, force: bool = False) -> str | None:
    """Why the grid's figure cannot be written into ``directory`` (None: it can): the rule of ``--plots``."""
    from ._targets import targets_problem

    return targets_problem(directory, (GRID_FIGURE,), "the figures", force=force)


def write_grid_plot(grid: GridResult, directory: str | Path, *, force: bool = False) -> Path:
    """One figure: the share of patients per decision branch (and the power, with a null rate) across
    the grid. An existing ``grid.png`` is replaced only with ``force``, never written through a link."""
    from ._plots import _plt, _save

    problem = grid_plot_problem(directory, force=force)
    if problem:
        raise FileExistsError(problem)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 4.5), layout="constrained")
    xs = [p.value for p in grid.points]
    for name in grid.points[0].result.per_branch:
        ax.plot(xs, [100 * p.result.per_branch[name] / p.result.pathways for p in grid.points], marker="o", label=name)
    ax.set_xlabel(grid.key)
    ax.set_ylabel("% of simulated patients")
    ax.set_ylim(0, 100)
    if grid.null_rate is not None:
        ax2 = ax.twinx()
        ax2.plot(xs, [p.result.replicates.power or 0.0 for p in grid.points], "k--", marker="s", label="power")
        ax2.set_ylabel(f"P(exact CI lower bound > {grid.null_rate:g})")
        ax2.set_ylim(0, 1)
    handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    labels = [lab for a in fig.axes for lab in a.get_legend_handles_labels()[1]]
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    ax.set_title(f"{grid.runs:,} trial(s) of {grid.patients} per point, seed {grid.seed}")
    return _save(plt, fig, out / GRID_FIGURE, tight=False)  # (constrained layout already)
