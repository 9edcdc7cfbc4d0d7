"""The decision criteria over a simulated cohort, through the rules' own batch forms.

A criterion judges the records its protocol ``evidence`` settings select: the engine's evidence reading
(engine/_evidence.py ``counts_batch``, on top of ``judged_batch`` of engine/_readings.py for "scheduled")
masks every other record out first, and its final-visit check turns the outcome not evaluable as the
engine's decision does.
Each built-in rule has an adapter that turns the judged records of the kinds it reads into the arrays its
``evaluate_batch`` takes, choosing samples exactly as the rule's single-patient ``evaluate`` does with
``as_of`` = the decision date (Tg in date order; the latest CT and scan on or before day 0 as baseline;
the CTs after it as follow-ups; the latest scan after it as follow-up). A plug-in rule is simulated
through the batch adapter it provides itself, ``evaluate_cases`` (:class:`trialflow.rules.CaseArrays`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Criterion

from ._pathways import SimulationError

if TYPE_CHECKING:
    from ._generate import Cohort

__all__ = ["ADAPTERS", "evaluate_criteria"]

Outcomes = tuple[NDArray[np.int8], tuple[str, ...]]  # outcome code per patient, the label of each code
F = NDArray[np.float64]


class Judged:
    """The records one criterion may judge: the cohort's records, masked by the criterion's evidence
    selection (kinds, study days, unscheduled records; engine/_evidence.py)."""

    def __init__(self, c: Cohort, criterion: Criterion):
        from ._generate import criterion_windows

        self.c, self.criterion = c, criterion
        self._own = {v.id: (lo, hi, v) for lo, hi, v in criterion_windows(c, criterion.visits, c._entries)}
        self._windows = [(lo, hi, v.defining) for lo, hi, v in self._own.values()]
        self._cache: dict[str, F] = {}

    def day(self, visit: str, kind: str) -> F:
        """The day of the visit's ``kind`` record where the criterion may judge it (nan: not judged)."""
        from trialflow.engine._evidence import counts_batch
        from trialflow.engine._readings import judged_batch

        key = f"{visit}/{kind}"
        got = self._cache.get(key)
        if got is None:
            d = self.c.visit_day[visit]
            scheduled = judged_batch(kind, d, self._windows)
            counts = counts_batch(self.criterion.evidence, kind, d - self.c.day0, scheduled)
            got = self._cache[key] = np.where(counts, d, np.nan)
        return got

    def final_problem(self) -> NDArray[np.bool_] | None:
        """Per patient, whether the criterion's final visit has no record used inside its window (None:
        the criterion has no final visit)."""
        from trialflow.engine._evidence import final_problem_batch

        final = self.criterion.evidence.final_visit
        if final is None:
            return None
        c = self.c
        own = self._own.get(final)
        nan = np.full(c.size, np.nan)
        lo, hi, kinds = (own[0], own[1], own[2].defining) if own is not None else (nan, nan, ())
        latest = np.full(c.size, np.nan)
        for kind in kinds:
            for v in c._visits_with(kind):
                latest = np.fmax(latest, self.day(v.id, kind))
        return np.asarray(final_problem_batch(latest, lo, hi), dtype=bool)


Adapter = Callable[[Judged, Mapping[str, Any]], Outcomes]


def _rows(j: Judged, kind: str) -> tuple[F, list[Any]]:
    """V x P: the dates of the judged ``kind`` records of the visits before the decision (nan: none), one
    row per visit (contiguous), and those visits."""
    vs = j.c._visits_with(kind)
    if not vs:
        return np.full((1, j.c.size), np.nan), []
    return np.stack([j.day(v.id, kind) for v in vs]), vs


def _in_date_order(days: F) -> bool:
    """Whether every patient's dates (rows; nan = none) already come in date order with the missing ones
    last, so the ordering ``Case.of_kind`` gives needs no sort."""
    seen = days[0].copy()
    gap = np.isnan(seen)
    with np.errstate(invalid="ignore"):
        for row in days[1:]:
            if (row < seen).any():  # nan compares False: a missing date is never out of order
                return False
            here = np.isnan(row)
            if (gap & ~here).any():  # a record after a missing one: the readers take records by position
                return False
            gap |= here
            np.fmax(seen, row, out=seen)
    return True


def _sorted(days: F, *values: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """Rows in date order per patient (column), missing last, stable: the order ``Case.of_kind`` gives;
    as they are when already in that order."""
    if _in_date_order(days):
        return (days, *values)
    order = np.argsort(np.where(np.isnan(days), np.inf, days), axis=0, kind="stable")
    return tuple(np.take_along_axis(a, order, axis=0) for a in (days, *values))


def _baseline_index(days: F, day0: F) -> NDArray[np.int64]:
    """Per patient, the row (of date-sorted ``days``) of the latest one on or before day 0; -1 if none."""
    return (days <= day0).sum(axis=0).astype(np.int64) - 1


def _recist(judged: Judged, params: Mapping[str, Any]) -> Outcomes:
    from trialflow.rules import recist

    c = judged.c
    raw, vs = _rows(judged, "ct")
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


def _rai_uptake(j: Judged, params: Mapping[str, Any]) -> Outcomes:
    from trialflow.rules import rai_uptake

    c = j.c
    days = _sorted(_rows(j, "rai_scan")[0])[0]
    rows = np.arange(days.shape[1])
    present = (~np.isnan(days)).sum(axis=0)
    base = _baseline_index(days, c.day0)
    follow_day = days[np.maximum(present - 1, 0), rows]
    evaluable = (base >= 0) & (present - 1 > base)
    counts = np.where(evaluable & c.reinduced & (follow_day > c.day0), c.new_avid_lesions, 0)
    return rai_uptake.evaluate_batch(counts, evaluable, params, codes=True), rai_uptake.OUTCOMES


def _case_arrays(j: Judged, kinds: tuple[str, ...]) -> Any:
    """The judged records of ``kinds`` as the arrays a plug-in's ``evaluate_cases`` reads (study days)."""
    from trialflow.rules import CaseArrays, KindArrays

    c = j.c
    out = {}
    for kind in kinds:
        raw, vs = _rows(j, kind)
        rel = raw - c.day0[None, :]
        if kind == "tg":
            value = np.stack([c.tg_value(v.id) for v in vs]) if vs else np.full_like(raw, np.nan)
            loq = np.full_like(raw, c.scenario.tg_loq)
            rel, value, loq = _sorted(rel, value, loq)
            below = ~np.isnan(rel) & (value < c.scenario.tg_loq)
            fields = {"value": np.where(np.isnan(rel), np.nan, value), "below_loq": below, "loq": loq}
        else:  # tgab
            positive = np.broadcast_to(c.tgab_positive[None, :], raw.shape)
            rel, positive = _sorted(rel, positive)
            fields = {"positive": positive & ~np.isnan(rel)}
        out[kind] = KindArrays(np.ascontiguousarray(rel.T), {k: np.ascontiguousarray(v.T) for k, v in fields.items()})
    return CaseArrays(c.size, out)


def _plugin(rule: Any) -> Adapter:
    """A plug-in rule through its own batch adapter ``evaluate_cases``."""
    kinds = tuple(rule.observation_kinds)

    def adapter(j: Judged, params: Mapping[str, Any]) -> Outcomes:
        codes = np.asarray(rule.evaluate_cases(_case_arrays(j, kinds), params), dtype=np.int8)
        return codes, tuple(rule.outcomes)

    return adapter


def _tg_slope_cases(j: Judged, params: Mapping[str, Any]) -> Outcomes:
    """The Tg slope through the rule's own batch case reader (``tg_slope.evaluate_cases``)."""
    from trialflow.rules import tg_slope

    return tg_slope.evaluate_cases(_case_arrays(j, ("tg", "tgab")), params), tg_slope.CODE_LABELS


ADAPTERS: dict[str, Adapter] = {"tg_slope": _tg_slope_cases, "recist": _recist, "rai_uptake": _rai_uptake}


def adapter_for(rule_name: str) -> Adapter:
    """The batch form of a rule: a built-in's adapter, or a plug-in's own ``evaluate_cases``."""
    if rule_name in ADAPTERS:
        return ADAPTERS[rule_name]
    from trialflow.rules import BATCH_KINDS, get_rule

    rule = get_rule(rule_name)
    if not callable(getattr(rule, "evaluate_cases", None)):
        raise SimulationError(
            f"rule {rule_name!r} has no batch adapter: a plug-in rule is simulated through its own "
            "evaluate_cases(cases, params) (see examples/tg_doubling_time)"
        )
    unknown = sorted(set(rule.observation_kinds) - set(BATCH_KINDS))
    if unknown:
        raise SimulationError(
            f"rule {rule_name!r} reads {', '.join(unknown)}, which the simulator does not hand to plug-in "
            f"rules (it offers: {', '.join(BATCH_KINDS)})"
        )
    return _plugin(rule)


def check_rules(rules: list[tuple[str, str]]) -> None:
    """Refuse, before anything runs, a criterion whose rule the simulator cannot evaluate in batch."""
    for cid, rule in rules:
        try:
            adapter_for(rule)
        except SimulationError as err:
            raise SimulationError(f"criterion {cid!r}: {err}") from None


NOT_EVALUABLE = ("not_evaluable", "NE")  # engine/_decision.py NOT_EVALUABLE_OUTCOMES, in a rule's labels
PROGRESSION = frozenset({"progression", "PD"})  # engine/_decision.py PROGRESSION_OUTCOMES


def _judge(c: Cohort, criterion: Criterion) -> Outcomes:
    """The rule on the judged records, then the final-visit check as the engine's decision makes it: a
    missing final result makes the outcome not evaluable, unless the rule found progression."""
    judged = Judged(c, criterion)
    codes, labels = adapter_for(criterion.rule)(judged, criterion.params)
    problem = judged.final_problem()
    ne = next((labels.index(o) for o in labels if o in NOT_EVALUABLE), None)
    if problem is not None and ne is not None:
        progressed = np.array([lab in PROGRESSION for lab in labels], dtype=bool)[codes]
        codes = np.where(problem & ~progressed, ne, codes).astype(np.int8)
    return codes, labels


def evaluate_criteria(c: Cohort) -> dict[str, Outcomes]:
    """Each decision criterion's outcome per patient (as codes and their labels), as of the patient's
    decision date, on the records the criterion may judge."""
    return {cr.id: _judge(c, cr) for cr in c.pathway.protocol.decision.criteria}
