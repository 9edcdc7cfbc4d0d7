"""Criterion 1: re-induction of radioiodine (RaI) uptake, lesion by lesion on 131I scintigraphy.

Re-induced when the follow-up scan shows at least ``min_new_avid_lesions`` RaI-accumulating lesions, on
the modalities that count, that did not accumulate RaI at baseline (on any modality). Not evaluable
when either scan is missing or the follow-up scan has none of the modalities that count. Lesions are
matched by id or site, ignoring case and surrounding spaces.

The modality rule, like with like: a follow-up lesion counts only on a modality that counts and was
acquired at *both* scans (SPECT finds lesions planar images miss, so a lesion on follow-up SPECT against a
planar-only baseline is no evidence of re-induction). A lesion recorded without its modality counts only
when every modality of its scan is comparable in that sense; otherwise which modality showed it is
unknown, it is not counted, and it is listed in ``uncomparable_lesions`` so the reader can record it.

References
----------
- Study synopsis (Leiden Sorafenib trial; Hoftijzer et al., Eur J Endocrinol 2009;161:923-931):
  "at least one RaI-accumulating lesion, on planar images and/or SPECT, that did not accumulate RaI at
  baseline" (``min_new_avid_lesions`` = 1, ``modalities`` = planar and SPECT).
- Ho AL et al. Selumetinib-enhanced radioiodine uptake in advanced thyroid cancer. N Engl J Med
  2013;368:623-632 (a dosimetry threshold is not part of this qualitative rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from trialflow.documents._frozen import frozen

from ._batch import at_column
from ._params import resolve_params
from .observations import Case, RaiScan

if TYPE_CHECKING:  # numpy is imported where a rule computes, not when the rule is registered
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["RULE", "RaiUptakeResult", "RaiUptakeRule", "evaluate_batch", "evaluate_cases", "read_scans"]

NAME = "rai_uptake"
OUTCOMES = ("reinduced", "not_reinduced", "not_evaluable")

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_new_avid_lesions": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "Newly RaI-avid lesions needed for re-induction (synopsis: 1).",
        },
        "modalities": {
            "type": "array",
            "items": {"enum": ["planar", "spect"]},
            "minItems": 1,
            "uniqueItems": True,
            "default": ["planar", "spect"],
            "description": "Modalities on which a newly avid lesion counts (synopsis: planar and/or SPECT).",
        },
    },
}


_NE = OUTCOMES.index("not_evaluable")


def _label(codes: Any) -> Any:
    """Outcome codes (indices into ``OUTCOMES``) as their labels."""
    import numpy as np

    return np.array(OUTCOMES)[codes]


def _codes(new_counts: NDArray[np.int64], evaluable: NDArray[np.bool_], min_new: int) -> NDArray[np.int8]:
    """The one decision both paths share, as indices into ``OUTCOMES``."""
    import numpy as np

    return np.where(~evaluable, _NE, np.where(new_counts >= min_new, 0, 1)).astype(np.int8)


def _classify(new_counts: NDArray[np.int64], evaluable: NDArray[np.bool_], min_new: int) -> NDArray[np.str_]:
    return _label(_codes(new_counts, evaluable, min_new))


@overload
def evaluate_batch(
    new_avid_counts: ArrayLike,
    evaluable: ArrayLike,
    params: Mapping[str, Any] | None = None,
    *,
    codes: Literal[False] = False,
) -> NDArray[np.str_]: ...
@overload
def evaluate_batch(
    new_avid_counts: ArrayLike, evaluable: ArrayLike, params: Mapping[str, Any] | None = None, *, codes: Literal[True]
) -> NDArray[np.int8]: ...
def evaluate_batch(
    new_avid_counts: ArrayLike,
    evaluable: ArrayLike,
    params: Mapping[str, Any] | None = None,
    *,
    codes: bool = False,
) -> NDArray[np.str_] | NDArray[np.int8]:
    """Outcome per patient from the count of newly avid lesions and whether both scans exist
    (``codes``: as indices into ``OUTCOMES`` instead of labels)."""
    import numpy as np

    p = resolve_params(NAME, PARAMS_SCHEMA, params)
    counts = np.asarray(new_avid_counts, dtype=np.int64)
    ok = np.broadcast_to(np.asarray(evaluable, dtype=bool), counts.shape)
    got = _codes(counts, ok, p["min_new_avid_lesions"])
    return got if codes else _label(got)


@frozen
class RaiUptakeResult:
    """Criterion 1 for one patient."""

    rule: str
    outcome: str
    reason: str
    new_avid_lesions: tuple[str, ...] = ()
    baseline_date: dt.date | None = None
    follow_up_date: dt.date | None = None
    baseline_avid_lesions: tuple[str, ...] = ()
    follow_up_avid_lesions: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    uncomparable_lesions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "reason": self.reason,
            "new_avid_lesions": list(self.new_avid_lesions),
            "baseline_date": self.baseline_date.isoformat() if self.baseline_date else None,
            "follow_up_date": self.follow_up_date.isoformat() if self.follow_up_date else None,
            "baseline_avid_lesions": list(self.baseline_avid_lesions),
            "follow_up_avid_lesions": list(self.follow_up_avid_lesions),
            "modalities": list(self.modalities),
            "uncomparable_lesions": list(self.uncomparable_lesions),
        }


def _key(lesion_id: str) -> str:
    return " ".join(lesion_id.split()).casefold()


def read_scans(days: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Which scans the rule compares, per patient (rows of study days in date order, nan = no record,
    last): the baseline is the latest scan on or before day 0, the follow-up the latest scan after it
    (their columns; -1 where there is none). :meth:`RaiUptakeRule.evaluate` reads one case through it and
    :func:`evaluate_cases` a cohort's, so the two cannot compare different scans."""
    import numpy as np

    days = np.atleast_2d(days)
    base = (days <= 0).sum(axis=1).astype(np.int64) - 1
    latest = (~np.isnan(days)).sum(axis=1).astype(np.int64) - 1
    bday = np.take_along_axis(days, np.maximum(base, 0)[:, None], axis=1)[:, 0]
    lday = np.take_along_axis(days, np.maximum(latest, 0)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        follow = np.where((base >= 0) & (lday > bday), latest, -1)
    return base, follow


def _pick(scans: list[RaiScan], day0: dt.date | None) -> tuple[RaiScan | None, RaiScan | None]:
    """The baseline and follow-up scans :func:`read_scans` picks (day 0 unknown: the earliest scan is the
    baseline, the latest after it the follow-up)."""
    import numpy as np

    if not scans:
        return None, None
    if day0 is None:
        later = [s for s in scans if s.date > scans[0].date]
        return scans[0], (later[-1] if later else None)
    base, follow = read_scans(np.array([[(s.date - day0).days for s in scans]], dtype=np.float64))
    if base[0] < 0:
        return None, None
    return scans[int(base[0])], (scans[int(follow[0])] if follow[0] >= 0 else None)


class RaiUptakeRule:
    """Criterion 1 as a registered rule; see the module docstring for its sources."""

    name = NAME
    version = "1.0.0"
    title = "Re-induction of radioiodine uptake on 131I scintigraphy (planar and/or SPECT)"
    observation_kinds = ("rai_scan",)
    outcomes = OUTCOMES
    params_schema = PARAMS_SCHEMA
    references = (
        "Hoftijzer H et al. Eur J Endocrinol 2009;161:923-931 (synopsis: >= 1 newly RaI-avid lesion, planar "
        "and/or SPECT)",
        "Ho AL et al. N Engl J Med 2013;368:623-632 (redifferentiation; dosimetry not used here)",
    )

    case_labels = OUTCOMES  # what evaluate_cases' codes mean

    def evaluate_cases(self, cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
        """Many cases at once (:func:`evaluate_cases`): the simulator's call, reading as :meth:`evaluate`."""
        return evaluate_cases(cases, params)

    def evaluate(
        self, case: Case, params: Mapping[str, Any], *, as_of: dt.date | None = None
    ) -> RaiUptakeResult:
        import numpy as np

        p = resolve_params(NAME, PARAMS_SCHEMA, params)
        mods = tuple(p["modalities"])
        baseline, follow = _pick(case.of_kind("rai_scan", as_of=as_of), case.day0)
        if baseline is None:
            return RaiUptakeResult(
                NAME,
                "not_evaluable",
                "no baseline 131I scan on or before day 0: not_evaluable",
                modalities=mods,
            )
        if follow is None:
            return RaiUptakeResult(
                NAME,
                "not_evaluable",
                f"no follow-up 131I scan after the baseline of {baseline.date}: not_evaluable",
                baseline_date=baseline.date,
                modalities=mods,
            )
        base_ids = tuple(a.id for a in baseline.avid_lesions)
        follow_ids = tuple(a.id for a in follow.avid_lesions)
        common: dict[str, Any] = {
            "baseline_date": baseline.date,
            "follow_up_date": follow.date,
            "modalities": mods,
            "baseline_avid_lesions": base_ids,
            "follow_up_avid_lesions": follow_ids,
        }
        if not set(follow.modalities) & set(mods):
            return RaiUptakeResult(
                NAME,
                "not_evaluable",
                f"the follow-up scan of {follow.date} has "
                f"{'/'.join(follow.modalities)} only, none of {'/'.join(mods)}: not_evaluable",
                **common,
            )
        # A lesion is compared like with like: only on a modality acquired at both scans (a lesion seen
        # on follow-up SPECT is not "new" against a planar-only baseline that could not show it).
        comparable = [m for m in mods if m in baseline.modalities and m in follow.modalities]
        if not comparable:
            return RaiUptakeResult(
                NAME,
                "not_evaluable",
                f"no modality of {'/'.join(mods)} was acquired at both the baseline ({'/'.join(baseline.modalities)}) "
                f"and the follow-up ({'/'.join(follow.modalities)}): not_evaluable",
                **common,
            )
        seen = {_key(i) for i in base_ids}
        new: list[str] = []
        unknown: list[str] = []
        whole_scan = set(follow.modalities) <= set(comparable)  # an untagged lesion is comparable
        for a in follow.avid_lesions:
            if _key(a.id) in seen or _key(a.id) in {_key(x) for x in new}:
                continue
            if a.modality is not None:
                if a.modality in comparable:
                    new.append(a.id)
            elif whole_scan:
                new.append(a.id)
            elif a.id not in unknown:
                unknown.append(a.id)
        unknown = [u for u in unknown if _key(u) not in {_key(x) for x in new}]
        outcome = str(_classify(np.array([len(new)]), np.array([True]), p["min_new_avid_lesions"])[0])
        listed = f" ({', '.join(new)})" if new else ""
        reason = (
            f"{len(new)} newly RaI-avid lesion(s){listed} on {follow.date} vs baseline {baseline.date}, "
            f"{p['min_new_avid_lesions']} needed: {outcome}"
        )
        if unknown:
            lacking = "/".join(m for m in follow.modalities if m not in comparable)
            reason += (f"; not counted: {', '.join(unknown)} without a recorded modality, and the baseline had no "
                       f"{lacking} to compare with (record the modality that shows it)")
        return RaiUptakeResult(NAME, outcome, reason, new_avid_lesions=tuple(new),
                               uncomparable_lesions=tuple(unknown), **common)


RULE = RaiUptakeRule()


def evaluate_cases(cases: Any, params: Mapping[str, Any] | None = None) -> NDArray[np.int8]:
    """The rule's batch case reader: every patient's outcome code (``OUTCOMES``) from a cohort's 131I scans
    as arrays (:class:`trialflow.rules.CaseArrays`, study days), read as :meth:`RaiUptakeRule.evaluate` reads
    one case: the scans :func:`read_scans` picks; not evaluable unless the follow-up has one of the
    ``modalities`` and one was acquired at both scans; lesions avid on the follow-up and not on the
    baseline are new, counted when every follow-up modality is comparable (the batch's lesions carry no
    modality of their own, so otherwise none is comparable, as ``evaluate`` reads an untagged lesion)."""
    import numpy as np

    p = resolve_params(NAME, PARAMS_SCHEMA, params)
    scans = cases.of_kind("rai_scan")
    rows = np.arange(scans.days.shape[0])
    base, follow = read_scans(scans.days)
    b, f = np.maximum(base, 0), np.maximum(follow, 0)

    def has(field: str, at: NDArray[np.int64]) -> NDArray[np.bool_]:
        return np.asarray(at_column(scans.fields[field], at) == True, dtype=bool)  # noqa: E712 - nan is False

    wanted = set(p["modalities"])
    at_follow = {m: has(m, f) for m in ("planar", "spect")}
    both = {m: has(m, b) & at_follow[m] for m in ("planar", "spect")}
    usable = np.zeros(rows.shape, bool)
    comparable = np.zeros(rows.shape, bool)
    for m in wanted:
        usable |= at_follow[m]
        comparable |= both[m]
    whole_scan = np.ones(rows.shape, bool)
    for m in ("planar", "spect"):
        whole_scan &= ~at_follow[m] | (both[m] if m in wanted else False)
    new = (has("avid", f) & ~has("avid", b)).sum(axis=1)
    evaluable = (base >= 0) & (follow >= 0) & usable & comparable
    return evaluate_batch(np.where(whole_scan, new, 0), evaluable, p, codes=True)
