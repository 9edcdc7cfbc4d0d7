"""Example plug-in rule: is the thyroglobulin doubling time shorter than a threshold in years?

Uses the built-in ``tg_slope`` rule for the regression (same samples, LoQ policy and TgAb handling) and
classifies its doubling time ``ln 2 / b``.

``evaluate_cases`` is the rule's batch adapter: ``trialflow simulate`` hands it the simulated cohort's records
as arrays (:class:`trialflow.rules.CaseArrays`) and it answers every patient's outcome at once, through the
same ``tg_slope`` kernel; it gives ``evaluate``'s outcome for every patient (tested in the project's suite).

References
----------
- Miyauchi A et al. Thyroid 2011;21:707-716 (PMID 21649472): a Tg doubling time under 1 year predicts
  recurrence and death from papillary thyroid carcinoma (``max_doubling_time_years`` = 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trialflow.rules import CaseArrays, rule_defaults
from trialflow.rules.observations import Case
from trialflow.rules.tg_slope import RULE as TG_SLOPE

_WEEKS_PER_YEAR = 365.25 / 7.0

__all__ = ["RULE", "TgDoublingTimeResult", "TgDoublingTimeRule"]


@dataclass(frozen=True, slots=True)
class TgDoublingTimeResult:
    rule: str
    outcome: str
    reason: str
    doubling_time_years: float | None
    max_doubling_time_years: float
    slope_per_week: float | None
    p_value: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "reason": self.reason,
            "doubling_time_years": self.doubling_time_years,
            "max_doubling_time_years": self.max_doubling_time_years,
            "slope_per_week": self.slope_per_week,
            "p_value": self.p_value,
            "n": self.n,
        }


class TgDoublingTimeRule:
    name = "tg_doubling_time"
    version = "0.1.0"
    title = "Thyroglobulin doubling time shorter than a threshold (years)"
    observation_kinds = ("tg", "tgab")
    outcomes = ("rapid", "not_rapid", "not_evaluable")
    params_schema: Mapping[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_doubling_time_years": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 1.0,
                "description": "Doubling faster than this is 'rapid' (Miyauchi 2011: 1 year).",
            },
            "min_values": {
                "type": "integer",
                "minimum": 3,
                "default": 4,
                "description": "Fewest usable Tg values (Miyauchi 2011: 4).",
            },
        },
    }
    references = ("Miyauchi A et al. Thyroid 2011;21:707-716, PMID 21649472 (Tg-DT < 1 year)",)

    def evaluate(
        self, case: Case, params: Mapping[str, Any], *, as_of: dt.date | None = None
    ) -> TgDoublingTimeResult:
        p = {**rule_defaults(self), **params}
        slope = TG_SLOPE.evaluate(case, {"min_values": p["min_values"]}, as_of=as_of)
        limit = float(p["max_doubling_time_years"])
        years = slope.doubling_time_years
        if slope.outcome == "not_evaluable":
            outcome, why = "not_evaluable", slope.reason
        elif years is None or years <= 0:
            outcome, why = "not_rapid", "Tg not rising"
        else:
            outcome = "rapid" if years < limit else "not_rapid"
            why = f"Tg doubling time {years:.2f} years (limit {limit:g})"
        return TgDoublingTimeResult(
            self.name,
            outcome,
            f"{why}: {outcome}",
            years,
            limit,
            slope.slope_per_week,
            slope.p_value,
            slope.n,
        )


    def evaluate_cases(self, cases: CaseArrays, params: Mapping[str, Any]) -> Any:
        """Every patient's outcome (an index into ``outcomes``) from the cohort's Tg and TgAb arrays."""
        import numpy as np

        from trialflow.rules import tg_slope

        p = {**rule_defaults(self), **params}
        tg, tgab = cases.of_kind("tg"), cases.of_kind("tgab")
        positive = np.asarray(tgab.fields["positive"] == True, dtype=bool).any(axis=1)  # noqa: E712 - nan is False
        below = np.asarray(tg.fields["below_loq"] == True, dtype=bool)  # noqa: E712
        res = tg_slope.evaluate_batch(
            # a result below the LoQ enters as a number under it, as tg_slope's kernel reads '<LoQ'
            tg.days / 7.0, np.where(below, 0.0, tg.fields["value"]), positive, {"min_values": p["min_values"]},
            loq=tg.fields["loq"], pvalues=False,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            years = res.doubling_time_weeks / _WEEKS_PER_YEAR
        rapid = (years > 0) & (years < float(p["max_doubling_time_years"]))
        ne = np.asarray(res.outcome == "not_evaluable")
        return np.where(ne, 2, np.where(rapid, 0, 1)).astype(np.int8)


RULE = TgDoublingTimeRule()
