"""Criterion 2: the log-linear thyroglobulin slope (OLS of ln Tg on actual weeks since day 0).

``b = Sxy/Sxx``, ``SE = sqrt(SSE/(n-2)/Sxx)``, ``t = b/SE`` on n-2 degrees of freedom; ``response`` when
b < 0 and p < alpha, ``progression`` when b > 0 and p < alpha, ``stable`` otherwise. Doubling time
``ln 2 / b`` (negative: a halving time).

One kernel, :func:`_kernel`, serves a single patient (:meth:`TgSlopeRule.evaluate`, a 1 x S array) and a
cohort (:func:`evaluate_batch`, P x S arrays): sums are accumulated column by column so that a patient
gets bit-for-bit the same numbers alone or in a cohort. scipy is imported only when a p-value is due.

References
----------
- Miyauchi A et al. Prognostic impact of serum thyroglobulin doubling-time under thyrotropin suppression
  in patients with papillary thyroid carcinoma who underwent total thyroidectomy. Thyroid 2011;21:707-716
  (PMID 21649472): at least 4 Tg values for a doubling time (``min_values`` = 4).
- American Thyroid Association, Thyroglobulin doubling-time calculator (Kuma Hospital): >= 4 values,
  ln-linear regression on time.
- Spencer C et al. Clinical impact of thyroglobulin (Tg) and Tg autoantibody method differences on the
  management of patients with differentiated thyroid carcinomas (PMC4154792): TgAb make immunometric Tg
  falsely low (``tgab_positive`` = not_evaluable).
- Study synopsis (Leiden Sorafenib trial; Hoftijzer et al., Eur J Endocrinol 2009;161:923): Tg at weeks
  0-28 (``first_week`` 0, ``last_week`` 28), slope "significantly below 0" at alpha = 0.05, two-sided. A
  one-sided test declares its direction (``one_sided_greater``: "no statistically significant positive
  slope"); the direction is never taken from the data (that is a two-sided test at 2 alpha).
- One sample, one value: a sample entered twice is regressed once; two values for one date are refused.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._params import fmt_p, resolve_params
from .observations import Case, TgAbResult, TgSample

if TYPE_CHECKING:  # numpy is imported where a rule computes, not when the rule is registered
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["CODE_LABELS", "RULE", "TgSlopeBatch", "TgSlopeResult", "TgSlopeRule", "evaluate_batch", "evaluate_cases"]

NAME = "tg_slope"
OUTCOMES = ("response", "stable", "progression", "not_evaluable")
_NE, _RESPONSE, _STABLE, _PROGRESSION = 0, 1, 2, 3
CODE_LABELS = ("not_evaluable", "response", "stable", "progression")  # outcome code → label
# why not evaluable (0 = evaluable)
_WHY_OK, _WHY_TGAB, _WHY_FEW, _WHY_ONE_DATE = 0, 1, 2, 3
_WHY_TEXT = ("", "tgab_positive", "too_few_values", "single_date")


def _outcome_label(codes: Any) -> Any:
    """Outcome codes as their labels (``CODE_LABELS[code]``)."""
    import numpy as np

    return np.array(CODE_LABELS)[codes]


def _why_label(codes: Any) -> Any:
    import numpy as np

    return np.array(_WHY_TEXT)[codes]

_LN2 = math.log(2.0)
_WEEKS_PER_YEAR = 365.25 / 7.0

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "alpha": {
            "type": "number",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 1,
            "default": 0.05,
            "description": "Significance level of the slope t-test (synopsis: 0.05).",
        },
        "test": {
            "enum": ["two_sided", "one_sided_greater", "one_sided_less"],
            "default": "two_sided",
            "description": "two_sided as the synopsis words it; a one-sided test declares its direction: "
            "one_sided_greater (H1 slope > 0, the synopsis's 'no statistically significant positive slope': "
            "progression or stable) or one_sided_less (H1 slope < 0: response or stable).",
        },
        "min_values": {
            "type": "integer",
            "minimum": 3,
            "default": 4,
            "description": "Fewest usable Tg values for a slope (Miyauchi 2011; ATA calculator: 4).",
        },
        "loq_policy": {
            "enum": ["half_loq", "loq", "exclude"],
            "default": "half_loq",
            "description": "A value below the limit of quantitation counts as LoQ/2, as LoQ, or is left out.",
        },
        "exclude_stimulated": {
            "type": "boolean",
            "default": True,
            "description": "Leave out samples drawn after rhTSH or withdrawal (Tg depends on TSH).",
        },
        "tgab_positive": {
            "enum": ["not_evaluable", "ignore"],
            "default": "not_evaluable",
            "description": "Any TgAb-positive result makes the slope not evaluable (Spencer, "
            "PMC4154792), or is ignored.",
        },
        "first_week": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "First week of the analysis window (synopsis: week 0).",
        },
        "last_week": {
            "type": "number",
            "minimum": 0,
            "default": 28,
            "description": "Last week of the analysis window (synopsis: week 28).",
        },
        "tolerance_days": {
            "type": "number",
            "minimum": 0,
            "default": 7,
            "description": "Samples up to this many days outside the window still count.",
        },
    },
}


@frozen
class _Out:
    """Kernel output, one entry per patient."""

    code: NDArray[np.int8]
    why: NDArray[np.int8]
    undetectable: NDArray[np.bool_]
    n: NDArray[np.int64]
    slope: NDArray[np.float64]
    intercept: NDArray[np.float64]
    se: NDArray[np.float64]
    t: NDArray[np.float64]
    p: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    usable: NDArray[np.bool_]
    in_window: NDArray[np.bool_]
    below: NDArray[np.bool_]
    used_value: NDArray[np.float64]


def _colsum(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per patient, the sum over samples of ``a`` (S x P, one row per sample slot), accumulated sample by
    sample: the same bits whatever the number of samples or patients."""
    import numpy as np

    out = np.zeros(a.shape[1])
    for j in range(a.shape[0]):
        out += a[j]
    return out


def _kernel(
    weeks: NDArray[np.float64],
    tg: NDArray[np.float64],
    below: NDArray[np.bool_],
    loq: NDArray[np.float64],
    tgab_pos: NDArray[np.bool_],
    p: Mapping[str, Any],
    pvalues: bool = True,
) -> _Out:
    """Window, LoQ policy, OLS and t-test for P patients x S samples (nan = no sample).

    Without ``pvalues`` the p-values (and confidence intervals) are left nan and significance is read
    from |t| against the critical value of its df; only a |t| within 1e-6 (relative) of it gets its
    p-value computed, so the outcome is exactly that of ``p < alpha``.

    Works on S x P (one contiguous row per sample slot, so the sums over samples run along rows); the
    per-sample answers are handed back as P x S views. A slot without a sample adds exact zeros, so
    where the missing slots are does not change a patient's bits."""
    import numpy as np
    from scipy.special import stdtr, stdtrit  # lazily: scipy costs ~0.25 s to import

    weeks, tg = np.ascontiguousarray(weeks.T), np.ascontiguousarray(tg.T)
    below, loq = np.ascontiguousarray(below.T), loq.T  # loq: often a broadcast scalar, left as it is
    lo = (p["first_week"] * 7 - p["tolerance_days"]) / 7.0
    hi = (p["last_week"] * 7 + p["tolerance_days"]) / 7.0
    with np.errstate(invalid="ignore", divide="ignore"):
        below = below | (tg < loq)  # a number under its own LoQ is below it too (nan compares False)
        present = ~np.isnan(weeks)
        present &= below | ~np.isnan(tg)
        in_window = present & (weeks >= lo)
        in_window &= weeks <= hi
        factor = {"half_loq": 0.5, "loq": 1.0, "exclude": np.nan}[p["loq_policy"]]
        if loq.ndim and loq.size and not any(loq.strides):  # one LoQ for all (a broadcast scalar): multiplied once
            loq = loq[(0,) * loq.ndim]
        value = np.where(below, loq * factor, tg)
        usable = in_window & (value > 0)  # nan compares False
        n_window = in_window.sum(axis=0)
        n = usable.sum(axis=0).astype(np.int64)
        undetectable = (n_window >= p["min_values"]) & ((in_window & ~below).sum(axis=0) == 0)

        x = np.where(usable, weeks, 0.0)
        y = np.log(np.where(usable, value, 1.0))  # ln 1 = 0 where not usable
        nf = n.astype(np.float64)
        xbar = _colsum(x) / nf
        ybar = _colsum(y) / nf
        dx = np.where(usable, x - xbar, 0.0)
        dy = np.where(usable, y - ybar, 0.0)
        sxx = _colsum(dx * dx)
        sxy = _colsum(dx * dy)
        b = sxy / sxx
        resid = np.where(usable, dy - b * dx, 0.0)
        sse = _colsum(resid * resid)
        df = nf - 2.0
        se = np.sqrt(sse / df / sxx)
        t = b / se
        perfect = se <= 1e-12 * np.abs(b)

    why = np.full(weeks.shape[1], _WHY_OK, dtype=np.int8)
    why[sxx <= 0] = _WHY_ONE_DATE
    why[n < p["min_values"]] = _WHY_FEW
    why[undetectable] = _WHY_OK
    if p["tgab_positive"] == "not_evaluable":
        why[tgab_pos] = _WHY_TGAB
    fit = (why == _WHY_OK) & ~undetectable
    # the t distribution only where a slope is reported: element-wise, so the same bits as for everyone.
    # A one-sided test has a declared direction (never the data's): stat is t in that direction.
    test = p["test"]
    two = test == "two_sided"
    sign = {"two_sided": 0.0, "one_sided_greater": 1.0, "one_sided_less": -1.0}[test]
    with np.errstate(invalid="ignore"):
        stat = np.abs(t) if two else sign * t
    toward = (b != 0) if two else (sign * b > 0)  # a perfect fit in the tested direction
    # df is a whole number of at most S - 2: one quantile per value, looked up
    top = max(int(n.max(initial=0)) - 2, 0)
    dfs = np.arange(top + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if pvalues:
            tail = np.full(t.shape, np.nan)
            tail[fit] = stdtr(df[fit], -stat[fit])
            pval = 2.0 * tail if two else tail
            pval = np.where(perfect, np.where(toward, 0.0, 1.0), pval)
            sig = pval < p["alpha"]
            quantile = stdtrit(dfs, 0.975)
            half = np.where(df >= 0, quantile[np.clip(n - 2, 0, top)], np.nan) * se
            ci_low, ci_high = b - half, b + half
        else:
            crit = -stdtrit(dfs, p["alpha"] / 2 if two else p["alpha"])[np.clip(n - 2, 0, top)]
            sig = fit & (stat > crit)
            near = np.flatnonzero(fit & ~perfect & (np.abs(stat - crit) <= 1e-6 * np.abs(crit)))
            if near.size:  # too close to call from the critical value: the p-value decides
                tail_near = stdtr(df[near], -stat[near])
                sig[near] = (2.0 * tail_near if two else tail_near) < p["alpha"]
            sig = np.where(perfect, toward, sig)
            pval = ci_low = ci_high = np.full(t.shape, np.nan)
        t = np.where(perfect, np.where(b > 0, np.inf, np.where(b < 0, -np.inf, np.nan)), t)
    if not two:  # a one-sided test speaks only in its direction (alpha >= 0.5 could otherwise flip it)
        sig = sig & (sign * b > 0)
    code = np.where(sig & (b < 0), _RESPONSE, np.where(sig & (b > 0), _PROGRESSION, _STABLE)).astype(np.int8)
    code[undetectable] = _STABLE
    code[why != _WHY_OK] = _NE
    nan = np.nan
    return _Out(
        code=code,
        why=why,
        undetectable=undetectable & (why == _WHY_OK),
        n=n,
        slope=np.where(fit, b, nan),
        intercept=np.where(fit, ybar - b * xbar, nan),
        se=np.where(fit, se, nan),
        t=np.where(fit, t, nan),
        p=np.where(fit, pval, nan),
        ci_low=np.where(fit, ci_low, nan),
        ci_high=np.where(fit, ci_high, nan),
        usable=usable.T,
        in_window=in_window.T,
        below=below.T,
        used_value=value.T,
    )


# ---------------------------------------------------------------- batch


@frozen
class TgSlopeBatch:
    """The slope rule over P patients; each array has one entry per patient (nan where no fit).

    ``code`` is the outcome as a small integer (``CODE_LABELS[code]``); the labels are made on access."""

    code: NDArray[np.int8]
    why: NDArray[np.int8]
    undetectable: NDArray[np.bool_]
    n: NDArray[np.int64]
    slope_per_week: NDArray[np.float64]
    se: NDArray[np.float64]
    t: NDArray[np.float64]
    df: NDArray[np.int64]
    p_value: NDArray[np.float64]
    ci95_low: NDArray[np.float64]
    ci95_high: NDArray[np.float64]
    doubling_time_weeks: NDArray[np.float64]

    @property
    def outcome(self) -> NDArray[np.str_]:
        return _outcome_label(self.code)

    @property
    def not_evaluable_reason(self) -> NDArray[np.str_]:
        return _why_label(self.why)


def evaluate_batch(
    weeks: ArrayLike,
    tg: ArrayLike,
    tgab_positive: ArrayLike,
    params: Mapping[str, Any] | None = None,
    loq: ArrayLike | None = None,
    *,
    pvalues: bool = True,
) -> TgSlopeBatch:
    """The slope rule for a cohort: ``weeks`` and ``tg`` (ug/L) are P x S, nan = no sample.

    ``loq`` (scalar, (P,) or (P, S)) marks values below it as below the limit of quantitation, handled by
    ``loq_policy``. Stimulated samples are the caller's to leave out (as nan), and so are duplicates: one
    sample per date, as the workflow records them (:meth:`TgSlopeRule.evaluate` de-duplicates). Same answers as
    :meth:`TgSlopeRule.evaluate` for the same samples. ``pvalues`` False leaves ``p_value`` and the
    confidence interval nan (the outcomes are the same; a simulation needs only those).
    """
    import numpy as np

    p = resolve_params(NAME, PARAMS_SCHEMA, params)
    w = np.atleast_2d(np.asarray(weeks, dtype=np.float64))
    v = np.atleast_2d(np.asarray(tg, dtype=np.float64))
    if w.shape != v.shape:
        raise ValueError(f"weeks {w.shape} and tg {v.shape} must have the same shape (patients x samples)")
    q = np.full(w.shape, np.nan) if loq is None else np.asarray(loq, dtype=np.float64)
    if q.ndim == 1:
        q = q[:, None]
    q = np.broadcast_to(q, w.shape)
    pos = np.broadcast_to(np.asarray(tgab_positive, dtype=bool), w.shape[:1])
    o = _kernel(w, v, np.zeros(w.shape[::-1], dtype=bool).T, q, pos, p, pvalues)
    with np.errstate(divide="ignore"):
        doubling = np.where(o.slope != 0, _LN2 / o.slope, np.nan)
    return TgSlopeBatch(
        code=o.code,
        why=o.why,
        undetectable=o.undetectable,
        n=o.n,
        slope_per_week=o.slope,
        se=o.se,
        t=o.t,
        df=np.where(np.isnan(o.slope), -1, o.n - 2),
        p_value=o.p,
        ci95_low=o.ci_low,
        ci95_high=o.ci_high,
        doubling_time_weeks=doubling,
    )


# ---------------------------------------------------------------- single patient


@frozen
class UsedSample:
    """A Tg sample that entered the regression (``value`` is what was regressed, after the LoQ policy)."""

    date: dt.date
    week: float
    value: float
    below_loq: bool


@frozen
class ExcludedSample:
    date: dt.date
    reason: str


def _num(x: float) -> float | None:
    """A finite float, or None (JSON has no nan or infinity)."""
    return float(x) if math.isfinite(x) else None


@frozen
class TgSlopeResult:
    """The slope criterion for one patient. Numbers are None when no regression was run."""

    rule: str
    outcome: str
    reason: str
    slope_per_week: float | None = None
    intercept: float | None = None
    se: float | None = None
    ci95: tuple[float, float] | None = None
    t: float | None = None
    df: int | None = None
    p_value: float | None = None
    n: int = 0
    doubling_time_weeks: float | None = None
    doubling_time_years: float | None = None
    alpha: float = 0.05
    test: str = "two_sided"
    undetectable: bool = False
    used: tuple[UsedSample, ...] = ()
    excluded: tuple[ExcludedSample, ...] = ()
    # what the investigator should know beside the outcome (a decision shows each as a flag)
    findings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        extra = {"findings": list(self.findings)} if self.findings else {}  # (absent: none, as before)
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "reason": self.reason,
            "slope_per_week": self.slope_per_week,
            "intercept": self.intercept,
            "se": self.se,
            "ci95": list(self.ci95) if self.ci95 else None,
            "t": self.t,
            "df": self.df,
            "p_value": self.p_value,
            "n": self.n,
            "doubling_time_weeks": self.doubling_time_weeks,
            "doubling_time_years": self.doubling_time_years,
            "alpha": self.alpha,
            "test": self.test,
            "undetectable": self.undetectable,
            "used": [
                {"date": u.date.isoformat(), "week": u.week, "value": u.value, "below_loq": u.below_loq}
                for u in self.used
            ],
            "excluded": [{"date": e.date.isoformat(), "reason": e.reason} for e in self.excluded],
            **extra,
        }


def _one_value_per_sample(samples: list[TgSample]) -> tuple[list[TgSample], list[ExcludedSample], str | None]:
    """One sample, one value (as the workflow records them): a sample entered twice counts once; two
    different values for one date are a conflict to correct, never two points of the regression."""
    kept: list[TgSample] = []
    dropped: list[ExcludedSample] = []
    by_date: dict[dt.date, TgSample] = {}
    for s in samples:
        first = by_date.get(s.date)
        if first is None:
            by_date[s.date] = s
            kept.append(s)
        elif first == s:
            dropped.append(ExcludedSample(s.date, "the same sample entered twice: counted once"))
        else:
            return kept, dropped, (f"two different Tg results on {s.date} ({_show(first)} and {_show(s)}): correct "
                                   "the record so that each sample has one value")
    return kept, dropped, None


def _show(s: TgSample) -> str:
    return f"<{s.loq:g}" if s.value is None and s.loq is not None else f"{s.value:g} ug/L"


class TgSlopeRule:
    """Criterion 2 as a registered rule; see the module docstring for the method and its sources."""

    name = NAME
    version = "1.0.0"
    title = "Thyroglobulin log-linear slope (OLS of ln Tg on weeks since day 0)"
    observation_kinds = ("tg", "tgab")
    outcomes = OUTCOMES
    params_schema = PARAMS_SCHEMA
    references = (
        "Miyauchi A et al. Thyroid 2011;21:707-716, PMID 21649472 (>= 4 Tg values for a doubling time)",
        "American Thyroid Association, Tg doubling-time calculator (>= 4 values, ln-linear regression)",
        "Spencer C et al. Tg and TgAb method differences, PMC4154792 (TgAb make Tg falsely low)",
        "Hoftijzer H et al. Eur J Endocrinol 2009;161:923-931 (synopsis: weeks 0-28, slope tested at 0.05)",
    )

    case_labels = CODE_LABELS  # what evaluate_cases' codes mean

    def evaluate_cases(self, cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
        """Many cases at once (:func:`evaluate_cases`): the simulator's call, reading as :meth:`evaluate`."""
        return evaluate_cases(cases, params)

    def evaluate(
        self, case: Case, params: Mapping[str, Any], *, as_of: dt.date | None = None
    ) -> TgSlopeResult:
        import numpy as np

        p = resolve_params(NAME, PARAMS_SCHEMA, params)
        base = {"alpha": p["alpha"], "test": p["test"]}
        tgab: list[TgAbResult] = case.of_kind("tgab", as_of=as_of)
        positive = [r for r in tgab if r.result == "positive"]
        if case.day0 is None:
            return TgSlopeResult(
                NAME, "not_evaluable", "day 0 (first Sorafenib dose) not recorded: not_evaluable", **base
            )
        samples, excluded, conflict = _one_value_per_sample(case.of_kind("tg", as_of=as_of))
        if conflict:
            return TgSlopeResult(NAME, "not_evaluable", f"{conflict}: not_evaluable", excluded=tuple(excluded),
                                 **base)
        kept: list[TgSample] = []
        for s in samples:
            if s.stimulated and p["exclude_stimulated"]:
                excluded.append(ExcludedSample(s.date, "stimulated (rhTSH or withdrawal): Tg depends on TSH"))
            else:
                kept.append(s)
        w = np.array([[(s.date - case.day0).days / 7.0 for s in kept]], dtype=np.float64).reshape(1, -1)
        v = np.array([[np.nan if s.value is None else s.value for s in kept]], dtype=np.float64).reshape(
            1, -1
        )
        b = np.array([[s.below_loq for s in kept]], dtype=bool).reshape(1, -1)
        q = np.array([[np.nan if s.loq is None else s.loq for s in kept]], dtype=np.float64).reshape(1, -1)
        o = _kernel(w, v, b, q, np.array([bool(positive)]), p)
        used: list[UsedSample] = []
        for j, s in enumerate(kept):
            if o.usable[0, j]:
                used.append(
                    UsedSample(s.date, float(w[0, j]), float(o.used_value[0, j]), bool(o.below[0, j]))
                )
            elif not o.in_window[0, j]:
                excluded.append(
                    ExcludedSample(
                        s.date,
                        f"week {w[0, j]:.1f} is outside weeks {p['first_week']:g}-{p['last_week']:g} "
                        f"(± {p['tolerance_days']:g} days)",
                    )
                )
            elif o.below[0, j]:
                cause = "loq_policy is 'exclude'" if p["loq_policy"] == "exclude" else "LoQ unknown"
                excluded.append(ExcludedSample(s.date, f"below the limit of quantitation ({cause})"))
        excluded.sort(key=lambda e: e.date)
        n = int(o.n[0])
        # Tg read without its TgAb: immunometric Tg is falsely low when anti-Tg antibodies are present, and
        # without a TgAb result of the sample's day nothing says they are not (the outcome stands; the
        # investigator is told which samples)
        checked = {r.date for r in tgab}
        alone = [u.date.isoformat() for u in used if u.date not in checked]
        unchecked: tuple[str, ...] = ()
        if alone:
            which = (f"none of the {len(used)} Tg samples used has a TgAb result of the same day"
                     if len(alone) == len(used) else
                     f"{len(alone)} of the {len(used)} Tg samples used {'has' if len(alone) == 1 else 'have'} no "
                     f"TgAb result of the same day ({', '.join(alone)})")
            unchecked = (f"{which}: anti-Tg antibodies, if present, make Tg falsely low (Spencer, PMC4154792); "
                         "record TgAb with each Tg sample",)
        common = {**base, "n": n, "used": tuple(used), "excluded": tuple(excluded)}
        why = int(o.why[0])
        if why == _WHY_TGAB:
            return TgSlopeResult(
                NAME,
                "not_evaluable",
                f"anti-Tg antibodies positive on {positive[0].date} (Tg falsely low): not_evaluable",
                **common,
            )
        if why == _WHY_FEW:
            return TgSlopeResult(
                NAME,
                "not_evaluable",
                f"{n} usable Tg value(s) in weeks {p['first_week']:g}-"
                f"{p['last_week']:g}, at least {p['min_values']} needed: not_evaluable",
                **common,
            )
        if why == _WHY_ONE_DATE:
            return TgSlopeResult(
                NAME, "not_evaluable", "all usable Tg samples are from one date: not_evaluable", **common
            )
        if o.undetectable[0]:
            k = int(o.in_window[0].sum())
            return TgSlopeResult(
                NAME,
                "stable",
                f"Tg below the limit of quantitation in all {k} samples: stable (undetectable throughout)",
                undetectable=True,
                findings=unchecked,
                **common,
            )
        slope = float(o.slope[0])
        dtw = _LN2 / slope if slope != 0 else None
        outcome = str(_outcome_label(int(o.code[0])))
        pv = float(o.p[0])
        timing = "" if dtw is None else f"; {'doubling' if dtw > 0 else 'halving'} time {abs(dtw):.1f} weeks"
        reason = f"ln Tg slope {slope:.3f}/week (p = {fmt_p(pv)}, n = {n}{timing}): {outcome}"
        return TgSlopeResult(
            NAME,
            outcome,
            reason,
            slope_per_week=slope,
            intercept=float(o.intercept[0]),
            se=float(o.se[0]),
            ci95=(float(o.ci_low[0]), float(o.ci_high[0])),
            t=_num(float(o.t[0])),
            df=n - 2,
            p_value=pv,
            doubling_time_weeks=dtw,
            doubling_time_years=None if dtw is None else dtw / _WEEKS_PER_YEAR,
            findings=unchecked,
            **common,
        )


RULE = TgSlopeRule()


def evaluate_cases(cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
    """The rule's batch case reader: every patient's outcome code (``CODE_LABELS``) from a cohort's Tg and
    TgAb records as arrays (:class:`trialflow.rules.CaseArrays`, study days), read as :meth:`TgSlopeRule.evaluate`
    reads one patient's case: samples in date order, '<LoQ' results below their LoQ, TgAb positive if any
    result is. The simulator calls it; ``CaseArrays.case(i)`` gives the one-patient case it equals."""
    import numpy as np

    tg, tgab = cases.of_kind("tg"), cases.of_kind("tgab")
    positive = np.asarray(tgab.fields["positive"] == True, dtype=bool).any(axis=1)  # noqa: E712 - nan is False
    below = np.asarray(tg.fields["below_loq"] == True, dtype=bool)  # noqa: E712
    value = np.where(below, 0.0, tg.fields["value"])  # a number under its LoQ is below it, as '<LoQ' is
    return evaluate_batch(tg.days / 7.0, value, positive, params, loq=tg.fields["loq"], pvalues=False).code
