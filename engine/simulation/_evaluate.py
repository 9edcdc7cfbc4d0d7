"""The decision criteria over a simulated cohort, through the rules' own batch forms.

A criterion judges the records its protocol ``evidence`` settings select: the engine's evidence reading
(engine/_evidence.py ``counts_batch``, on top of ``judged_batch`` of engine/_readings.py for "scheduled")
masks every other record out first, and its final-visit check turns the outcome not evaluable as the
engine's decision does.
The judged records of the kinds a rule reads are handed to the rule's own batch case reader,
``evaluate_cases`` (:class:`trialflow.rules.CaseArrays`, as of the decision date): built-in and plug-in
rules alike, so which records a rule reads (which CT is the baseline, which scans are compared, which Tg
samples count) is the rule's, written once (e.g. ``recist.read_series``) and called by its one-patient
``evaluate`` too. This module only lays the simulated records out as arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Criterion
from trialflow.rules import BATCH_KINDS
from trialflow.rules.observations import NON_TARGET_STATUSES

from ._pathways import SimulationError

if TYPE_CHECKING:
    from ._generate import Cohort

__all__ = ["adapter_for", "evaluate_criteria"]

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
    last, so the ordering ``Case.of_kind`` gives needs no sort (row by row: cheaper than accumulating
    down the columns)."""
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
    """Rows (V x P, values V x P x ...) in date order per patient (column), missing last, stable: the order
    ``Case.of_kind`` gives; as they are when already in that order. The rows are gathered through one flat
    index into the rows x patients plane (``np.take``: several times faster than ``take_along_axis``)."""
    if _in_date_order(days):
        return (days, *values)
    order = np.argsort(np.where(np.isnan(days), np.inf, days), axis=0, kind="stable")
    nrows, npat = days.shape
    flat = (order * npat + np.arange(npat)).ravel()

    def take(a: NDArray[Any]) -> NDArray[Any]:
        return np.take(a.reshape(nrows * npat, *a.shape[2:]), flat, axis=0).reshape(a.shape)

    return (take(days), *(take(a) for a in values))


def _kind_fields(c: Cohort, kind: str, vs: list[Any], raw: F) -> dict[str, NDArray[Any]]:
    """V x P (x lesions) field values of the simulated records of ``kind`` at visits ``vs``: what
    engine/simulation/_records.py writes in the case files, as arrays."""
    if not vs:
        return {f: np.full(raw.shape if f not in _PER_LESION else (*raw.shape, 1), np.nan) for f in BATCH_KINDS[kind]}
    if kind == "tg":
        value = np.stack([c.tg_value(v.id) for v in vs])
        return {"value": value, "below_loq": value < c.scenario.tg_loq, "loq": np.full_like(raw, c.scenario.tg_loq)}
    if kind == "tgab":
        return {"positive": np.broadcast_to(c.tgab_positive[None, :], raw.shape)}
    if kind == "ct":
        ne = np.stack([c.ct_ne[v.id] for v in vs])
        lesion = ~np.isnan(c.diameter0)
        mm = np.stack([np.where(lesion & ~ne[k][:, None], c.lesion_tenths(c.visit_day[v.id]) / 10.0, np.nan)
                       for k, v in enumerate(vs)])
        rel = raw - c.day0[None, :]
        present = np.where(c.has_non_target, NON_TARGET_STATUSES.index("present"), -1)
        return {
            "not_evaluated": ne,
            "target_mm": mm,
            "nodal": np.zeros(mm.shape, bool),
            "new_lesions": ~ne & (c.new_lesion_day[None, :] <= rel),
            "non_target": np.where(ne, -1, present[None, :])[:, :, None],
        }
    # rai_scan: both modalities; after day 0 a re-induced patient's new avid lesions
    scans = np.ones(raw.shape, bool)
    width = max(int(c.new_avid_lesions.max(initial=1)), 1)
    shown = c.reinduced[:, None] & (np.arange(width)[None, :] < c.new_avid_lesions[:, None])
    after = raw > c.day0[None, :]
    return {"planar": scans, "spect": scans, "avid": after[:, :, None] & shown[None, :, :]}


_PER_LESION = frozenset({"target_mm", "nodal", "non_target", "avid"})


def _case_arrays(j: Judged, kinds: tuple[str, ...]) -> Any:
    """The judged records of ``kinds`` as the arrays a rule's ``evaluate_cases`` reads (study days, P x S)."""
    from trialflow.rules import CaseArrays, KindArrays

    c = j.c
    out = {}
    for kind in kinds:
        raw, vs = _rows(j, kind)
        names = list(BATCH_KINDS[kind])
        made = _kind_fields(c, kind, vs, raw)  # once per kind: every field comes from the same pass
        rel, *values = _sorted(raw - c.day0[None, :], *(made[n] for n in names))
        missing = np.isnan(rel)
        fields = {}
        for n, v in zip(names, values, strict=True):
            if v.dtype == bool:  # a missing record has no field set
                v = v & ~missing.reshape(missing.shape + (1,) * (v.ndim - 2))
            fields[n] = np.ascontiguousarray(np.swapaxes(v, 0, 1))
        if kind == "tg":
            fields["value"] = np.where(missing.T, np.nan, fields["value"])
        out[kind] = KindArrays(np.ascontiguousarray(rel.T), fields)
    return CaseArrays(c.size, out)


def _rule_adapter(rule: Any) -> Adapter:
    """A rule through its own batch case reader ``evaluate_cases``, answering indices into its
    ``case_labels`` (the built-ins') or its ``outcomes`` (a plug-in's)."""
    kinds = tuple(rule.observation_kinds)
    labels = tuple(getattr(rule, "case_labels", rule.outcomes))

    def adapter(j: Judged, params: Mapping[str, Any]) -> Outcomes:
        codes = np.asarray(rule.evaluate_cases(_case_arrays(j, kinds), params), dtype=np.int8)
        return codes, labels

    return adapter


def adapter_for(rule_name: str) -> Adapter:
    """The batch form of a rule: its own ``evaluate_cases`` (built-in and plug-in rules alike)."""
    from trialflow.rules import get_rule

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
    return _rule_adapter(rule)


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
