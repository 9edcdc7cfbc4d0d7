"""Criterion 3: RECIST 1.0 and 1.1 time-point and best overall response.

Sums are integers in the finest unit a diameter was entered in (0.1, 0.01 or 0.001 mm: exactly what was
written, read as a decimal) and every threshold is compared exactly (``100*(S-N)*q >= p*N`` for a
percentage ``p/q``), because the boundaries (-30 %, +20 %, +5 mm) decide real patients and 0.3 and 0.2 are
not exact in binary floating point. A diameter with more than three decimals is not evaluable with a
message, never rounded. One kernel, :func:`_kernel`, serves one
patient (:meth:`RecistRule.evaluate`) and a cohort (:func:`evaluate_batch`); it loops over assessments
and is vectorised over patients.

Order at a follow-up: CR criteria first, then PD (the sum against the nadir, baseline included and the
current assessment excluded; in 1.1 also the absolute increase; or a target coming back after an
*overall* CR, as the RECIST FAQ reads reappearance), then PR against baseline, else SD. The outcome is the
overall response at the latest assessment, unless an earlier one was PD: progression is defined at any
assessment since the treatment started, so it stays PD (``progression_ends_series``). Overall response
combines target, non-target and new lesions as in RECIST 1.1 Table 4 (Table 5 without target lesions;
"non-CR/non-PD" is reported as SD).
Baseline measurability and target selection are checked and reported as ``findings``, never raised.

References
----------
- Therasse P et al. New guidelines to evaluate the response to treatment in solid tumors (RECIST 1.0).
  J Natl Cancer Inst 2000;92:205-216: PR -30 % (``pr_threshold_pct``), PD +20 % (``pd_threshold_pct``),
  <= 10 targets, <= 5 per organ, measurable >= 10 mm on spiral CT (``min_measurable_mm``), confirmation
  >= 4 weeks (``confirmation_min_weeks``).
- Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised RECIST guideline
  (version 1.1). Eur J Cancer 2009;45:228-247: PD also >= 5 mm (``pd_min_increase_mm``), <= 5 targets,
  <= 2 per organ, nodes by short axis (>= 15 mm target, < 10 mm normal), 5 mm default for "too small to
  measure" (``too_small_mm``), SD minimum interval set by the protocol (``sd_min_weeks``, 6-8 weeks
  typical), Tables 3-5.
- RECIST Working Group, RECIST 1.1 FAQ (recist.eortc.org): split and coalescing lesions, lesions that
  reappear, PD on a partial set of measured targets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import field
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._batch import at_column
from ._params import resolve_params
from .observations import Case, CtAssessment, Lesion

if TYPE_CHECKING:  # numpy is imported where a rule computes, not when the rule is registered
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CODE_LABELS",
    "NON_TARGET_LABELS",
    "RULE",
    "RecistBatch",
    "RecistResult",
    "RecistRule",
    "evaluate_batch",
    "evaluate_cases",
    "read_series",
]

NAME = "recist"
OUTCOMES = ("CR", "PR", "SD", "PD", "NE")
NE, CR, PR, SD, PD, NONE = 0, 1, 2, 3, 4, 5
CODE_LABELS = ("NE", "CR", "PR", "SD", "PD", "none")  # response code → label
NT_NONE, NT_CR, NT_NON, NT_NE, NT_PD = 0, 1, 2, 3, 4
NON_TARGET_LABELS = ("none", "CR", "non-CR/non-PD", "NE", "PD")


def _label(codes: Any) -> Any:
    """Response codes as their labels (``CODE_LABELS[code]``)."""
    import numpy as np

    return np.array(CODE_LABELS)[codes]

_VERSION_LIMITS = {"1.0": (10, 5), "1.1": (5, 2)}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {
            "enum": ["1.0", "1.1"],
            "default": "1.1",
            "description": "RECIST version: 1.0 (Therasse 2000) or 1.1 (Eisenhauer 2009).",
        },
        "pr_threshold_pct": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "default": 30,
            "description": "PR: sum at least this % below the baseline sum (both versions).",
        },
        "pd_threshold_pct": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 20,
            "description": "PD: sum at least this % above the nadir (both versions).",
        },
        "pd_min_increase_mm": {
            "type": "number",
            "minimum": 0,
            "default": 5,
            "description": "PD in 1.1 also needs this absolute increase over the nadir.",
        },
        "too_small_mm": {
            "type": "number",
            "minimum": 0,
            "default": 5,
            "description": "Value of a target that is present but too small to measure (1.1).",
        },
        "require_confirmation": {
            "type": "boolean",
            "default": True,
            "description": "CR/PR need a repeat assessment (single-arm trial, response endpoint).",
        },
        "confirmation_min_weeks": {
            "type": "number",
            "minimum": 0,
            "default": 4,
            "description": "Least interval to the confirming assessment (4 weeks).",
        },
        "sd_min_weeks": {
            "type": "number",
            "minimum": 0,
            "default": 6,
            "description": "SD counts as best response only this long after day 0.",
        },
        "max_targets_total": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "Most target lesions in total; null = the version's (10 / 5).",
        },
        "max_targets_per_organ": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "Most target lesions per organ; null = the version's (5 / 2).",
        },
        "progression_ends_series": {
            "type": "boolean",
            "default": True,
            "description": "Once an assessment is PD the outcome stays PD: progression is defined at any "
            "assessment against the nadir (Therasse 2000; Eisenhauer 2009); false reads the latest only.",
        },
        "min_measurable_mm": {
            "type": "number",
            "minimum": 0,
            "default": 10,
            "description": "Least longest diameter of a measurable lesion on CT (and at "
            "least twice the slice thickness).",
        },
    },
}


MAX_DECIMALS = 3  # 0.001 mm: finer than any CT; more is refused, never rounded


@lru_cache(maxsize=8192)
def _frac(x: float) -> Fraction:
    """The decimal a person wrote (30, 29.5, 35.96) as an exact fraction (once per value: a cohort's diameters
    repeat, and building a Fraction from text is most of a small rule's time)."""
    return Fraction(str(x))


def decimals(mm: float) -> int:
    """How many decimals the diameter ``mm`` was written with (35.96 → 2)."""
    den = _frac(mm).denominator
    k = 0
    while 10**k % den and k <= 17:  # a decimal's denominator divides some power of ten
        k += 1
    return k


def _units(mm: float, scale: int) -> int:
    """``mm`` in units of 1/``scale`` mm, exactly (``scale`` is a power of ten fine enough for it)."""
    v = _frac(mm) * scale
    if v.denominator != 1:
        raise ValueError(f"{mm} mm is finer than 1/{scale} mm")
    return int(v)


@frozen
class _Out:
    target: NDArray[np.int8]
    overall: NDArray[np.int8]
    nadir: NDArray[np.int64]
    best: NDArray[np.int8]
    confirmed: NDArray[np.bool_]


def _kernel(
    base: NDArray[np.int64],
    base_ok: NDArray[np.bool_],
    s: NDArray[np.int64],
    present: NDArray[np.bool_],
    complete: NDArray[np.bool_],
    cr: NDArray[np.bool_],
    nt: NDArray[np.int8],
    new: NDArray[np.bool_],
    days: NDArray[np.float64],
    p: Mapping[str, Any],
    scale: int = 10,
) -> _Out:
    """Target, overall and best overall response for P patients x A follow-up assessments; sums in units
    of 1/``scale`` mm."""
    import numpy as np

    npat, na = s.shape
    pr, pd, inc_mm = (
        _frac(p["pr_threshold_pct"]),
        _frac(p["pd_threshold_pct"]),
        _frac(p["pd_min_increase_mm"]),
    )
    v11 = p["version"] == "1.1"
    has_targets = base_ok & (base > 0)
    nadir = base.copy()
    prior_cr = np.zeros(npat, dtype=bool)
    target = np.full((npat, na), NE, dtype=np.int8)
    overall = np.full((npat, na), NE, dtype=np.int8)
    nadir_used = np.zeros((npat, na), dtype=np.int64)
    for k in range(na):
        S, here, full = s[:, k], present[:, k] & base_ok, complete[:, k]
        inc = S - nadir
        pd_sum = (inc > 0) & (100 * pd.denominator * inc >= pd.numerator * nadir)
        if v11:
            pd_sum &= inc * inc_mm.denominator >= scale * inc_mm.numerator
        pr_sum = 100 * pr.denominator * (base - S) >= pr.numerator * base
        t = np.select(
            [~here, ~has_targets, full & cr[:, k], full & prior_cr, pd_sum, ~full, pr_sum],
            [NE, NONE, CR, PD, PD, NE, PR],
            default=SD,
        ).astype(np.int8)
        n = nt[:, k]
        o = np.select(
            [
                ~here,
                new[:, k] | (n == NT_PD) | (t == PD),
                (t == NONE) & (n == NT_CR),
                (t == NONE) & (n == NT_NON),
                t == NONE,
                (t == CR) & ((n == NT_CR) | (n == NT_NONE)),
                t == CR,
            ],
            [NE, PD, CR, SD, NE, CR, PR],
            default=t,
        ).astype(np.int8)
        target[:, k], overall[:, k], nadir_used[:, k] = t, o, nadir
        upd = here & full & has_targets
        nadir = np.where(upd, np.minimum(nadir, S), nadir)
        # reappearance is automatic PD only after an overall CR (RECIST FAQ); after a target-only CR
        # with non-target disease present (overall PR) a returning lesion is added back to the sum
        prior_cr |= upd & (o == CR)
    best, confirmed = _best(overall, days, p)
    return _Out(target, overall, nadir_used, best, confirmed)


def _best(
    overall: NDArray[np.int8], days: NDArray[np.float64], p: Mapping[str, Any]
) -> tuple[NDArray[np.int8], NDArray[np.bool_]]:
    """Best overall response up to the first PD, with confirmation and the SD minimum (RECIST 1.1 Table 3)."""
    import numpy as np

    npat, na = overall.shape
    is_pd = overall == PD
    first_pd = np.where(is_pd.any(axis=1), is_pd.argmax(axis=1), na) if na else np.zeros(npat, dtype=np.int64)
    cols = np.arange(na)[None, :]
    before_pd = cols < first_pd[:, None]
    gap = p["confirmation_min_weeks"] * 7
    conf_cr = np.zeros(npat, dtype=bool)
    conf_pr = np.zeros(npat, dtype=bool)
    for i in range(na):
        oi = overall[:, i]
        if not p["require_confirmation"]:
            conf_cr |= before_pd[:, i] & (oi == CR)
            conf_pr |= before_pd[:, i] & ((oi == CR) | (oi == PR))
            continue
        for j in range(i + 1, na):
            ok = before_pd[:, j] & (days[:, j] - days[:, i] >= gap)
            oj = overall[:, j]
            conf_cr |= ok & (oi == CR) & (oj == CR)
            conf_pr |= ok & ((oi == CR) | (oi == PR)) & ((oj == CR) | (oj == PR))
    sd_ok = (before_pd & (overall >= CR) & (overall <= SD) & (days >= p["sd_min_weeks"] * 7)).any(axis=1)
    best = np.select([conf_cr, conf_pr, sd_ok, first_pd < na], [CR, PR, SD, PD], default=NE).astype(np.int8)
    return best, conf_cr | conf_pr


# ---------------------------------------------------------------- batch


@frozen
class RecistBatch:
    """RECIST over P patients x A follow-ups.

    Labels ``CR``/``PR``/``SD``/``PD``/``NE``; target ``none`` when there are no target lesions. The
    ``*_code`` arrays hold them as small integers (``CODE_LABELS[code]``); the labels are made on access.
    """

    target_code: NDArray[np.int8]
    overall_code: NDArray[np.int8]
    best_code: NDArray[np.int8]
    nadir_mm: NDArray[np.float64]
    progression_ends_series: bool = True

    @property
    def progressed(self) -> NDArray[np.bool_]:
        """Per patient: some follow-up was PD (``progression_ends_series``: the outcome is then PD)."""
        return (self.overall_code == PD).any(axis=1)

    @property
    def outcome_code(self) -> NDArray[np.int8]:
        """The rule's outcome: the last column's overall response, or PD once any follow-up was PD
        (``progression_ends_series``), as :meth:`RecistRule.evaluate` answers."""
        import numpy as np

        if not self.progression_ends_series:
            return self.final_code
        return np.where(self.progressed, PD, self.final_code).astype(np.int8)

    @property
    def outcome(self) -> NDArray[np.str_]:
        return _label(self.outcome_code)

    @property
    def final_code(self) -> NDArray[np.int8]:
        """The overall response at the last follow-up column (NE without follow-ups)."""
        import numpy as np

        if self.overall_code.shape[1]:
            return self.overall_code[:, -1]
        return np.full(self.overall_code.shape[0], NE, dtype=np.int8)

    @property
    def target(self) -> NDArray[np.str_]:
        return _label(self.target_code)

    @property
    def overall(self) -> NDArray[np.str_]:
        return _label(self.overall_code)

    @property
    def final(self) -> NDArray[np.str_]:
        return _label(self.final_code)

    @property
    def best_overall_response(self) -> NDArray[np.str_]:
        return _label(self.best_code)


def evaluate_batch(
    sums_mm: ArrayLike,
    new_lesions: ArrayLike,
    nontarget_pd: ArrayLike,
    target_cr: ArrayLike,
    params: Mapping[str, Any] | None = None,
    *,
    days: ArrayLike,
    nontarget: ArrayLike | None = None,
    complete: ArrayLike | None = None,
) -> RecistBatch:
    """RECIST for a cohort.

    ``sums_mm`` is P x (A+1): column 0 the baseline sum (0 = no target lesions, nan = no usable baseline),
    columns 1..A the follow-up sums (nan = assessment missing or unreadable: NE). ``new_lesions``,
    ``nontarget_pd`` and ``target_cr`` (all targets gone; in 1.1 every node < 10 mm) are P x A booleans;
    ``days`` (A or P x A) the days from day 0 to each follow-up. ``nontarget`` (P x A labels from
    ``NON_TARGET_LABELS``, or their integer indices ``NT_*``) replaces ``nontarget_pd`` when given (without
    it, non-target disease counts as absent unless flagged PD, so a target CR is an overall CR);
    ``complete`` False marks a partial sum (some target not measured: NE unless that partial sum is
    already PD).
    """
    import numpy as np

    p = resolve_params(NAME, PARAMS_SCHEMA, params)
    sums = np.atleast_2d(np.asarray(sums_mm, dtype=np.float64))
    npat, na = sums.shape[0], sums.shape[1] - 1
    shape = (npat, na)
    ok = ~np.isnan(sums)
    scaled = np.where(ok, sums, 0) * 10
    tenths = np.rint(scaled)
    if (np.abs(scaled - tenths) > 1e-6).any():
        raise ValueError("sums_mm must be given to 0.1 mm (the batch compares tenths of a millimetre exactly); "
                         "evaluate finer diameters one patient at a time with RecistRule.evaluate")
    tenths = np.where(ok, tenths, 0).astype(np.int64)
    if nontarget is not None:
        given = np.asarray(nontarget)
        if given.dtype.kind in "iu":  # codes: indices into NON_TARGET_LABELS
            nt = np.broadcast_to(given, shape).astype(np.int8)
            if given.size and (int(given.min()) < 0 or int(given.max()) >= len(NON_TARGET_LABELS)):
                raise ValueError(f"nontarget codes must be indices into {NON_TARGET_LABELS}")
        else:
            labels = np.broadcast_to(given.astype(str), shape)
            nt = np.full(shape, -1, dtype=np.int8)
            for code, label in enumerate(NON_TARGET_LABELS):
                nt[labels == label] = code
            if (nt < 0).any():
                raise ValueError(f"nontarget labels must be among {NON_TARGET_LABELS}")
    else:
        nt = np.where(np.broadcast_to(np.asarray(nontarget_pd, dtype=bool), shape), NT_PD, NT_NONE).astype(
            np.int8
        )
    o = _kernel(
        tenths[:, 0],
        ok[:, 0],
        tenths[:, 1:],
        ok[:, 1:],
        np.ones(shape, dtype=bool)
        if complete is None
        else np.broadcast_to(np.asarray(complete, dtype=bool), shape),
        np.broadcast_to(np.asarray(target_cr, dtype=bool), shape),
        nt,
        np.broadcast_to(np.asarray(new_lesions, dtype=bool), shape),
        np.broadcast_to(np.asarray(days, dtype=np.float64), shape),
        p,
    )
    return RecistBatch(o.target, o.overall, o.best, o.nadir / 10.0, bool(p["progression_ends_series"]))


# ---------------------------------------------------------------- single patient


@frozen
class Assessment:
    """One follow-up CT as RECIST read it."""

    date: dt.date
    sum_mm: float | None
    complete: bool
    pct_from_baseline: float | None
    nadir_mm: float | None
    pct_from_nadir: float | None
    target: str
    non_target: str
    new_lesions: tuple[str, ...]
    overall: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "sum_mm": self.sum_mm,
            "complete": self.complete,
            "pct_from_baseline": self.pct_from_baseline,
            "nadir_mm": self.nadir_mm,
            "pct_from_nadir": self.pct_from_nadir,
            "target": self.target,
            "non_target": self.non_target,
            "new_lesions": list(self.new_lesions),
            "overall": self.overall,
        }


@frozen
class RecistResult:
    """RECIST for one patient: the overall response at the latest follow-up, and the best one."""

    rule: str
    outcome: str
    reason: str
    version: str
    best_overall_response: str = "NE"
    confirmed: bool = False
    baseline_date: dt.date | None = None
    baseline_sum_mm: float | None = None
    assessments: tuple[Assessment, ...] = ()
    findings: tuple[str, ...] = field(default=())
    progression_date: dt.date | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "reason": self.reason,
            "version": self.version,
            "best_overall_response": self.best_overall_response,
            "confirmed": self.confirmed,
            "baseline_date": self.baseline_date.isoformat() if self.baseline_date else None,
            "baseline_sum_mm": self.baseline_sum_mm,
            "assessments": [a.to_dict() for a in self.assessments],
            "findings": list(self.findings),
            "progression_date": self.progression_date.isoformat() if self.progression_date else None,
        }


def _lesion_units(lesion: Lesion, too_small: int, scale: int) -> int | None:
    if lesion.fragments_mm is not None:
        return sum(_units(f, scale) for f in lesion.fragments_mm)
    if lesion.too_small:
        return too_small
    return None if lesion.diameter_mm is None else _units(lesion.diameter_mm, scale)


def _diameters(cts: list[CtAssessment]) -> list[tuple[CtAssessment, Lesion, float]]:
    out = []
    for ct in cts:
        for t in ct.target:
            for mm in (*(t.fragments_mm or ()), *(() if t.diameter_mm is None else (t.diameter_mm,))):
                out.append((ct, t, mm))
    return out


def _scale(cts: list[CtAssessment], too_small_mm: float) -> tuple[int, str | None]:
    """The power of ten that holds every diameter entered exactly (at least tenths), or why none may."""
    k = max(1, decimals(too_small_mm))
    for ct, t, mm in _diameters(cts):
        d = decimals(mm)
        if d > MAX_DECIMALS:
            return 0, (f"target {t.id} on {ct.date}: {mm!r} mm has more than {MAX_DECIMALS} decimals; RECIST "
                       f"compares what was entered exactly, to 0.001 mm at most: enter the diameter as read")
        k = max(k, d)
    return 10**k, None


def _baseline_findings(ct: CtAssessment, p: Mapping[str, Any]) -> list[str]:
    """Measurability and target selection at baseline, as warnings for the investigator."""
    v11 = p["version"] == "1.1"
    total, per_organ = _VERSION_LIMITS[p["version"]]
    total = p["max_targets_total"] or total
    per_organ = p["max_targets_per_organ"] or per_organ
    least = _frac(p["min_measurable_mm"])
    if ct.slice_thickness_mm is not None and ct.slice_thickness_mm > 5:
        least = max(least, 2 * _frac(ct.slice_thickness_mm))
    out: list[str] = []
    organs: dict[str, list[str]] = {}
    for t in ct.target:
        organ = "lymph node" if (v11 and t.nodal) else t.organ
        organs.setdefault(organ, []).append(t.id)
        if t.too_small or t.diameter_mm is None:
            out.append(f"target {t.id}: not measured at baseline, so not measurable")
        elif v11 and t.nodal and _frac(t.diameter_mm) < 15:
            out.append(
                f"target {t.id}: node short axis {t.diameter_mm:g} mm < 15 mm, not a measurable target "
                "(10-15 mm: non-target; < 10 mm: normal)"
            )
        elif not (v11 and t.nodal) and _frac(t.diameter_mm) < least:
            out.append(f"target {t.id}: {t.diameter_mm:g} mm < {float(least):g} mm, not measurable")
    if len(ct.target) > total:
        out.append(f"{len(ct.target)} target lesions, RECIST {p['version']} allows {total}")
    for organ, ids in organs.items():
        if len(ids) > per_organ:
            out.append(
                f"{len(ids)} target lesions in {organ} ({', '.join(ids)}), at most {per_organ} per organ"
            )
    if not ct.target:
        out.append(
            "no target lesions at baseline: response follows the non-target lesions (non-CR/non-PD as SD)"
        )
    return out


def _non_target(ct: CtAssessment, baseline_ids: list[str]) -> int:
    status = {n.id: n.status for n in ct.non_target}
    if any(s == "unequivocal_progression" for s in status.values()):
        return NT_PD
    if not baseline_ids:
        return NT_NONE
    seen = [status.get(i, "not_evaluated") for i in baseline_ids]
    if "not_evaluated" in seen:
        return NT_NE
    return NT_CR if all(s == "absent" for s in seen) else NT_NON


def _pct(a: int, b: int) -> float | None:
    return None if b == 0 else round(100.0 * (a - b) / b, 2)


class RecistRule:
    """Criterion 3 as a registered rule; see the module docstring for its sources."""

    name = NAME
    version = "1.0.0"
    title = "RECIST 1.0 / 1.1 overall and best overall response"
    observation_kinds = ("ct",)
    outcomes = OUTCOMES
    params_schema = PARAMS_SCHEMA
    references = (
        "Therasse P et al. J Natl Cancer Inst 2000;92:205-216 (RECIST 1.0)",
        "Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1)",
        "RECIST Working Group, RECIST 1.1 FAQ, recist.eortc.org",
    )

    case_labels = CODE_LABELS  # what evaluate_cases' codes mean

    def evaluate_cases(self, cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
        """Many cases at once (:func:`evaluate_cases`): the simulator's call, reading as :meth:`evaluate`."""
        return evaluate_cases(cases, params)

    def evaluate(
        self, case: Case, params: Mapping[str, Any], *, as_of: dt.date | None = None
    ) -> RecistResult:
        import numpy as np

        p = resolve_params(NAME, PARAMS_SCHEMA, params)
        ver = p["version"]
        cts: list[CtAssessment] = case.of_kind("ct", as_of=as_of)
        if case.day0 is None:  # no anchor: the earliest CT is the baseline, every later one a follow-up
            picked = (0, [k for k, c in enumerate(cts) if c.date > cts[0].date]) if cts else (-1, [])
        else:
            b, f = read_series(np.array([[(c.date - case.day0).days for c in cts]], dtype=np.float64))
            picked = (int(b[0]), np.flatnonzero(f[0]).tolist())
        if picked[0] < 0:
            return RecistResult(NAME, "NE", "no baseline CT on or before day 0: NE", ver)
        baseline = cts[picked[0]]
        if baseline.not_evaluated:
            return RecistResult(
                NAME,
                "NE",
                f"the baseline CT of {baseline.date} was not evaluable: NE",
                ver,
                baseline_date=baseline.date,
            )
        findings = _baseline_findings(baseline, p)
        follow = [cts[k] for k in picked[1]]
        scale, too_fine = _scale([baseline, *follow], p["too_small_mm"])
        if too_fine:
            return RecistResult(NAME, "NE", f"{too_fine}: NE", ver, baseline_date=baseline.date,
                                findings=tuple(findings))
        too_small = _units(p["too_small_mm"], scale)
        base_vals = [_lesion_units(t, too_small, scale) for t in baseline.target]
        if any(v is None for v in base_vals):
            missing = ", ".join(t.id for t, v in zip(baseline.target, base_vals, strict=True) if v is None)
            return RecistResult(
                NAME,
                "NE",
                f"baseline target(s) {missing} not measured: NE",
                ver,
                baseline_date=baseline.date,
                findings=tuple(findings),
            )
        base = sum(v for v in base_vals if v is not None)
        ids = [t.id for t in baseline.target]
        nodal = {t.id: t.nodal for t in baseline.target}
        nt_ids = [n.id for n in baseline.non_target]
        anchor = case.day0 or baseline.date
        na = len(follow)
        s = np.zeros((1, na), dtype=np.int64)
        present, complete, cr = (np.zeros((1, na), dtype=bool) for _ in range(3))
        new = np.zeros((1, na), dtype=bool)
        nt = np.zeros((1, na), dtype=np.int8)
        days = np.zeros((1, na), dtype=np.float64)
        for k, ct in enumerate(follow):
            days[0, k] = (ct.date - anchor).days
            present[0, k] = not ct.not_evaluated
            by_id = {t.id: t for t in ct.target}
            for extra in by_id.keys() - set(ids):
                findings.append(
                    f"{ct.date}: target {extra} was not a baseline target and is ignored "
                    "(record new lesions under new_lesions)"
                )
            vals = {i: _lesion_units(by_id[i], too_small, scale) if i in by_id else None for i in ids}
            known = [v for v in vals.values() if v is not None]
            s[0, k] = sum(known)
            complete[0, k] = len(known) == len(ids)
            if ver == "1.1":
                cr[0, k] = all(v is not None and (v < 10 * scale if nodal[i] else v == 0) for i, v in vals.items())
            else:
                cr[0, k] = all(v == 0 for v in vals.values())
            new[0, k] = bool(ct.new_lesions)
            nt[0, k] = _non_target(ct, nt_ids)
        o = _kernel(np.array([base]), np.array([True]), s, present, complete, cr, nt, new, days, p, scale)
        rows = []
        for k, ct in enumerate(follow):
            here = bool(present[0, k])
            S, N = int(s[0, k]), int(o.nadir[0, k])
            rows.append(
                Assessment(
                    date=ct.date,
                    sum_mm=S / scale if here else None,
                    complete=bool(complete[0, k]) and here,
                    pct_from_baseline=_pct(S, base) if here else None,
                    nadir_mm=N / scale,
                    pct_from_nadir=_pct(S, N) if here else None,
                    target=str(_label(o.target[0, k])),
                    non_target=NON_TARGET_LABELS[int(nt[0, k])] if here else "NE",
                    new_lesions=ct.new_lesions,
                    overall=str(_label(o.overall[0, k])),
                )
            )
        best = str(_label(o.best[0]))
        common: dict[str, Any] = {
            "best_overall_response": best,
            "confirmed": bool(o.confirmed[0]),
            "baseline_date": baseline.date,
            "baseline_sum_mm": base / scale,
            "assessments": tuple(rows),
            "findings": tuple(findings),
        }
        if not rows:
            return RecistResult(
                NAME, "NE", f"no follow-up CT after the baseline of {baseline.date}: NE", ver, **common
            )
        last = rows[-1]
        reason = _reason(ver, last, base / scale, best, bool(o.confirmed[0]))
        first_pd = next((a for a in rows if a.overall == "PD"), None)
        if first_pd is not None and last.overall != "PD" and p["progression_ends_series"]:
            return RecistResult(
                NAME,
                "PD",
                f"{_reason(ver, first_pd, base / scale, best, False)}; progression since the treatment started "
                f"stands: the later assessment of {last.date} ({last.overall}) does not undo it",
                ver,
                progression_date=first_pd.date,
                **common,
            )
        return RecistResult(
            NAME, last.overall, reason, ver, progression_date=first_pd.date if first_pd else None, **common
        )


def _reason(ver: str, a: Assessment, base: float, best: str, confirmed: bool) -> str:
    if a.sum_mm is None:
        body = "assessment not evaluable"
    else:
        pb = "n/a" if a.pct_from_baseline is None else f"{a.pct_from_baseline:+.1f} %"
        pn = "n/a" if a.pct_from_nadir is None else f"{a.pct_from_nadir:+.1f} %"
        news = f"new lesion(s) {', '.join(a.new_lesions)}" if a.new_lesions else "no new lesions"
        body = (
            f"sum {a.sum_mm:g} mm ({pb} from baseline {base:g} mm, {pn} from nadir {a.nadir_mm:g} mm); "
            f"target {a.target}, non-target {a.non_target}, {news}"
        )
    tag = " confirmed" if confirmed and best in ("CR", "PR") else ""
    return f"RECIST {ver} on {a.date}: {body}: {a.overall} (best overall response {best}{tag})"


RULE = RecistRule()


# ---------------------------------------------------------------- the case reader, shared by both forms


def read_series(days: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Which CTs the rule reads, per patient (rows of study days in date order, nan = no record, last):
    the baseline is the latest CT on or before day 0 (its column; -1 if there is none), the follow-ups are
    every CT dated after it. :meth:`RecistRule.evaluate` reads one patient's case through it and
    :func:`evaluate_cases` a cohort's, so the two cannot choose different scans."""
    import numpy as np

    days = np.atleast_2d(days)
    base = (days <= 0).sum(axis=1).astype(np.int64) - 1
    bday = np.take_along_axis(days, np.maximum(base, 0)[:, None], axis=1)
    with np.errstate(invalid="ignore"):
        follow = (days > bday) & (base >= 0)[:, None]
    return base, follow


def _non_target_batch(status: NDArray[Any], base: NDArray[Any]) -> NDArray[np.int8]:
    """The non-target response of records (P x N status indices, -1 = not listed) against the baseline's
    lesions (P x N), as ``_non_target`` reads one CT."""
    import numpy as np

    from .observations import NON_TARGET_STATUSES

    progression, absent = (NON_TARGET_STATUSES.index(s) for s in ("unequivocal_progression", "absent"))
    missing = NON_TARGET_STATUSES.index("not_evaluated")
    listed = base >= 0
    unseen = listed & ((status < 0) | (status == missing))
    gone = (~listed | (status == absent)).all(axis=1)
    code = np.where(unseen.any(axis=1), NT_NE, np.where(gone, NT_CR, NT_NON))
    code = np.where(listed.any(axis=1), code, NT_NONE)
    return np.where((status == progression).any(axis=1), NT_PD, code).astype(np.int8)


def _tenths(mm: NDArray[np.float64]) -> NDArray[np.int64]:
    """Diameters (mm; nan: not listed, counted 0) in whole tenths of a mm."""
    import numpy as np

    return np.rint(np.where(np.isnan(mm), 0.0, mm) * 10).astype(np.int64)


def evaluate_cases(cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
    """The rule's batch case reader: every patient's outcome code (``CODE_LABELS``) from a cohort's CT records
    as arrays (:class:`trialflow.rules.CaseArrays`, study days), read as :meth:`RecistRule.evaluate` reads one
    case: the CTs :func:`read_series` picks, the baseline's targets summed at each follow-up (a target it
    does not list is not measured: a partial sum), CR when every target is gone (1.1: nodes < 10 mm), the
    non-target lesions against the baseline's, and the latest follow-up's response (PD once any was PD when
    ``progression_ends_series``). Diameters in whole tenths of a mm (finer ones: ``evaluate``)."""
    import numpy as np

    p = resolve_params(NAME, PARAMS_SCHEMA, params)
    ct = cases.of_kind("ct")
    days, f = ct.days, ct.fields
    npat = days.shape[0]
    rows = np.arange(npat)
    base, follow = read_series(days)
    nfollow = follow.sum(axis=1)
    b = np.maximum(base, 0)
    ne = np.asarray(f["not_evaluated"] == True, dtype=bool)  # noqa: E712 - nan (no record) is False
    mm = f["target_mm"]
    given = np.asarray(f["non_target"])
    if given.dtype.kind in "iub":  # status indices, -1 where not listed
        status = given.astype(np.int64)
    else:  # nan: not listed
        status = np.nan_to_num(given.astype(np.float64), nan=-1.0).astype(np.int64)
    new_any = np.asarray(f["new_lesions"] == True, dtype=bool)  # noqa: E712
    at_base = at_column(mm, b)
    targets = ~np.isnan(at_base)  # P x L: the baseline's target lesions
    base_nodal = np.asarray(at_column(f["nodal"], b) == True, dtype=bool) & targets  # noqa: E712
    base_nt = at_column(status, b)
    width = max(int(nfollow.max(initial=0)), 1)
    sums = np.full((npat, width + 1), np.nan)
    base_units = np.where(targets, _tenths(at_base), 0).sum(axis=1)
    sums[:, 0] = np.where((base >= 0) & ~at_column(ne, b), base_units / 10.0, np.nan)
    shape = (npat, width)
    fdays, new, cr, complete = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool), np.ones(shape, bool)
    nt = np.full(shape, NT_NONE, dtype=np.int8)
    last = days.shape[1] - 1
    for j in range(width):
        ok = j < nfollow
        k = np.minimum(b + 1 + j, last)
        at_k = at_column(mm, k)
        measured = ~np.isnan(at_k) & targets
        units = np.where(measured, _tenths(at_k), 0)
        readable = ok & ~at_column(ne, k)
        sums[:, j + 1] = np.where(readable, units.sum(axis=1) / 10.0, np.nan)
        complete[:, j] = (measured == targets).all(axis=1)
        gone = np.where(base_nodal, units < 100, units == 0) if p["version"] == "1.1" else units == 0
        cr[:, j] = ok & (~targets | (measured & gone)).all(axis=1)
        fdays[:, j] = np.where(ok, at_column(days, k), 0.0)
        new[:, j] = ok & at_column(new_any, k)
        nt[:, j] = np.where(ok, _non_target_batch(at_column(status, k), base_nt), NT_NONE)
    res = evaluate_batch(sums, new, False, cr, p, days=fdays, nontarget=nt, complete=complete)
    at_last = res.overall_code[rows, np.maximum(nfollow - 1, 0)]
    if res.progression_ends_series:
        at_last = np.where(res.progressed, PD, at_last)
    return np.where(nfollow > 0, at_last, NE).astype(np.int8)
