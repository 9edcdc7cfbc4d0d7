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

Outcomes = tuple[NDArray[np.int8], tuple[str, ...]]  # outcome code per patient, the label of each code
Adapter = Callable[["Cohort", Mapping[str, Any]], Outcomes]
F = NDArray[np.float64]


def _rows(c: Cohort, kind: str) -> tuple[F, list[Any]]:
    """V x P: the dates of the ``kind`` records of the visits before the decision (nan: none), one row
    per visit (contiguous), and those visits."""
    vs = c._visits_with(kind)
    if not vs:
        return np.full((1, c.size), np.nan), []
    return np.stack([c.visit_day[v.id] for v in vs]), vs


def _in_date_order(days: F) -> bool:
    """Whether every patient's dates (rows; nan = none) already come in date order, so the ordering
    ``Case.of_kind`` gives needs no sort (a missing date in between adds nothing anywhere)."""
    seen = days[0].copy()
    with np.errstate(invalid="ignore"):
        for row in days[1:]:
            if (row < seen).any():  # nan compares False: a missing date is never out of order
                return False
            np.fmax(seen, row, out=seen)
    return True


def _sorted(days: F, *values: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """Rows in date order per patient (column), missing last, stable: the order ``Case.of_kind`` gives;
    as they are when already in that order."""
    if _in_date_order(days):
        return (days, *values)
    order = np.argsort(np.where(np.isnan(days), np.inf, days), axis=0, kind="stable")
    return tuple(np.take_along_axis(a, order, axis=0) for a in (days, *values))


def _tg_slope(c: Cohort, params: Mapping[str, Any]) -> Outcomes:
    from trialflow.rules import tg_slope

    raw, vs = _rows(c, "tg")
    values = np.stack([c.tg_value(v.id) for v in vs]) if vs else np.full_like(raw, np.nan)
    days, values = _sorted(raw, values)
    weeks = (days - c.day0) / 7.0
    tgab_seen = np.zeros(c.size, bool)
    for v in c._visits_with("tgab"):
        tgab_seen |= ~np.isnan(c.visit_day[v.id])
    # S x P rows handed over as P x S views: the kernel works on the rows as they are
    res = tg_slope.evaluate_batch(
        weeks.T, values.T, c.tgab_positive & tgab_seen, params, loq=c.scenario.tg_loq, pvalues=False
    )
    return res.code, tg_slope.CODE_LABELS


def _baseline_index(days: F, day0: F) -> NDArray[np.int64]:
    """Per patient, the row (of date-sorted ``days``) of the latest one on or before day 0; -1 if none."""
    return (days <= day0).sum(axis=0).astype(np.int64) - 1


def _recist(c: Cohort, params: Mapping[str, Any]) -> Outcomes:
    from trialflow.rules import recist

    raw, vs = _rows(c, "ct")
    ne_rows = np.stack([c.ct_ne[v.id] for v in vs]) if vs else np.zeros(raw.shape, bool)
    days, ne = _sorted(raw, ne_rows)
    npat = days.shape[1]
    rows = np.arange(npat)
    present = (~np.isnan(days)).sum(axis=0)
    base = _baseline_index(days, c.day0)
    has_base = base >= 0
    nfollow = np.where(has_base, present - base - 1, 0)
    width = max(int(nfollow.max(initial=0)), 1)
    sums = np.full((npat, width + 1), np.nan)
    fdays = np.zeros((npat, width))
    new = np.zeros((npat, width), bool)
    cr = np.zeros((npat, width), bool)
    b = np.maximum(base, 0)
    bday = days[b, rows]
    bsum = c.lesion_tenths(bday).sum(axis=1) / 10.0
    sums[:, 0] = np.where(has_base & ~ne[b, rows], bsum, np.nan)
    last_row = days.shape[0] - 1
    for j in range(width):
        ok = j < nfollow
        k = np.minimum(b + 1 + j, last_row)
        d = np.where(ok, days[k, rows], c.day0)
        total = c.lesion_tenths(d).sum(axis=1)
        readable = ok & ~ne[k, rows]
        sums[:, j + 1] = np.where(readable, total / 10.0, np.nan)
        fdays[:, j] = np.where(ok, d - c.day0, 0.0)
        new[:, j] = ok & (c.new_lesion_day <= d - c.day0)
        cr[:, j] = ok & (total == 0)
    nontarget = np.where(c.has_non_target, recist.NT_NON, recist.NT_NONE).astype(np.int8)[:, None]
    res = recist.evaluate_batch(
        sums, new, False, cr, params, days=fdays, nontarget=np.broadcast_to(nontarget, (npat, width))
    )
    last = np.maximum(nfollow - 1, 0)
    # the rule's outcome: the latest follow-up, or PD once any was PD (progression_ends_series)
    at_last = res.overall_code[rows, last]
    if res.progression_ends_series:
        at_last = np.where(res.progressed, recist.PD, at_last)
    code = np.where(nfollow > 0, at_last, recist.NE).astype(np.int8)
    return code, recist.CODE_LABELS


def _rai_uptake(c: Cohort, params: Mapping[str, Any]) -> Outcomes:
    from trialflow.rules import rai_uptake

    days = _sorted(_rows(c, "rai_scan")[0])[0]
    rows = np.arange(days.shape[1])
    present = (~np.isnan(days)).sum(axis=0)
    base = _baseline_index(days, c.day0)
    follow_day = days[np.maximum(present - 1, 0), rows]
    evaluable = (base >= 0) & (present - 1 > base)
    counts = np.where(evaluable & c.reinduced & (follow_day > c.day0), c.new_avid_lesions, 0)
    return rai_uptake.evaluate_batch(counts, evaluable, params, codes=True), rai_uptake.OUTCOMES


ADAPTERS: dict[str, Adapter] = {"tg_slope": _tg_slope, "recist": _recist, "rai_uptake": _rai_uptake}


def check_rules(rules: list[tuple[str, str]]) -> None:
    """Refuse, before anything runs, a criterion whose rule the simulator cannot evaluate in batch."""
    for cid, rule in rules:
        if rule not in ADAPTERS:
            raise SimulationError(
                f"criterion {cid!r}: rule {rule!r} has no batch adapter in the simulator "
                f"(simulated rules: {', '.join(ADAPTERS)})"
            )


def evaluate_criteria(c: Cohort) -> dict[str, Outcomes]:
    """Each decision criterion's outcome per patient (as codes and their labels), as of the patient's
    decision date."""
    return {cr.id: ADAPTERS[cr.rule](c, cr.params) for cr in c.pathway.protocol.decision.criteria}
