"""The decision reads the 6-month answer at the 6-month visits, and the record keeps one value per sample.

Dates as in workflow_helpers: enrolled 2025-12-29, day 0 2026-01-12, 6-month visits 2026-07-13
(window 07-06 to 07-27), Tg week 28 on 2026-07-27 (window to 07-30), decision on 2026-08-03.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from workflow_helpers import (
    BASELINE_MM,
    DAY0,
    DECISION_DAY,
    ELIGIBLE,
    INVESTIGATOR,
    PD_MM,
    SD_MM,
    TG_PROGRESSION,
    TG_STABLE,
    USER,
    ct,
    enrol_started,
    event_count,
    patient_at_decision,
    rai_scan,
    snapshot,
    tg,
    tg_series,
)

from trialflow.engine import (
    Refused,
    Store,
    amend,
    correct,
    decide,
    enroll,
    evaluate,
    history,
    record,
    record_many,
    schedule,
    start,
)

WEEK4 = DAY0 + dt.timedelta(days=28)


def test_an_unscheduled_early_scan_and_ct_do_not_decide_the_6_month_criteria(store: Store) -> None:
    """A week-4 CT and scan are part of the record (the CT counts for the nadir), but the outcome is read at
    the 6-month visits (``evidence.final_visit``): with those missed, RaI uptake and RECIST are not
    evaluable, whatever the week-4 images showed, and the reason says so."""
    enrol_started(store, "P-201")
    record_many(store, [("P-201", r) for r in tg_series(DAY0, TG_STABLE)], USER)
    record_many(store, [("P-201", ct(WEEK4, SD_MM)), ("P-201", rai_scan(WEEK4, ["lung-left-lower"]))], USER)
    preview = evaluate(store, "P-201", as_of=DECISION_DAY)
    assert preview.ready
    assert preview.outcomes == {"rai_uptake": "not_evaluable", "tg_slope": "stable", "recist": "NE"}
    assert preview.recommended_phase == "continued_sorafenib"  # favourable on Tg alone, not via RaI
    assert any(f.startswith("rai_uptake not evaluable") for f in preview.flags)
    assert "no ct in the window d175-d196 of month6_ct" in preview.criteria["recist"]["reason"]


def test_the_6_month_scan_inside_its_window_decides_reinduction(store: Store) -> None:
    patient_at_decision(store, "P-202", avid=["lung-left-lower"])
    assert evaluate(store, "P-202", as_of=DECISION_DAY).recommended_phase == "rai_plus_sorafenib"


def test_an_override_changes_the_branch_never_the_timing(store: Store, db_url: str) -> None:
    enrol_started(store, "P-203")
    before = snapshot(db_url)
    with pytest.raises(Refused, match="not ready on 2026-05-01") as err:
        decide(store, "P-203", dt.date(2026, 5, 1), INVESTIGATOR, override="rai_plus_sorafenib", reason="keen")
    assert any("trialflow withdraw P-203" in p for p in err.value.problems)
    assert snapshot(db_url) == before


def test_amendment_impact_compares_recommendations_not_overrides(store: Store, tmp_path: Path) -> None:
    patient_at_decision(store, "P-204", month6_mm=SD_MM, tg_values=TG_STABLE)
    decide(store, "P-204", DECISION_DAY, INVESTIGATOR, override="off_study", reason="patient preference")
    text = Path(store.protocol()[0].source_file).read_text(encoding="utf-8")
    new = tmp_path / "wording.yaml"
    new.write_text(text.replace('  version: "1.0"\n', '  version: "1.0.1"\n', 1)
                   .replace("design: Prospective, open, single-arm study", "design: Open single-arm study"))
    report = amend(store, new, "wording", USER)
    assert not next(p for p in report.patients if p.patient == "P-204").affected


def test_a_second_value_for_the_same_sample_is_a_correction_not_a_record(store: Store, db_url: str) -> None:
    enrol_started(store, "P-205")
    first = record(store, "P-205", tg(DAY0, 45.0), USER).events[0]
    before = snapshot(db_url)
    with pytest.raises(Refused, match=f"already recorded \\(event {first.id}\\).*trialflow correct P-205 {first.id}"):
        record(store, "P-205", tg(DAY0, 54.0), USER)
    next_day = DAY0 + dt.timedelta(days=1)
    with pytest.raises(Refused, match="two different tg records of 2026-01-13 in this input"):
        record_many(store, [("P-205", tg(next_day, 45.0)), ("P-205", tg(next_day, 46.0))], USER)
    assert snapshot(db_url) == before
    assert record(store, "P-205", tg(DAY0, 45.0), USER).events == ()  # the same value again: nothing new


def test_corrections_must_change_something_that_belongs_to_the_kind(store: Store) -> None:
    enrol_started(store, "P-207")
    scan = next(e for e in store.events("P-207") if e.payload.get("kind") == "rai_scan")
    sample = record(store, "P-207", tg(DAY0, 45.0), USER).events[0]
    n = event_count(store, "P-207")
    with pytest.raises(Refused, match="value does not apply"):
        correct(store, "P-207", scan.id, {"value": 4.0}, "typo", USER)
    with pytest.raises(Refused, match="changes nothing"):
        correct(store, "P-207", sample.id, {"value": 45.0}, "typo", USER)
    assert event_count(store, "P-207") == n
    correct(store, "P-207", sample.id, {"value": 54.0}, "lab re-issued the result", USER)
    assert [h.summary for h in history(store, "P-207")][-1] == f"corrects event {sample.id}: tg 54.0 ug/L"


def test_treatment_records_need_the_phase_that_asks_for_them(store: Store) -> None:
    enrol_started(store, "P-208", day0=None)  # still in screening
    with pytest.raises(Refused, match="rai_therapy dated 2026-01-08 is before treatment has started"):
        record(store, "P-208", {"kind": "rai_therapy", "date": "2026-01-08", "activity_mbq": 6000}, USER)


def test_a_baseline_ct_after_day_0_is_no_baseline(store: Store) -> None:
    """Started without a baseline CT: a CT three days later falls inside the baseline window's dates
    (enrolment + 0..28) but comes after the first dose, so baseline_ct stays missed."""
    enroll(store, "P-209", dt.date(2025, 12, 29), ELIGIBLE, USER)
    record(store, "P-209", rai_scan(dt.date(2026, 1, 5)), USER)
    start(store, "P-209", DAY0, USER)
    record(store, "P-209", ct(DAY0 + dt.timedelta(days=3), BASELINE_MM), USER)
    state = store.state("P-209")
    assert state is not None
    visits = {v.visit: v for v in schedule(store.protocol()[0], state, DAY0 + dt.timedelta(days=5))}
    assert visits["baseline_ct"].status == "missed" and visits["baseline_rai_scan"].status == "done"


def test_report_counts_withdrawals_before_the_decision_in_the_treated_denominator(store: Store) -> None:
    """Reference: statsmodels proportion_confint(method="beta") is the Clopper-Pearson interval."""
    from statsmodels.stats.proportion import proportion_confint

    from trialflow.engine import report, withdraw

    patient_at_decision(store, "P-211", tg_values=TG_STABLE, month6_mm=SD_MM)  # favourable
    patient_at_decision(store, "P-212", tg_values=TG_PROGRESSION, month6_mm=PD_MM)  # not favourable
    for pid in ("P-211", "P-212"):
        decide(store, pid, DECISION_DAY, INVESTIGATOR)
    enrol_started(store, "P-213")
    withdraw(store, "P-213", DAY0 + dt.timedelta(days=40), "toxicity", USER)
    enrol_started(store, "P-214")  # still on treatment: in neither denominator
    r = report(store, as_of=DECISION_DAY)
    assert (r.favourable, r.evaluable, r.treated, r.before_decision) == (1, 2, 3, 1)
    assert r.proportion_treated == pytest.approx(1 / 3)
    assert r.ci95_treated == pytest.approx(proportion_confint(1, 3, alpha=0.05, method="beta"), abs=1e-9)
    assert r.ci95 == pytest.approx(proportion_confint(1, 2, alpha=0.05, method="beta"), abs=1e-9)


def test_tg_samples_recorded_without_their_tgab_are_flagged_at_the_decision(store: Store) -> None:
    """The preview's outcome is the slope's, and the investigator is told which samples had no TgAb (TgAb make
    Tg falsely low: Spencer, PMC4154792); the same series with its TgAb carries no such flag."""
    for pid, with_tgab in (("P-231", False), ("P-232", True)):
        enrol_started(store, pid)
        series = [r for r in tg_series(DAY0, TG_STABLE) if with_tgab or r["kind"] == "tg"]
        record_many(store, [(pid, r) for r in series], USER)
    alone, checked = (evaluate(store, pid, as_of=DECISION_DAY) for pid in ("P-231", "P-232"))
    assert alone.outcomes["tg_slope"] == checked.outcomes["tg_slope"] == "stable"
    assert [f for f in alone.flags if "TgAb" in f] == [
        f"tg_slope: none of the {len(TG_STABLE)} Tg samples used has a TgAb result of the same day: anti-Tg "
        "antibodies, if present, make Tg falsely low (Spencer, PMC4154792); record TgAb with each Tg sample"]
    assert not [f for f in checked.flags if "TgAb" in f]
