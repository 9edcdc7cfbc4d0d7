"""The rules' own readings chosen in issue 9 (findings 4, 5, 8, 9), each named after its source with the
expected answer derived by hand; through the rule's public ``evaluate`` and ``trialflow rules eval``."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
import yaml
from typer.testing import CliRunner

from trialflow.cli import app
from trialflow.rules import get_rule
from trialflow.rules._params import ParamsError
from trialflow.rules.observations import Case, observation_from_dict

DAY0 = dt.date(2026, 1, 12)
RECIST, TG, RAI = get_rule("recist"), get_rule("tg_slope"), get_rule("rai_uptake")
TG_RESPONSE = (120, 95, 70, 61, 48, 42, 30, 27)  # DOMAIN worked example: t = -25.98, two-sided p = 2.1e-7
TG_STABLE = (45, 52, 41, 50, 47, 55, 43, 49)  # b = +0.001385/week, t = 0.341, two-sided p = 0.745


def on(n: int) -> str:
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def case(*records: dict[str, Any]) -> Case:
    return Case("P-950", DAY0, tuple(observation_from_dict(r) for r in records))


def ct(n: int, targets: list[tuple[str, float, bool]], non_target: str = "present") -> dict[str, Any]:
    return {
        "kind": "ct",
        "date": on(n),
        "slice_thickness_mm": 5,
        "target": [
            {"id": i, "organ": "lymph_node" if node else "lung", "nodal": node, "diameter_mm": mm}
            for i, mm, node in targets
        ],
        "non_target": [{"id": "N1", "organ": "bone", "status": non_target}],
        "new_lesions": [],
    }


def lungs(n: int, sizes: list[float]) -> dict[str, Any]:
    return ct(n, [(f"T{i + 1}", s, False) for i, s in enumerate(sizes)])


def cli_eval(tmp_path: Path, rule: str, records: list[dict[str, Any]], *params: str) -> tuple[int, str, str]:
    f = tmp_path / "case.yaml"
    f.write_text(
        yaml.safe_dump({"patient": "P-950", "day0": DAY0.isoformat(), "observations": records}), encoding="utf-8"
    )
    args = ["rules", "eval", rule, "--input", str(f), "--json"]
    for p in params:
        args += ["--param", p]
    r = CliRunner().invoke(app, args)
    return r.exit_code, r.stdout, r.stderr


# ---------------------------------------------------------------- finding 4


def test_recist_faq_reappearance_after_a_target_only_cr_is_added_back_to_the_sum() -> None:
    """RECIST working group FAQ (lesions that disappear and reappear): automatic PD for a reappearing
    lesion applies after an *overall* CR; otherwise the lesion is added back and the sum rule decides.

    RECIST 1.1, two nodal targets 20 + 18 = 38 mm and a bone non-target present throughout.
    d56: 9 + 9 = 18 mm, both nodes < 10 mm: target CR, non-target present: overall PR (Table 4).
    d112: 11 + 9 = 20 mm: +2 mm over the nadir 18 (+11.1 %; 1.1 needs +20 % and +5 mm): not PD;
    (38 - 20) / 38 = -47.4 % from baseline: PR. The node at 11 mm is not < 10, so the target is PR.
    """
    nodes = lambda a, b: [("T1", a, True), ("T2", b, True)]  # noqa: E731
    r = RECIST.evaluate(case(ct(-4, nodes(20, 18)), ct(56, nodes(9, 9)), ct(112, nodes(11, 9))), {"version": "1.1"})
    assert [(a.target, a.overall) for a in r.assessments] == [("CR", "PR"), ("PR", "PR")]
    assert r.assessments[-1].pct_from_nadir == pytest.approx(100 * 2 / 18, abs=0.01)
    assert r.outcome == "PR"


def test_recist_faq_reappearance_after_an_overall_cr_is_pd() -> None:
    """Same nodes, but the non-target has gone too at d56 (overall CR, Table 4): the node back at 11 mm
    on d112 is progression after a complete response: PD."""
    nodes = lambda a, b: [("T1", a, True), ("T2", b, True)]  # noqa: E731
    r = RECIST.evaluate(
        case(ct(-4, nodes(20, 18)), ct(56, nodes(9, 9), "absent"), ct(112, nodes(11, 9), "absent")), {"version": "1.1"}
    )
    assert [a.overall for a in r.assessments] == ["CR", "PD"] and r.outcome == "PD"


# ---------------------------------------------------------------- finding 5


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_therasse_2000_exact_boundary_on_what_was_entered_just_below_plus_20(version: str) -> None:
    """Therasse 2000 / Eisenhauer 2009: PD at >= 20 % over the nadir. [30, 20] = 50 → [35.96, 24] = 59.96:
    (59.96 - 50) / 50 = +19.92 % < 20 %: SD (and +9.96 mm, so 1.1's 5 mm changes nothing). Rounding the
    diameters to 0.1 mm would give 60.0 = +20 %: PD, the wrong answer."""
    r = RECIST.evaluate(case(lungs(-4, [30, 20]), lungs(182, [35.96, 24])), {"version": version})
    a = r.assessments[-1]
    assert (a.overall, a.sum_mm, a.pct_from_nadir) == ("SD", 59.96, 19.92)
    assert "sum 59.96 mm" in r.reason


def test_therasse_2000_exact_boundary_on_what_was_entered_just_short_of_minus_30() -> None:
    """PR at >= 30 % below baseline. [60, 40] = 100 → [40.04, 30] = 70.04: -29.96 %: SD, not PR."""
    r = RECIST.evaluate(case(lungs(-4, [60, 40]), lungs(182, [40.04, 30])), {"version": "1.0"})
    assert (r.outcome, r.assessments[-1].sum_mm, r.assessments[-1].pct_from_baseline) == ("SD", 70.04, -29.96)
    r = RECIST.evaluate(case(lungs(-4, [60, 40]), lungs(182, [40, 30])), {"version": "1.0"})
    assert r.assessments[-1].overall == "PR"  # exactly -30 %: PR


def test_more_precision_than_trialflow_compares_is_refused_never_rounded(tmp_path: Path) -> None:
    """A diameter of 35.9612 mm (four decimals, finer than 1 µm) is refused with a message naming the
    lesion, in a case file (exit 1, FILE:LINE:COL) and in the rule (NE with the reason); never rounded."""
    records = [lungs(-4, [30, 20]), lungs(182, [35.9612, 24])]
    code, _, err = cli_eval(tmp_path, "recist", records)
    assert code == 1 and "lesion T1 diameter_mm 35.9612 has more than 3 decimals" in err
    from trialflow.rules.observations import CtAssessment, Lesion

    fine = CtAssessment(DAY0 + dt.timedelta(days=182), (Lesion("T1", "lung", 35.9612), Lesion("T2", "lung", 24.0)))
    r = RECIST.evaluate(Case("P-950", DAY0, (observation_from_dict(records[0]), fine)), {})
    assert r.outcome == "NE" and "35.9612 mm has more than 3 decimals" in r.reason


# ---------------------------------------------------------------- finding 8


def scan(n: int, modalities: list[str], avid: list[Any]) -> dict[str, Any]:
    return {"kind": "rai_scan", "date": on(n), "modalities": modalities, "avid_lesions": avid}


@pytest.mark.parametrize(
    ("lesion", "outcome", "uncomparable"),
    [
        ({"id": "neck", "modality": "spect"}, "not_reinduced", ()),
        ("neck", "not_reinduced", ("neck",)),
        ({"id": "neck", "modality": "planar"}, "reinduced", ()),
    ],
)
def test_synopsis_planar_and_or_spect_like_with_like_whatever_the_tagging(
    lesion: Any, outcome: str, uncomparable: tuple[str, ...]
) -> None:
    """Synopsis: "RaI accumulating lesions at RaI scintigraphy, planar images and/or SPECT". Against a
    planar-only baseline (nothing avid), a follow-up planar + SPECT scan with one avid lesion:
    tagged spect → SPECT was not acquired at baseline: not comparable, not counted: not_reinduced;
    untagged → which modality showed it is unknown and SPECT is not comparable: not counted either (listed
    as uncomparable): not_reinduced; tagged planar → comparable and new: reinduced."""
    r = RAI.evaluate(case(scan(-7, ["planar"], []), scan(182, ["planar", "spect"], [lesion])), {})
    assert (r.outcome, r.uncomparable_lesions) == (outcome, uncomparable)


def test_synopsis_an_untagged_lesion_counts_when_every_modality_of_its_scan_is_comparable() -> None:
    """Both scans planar + SPECT: an untagged new lesion is comparable whichever modality showed it:
    reinduced."""
    r = RAI.evaluate(case(scan(-7, ["planar", "spect"], []), scan(182, ["planar", "spect"], ["neck"])), {})
    assert r.outcome == "reinduced" and r.new_avid_lesions == ("neck",)


# ---------------------------------------------------------------- finding 9


def tg_case(values: tuple[float, ...]) -> Case:
    return Case(
        "P-950",
        DAY0,
        tuple(
            observation_from_dict({"kind": "tg", "date": on(28 * i), "value": v, "loq": 0.2})
            for i, v in enumerate(values)
        ),
    )


def _ols(values: tuple[float, ...]) -> Any:
    weeks = np.arange(len(values)) * 4.0
    return sm.OLS(np.log(np.array(values, dtype=float)), sm.add_constant(weeks)).fit()


def test_synopsis_no_significant_positive_slope_a_one_sided_test_declares_its_direction(tmp_path: Path) -> None:
    """Synopsis: "no statistically significant positive slope". A one-sided test has a declared direction;
    ``test: one_sided`` without one is refused, in a rule call and in ``rules eval`` (exit 2)."""
    with pytest.raises(ParamsError, match="one_sided_greater"):
        TG.evaluate(tg_case(TG_STABLE), {"test": "one_sided"})
    code, _, err = cli_eval(tmp_path, "tg_slope", [], "test=one_sided")
    assert code == 2 and "one_sided_greater" in err


def test_synopsis_one_sided_greater_never_turns_a_falling_series_into_a_response() -> None:
    """One-sided H1: b > 0 on the falling DOMAIN example (t = -25.98): p = P(T_6 > -25.98) = 1 - p2/2
    ≈ 1 - 1.07e-7 (statsmodels' two-sided p2 = 2.1457e-7): stable, not response (choosing the direction
    from the data would say response at p = 1.07e-7). H1: b < 0 on the same data: p = p2/2: response."""
    ols = _ols(TG_RESPONSE)
    greater = TG.evaluate(tg_case(TG_RESPONSE), {"test": "one_sided_greater"})
    less = TG.evaluate(tg_case(TG_RESPONSE), {"test": "one_sided_less"})
    assert greater.outcome == "stable" and greater.p_value == pytest.approx(1 - ols.pvalues[1] / 2, rel=1e-12)
    assert less.outcome == "response" and less.p_value == pytest.approx(ols.pvalues[1] / 2, rel=1e-6)


def test_synopsis_one_sided_p_values_against_statsmodels_on_the_stable_example() -> None:
    """Stable DOMAIN example, t = +0.341 on 6 df, two-sided p2 = 0.745: greater p = p2/2 = 0.3725,
    less p = 1 - p2/2 = 0.6275; both stable."""
    p2 = _ols(TG_STABLE).pvalues[1]
    g = TG.evaluate(tg_case(TG_STABLE), {"test": "one_sided_greater"})
    le = TG.evaluate(tg_case(TG_STABLE), {"test": "one_sided_less"})
    assert (g.outcome, le.outcome) == ("stable", "stable")
    assert g.p_value == pytest.approx(p2 / 2, rel=1e-10) and le.p_value == pytest.approx(1 - p2 / 2, rel=1e-10)
    assert math.isclose(round(p2, 3), 0.745)


def test_one_sided_batch_equals_single_patient() -> None:
    """The batch (the simulator's path, no p-values) reads the declared direction exactly as evaluate."""
    from trialflow.rules import tg_slope

    series = [TG_RESPONSE, TG_STABLE, tuple(reversed(TG_RESPONSE))]
    weeks = np.tile(np.arange(8) * 4.0, (3, 1))
    for test in ("one_sided_greater", "one_sided_less", "two_sided"):
        batch = tg_slope.evaluate_batch(
            weeks, np.array(series, dtype=float), np.zeros(3, bool), {"test": test}, pvalues=False
        )
        assert batch.outcome.tolist() == [TG.evaluate(tg_case(s), {"test": test}).outcome for s in series]


def test_json_of_a_one_sided_result_names_the_test(tmp_path: Path) -> None:
    records = [{"kind": "tg", "date": on(28 * i), "value": v, "loq": 0.2} for i, v in enumerate(TG_STABLE)]
    code, out, _ = cli_eval(tmp_path, "tg_slope", records, "test=one_sided_greater")
    assert code == 0 and json.loads(out)["test"] == "one_sided_greater"
