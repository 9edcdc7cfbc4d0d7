"""RECIST 1.0 / 1.1: worked cases with every boundary, findings, properties, batch = single patient."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from trialflow.rules import get_rule, rule_defaults
from trialflow.rules.observations import Case, CtAssessment, Lesion, NonTargetLesion
from trialflow.rules.recist import RULE, evaluate_batch

REFERENCE = Path(__file__).parent / "reference" / "recist_worked_cases.yaml"
DAY0 = dt.date(2026, 1, 12)
BASELINE = dt.date(2026, 1, 5)


def _lesion(lid: str, value: Any, nodal: bool) -> Lesion:
    if value == "too_small":
        return Lesion(lid, "node" if nodal else "lung", None, nodal, too_small=True)
    if isinstance(value, list):
        return Lesion(lid, "lung", None, nodal, fragments_mm=tuple(value))
    return Lesion(lid, "node" if nodal else "lung", value, nodal)


def _ct(date: dt.date, spec: dict[str, Any], nodal: list[str]) -> CtAssessment:
    return CtAssessment(
        date,
        tuple(_lesion(k, v, k in nodal) for k, v in (spec.get("targets") or {}).items()),
        tuple(NonTargetLesion(k, "bone", v) for k, v in (spec.get("nt") or {}).items()),
        tuple(spec.get("new") or ()),
        not_evaluated=bool(spec.get("not_evaluated")),
    )


def case_from(ref: dict[str, Any]) -> Case:
    nodal = ref["baseline"].get("nodal", [])
    obs = [_ct(BASELINE, ref["baseline"], nodal)]
    obs += [_ct(DAY0 + dt.timedelta(weeks=f["week"]), f, nodal) for f in ref["follow_ups"]]
    return Case("P-101", DAY0, tuple(obs))


WORKED = yaml.safe_load(REFERENCE.read_text())["cases"]


@pytest.mark.parametrize("ref", WORKED, ids=[c["name"] for c in WORKED])
def test_recist_worked_case_against_guideline(ref: dict[str, Any]) -> None:
    """Each case of tests/reference/recist_worked_cases.yaml; exact (integer tenths of a mm)."""
    result = RULE.evaluate(case_from(ref), ref["params"])
    assert [a.overall for a in result.assessments] == ref["expect"], ref["note"]
    assert result.best_overall_response == ref["best"], ref["note"]
    assert result.outcome == ref["expect"][-1]


def test_exact_boundary_sums_are_reported() -> None:
    result = RULE.evaluate(case_from(WORKED[0]), WORKED[0]["params"])
    a = result.assessments[0]
    assert (a.sum_mm, a.pct_from_baseline, result.baseline_sum_mm) == (16.1, -30.0, 23.0)
    assert "-30.0 % from baseline 23 mm" in result.reason


def test_nadir_evidence_and_json_keys() -> None:
    ref = next(c for c in WORKED if c["name"] == "PD_against_a_nadir_below_baseline")
    d = RULE.evaluate(case_from(ref), ref["params"]).to_dict()
    assert {"rule", "outcome", "reason", "assessments", "best_overall_response"} <= d.keys()
    second = d["assessments"][1]
    assert (second["sum_mm"], second["nadir_mm"], second["pct_from_baseline"], second["pct_from_nadir"]) == (
        60.0,
        50.0,
        -40.0,
        20.0,
    )
    assert {"date", "sum_mm", "overall", "target", "non_target", "new_lesions"} <= second.keys()


def test_as_of_ignores_later_assessments() -> None:
    ref = next(c for c in WORKED if c["name"] == "PD_against_a_nadir_below_baseline")
    result = RULE.evaluate(case_from(ref), ref["params"], as_of=DAY0 + dt.timedelta(weeks=10))
    assert result.outcome == "PR" and len(result.assessments) == 1


def test_no_baseline_is_NE_not_an_exception() -> None:
    case = Case("P-102", DAY0, (CtAssessment(DAY0 + dt.timedelta(weeks=8), (Lesion("T1", "lung", 20.0),)),))
    result = RULE.evaluate(case, {})
    assert result.outcome == "NE" and "no baseline CT" in result.reason


def test_no_follow_up_is_NE() -> None:
    case = Case("P-103", DAY0, (CtAssessment(BASELINE, (Lesion("T1", "lung", 20.0),)),))
    assert RULE.evaluate(case, {}).outcome == "NE"


@pytest.mark.parametrize(
    ("version", "targets", "slice_mm", "expected"),
    [
        ("1.1", [("T1", "lung", 9.0, False)], None, "9 mm < 10 mm, not measurable"),
        ("1.1", [("T1", "lung", 14.0, False)], 8.0, "14 mm < 16 mm"),
        ("1.1", [("T1", "node", 12.0, True)], None, "node short axis 12 mm < 15 mm"),
        ("1.1", [(f"T{i}", "lung", 20.0, False) for i in range(3)], None, "3 target lesions in lung"),
        (
            "1.1",
            [(f"T{i}", f"o{i}", 20.0, False) for i in range(6)],
            None,
            "6 target lesions, RECIST 1.1 allows 5",
        ),
        ("1.0", [(f"T{i}", "liver", 20.0, False) for i in range(6)], None, "at most 5 per organ"),
        (
            "1.1",
            [("T1", "node", 20.0, True), ("T2", "node-2", 20.0, True), ("T3", "node-3", 16.0, True)],
            None,
            "3 target lesions in lymph node",
        ),
    ],
)
def test_baseline_findings_are_reported_not_raised(
    version: str, targets: list[Any], slice_mm: float | None, expected: str
) -> None:
    base = CtAssessment(
        BASELINE, tuple(Lesion(i, o, d, n) for i, o, d, n in targets), slice_thickness_mm=slice_mm
    )
    follow = CtAssessment(DAY0 + dt.timedelta(weeks=8), base.target)
    result = RULE.evaluate(Case("P-104", DAY0, (base, follow)), {"version": version})
    assert any(expected in f for f in result.findings), result.findings
    assert result.outcome == "SD"


def test_no_findings_for_a_valid_selection() -> None:
    ref = WORKED[0]
    assert RULE.evaluate(case_from(ref), ref["params"]).findings == ()


def test_parameter_overrides_limits() -> None:
    base = CtAssessment(BASELINE, tuple(Lesion(f"T{i}", "lung", 20.0) for i in range(3)))
    case = Case("P-105", DAY0, (base, CtAssessment(DAY0 + dt.timedelta(weeks=8), base.target)))
    assert RULE.evaluate(case, {"max_targets_per_organ": 3}).findings == ()


def test_registered_and_params_schema_complete() -> None:
    assert get_rule("recist") is RULE
    props = RULE.params_schema["properties"]
    assert all("default" in v and "description" in v for v in props.values())
    assert rule_defaults(RULE)["version"] == "1.1"


# ---------------------------------------------------------------- properties

_mm = st.integers(min_value=0, max_value=600).map(lambda t: t / 10)


@st.composite
def _series(draw: st.DrawFn) -> tuple[list[float], list[list[float]], str]:
    k = draw(st.integers(1, 4))
    base = [draw(st.integers(100, 600)) / 10 for _ in range(k)]
    follow = [[draw(_mm) for _ in range(k)] for _ in range(draw(st.integers(1, 5)))]
    return base, follow, draw(st.sampled_from(["1.0", "1.1"]))


def _case(base: list[float], follow: list[list[float]]) -> Case:
    obs = [CtAssessment(BASELINE, tuple(Lesion(f"T{i}", f"o{i}", d) for i, d in enumerate(base)))]
    obs += [
        CtAssessment(
            DAY0 + dt.timedelta(weeks=8 * (j + 1)),
            tuple(Lesion(f"T{i}", f"o{i}", d) for i, d in enumerate(f)),
        )
        for j, f in enumerate(follow)
    ]
    return Case("P-106", DAY0, tuple(obs))


@settings(max_examples=150, deadline=None)
@given(_series())
def test_property_never_PR_when_the_sum_rose(data: tuple[list[float], list[list[float]], str]) -> None:
    base, follow, version = data
    result = RULE.evaluate(_case(base, follow), {"version": version})
    for a in result.assessments:
        if a.sum_mm is not None and a.sum_mm > result.baseline_sum_mm:  # type: ignore[operator]
            assert a.overall not in ("PR", "CR")


@settings(max_examples=150, deadline=None)
@given(_series())
def test_property_never_PD_when_the_sum_fell(data: tuple[list[float], list[list[float]], str]) -> None:
    """No new lesion, no non-target progression, the sum at or below every earlier sum: never PD.

    (After a CR a reappearing lesion is PD by RECIST; such series are left out.)
    """
    base, follow, version = data
    result = RULE.evaluate(_case(base, follow), {"version": version})
    lowest = result.baseline_sum_mm
    seen_cr = False
    for a in result.assessments:
        if a.sum_mm is not None and a.sum_mm <= lowest and not seen_cr:  # type: ignore[operator]
            assert a.overall != "PD", (a, lowest)
        lowest = min(lowest, a.sum_mm)  # type: ignore[type-var]
        seen_cr |= a.target == "CR"


# ---------------------------------------------------------------- batch = single patient


def _random_case(rng: np.random.Generator, pid: int) -> tuple[Case, dict[str, Any]]:
    k = int(rng.integers(0, 4))
    nodal = rng.random(k) < 0.3
    base = rng.integers(100, 500, size=k) / 10
    n_nt = int(rng.integers(0, 3))
    obs: list[Any] = [
        CtAssessment(
            BASELINE,
            tuple(Lesion(f"T{i}", f"o{i}", float(base[i]), bool(nodal[i])) for i in range(k)),
            tuple(NonTargetLesion(f"N{i}", "bone", "present") for i in range(n_nt)),
        )
    ]
    weeks = np.sort(rng.choice(np.arange(3, 40), size=4, replace=False))
    statuses = ["present", "absent", "unequivocal_progression", "not_evaluated"]
    for w in weeks:
        scale = rng.choice([0.0, 0.5, 0.7, 1.0, 1.2, 1.5])
        vals = [float(np.round(base[i] * scale * rng.uniform(0.8, 1.2), 1)) for i in range(k)]
        targets = [
            Lesion(f"T{i}", f"o{i}", None if rng.random() < 0.05 else vals[i], bool(nodal[i]))
            for i in range(k)
        ]
        nts = tuple(
            NonTargetLesion(f"N{i}", "bone", str(rng.choice(statuses, p=[0.7, 0.15, 0.05, 0.1])))  # type: ignore[arg-type]
            for i in range(n_nt)
        )
        obs.append(
            CtAssessment(
                DAY0 + dt.timedelta(weeks=int(w)),
                tuple(targets),
                nts,
                ("L1",) if rng.random() < 0.05 else (),
                not_evaluated=bool(rng.random() < 0.05),
            )
        )
    return Case(f"P-{pid:04d}", DAY0, tuple(obs)), {"weeks": weeks, "nodal": nodal}


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_batch_equals_single_patient_on_a_random_cohort(version: str) -> None:
    """300 random patients (seeded): overall per assessment, final and best response identical."""
    rng = np.random.default_rng(20260112)
    params = {"version": version}
    cases = [_random_case(rng, i) for i in range(300)]
    singles = [RULE.evaluate(c, params) for c, _ in cases]
    na = 4
    sums = np.full((len(cases), na + 1), np.nan)
    new = np.zeros((len(cases), na), dtype=bool)
    cr = np.zeros((len(cases), na), dtype=bool)
    complete = np.ones((len(cases), na), dtype=bool)
    nt = np.full((len(cases), na), "none", dtype=object)
    days = np.zeros((len(cases), na))
    for p, (case, meta) in enumerate(cases):
        cts = case.of_kind("ct")
        sums[p, 0] = sum(t.diameter_mm for t in cts[0].target)
        base_nt = [n.id for n in cts[0].non_target]
        for k, ct in enumerate(cts[1:]):
            days[p, k] = meta["weeks"][k] * 7
            measured = [t.diameter_mm for t in ct.target if t.diameter_mm is not None]
            if not ct.not_evaluated:
                sums[p, k + 1] = round(sum(measured), 1)
            complete[p, k] = len(measured) == len(ct.target)
            new[p, k] = bool(ct.new_lesions)
            if version == "1.1":
                cr[p, k] = all(
                    t.diameter_mm is not None and (t.diameter_mm < 10 if t.nodal else t.diameter_mm == 0)
                    for t in ct.target
                )
            else:
                cr[p, k] = all(t.diameter_mm == 0 for t in ct.target)
            status = [n.status for n in ct.non_target]
            nt[p, k] = (
                "PD"
                if "unequivocal_progression" in status
                else "none"
                if not base_nt
                else "NE"
                if "not_evaluated" in status
                else "CR"
                if all(s == "absent" for s in status)
                else "non-CR/non-PD"
            )
    batch = evaluate_batch(
        sums, new, np.zeros_like(new), cr, params, days=days, nontarget=nt, complete=complete
    )
    assert [s.outcome for s in singles] == batch.outcome.tolist()
    assert [s.best_overall_response for s in singles] == batch.best_overall_response.tolist()
    assert [[a.overall for a in s.assessments] for s in singles] == batch.overall.tolist()


def test_batch_simple_flags() -> None:
    """The simulator's form: sums, new-lesion, non-target-PD and CR flags."""
    sums = np.array([[50.0, 35.0, 34.0], [50.0, 45.0, 60.0], [50.0, 0.0, 0.0], [50.0, 40.0, 40.0]])
    new = np.array([[False, False], [False, False], [False, False], [False, True]])
    ntpd = np.zeros((4, 2), dtype=bool)
    cr = sums[:, 1:] == 0
    b = evaluate_batch(sums, new, ntpd, cr, {"version": "1.1"}, days=[56, 112])
    assert b.overall.tolist() == [["PR", "PR"], ["SD", "PD"], ["CR", "CR"], ["SD", "PD"]]
    assert b.final.tolist() == ["PR", "PD", "CR", "PD"]
    assert b.best_overall_response.tolist() == ["PR", "SD", "CR", "SD"]
