"""Scenario files: the virtual patients of a simulation, validated like a protocol (FILE:LINE:COL).

A scenario file overrides any key of the bundled default scenario (``engine/default_scenario.yaml``);
the keys it leaves out keep their default. Errors are :class:`ScenarioError` (a
:class:`~trialflow.protocol.DocumentError`), every problem at its file position.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from trialflow.protocol import Document, DocumentError, Problem, load_document, parse_document

__all__ = [
    "BUNDLED_SCENARIOS",
    "DEFAULT_SCENARIO",
    "Course",
    "Scenario",
    "ScenarioError",
    "bundled_scenario_path",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
]

DEFAULT_SCENARIO = "default_scenario.yaml"
BUNDLED_SCENARIOS = {"leiden-2012": "leiden_2012.yaml"}  # name → file beside the default scenario


class ScenarioError(DocumentError):
    """A scenario file is invalid; ``problems`` lists every error, sorted by position."""


def _num(
    minimum: float = 0, maximum: float | None = None, *, exclusive: bool = False, integer: bool = False
) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer" if integer else "number"}
    s["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    return s


_PROB = _num(0, 1)
_RATE = _num(0)


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props}


_RANGE = {**_obj({"min": _num(0, integer=True), "max": _num(0, integer=True)})}
_COURSE = _obj(
    {
        "probability": _PROB,
        "tg_slope_per_week": {"type": "number"},
        "tg_slope_sd": _RATE,
        "target_log_change_per_month": {"type": "number"},
        "target_log_change_sd": _RATE,
        "new_lesions_per_month": _RATE,
    }
)

SCENARIO_SCHEMA: dict[str, Any] = _obj(
    {
        "study_start": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "accrual_per_month": _num(0, exclusive=True),
        "screen_failure_probability": {**_PROB, "maximum": 0.99},
        "start_delay_days": _RANGE,
        "rai_reinduction_probability": _PROB,
        "extra_new_avid_lesions_mean": _RATE,
        "tgab_positive_probability": _PROB,
        "tg": _obj(
            {
                "baseline_median_ug_per_l": _num(0, exclusive=True),
                "baseline_log_sd": _RATE,
                "residual_sd": _RATE,
                "loq_ug_per_l": _num(0.01),
            }
        ),
        "courses": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": _COURSE,
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_-]*$"},
        },
        "tumour": _obj(
            {
                "target_lesions": _RANGE,
                "baseline_diameter_median_mm": _num(10),
                "baseline_diameter_log_sd": _RATE,
                "non_target_probability": _PROB,
            }
        ),
        "visits": _obj(
            {
                "jitter_sd_days": _RATE,
                "missed_probability": _PROB,
                "ct_not_evaluable_probability": _PROB,
                "decision_delay_days": _num(0, integer=True),
            }
        ),
        "toxicity": _obj({"dose_reduction_per_month": _RATE, "stop_per_month": _RATE}),
        "dropout_per_month": _RATE,
        "dropout_reason": {"type": "string", "minLength": 1},
        "death_per_month": _RATE,
        "tablet_mg": {"type": "object", "additionalProperties": _num(0, exclusive=True)},
    }
)


def scenario_schema() -> dict[str, Any]:
    """The scenario JSON Schema (draft 2020-12); every key optional, unknown keys refused."""
    return SCENARIO_SCHEMA


@dataclass(frozen=True, slots=True)
class Course:
    """One latent disease course of the mixture (responder, stable, progressor, ...)."""

    name: str
    probability: float
    tg_slope_per_week: float
    tg_slope_sd: float
    target_log_change_per_month: float
    target_log_change_sd: float
    new_lesions_per_month: float


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario: the default merged with a file's overrides. ``data`` is the merged JSON."""

    study_start: dt.date
    accrual_per_month: float
    screen_failure_probability: float
    start_delay_days: tuple[int, int]
    rai_reinduction_probability: float
    extra_new_avid_lesions_mean: float
    tgab_positive_probability: float
    tg_baseline_median: float
    tg_baseline_log_sd: float
    tg_residual_sd: float
    tg_loq: float
    courses: tuple[Course, ...]
    target_lesions: tuple[int, int]
    diameter_median_mm: float
    diameter_log_sd: float
    non_target_probability: float
    jitter_sd_days: float
    missed_probability: float
    ct_not_evaluable_probability: float
    decision_delay_days: int
    dose_reduction_per_month: float
    toxicity_stop_per_month: float
    dropout_per_month: float
    dropout_reason: str
    death_per_month: float
    tablet_mg: Mapping[str, float]
    source_file: str
    data: Mapping[str, Any]
    # the file as read, to locate a problem found later (against the protocol); not part of the scenario
    document: Document | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"source_file": self.source_file, **dict(self.data)}

    def located(self) -> Document | None:
        """The document this scenario was read from, to locate its values (the default scenario's file
        for the default); None for a scenario built without one."""
        if self.document is None and self.source_file == str(default_scenario_path()):
            return load_document(default_scenario_path())
        return self.document

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """A problem of the value at ``path``, at its FILE:LINE:COL in the file it came from (the file's
        top when the file does not give it: the value is the default scenario's)."""
        doc = self.located()
        if doc is None:
            from trialflow.documents import json_path

            return Problem(self.source_file, 1, 1, json_path(list(path)), message)
        return doc.problem(list(path), message)


def default_scenario_path() -> Path:
    return Path(str(resources.files("trialflow.engine").joinpath(DEFAULT_SCENARIO)))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _semantic(doc: Document, merged: Mapping[str, Any]) -> list[Problem]:
    """Checks a schema cannot say: ranges in order, mixture probabilities summing to 1, a real date."""
    out: list[Problem] = []
    given = doc.data if isinstance(doc.data, Mapping) else {}
    for key in ("start_delay_days", ("tumour", "target_lesions")):
        path = [key] if isinstance(key, str) else list(key)
        r: Any = merged
        for p in path:
            r = r[p]
        if r["min"] > r["max"]:
            out.append(doc.problem(path, f"min ({r['min']}) is greater than max ({r['max']})"))
    if merged["tumour"]["target_lesions"]["min"] < 1:
        out.append(
            doc.problem(
                ["tumour", "target_lesions", "min"],
                "a patient needs at least 1 target lesion (the protocol requires measurable disease)",
            )
        )
    for name, c in merged["courses"].items():
        missing = [k for k in _COURSE["properties"] if k not in c]
        if missing:
            out.append(
                doc.problem(
                    ["courses", name],
                    f"course {name!r} needs {', '.join(missing)} (a new course gives every key)",
                )
            )
    if out:
        return out
    total = sum(c["probability"] for c in merged["courses"].values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        where = ["courses"] if "courses" in given else []
        out.append(doc.problem(where, f"the course probabilities sum to {total:g}, not 1"))
    try:
        dt.date.fromisoformat(merged["study_start"])
    except ValueError:
        out.append(doc.problem(["study_start"], f"{merged['study_start']!r} is not a calendar date"))
    return out


def _build(merged: Mapping[str, Any], file: str, document: Document | None = None) -> Scenario:
    m = merged
    tg, tu, vi, tox = m["tg"], m["tumour"], m["visits"], m["toxicity"]
    courses = tuple(
        Course(
            name,
            float(c["probability"]),
            float(c["tg_slope_per_week"]),
            float(c["tg_slope_sd"]),
            float(c["target_log_change_per_month"]),
            float(c["target_log_change_sd"]),
            float(c["new_lesions_per_month"]),
        )
        for name, c in m["courses"].items()
    )
    return Scenario(
        study_start=dt.date.fromisoformat(m["study_start"]),
        accrual_per_month=float(m["accrual_per_month"]),
        screen_failure_probability=float(m["screen_failure_probability"]),
        start_delay_days=(int(m["start_delay_days"]["min"]), int(m["start_delay_days"]["max"])),
        rai_reinduction_probability=float(m["rai_reinduction_probability"]),
        extra_new_avid_lesions_mean=float(m["extra_new_avid_lesions_mean"]),
        tgab_positive_probability=float(m["tgab_positive_probability"]),
        tg_baseline_median=float(tg["baseline_median_ug_per_l"]),
        tg_baseline_log_sd=float(tg["baseline_log_sd"]),
        tg_residual_sd=float(tg["residual_sd"]),
        tg_loq=float(tg["loq_ug_per_l"]),
        courses=courses,
        target_lesions=(int(tu["target_lesions"]["min"]), int(tu["target_lesions"]["max"])),
        diameter_median_mm=float(tu["baseline_diameter_median_mm"]),
        diameter_log_sd=float(tu["baseline_diameter_log_sd"]),
        non_target_probability=float(tu["non_target_probability"]),
        jitter_sd_days=float(vi["jitter_sd_days"]),
        missed_probability=float(vi["missed_probability"]),
        ct_not_evaluable_probability=float(vi["ct_not_evaluable_probability"]),
        decision_delay_days=int(vi["decision_delay_days"]),
        dose_reduction_per_month=float(tox["dose_reduction_per_month"]),
        toxicity_stop_per_month=float(tox["stop_per_month"]),
        dropout_per_month=float(m["dropout_per_month"]),
        dropout_reason=str(m["dropout_reason"]),
        death_per_month=float(m["death_per_month"]),
        tablet_mg={str(k): float(v) for k, v in m["tablet_mg"].items()},
        source_file=file,
        data=merged,
        document=document,
    )


def _check(doc: Document, base: Mapping[str, Any] | None) -> Scenario:
    if not isinstance(doc.data, Mapping):
        raise ScenarioError([doc.problem([], "a scenario is a mapping of keys (see the bundled default)")])
    from trialflow.documents import schema_problems  # jsonschema: only when a scenario is validated

    problems = schema_problems(doc, SCENARIO_SCHEMA)
    if problems:
        raise ScenarioError(problems)
    merged = _merge(base, doc.data) if base is not None else dict(doc.data)
    problems = _semantic(doc, merged)
    if problems:
        raise ScenarioError(problems)
    return _build(merged, doc.file, doc)


@cache
def _default_data() -> dict[str, Any]:
    """The default scenario's data, validated (unless the same data passed before with the same code,
    ``trialflow.documents._trusted``)."""
    from trialflow.documents._trusted import remember, trusted

    doc = load_document(default_scenario_path())
    if isinstance(doc.data, Mapping) and trusted("scenario", doc.data):
        return dict(doc.data)
    scenario = _check(doc, None)
    remember("scenario", doc.data)
    return dict(scenario.data)


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """A scenario from YAML text, overriding the bundled default; :class:`ScenarioError` on problems."""
    try:
        doc = parse_document(text, file)
    except DocumentError as err:
        raise ScenarioError(err.problems) from None
    return _check(doc, _default_data())


def bundled_scenario_path(name: str) -> Path:
    """The file of a bundled scenario (``BUNDLED_SCENARIOS``)."""
    return Path(str(resources.files("trialflow.engine").joinpath(BUNDLED_SCENARIOS[name])))


def load_scenario(path: str | Path | None = None) -> Scenario:
    """The scenario in ``path`` (overriding the default), a bundled scenario by name (``leiden-2012``),
    or the bundled default when ``path`` is None."""
    if isinstance(path, str) and path in BUNDLED_SCENARIOS:
        path = bundled_scenario_path(path)
    if path is None:
        base = _default_data()
        return _build(base, str(default_scenario_path()))
    try:
        doc = load_document(path)
    except DocumentError as err:
        raise ScenarioError(err.problems) from None
    return _check(doc, _default_data())
