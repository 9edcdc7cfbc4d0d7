"""RaI uptake re-induction: lesion-by-lesion comparison of the baseline and 6-month 131I scans."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from trialflow.rules.observations import AvidLesion, Case, RaiScan
from trialflow.rules.rai_uptake import RULE, evaluate_batch

DAY0 = dt.date(2026, 1, 12)
BASE = dt.date(2026, 1, 5)
FOLLOW = dt.date(2026, 7, 20)


def scans(
    base: list[AvidLesion], follow: list[AvidLesion] | None, mods: tuple[str, ...] = ("planar", "spect")
) -> Case:
    obs = [RaiScan(BASE, ("planar", "spect"), tuple(base))]
    if follow is not None:
        obs.append(RaiScan(FOLLOW, mods, tuple(follow)))
    return Case("P-301", DAY0, tuple(obs))


def test_new_avid_lesion_is_reinduced() -> None:
    r = RULE.evaluate(
        scans([AvidLesion("thyroid bed")], [AvidLesion("Thyroid bed"), AvidLesion("left lung")]), {}
    )
    assert (r.outcome, r.new_avid_lesions) == ("reinduced", ("left lung",))
    assert r.to_dict()["new_avid_lesions"] == ["left lung"]
    assert (r.baseline_date, r.follow_up_date) == (BASE, FOLLOW)


def test_no_new_lesion_is_not_reinduced() -> None:
    """The Leiden trial's result: no re-induction (Hoftijzer 2009)."""
    assert RULE.evaluate(scans([], []), {}).outcome == "not_reinduced"


@pytest.mark.parametrize(("follow", "why"), [(None, "no follow-up"), ("before", "no baseline")])
def test_missing_scan_is_not_evaluable(follow: str | None, why: str) -> None:
    case = scans([], None) if follow is None else Case("P-302", DAY0, (RaiScan(FOLLOW, ("planar",), ()),))
    r = RULE.evaluate(case, {})
    assert r.outcome == "not_evaluable" and why in r.reason


def test_modalities_parameter() -> None:
    case = scans([], [AvidLesion("L1", "spect")])
    assert RULE.evaluate(case, {"modalities": ["planar"]}).outcome == "not_reinduced"
    assert RULE.evaluate(case, {"modalities": ["spect"]}).outcome == "reinduced"
    only_planar = scans([], [AvidLesion("L1")], mods=("planar",))
    assert RULE.evaluate(only_planar, {"modalities": ["spect"]}).outcome == "not_evaluable"


def test_lesions_are_compared_on_a_modality_acquired_at_both_scans() -> None:
    """A SPECT-only finding at 6 months is not new against a baseline that had no SPECT."""
    planar_baseline = [RaiScan(BASE, ("planar",), ())]
    follow_spect = RaiScan(FOLLOW, ("planar", "spect"), (AvidLesion("L1", "spect"),))
    follow_planar = RaiScan(FOLLOW, ("planar", "spect"), (AvidLesion("L1", "planar"),))
    assert RULE.evaluate(Case("P-303", DAY0, (*planar_baseline, follow_spect)), {}).outcome == "not_reinduced"
    assert RULE.evaluate(Case("P-303", DAY0, (*planar_baseline, follow_planar)), {}).outcome == "reinduced"
    spect_only = RaiScan(FOLLOW, ("spect",), (AvidLesion("L1", "spect"),))
    r = RULE.evaluate(Case("P-303", DAY0, (*planar_baseline, spect_only)), {})
    assert r.outcome == "not_evaluable" and "acquired at both" in r.reason


def test_min_new_avid_lesions_and_as_of() -> None:
    case = scans([], [AvidLesion("L1"), AvidLesion("L2")])
    assert RULE.evaluate(case, {"min_new_avid_lesions": 3}).outcome == "not_reinduced"
    assert RULE.evaluate(case, {}, as_of=FOLLOW - dt.timedelta(days=1)).outcome == "not_evaluable"


def test_batch_equals_single() -> None:
    counts, ok = np.array([0, 1, 2, 5]), np.array([True, True, False, True])
    out = evaluate_batch(counts, ok, {"min_new_avid_lesions": 2})
    assert out.tolist() == ["not_reinduced", "not_reinduced", "not_evaluable", "reinduced"]
    single = RULE.evaluate(scans([], [AvidLesion("a"), AvidLesion("b")]), {"min_new_avid_lesions": 2}).outcome
    assert single == evaluate_batch([2], [True], {"min_new_avid_lesions": 2})[0]
