"""The 6-month decision sees all the evidence the protocol means (issue 9, findings 1-3, 6, 7, 10).

Each test is named after its source and derives the expected answer by hand in its docstring. The
decision is asked through the engine (``evaluate``) and compared with ``trialflow rules eval`` on the same
records where the finding is about the two disagreeing. Dates: day 0 = 2026-01-12, "dN" = N days later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from evidence_helpers import (
    DECISION_DAY,
    day,
    decision,
    lungs,
    patient,
    rules_eval,
    scan,
    sqlite_store,
    tg_draws,
)
from workflow_helpers import DAY0, TG_PROGRESSION, TG_STABLE, USER, new_db_url, tg

from trialflow.engine import Store, import_file, init_store
from trialflow.protocol import bundled_protocol_path

__all__ = ["sqlite_store"]  # the fixture, re-exported for pytest


def test_synopsis_since_the_treatment_started_an_unscheduled_ct_sets_the_nadir(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """Synopsis, CT imaging: progression "taking as reference the smallest sum longest diameter since the
    treatment started"; Therasse 2000: PD is >= 20 % over the smallest sum recorded since treatment started.

    Sums: baseline d-4 [30, 20] = 50; an unscheduled CT on d84 [18, 12] = 30; the 6-month CT on d182
    [24, 16] = 40. The nadir before d182 is min(50, 30) = 30, and 40 - 30 = 10 = +33.3 % >= 20 %: PD.
    Tg rises (DOMAIN worked example, progression) and no lesion takes up RaI: nothing is favourable, so
    the branch is off study. Reading only the two scheduled CTs gives 40 vs 50 = -20 %: SD, continued
    Sorafenib, the wrong arm. ``rules eval`` on the same three CTs says PD.
    """
    records = [
        scan(-7),
        lungs(-4, [30, 20]),
        lungs(84, [18, 12]),
        lungs(182, [24, 16]),
        scan(182),
        *tg_draws(TG_PROGRESSION),
    ]
    patient(sqlite_store, "P-901", records)
    p = decision(sqlite_store, "P-901")
    recist = p.criteria["recist"]
    assert p.outcomes == {"rai_uptake": "not_reinduced", "tg_slope": "progression", "recist": "PD"}
    assert [a["nadir_mm"] for a in recist["assessments"]] == [50.0, 30.0]
    assert recist["assessments"][-1]["pct_from_nadir"] == pytest.approx(33.33, abs=0.01)
    d84 = next(r for r in recist["evidence"]["records"] if r["date"] == day(84).isoformat())
    assert d84 == {**d84, "visit": "unscheduled", "used": True, "study_day": 84}
    assert p.recommended_phase == "off_study"
    assert rules_eval(tmp_path, "recist", "P-901", records)["outcome"] == "PD"
    assert not recist["differs_from_rules_eval"]


def test_therasse_2000_eisenhauer_2009_an_interim_pd_is_progression_since_the_treatment_started(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """Therasse 2000 and Eisenhauer 2009 define progression at any assessment against the nadir, and the
    best overall response runs "from the start of the treatment until disease progression".

    Sums 50 (d-4) → 65 on d84 (+30 % over the nadir 50: PD) → 52 on d182 (+4 %: SD at that time point).
    Progression has happened on d84, and a later smaller sum does not undo it: "absence of progression
    since the treatment started" is false, RECIST is PD; with Tg progressing and no uptake: off study.
    The rule says the same (its outcome PD with the progression date, not the last time point's SD), and
    the evidence shows both time points.
    """
    records = [
        scan(-7),
        lungs(-4, [30, 20]),
        lungs(84, [39, 26]),
        lungs(182, [31.2, 20.8]),
        scan(182),
        *tg_draws(TG_PROGRESSION),
    ]
    patient(sqlite_store, "P-902", records)
    p = decision(sqlite_store, "P-902")
    recist = p.criteria["recist"]
    assert [a["overall"] for a in recist["assessments"]] == ["PD", "SD"]
    assert recist["outcome"] == "PD" and recist["progression_date"] == day(84).isoformat()
    assert "progression since the treatment started stands" in recist["reason"]
    assert p.recommended_phase == "off_study"
    cli = rules_eval(tmp_path, "recist", "P-902", records)
    assert (cli["outcome"], cli["best_overall_response"], cli["progression_date"]) == ("PD", "PD", "2026-04-06")


def test_synopsis_tg_measured_at_0_to_28_weeks_with_the_declared_tolerance(sqlite_store: Store, tmp_path: Path) -> None:
    """Synopsis: Tg "measured at 0, 4, 8, 12, 16, 20, 24 and 28 weeks"; the criterion declares
    ``tolerance_days: 7`` and the slope uses the actual dates.

    Eight stable values (45, 52, 41, 50, 47, 55, 43, 49), week 0 on d0 and the others drawn 4 days late
    (d32, d60, ..., d200): every sample is within weeks 0-28 ± 7 days, so n = 8, and OLS of ln Tg on the
    actual weeks (statsmodels below) has p far above 0.05: stable, favourable → continued Sorafenib,
    although RECIST is PD ([30, 20] → [36, 24] = +20 %, exactly the 1.0 threshold) and there is no uptake.
    Reading only the ± 3-day visit windows keeps the week-0 sample alone: "not evaluable" → off study.
    """
    records = [scan(-7), lungs(-4, [30, 20]), lungs(182, [36, 24]), scan(182), *tg_draws(TG_STABLE, late_days=4)]
    patient(sqlite_store, "P-903", records)
    p = decision(sqlite_store, "P-903")
    tg_res = p.criteria["tg_slope"]
    weeks = np.array([0, 32, 60, 88, 116, 144, 172, 200]) / 7.0
    ols = sm.OLS(np.log(np.array(TG_STABLE, dtype=float)), sm.add_constant(weeks)).fit()
    assert (tg_res["outcome"], tg_res["n"]) == ("stable", 8)
    assert tg_res["slope_per_week"] == pytest.approx(ols.params[1], rel=1e-10)
    assert tg_res["p_value"] == pytest.approx(ols.pvalues[1], rel=1e-8) and ols.pvalues[1] > 0.05
    assert p.outcomes["recist"] == "PD" and p.recommended_phase == "continued_sorafenib"
    assert rules_eval(tmp_path, "tg_slope", "P-903", records)["n"] == 8


def test_spencer_pmc4154792_a_positive_tgab_between_draws_makes_tg_not_evaluable(sqlite_store: Store) -> None:
    """Criterion 2 (Spencer et al., PMC4154792): "any sample positive for anti-Tg antibodies" makes
    immunometric Tg unreliable.

    Stable Tg at weeks 0-28 with a negative TgAb at each draw, plus a positive TgAb on d100 (between the
    week-12 and week-16 draws). d100 is inside the criterion's range d-7..d203, so Tg is not evaluable;
    with RECIST PD (+20 %) and no uptake nothing is favourable: off study (not continued Sorafenib).
    """
    records = [
        scan(-7),
        lungs(-4, [30, 20]),
        lungs(182, [36, 24]),
        scan(182),
        *tg_draws(TG_STABLE),
        {"kind": "tgab", "date": day(100).isoformat(), "result": "positive"},
    ]
    patient(sqlite_store, "P-904", records)
    p = decision(sqlite_store, "P-904")
    assert p.outcomes["tg_slope"] == "not_evaluable"
    assert "anti-Tg antibodies positive on 2026-04-22" in p.criteria["tg_slope"]["reason"]
    assert p.recommended_phase == "off_study"


def test_synopsis_after_6_months_a_late_scan_is_not_the_6_month_scan_and_says_so(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """Synopsis: "After 6 months, 131I scintigraphy and CT scans will be repeated"; the 6-month scan's
    window is d182 -7/+14 = d175-d196.

    A scan on d198 showing a newly avid lesion is outside that window: not used, so RaI uptake is not
    evaluable, and the reason says what really happened (not "no follow-up scan"). Tg is stable and
    RECIST SD (50 → 49 mm), so the protocol as written continues Sorafenib; on all records the rule would
    say re-induced, which changes the arm: the investigator sees that as a flag.
    """
    records = [
        scan(-7),
        lungs(-4, [30, 20]),
        lungs(182, [29, 20]),
        scan(198, ["lung-left-lower"]),
        *tg_draws(TG_STABLE),
    ]
    patient(sqlite_store, "P-910", records)
    p = decision(sqlite_store, "P-910")
    rai = p.criteria["rai_uptake"]
    assert rai["outcome"] == "not_evaluable"
    assert "2026-07-29 (d198) is outside the window d175-d196 of month6_rai_scan; not used" in rai["reason"]
    assert "no follow-up" not in rai["reason"]
    assert rai["rules_eval"]["outcome"] == "reinduced"
    assert set(rai["differs_because"]) == {"evidence.final_visit", "evidence.study_days.to"}
    assert p.recommended_phase == "continued_sorafenib"
    assert any("rai_uptake" in f and "rai_plus_sorafenib instead of continued_sorafenib" in f for f in p.flags)
    assert rules_eval(tmp_path, "rai_uptake", "P-910", records)["outcome"] == "reinduced"


def test_therasse_2000_baseline_never_more_than_4_weeks_before_treatment_is_a_flag(sqlite_store: Store) -> None:
    """Therasse 2000 / Eisenhauer 2009: baseline evaluations "as close as possible to the beginning of
    treatment and never more than 4 weeks before" it; the criterion's range starts at d-28.

    The baseline CT and scan are on d-90 (inside the protocol's baseline visit window, which is anchored
    at enrolment on d-100, but 90 days before the first dose): not a baseline, not used, so RECIST is NE
    ("no baseline CT") and RaI uptake not evaluable; the investigator sees a flag naming the CT, d-90 and
    the setting evidence.study_days.from.
    """
    records = [scan(-90), lungs(-90, [30, 20]), lungs(182, [29, 20]), scan(182), *tg_draws(TG_STABLE)]
    patient(sqlite_store, "P-907", records, enrolled=day(-100))
    p = decision(sqlite_store, "P-907")
    assert p.outcomes["recist"] == "NE"
    flag = next(f for f in p.flags if f.startswith("recist: the ct of 2025-10-14"))
    assert "d-90 is before d-28" in flag and "evidence.study_days.from" in flag


def test_therasse_2000_too_many_and_non_measurable_targets_are_decision_flags(sqlite_store: Store) -> None:
    """Therasse 2000: at most 10 targets, 5 per organ, each >= 10 mm on spiral CT.

    Eleven lung targets (T1-T11), T11 8 mm: three problems, each a flag on the decision (not only a
    finding of the rule): "T11: 8 mm < 10 mm, not measurable", "11 target lesions, RECIST 1.0 allows 10",
    "11 target lesions in lung (...), at most 5 per organ".
    """
    sizes = [12.0] * 10 + [8.0]
    records = [scan(-7), lungs(-4, sizes), lungs(182, sizes), scan(182), *tg_draws(TG_STABLE)]
    patient(sqlite_store, "P-908", records)
    flags = decision(sqlite_store, "P-908").flags
    assert "recist: target T11: 8 mm < 10 mm, not measurable" in flags
    assert "recist: 11 target lesions, RECIST 1.0 allows 10" in flags
    assert any(f.startswith("recist: 11 target lesions in lung") and "at most 5 per organ" in f for f in flags)


def test_eisenhauer_2009_a_10_to_15_mm_node_as_target_is_a_decision_flag(tmp_path: Path) -> None:
    """Eisenhauer 2009 (RECIST 1.1): a node is a measurable target only with a short axis >= 15 mm
    (10-15 mm: non-target). A protocol amended to 1.1 with a 12 mm node as target gets the flag
    "target T3: node short axis 12 mm < 15 mm, not a measurable target ...".
    """
    text = bundled_protocol_path().read_text(encoding="utf-8").replace('{version: "1.0",', '{version: "1.1",')
    path = tmp_path / "recist11.yaml"
    path.write_text(text, encoding="utf-8")
    store, _ = init_store(next(new_db_url("sqlite", tmp_path)), path, USER)
    node = {"id": "T3", "organ": "lymph_node", "nodal": True, "diameter_mm": 12}
    base, six = lungs(-4, [30, 20]), lungs(182, [29, 20])
    base["target"].append(node)
    six["target"].append(node)
    try:
        patient(store, "P-909", [scan(-7), base, six, scan(182), *tg_draws(TG_STABLE)])
        flags = decision(store, "P-909").flags
    finally:
        store.close()
    assert any(f.startswith("recist: target T3: node short axis 12 mm < 15 mm") for f in flags)


def test_one_sample_one_value_a_tg_entered_twice_counts_once_in_rules_eval_and_the_workflow(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """DOMAIN worked example (stable): 45, 52, 41, 50, 47, 55, 43, 49 at weeks 0-28 gives b = +0.001385/week,
    p = 0.745, n = 8. The week-12 sample entered twice in a case file is one sample: ``rules eval`` says
    n = 8 with the same slope (not n = 9), and the workflow importing the same file says the same.
    """
    records = [*tg_draws(TG_STABLE)]
    records.append(tg(day(84), 50))
    cli = rules_eval(tmp_path, "tg_slope", "P-906", records)
    assert (cli["n"], round(cli["slope_per_week"], 6), round(cli["p_value"], 3)) == (8, 0.001385, 0.745)
    assert {"date": day(84).isoformat(), "reason": "the same sample entered twice: counted once"} in cli["excluded"]
    patient(sqlite_store, "P-906", [scan(-7), lungs(-4, [30, 20]), lungs(182, [29, 20]), scan(182)])
    case = tmp_path / "P-906-import.yaml"
    import yaml

    case.write_text(
        yaml.safe_dump({"patient": "P-906", "day0": DAY0.isoformat(), "observations": records}), encoding="utf-8"
    )
    import_file(sqlite_store, case, USER)
    wf = decision(sqlite_store, "P-906").criteria["tg_slope"]
    assert (wf["n"], wf["slope_per_week"]) == (cli["n"], cli["slope_per_week"])
    assert DECISION_DAY.isoformat() == "2026-08-03"


def test_therasse_2000_progression_on_an_interim_ct_needs_no_6_month_ct(sqlite_store: Store) -> None:
    """Therasse 2000: progression is defined at any assessment. Sums 50 → 65 on d84 (+30 %: PD), and the
    6-month CT is missed: progression has been documented, so RECIST is PD (not "no 6-month CT: NE"); the
    final-visit setting asks for the 6-month result only when there is no progression to report."""
    records = [scan(-7), lungs(-4, [30, 20]), lungs(84, [39, 26]), scan(182), *tg_draws(TG_PROGRESSION)]
    patient(sqlite_store, "P-911", records)
    p = decision(sqlite_store, "P-911")
    assert p.outcomes["recist"] == "PD" and p.criteria["recist"]["progression_date"] == day(84).isoformat()
    assert p.recommended_phase == "off_study"


def test_an_amendment_to_unscheduled_exclude_is_shown_as_the_setting_that_changes_the_arm(tmp_path: Path) -> None:
    """The visit-window reading, declared: ``unscheduled: exclude`` for RECIST. The patient of the first
    test (50 → 30 on an unscheduled d84 CT → 40 at 6 months) is then judged on the two scheduled CTs only:
    40 vs 50 = -20 %: SD, favourable → continued Sorafenib. The evidence lists the d84 CT as not used by
    evidence.unscheduled, and a flag says that on all records RECIST is PD and the arm would be off study."""
    text = bundled_protocol_path().read_text(encoding="utf-8")
    old = "        final_visit: month6_ct\n        unscheduled: include\n"
    assert text.count(old) == 1
    path = tmp_path / "visit_windows.yaml"
    new = "        final_visit: month6_ct\n        unscheduled: exclude\n"
    path.write_text(text.replace(old, new), encoding="utf-8")
    store, _ = init_store(next(new_db_url("sqlite", tmp_path)), path, USER)
    try:
        patient(store, "P-912", [scan(-7), lungs(-4, [30, 20]), lungs(84, [18, 12]), lungs(182, [24, 16]),
                                 scan(182), *tg_draws(TG_PROGRESSION)])
        p = decision(store, "P-912")
    finally:
        store.close()
    recist = p.criteria["recist"]
    assert (recist["outcome"], recist["rules_eval"]["outcome"]) == ("SD", "PD")
    d84 = next(r for r in recist["evidence"]["records"] if r["date"] == day(84).isoformat())
    assert (d84["used"], d84["setting"]) == (False, "evidence.unscheduled")
    assert recist["differs_because"] == ["evidence.unscheduled"]
    assert p.recommended_phase == "continued_sorafenib"
    assert any(f.startswith("recist: SD here, PD by the rule on all the patient's records")
               and "off_study instead of continued_sorafenib" in f for f in p.flags)
