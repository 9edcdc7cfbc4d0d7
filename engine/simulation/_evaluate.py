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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Criterion, Protocol
from trialflow.rules import BATCH_KINDS
from trialflow.rules.observations import NON_TARGET_STATUSES

from ._generate import Cohort, criterion_windows, lesion_tenths_float
from ._pathways import SimulationError, VisitPlan

__all__ = ["CriteriaInputs", "adapter_for", "criteria_inputs", "evaluate_criteria"]

Outcomes = tuple[NDArray[np.int8], tuple[str, ...]]  # outcome code per patient, the label of each code
F = NDArray[np.float64]
B = NDArray[np.bool_]
I = NDArray[np.int64]  # noqa: E741 - the usual name for an index array


@dataclass(frozen=True, slots=True)
class CriteriaInputs:
    """Everything the decision criteria read of a cohort, and nothing else: one entry (row) per patient
    evaluated. Frozen and slotted, so a read of anything else of the cohort is an AttributeError (and a
    mypy error) rather than a silent read of other patients' rows."""

    protocol: Protocol
    tg_loq: float  # the scenario's limit of quantification of Tg (ug/L)
    before: tuple[VisitPlan, ...]  # the visits before the decision, in order
    enrol: F
    day0: F
    entries: Mapping[str, F]  # the day each phase before the decision is entered
    visit_day: Mapping[str, F]  # of every visit before the decision (nan: not done)
    tg_noise: Mapping[str, F]  # at the visits with Tg records
    ct_ne: Mapping[str, B]  # at the visits with CT records
    tg0: F
    tg_slope: F
    tgab_positive: B
    reinduced: B
    new_avid_lesions: I
    diameter0: F  # P x L, nan where the patient has fewer lesions
    growth_per_day: F
    new_lesion_day: F
    has_non_target: B

    @property
    def size(self) -> int:
        return int(self.enrol.shape[0])

    def visits_with(self, kind: str) -> list[VisitPlan]:
        """The visits before the decision with records of ``kind`` (as ``Cohort._visits_with``)."""
        return [v for v in self.before if kind in v.kinds or kind in v.defining]


def criteria_inputs(c: Cohort, idx: I | None = None) -> CriteriaInputs:
    """What the criteria read of cohort ``c``: of every patient (``idx`` None: the cohort's own arrays,
    no copy) or of the patients ``idx`` (in that order; taken, the visits' Tg noise and CT readability
    only at the visits with Tg or CT records)."""
    before = c._before
    tg_visits = [v.id for v in before if "tg" in v.kinds or "tg" in v.defining]
    ct_visits = [v.id for v in before if "ct" in v.kinds or "ct" in v.defining]
    if idx is None:

        def take(a: NDArray[Any]) -> NDArray[Any]:
            return a

    else:

        def take(a: NDArray[Any]) -> NDArray[Any]:
            return np.take(a, idx, axis=0)  # (np.take: some twice as fast as a[idx])

    return CriteriaInputs(
        protocol=c.pathway.protocol,
        tg_loq=c.scenario.tg_loq,
        before=before,
        enrol=take(c.enrol),
        day0=take(c.day0),
        entries={k: take(a) for k, a in c._entries.items()},
        visit_day={v.id: take(c.visit_day[v.id]) for v in before},
        tg_noise={vid: take(c.tg_noise[vid]) for vid in tg_visits},
        ct_ne={vid: take(c.ct_ne[vid]) for vid in ct_visits},
        tg0=take(c.tg0),
        tg_slope=take(c.tg_slope),
        tgab_positive=take(c.tgab_positive),
        reinduced=take(c.reinduced),
        new_avid_lesions=take(c.new_avid_lesions),
        diameter0=take(c.diameter0),
        growth_per_day=take(c.growth_per_day),
        new_lesion_day=take(c.new_lesion_day),
        has_non_target=take(c.has_non_target),
    )


class Judged:
    """The records one criterion may judge: the cohort's records, masked by the criterion's evidence
    selection (kinds, study days, unscheduled records; engine/_evidence.py)."""

    def __init__(self, c: CriteriaInputs, criterion: Criterion):
        self.c, self.criterion = c, criterion
        windows = criterion_windows(c.before, c.enrol, c.day0, c.entries, criterion.visits)
        self._own = {v.id: (lo, hi, v) for lo, hi, v in windows}
        self._windows = [(lo, hi, v.defining) for lo, hi, v in self._own.values()]
        self._cache: dict[str, F] = {}

    def study_days(self, kind: str) -> F:
        """V x P: the study days (since day 0) of the ``kind`` records of the visits before the decision
        where the criterion may judge them (nan: not judged), one row per visit (``c.visits_with(kind)``;
        one row of nan when there is none): the engine's readings over every visit at once."""
        from trialflow.engine._evidence import counts_batch, reads_schedule
        from trialflow.engine._readings import judged_batch

        got = self._cache.get(kind)
        if got is None:
            c = self.c
            vs = c.visits_with(kind)
            if not vs:
                got = np.full((1, c.size), np.nan)
            else:
                d = np.stack([c.visit_day[v.id] for v in vs])
                sel = self.criterion.evidence
                scheduled = judged_batch(kind, d, self._windows) if reads_schedule(sel) else None
                d -= c.day0  # (d is the stack's own copy) the study days
                got = np.where(counts_batch(sel, kind, d, scheduled), d, np.nan)
            self._cache[kind] = got
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
            latest = np.fmax(latest, np.fmax.reduce(self.study_days(kind), axis=0))
        return np.asarray(final_problem_batch(latest + c.day0, lo, hi), dtype=bool)


Adapter = Callable[[Judged, Mapping[str, Any]], Outcomes]


@lru_cache(maxsize=8)
def _closing_gaps(nrows: int) -> NDArray[np.intp]:
    """For each set of rows that hold a record (bit r of the column index: row r has one), the rows in
    the order that closes the gaps: those with a record, then those without, each in row order
    (rows x 2^rows)."""
    table = [
        [r for r in range(nrows) if m >> r & 1] + [r for r in range(nrows) if not m >> r & 1]
        for m in range(1 << nrows)
    ]
    return np.ascontiguousarray(np.array(table, dtype=np.intp).T)


@dataclass(frozen=True, slots=True)
class _Sort:
    """How :func:`_date_order` re-orders the rows of every patient's records by a sort: ``flat``, a
    gather index into the whole rows x patients plane."""

    flat: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class _CloseGaps:
    """How :func:`_date_order` re-orders the rows of the records already in date order but with gaps:
    only the patients with a gap move, as flat indices into the rows x patients plane: entry ``source[i]``
    goes to ``dest[i]``, everyone else's staying as they are. (Flat indices, made once per kind and used
    for each of its fields: a ``take`` and a 1-D assignment, where a 2-D fancy index runs numpy's slower
    general iterator on every field.)"""

    source: NDArray[np.intp]
    dest: NDArray[np.intp]

    @classmethod
    def of(cls, cols: NDArray[np.intp], rows: NDArray[np.intp], npat: int) -> _CloseGaps:
        """The patients ``cols`` (each a column of the plane) and their rows in the new order (``rows``,
        rows x those patients): row ``r`` of patient ``cols[j]`` becomes its row ``rows[r, j]``."""
        source = (rows * npat + cols).ravel()
        dest = (np.arange(rows.shape[0])[:, None] * npat + cols).ravel()
        return cls(source, dest)


_Order = _Sort | _CloseGaps


def _date_order(rel: F) -> _Order | None:
    """How to put every patient's records (rows; nan = none) in date order with the missing ones last,
    stably: the order ``Case.of_kind`` gives, and a stable argsort with nan as +inf would. None when they
    already come in it. Records already in date order but with gaps (up to 8 rows) are only moved up
    past the gaps: each patient's rows with a record, as the bits of a byte, pick the order from a table
    (no sort), for the patients with a gap only. Row by row throughout: numpy runs down the columns of a
    C-ordered array several times slower."""
    nrows, npat = rel.shape
    present = ~np.isnan(rel)
    gaps = any((present[r] & ~present[r - 1]).any() for r in range(1, nrows))  # a record after a missing one
    seen = rel[0].copy()
    ordered = True
    with np.errstate(invalid="ignore"):  # nan compares False: a missing date is never out of order
        for row in rel[1:]:
            if (row < seen).any():
                ordered = False
                break
            np.fmax(seen, row, out=seen)
    if ordered and not gaps:
        return None
    if not ordered or nrows > 8:
        order = np.argsort(np.where(present, rel, np.inf), axis=0, kind="stable")
        return _Sort((order * npat + np.arange(npat)).ravel())
    held = np.zeros(npat, np.uint8)
    bits = present.view(np.uint8)
    for r in range(nrows):
        held |= bits[r] << np.uint8(r)
    # rows 0..k-1 held and no other (bits 2^k - 1: held & (held + 1) == 0, 255 + 1 wrapping to 0): no gap
    moved = np.flatnonzero(held & (held + np.uint8(1)))
    return _CloseGaps.of(moved, np.take(_closing_gaps(nrows), held.take(moved), axis=1), npat)


def _gather(a: NDArray[Any], order: _Order | None) -> NDArray[Any]:
    """``a`` (rows x patients x ...) with its rows re-ordered per patient by :func:`_date_order`'s order."""
    if order is None:
        return a
    if isinstance(order, _Sort):
        nrows, npat = a.shape[:2]
        return np.take(a.reshape(nrows * npat, *a.shape[2:]), order.flat, axis=0).reshape(a.shape)
    out = a.copy()  # C-ordered: its rows x patients plane reshapes as a view
    if order.source.size:
        nrows, npat = a.shape[:2]
        plane = out.reshape(nrows * npat, *a.shape[2:])
        plane[order.dest] = np.take(a.reshape(plane.shape), order.source, axis=0)
    return out


def _kind_fields(c: CriteriaInputs, kind: str, vs: list[VisitPlan], rel: F) -> dict[str, NDArray[Any]]:
    """V x P (x lesions) field values of the simulated records of ``kind`` at visits ``vs`` whose
    judged study days are ``rel`` (nan: no record): what engine/simulation/_records.py writes in the case
    files, as arrays; a record that is not there has no field set (False) and no Tg value (nan)."""
    if not vs:
        return {f: np.full(rel.shape if f not in _PER_LESION else (*rel.shape, 1), np.nan) for f in BATCH_KINDS[kind]}
    if kind == "tg":
        # as Cohort.tg_value, in place (the same operations in the same order); nan where no record
        value = c.tg_slope * rel
        value /= 7.0
        for k, v in enumerate(vs):
            value[k] += c.tg_noise[v.id]
        with np.errstate(invalid="ignore", over="ignore"):
            np.exp(value, out=value)
            np.multiply(c.tg0, value, out=value)
        np.round(value, 2, out=value)
        np.maximum(value, 0.01, out=value)
        loq = c.tg_loq
        with np.errstate(invalid="ignore"):
            below = value < loq
        return {"value": value, "below_loq": below, "loq": np.broadcast_to(np.float64(loq), rel.shape)}
    present = ~np.isnan(rel)
    if kind == "tgab":
        return {"positive": c.tgab_positive & present}
    if kind == "ct":
        ne = np.stack([c.ct_ne[v.id] for v in vs])
        lesion = ~np.isnan(c.diameter0)
        mm = np.empty((len(vs), *c.diameter0.shape))
        for k, v in enumerate(vs):
            tenths = lesion_tenths_float(c.diameter0, c.growth_per_day, c.day0, c.visit_day[v.id])
            tenths /= 10.0
            mm[k] = np.where(lesion & ~ne[k][:, None], tenths, np.nan)
        nt = np.where(c.has_non_target, NON_TARGET_STATUSES.index("present"), -1)
        with np.errstate(invalid="ignore"):
            new = ~ne & (c.new_lesion_day <= rel)  # nan (no record) compares False
        return {
            "not_evaluated": ne & present,
            "target_mm": mm,
            "nodal": np.broadcast_to(np.False_, mm.shape),
            "new_lesions": new,
            "non_target": np.where(ne, -1, nt)[:, :, None],
        }
    # rai_scan: both modalities; after day 0 a re-induced patient's new avid lesions
    width = max(int(c.new_avid_lesions.max(initial=1)), 1)
    shown = c.reinduced[:, None] & (np.arange(width)[None, :] < c.new_avid_lesions[:, None])
    with np.errstate(invalid="ignore"):
        after = rel > 0
    return {"planar": present, "spect": present, "avid": after[:, :, None] & shown[None, :, :]}


_PER_LESION = frozenset({"target_mm", "nodal", "non_target", "avid"})


def _case_arrays(j: Judged, kinds: tuple[str, ...]) -> Any:
    """The judged records of ``kinds`` as the arrays a rule's ``evaluate_cases`` reads (study days, P x S:
    views of the records laid out visit by visit, no copies)."""
    from trialflow.rules import CaseArrays, KindArrays

    c = j.c
    out = {}
    for kind in kinds:
        rel = j.study_days(kind)
        made = _kind_fields(c, kind, c.visits_with(kind), rel)  # once per kind: every field from one pass
        order = _date_order(rel)
        fields = {}
        for n in BATCH_KINDS[kind]:
            v = made[n]
            fields[n] = np.swapaxes(v if v.strides[0] == 0 and v.strides[1] == 0 else _gather(v, order), 0, 1)
        out[kind] = KindArrays(np.swapaxes(_gather(rel, order), 0, 1), fields)
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


def _judge(c: CriteriaInputs, criterion: Criterion) -> Outcomes:
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


def evaluate_criteria(c: CriteriaInputs) -> dict[str, Outcomes]:
    """Each decision criterion's outcome per patient (as codes and their labels), as of the patient's
    decision date, on the records the criterion may judge (:func:`criteria_inputs`)."""
    return {cr.id: _judge(c, cr) for cr in c.protocol.decision.criteria}
