"""The decision criteria over a simulated cohort, through the rules' own ``evaluate_batch``.

Each built-in rule has an adapter that turns the simulated records of the kinds it reads into the
arrays its ``evaluate_batch`` takes, choosing samples exactly as the rule's single-patient
``evaluate`` does with ``as_of`` = the decision date (Tg in date order; the latest CT and scan on or
before day 0 as baseline; the CTs after it as follow-ups; the latest scan after it as follow-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._pathways import SimulationError

if TYPE_CHECKING:
    from ._generate import Cohort

__all__ = ["ADAPTERS", "evaluate_criteria"]

Adapter = Callable[["Cohort", Mapping[str, Any]], NDArray[np.str_]]


def _sorted(days: NDArray[np.float64], *values: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """Columns in date order per patient (missing last), stable: the order ``Case.of_kind`` gives."""
    order = np.argsort(np.where(np.isnan(days), np.inf, days), axis=1, kind="stable")
    return tuple(np.take_along_axis(a, order, axis=1) for a in (days, *values))


def _tg_slope(c: Cohort, params: Mapping[str, Any]) -> NDArray[np.str_]:
    from trialflow.rules import tg_slope

    days, values = _sorted(c.kind_days("tg"), c.tg_values())
    weeks = (days - c.day0[:, None]) / 7.0
    tgab_seen = (~np.isnan(c.kind_days("tgab"))).any(axis=1)
    res = tg_slope.evaluate_batch(weeks, values, c.tgab_positive & tgab_seen, params, loq=c.scenario.tg_loq)
    return res.outcome


def _baseline_index(days: NDArray[np.float64], day0: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per patient, the column (of date-sorted ``days``) of the latest one on or before day 0; -1 if none."""
    return (days <= day0[:, None]).sum(axis=1).astype(np.int64) - 1


def _recist(c: Cohort, params: Mapping[str, Any]) -> NDArray[np.str_]:
    from trialflow.rules import recist

    raw = c.kind_days("ct")
    cols = np.arange(raw.shape[1])[None, :].repeat(raw.shape[0], axis=0)
    days, col = _sorted(raw, cols)
    npat = days.shape[0]
    present = (~np.isnan(days)).sum(axis=1)
    base = _baseline_index(days, c.day0)
    nfollow = np.where(base >= 0, present - base - 1, 0)
    width = max(int(nfollow.max(initial=0)), 1)
    rows = np.arange(npat)
    sums = np.full((npat, width + 1), np.nan)
    fdays = np.zeros((npat, width))
    new = np.zeros((npat, width), bool)
    cr = np.zeros((npat, width), bool)
    ne = c.ct_not_evaluable_matrix()
    has_base = base >= 0
    bcol = col[rows, np.maximum(base, 0)]
    bday = days[rows, np.maximum(base, 0)]
    btenths = c.lesion_tenths(bday)
    bsum = btenths.sum(axis=1) / 10.0
    sums[:, 0] = np.where(has_base & ~ne[rows, bcol], bsum, np.nan)
    for j in range(width):
        ok = j < nfollow
        k = np.minimum(base + 1 + j, days.shape[1] - 1)
        d = np.where(ok, days[rows, np.maximum(k, 0)], c.day0)
        tenths = c.lesion_tenths(d)
        readable = ok & ~ne[rows, col[rows, np.maximum(k, 0)]]
        sums[:, j + 1] = np.where(readable, tenths.sum(axis=1) / 10.0, np.nan)
        fdays[:, j] = np.where(ok, d - c.day0, 0.0)
        new[:, j] = ok & (c.new_lesion_day <= d - c.day0)
        cr[:, j] = ok & (tenths.sum(axis=1) == 0)
    labels = np.where(c.has_non_target, "non-CR/non-PD", "none")[:, None].repeat(width, axis=1)
    res = recist.evaluate_batch(sums, new, False, cr, params, days=fdays, nontarget=labels)
    last = np.maximum(nfollow - 1, 0)
    return np.where(nfollow > 0, res.overall[rows, last], "NE")


def _rai_uptake(c: Cohort, params: Mapping[str, Any]) -> NDArray[np.str_]:
    from trialflow.rules import rai_uptake

    days = _sorted(c.kind_days("rai_scan"))[0]
    rows = np.arange(days.shape[0])
    present = (~np.isnan(days)).sum(axis=1)
    base = _baseline_index(days, c.day0)
    follow_day = days[rows, np.maximum(present - 1, 0)]
    evaluable = (base >= 0) & (present - 1 > base)
    counts = np.where(evaluable & c.reinduced & (follow_day > c.day0), c.new_avid_lesions, 0)
    return rai_uptake.evaluate_batch(counts, evaluable, params)


ADAPTERS: dict[str, Adapter] = {"tg_slope": _tg_slope, "recist": _recist, "rai_uptake": _rai_uptake}


def check_rules(rules: list[tuple[str, str]]) -> None:
    """Refuse, before anything runs, a criterion whose rule the simulator cannot evaluate in batch."""
    for cid, rule in rules:
        if rule not in ADAPTERS:
            raise SimulationError(
                f"criterion {cid!r}: rule {rule!r} has no batch adapter in the simulator "
                f"(simulated rules: {', '.join(ADAPTERS)})"
            )


def evaluate_criteria(c: Cohort) -> dict[str, NDArray[np.str_]]:
    """Each decision criterion's outcome per patient, as of the patient's decision date."""
    return {
        cr.id: np.asarray(ADAPTERS[cr.rule](c, cr.params)).astype(str)
        for cr in c.pathway.protocol.decision.criteria
    }
