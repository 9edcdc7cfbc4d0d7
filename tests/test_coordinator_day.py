"""The coordinator's day (issue 12, findings 1-6): what a new user following the README hit, fixed.

Every test goes through the CLI a coordinator types, on SQLite and PostgreSQL, with the tour's patient:
enrolled 2026-04-01, baseline scans 2026-04-08/09, day 0 on 2026-04-15.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import ELIGIBLE

from trialflow.cli import app

runner = CliRunner(env={"COLUMNS": "80"})
P = "P-001"


def run(*args: Any, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.exit_code == code, f"exit {result.exit_code} != {code}\n{result.stdout}\n{result.stderr}"
    return result


def js(*args: Any) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture
def tour(db_url: str, tmp_path: Path) -> str:
    """The README tour's first steps: enrolled, baseline done, day 0 on 2026-04-15."""
    elig = tmp_path / "eligible.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    run("init", "--db", db_url)
    run("enroll", P, "--date", "2026-04-01", "--eligibility", elig, "--db", db_url)
    run("record", P, "rai_scan", "--date", "2026-04-08", "--modalities", "planar,spect", "--db", db_url)
    run("record", P, "ct", "--date", "2026-04-09", "--target", "T1:lung:22", "--target", "T2:lymph_node:18:nodal",
        "--non-target", "N1:bone:present", "--slice-thickness", "5", "--db", db_url)
    run("start", P, "--date", "2026-04-15", "--db", db_url)
    return db_url


def _visit(db: str, visit: str, as_of: str) -> dict[str, Any]:
    ledger = js("visits", P, "--as-of", as_of, "--db", db)
    return next(v for v in ledger["visits"] if v["visit"] == visit)


# -- finding 1: a Tg visit needs its TgAb, and says so ----------------------------------------------
def test_tg_without_tgab_says_tgab_missing_everywhere(tour: str) -> None:
    db = tour
    r = run("record", P, "tg", "--date", "2026-04-15", "--value", "120", "--loq", "0.2", "--db", db)
    assert "tg_w0 (Tg week 0) is not complete: TgAb missing" in r.stderr
    w0 = _visit(db, "tg_w0", "2026-04-15")
    assert (w0["status"], w0["missing"], [x["kind"] for x in w0["records"]]) == ("due", ["tgab"], ["tg"])
    labels = {a["visit"]: a["detail"] for a in js("next", "--as-of", "2026-05-12", "--db", db)}
    assert labels["tg_w0"] == "Tg week 0: TgAb missing"
    assert labels["tg_w4"] == "Tg week 4 (Tg + TgAb)"
    # one call records both; the visit is then done and nothing is said
    r = run("record", P, "tg", "--date", "2026-05-13", "--value", "95", "--tgab", "negative", "--db", db)
    assert r.stdout.startswith(f"{P}: 2 recorded") and "not complete" not in r.stderr
    assert _visit(db, "tg_w4", "2026-05-13")["status"] == "done"


def test_worklist_and_decision_agree_on_a_missed_tg_visit(tour: str) -> None:
    db = tour
    run("record", P, "tg", "--date", "2026-06-10", "--value", "70", "--db", db)  # tg_w8 without its TgAb
    as_of = "2026-06-20"  # the tg_w8 window (07-13 Jun) has closed
    shown = {a["visit"]: a["status"] for a in js("next", "--as-of", as_of, "--db", db)}
    assert shown["tg_w8"] == "missed"
    preview = js("evaluate", P, "--as-of", as_of, "--db", db)
    assert "tg_slope: tg_w8 (missed: TgAb missing)" in preview["missed"]
    assert not any(m.startswith("tg_slope: tg_w8") for m in preview["missing"])  # not waited for


# -- finding 2: missed visits can be listed and stay until dealt with -------------------------------
def test_missed_visits_stay_on_the_worklist_until_a_deviation(tour: str) -> None:
    db = tour
    as_of = "2026-08-20"  # tg_w0..tg_w16 all missed (no Tg recorded), tg_w4 missed 3 months ago
    missed = js("visits", "--status", "missed", "--as-of", as_of, "--db", db)
    assert [v["visit"] for v in missed] == ["tg_w0", "tg_w4", "tg_w8", "tg_w12", "tg_w16"]
    counts = js("status", "--as-of", as_of, "--db", db)[0]
    assert counts["visits_missed"] == 5 == counts["visits_unresolved"]
    on_list = [a["visit"] for a in js("next", "--as-of", as_of, "--db", db) if a["status"] == "missed"]
    assert sorted(on_list) == sorted(v["visit"] for v in missed)  # the old worklist dropped them after 28 days
    # a deviation takes one off the worklist and stays in the ledger, the history and the report
    run("deviation", P, "tg_w4", "--kind", "missed", "--reason", "patient on holiday", "--date", "2026-08-20",
        "--db", db)
    on_list = [a["visit"] for a in js("next", "--as-of", as_of, "--db", db) if a["status"] == "missed"]
    assert "tg_w4" not in on_list and len(on_list) == 4
    w4 = _visit(db, "tg_w4", as_of)
    assert w4["status"] == "missed" and w4["deviations"][0]["reason"] == "patient on holiday"
    assert any(e["summary"] == "deviation (missed) for visit tg_w4: patient on holiday"
               for e in js("history", P, "--db", db))
    rep = js("report", "--as-of", as_of, "--db", db)
    assert rep["deviations"] == {"missed": 1} and rep["deviations_per_patient"] == {P: {"missed": 1}}
    # a visit still open cannot get a 'missed' deviation; it can be skipped, with a reason
    r = run("deviation", P, "tg_w20", "--kind", "missed", "--reason", "x", "--date", "2026-09-01", "--db", db,
            code=1)
    assert "tg_w20 is due" in r.stderr and "trialflow skip" in r.stderr
    run("skip", P, "tg_w20", "--reason", "lab closed for renovation", "--date", "2026-09-01", "--db", db)
    assert _visit(db, "tg_w20", "2026-09-10")["status"] == "skipped"
    assert "tg_w20" not in {a["visit"] for a in js("next", "--as-of", "2026-09-10", "--db", db)}


def test_unknown_visit_and_kind_are_refused_without_writing(tour: str) -> None:
    db = tour
    before = len(js("history", P, "--db", db))
    r = run("deviation", P, "tg_w5", "--kind", "missed", "--reason", "x", "--db", db, code=1)
    assert "no visit 'tg_w5'" in r.stderr
    r = run("deviation", P, "tg_w0", "--kind", "late", "--reason", "x", "--db", db, code=1)
    assert "unknown deviation kind 'late'" in r.stderr
    assert len(js("history", P, "--db", db)) == before


# -- finding 3: patients who left are not counted as missing visits --------------------------------
def test_screen_failure_on_the_enrolment_day_misses_nothing(db_url: str, tmp_path: Path) -> None:
    answers = dict(ELIGIBLE, prior_tki="yes")
    elig = tmp_path / "ineligible.yaml"
    elig.write_text(yaml.safe_dump(answers), encoding="utf-8")
    run("init", "--db", db_url)
    run("enroll", "P-013", "--date", "2026-04-01", "--eligibility", elig, "--db", db_url)
    row = js("status", "P-013", "--as-of", "2026-06-01", "--db", db_url)[0]
    assert (row["visits_missed"], row["visits_done"]) == (0, 0)
    assert {v["status"] for v in js("visits", "P-013", "--as-of", "2026-06-01", "--db", db_url)["visits"]} == \
        {"not_required"}


def test_withdrawal_before_a_window_closed_makes_that_visit_not_required(tour: str) -> None:
    db = tour
    run("record", P, "tg", "--date", "2026-04-15", "--value", "120", "--tgab", "negative", "--db", db)
    run("withdraw", P, "--date", "2026-05-14", "--reason", "consent", "--db", db)  # tg_w4 window 10-16 May
    w4 = _visit(db, "tg_w4", "2026-06-01")
    assert w4["status"] == "not_required"
    assert js("status", P, "--as-of", "2026-06-01", "--db", db)[0]["visits_missed"] == 0


# -- finding 4: complete is guarded, and a mistake can be reversed --------------------------------
def test_complete_before_the_planned_end_is_refused_and_reversible(tour: str) -> None:
    db = tour
    run("withdraw", P, "--date", "2026-04-16", "--reason", "consent", "--db", db)
    hist = js("history", P, "--db", db)
    withdrawal = next(e for e in hist if e["kind"] == "withdrawn")
    r = run("reverse", P, withdrawal["event"], "--reason", "wrong patient: P-010 withdrew", "--db", db)
    assert "back in sorafenib_6m" in r.stdout
    assert js("status", P, "--db", db)[0]["phase"] == "sorafenib_6m"
    hist = js("history", P, "--db", db)
    rev = hist[-1]
    assert rev["kind"] == "reversal" and rev["corrects"] == withdrawal["event"]
    assert next(e for e in hist if e["event"] == withdrawal["event"])["corrected_by"] == rev["event"]
    r = run("reverse", P, withdrawal["event"], "--reason", "again", "--db", db, code=1)
    assert "already reversed" in r.stderr
    # sorafenib_6m ends with the decision; a continuation phase is guarded by its planned end
    r = run("complete", P, "--date", "2026-04-16", "--db", db, code=1)
    assert "ends with the decision" in r.stderr


def test_complete_one_day_into_a_continuation_phase_needs_early_and_a_reason(db_url: str) -> None:
    from workflow_helpers import DECISION_DAY, PR_MM, TG_RESPONSE, new_store, patient_at_decision

    from trialflow.engine import decide

    store = new_store(db_url)
    patient_at_decision(store, "P-032", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    decide(store, "P-032", DECISION_DAY, "dr.smit")
    store.close()
    day = str(DECISION_DAY + dt.timedelta(days=1))
    r = run("complete", "P-032", "--date", day, "--db", db_url, code=1)
    assert "continued_sorafenib runs 182 days" in r.stderr and "--early --reason" in r.stderr
    run("complete", "P-032", "--date", day, "--early", "--db", db_url, code=2)  # --early without a reason
    run("complete", "P-032", "--date", day, "--early", "--reason", "moved abroad", "--db", db_url)
    done = js("history", "P-032", "--db", db_url)[-1]
    assert done["payload"]["early"] is True and done["reason"] == "moved abroad"
    r = run("reverse", "P-032", done["event"], "--reason", "entered for the wrong patient", "--db", db_url)
    assert js("status", "P-032", "--db", db_url)[0]["phase"] == "continued_sorafenib"


# -- finding 5: a screen failure after enrolment -----------------------------------------------------
def test_screen_fail_after_enrolment(db_url: str, tmp_path: Path) -> None:
    elig = tmp_path / "eligible.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    run("init", "--db", db_url)
    run("enroll", "P-020", "--date", "2026-04-01", "--eligibility", elig, "--db", db_url)
    detail = {a["action"]: a["detail"] for a in js("next", "P-020", "--as-of", "2026-05-10", "--db", db_url)}
    assert "trialflow screen-fail P-020" in detail["start_treatment"]
    run("screen-fail", "P-020", "--date", "2026-05-10", "--reason", "baseline CT shows anaplastic histology",
        "--db", db_url)
    row = js("status", "P-020", "--db", db_url)[0]
    assert row["phase"] == "screen_failure" and row["visits_missed"] == 2  # windows closed on 29 Apr
    rep = js("report", "--db", db_url)
    assert rep["screen_failures"] == 1
    assert rep["screen_failure_reasons"] == {"after enrolment: baseline CT shows anaplastic histology": 1}
    r = run("screen-fail", "P-020", "--date", "2026-05-11", "--reason", "x", "--db", db_url, code=1)
    assert "not in screening" in r.stderr


# -- finding 6: the first dispensing at start, and stopping the drug --------------------------------
def test_start_dispenses_and_stop_drug_ends_the_drug(tour: str) -> None:
    db = tour
    assert "dispense" not in {a["action"] for a in js("next", "--as-of", "2026-04-15", "--db", db)
                              if a["status"] in ("due", "overdue")}
    hist = js("history", P, "--db", db)
    assert "dispensed 800 mg/day for 28 days" in [e["summary"] for e in hist]
    # the same supply recorded again by hand is the same fact, not a second one
    r = run("record", P, "dispense", "--date", "2026-04-15", "--dose", "800", "--days", "28", "--db", db)
    assert r.stdout.startswith(f"{P}: 0 recorded, 1 already recorded")
    r = run("stop-drug", P, "--date", "2026-05-01", "--reason", "grade 4 hypertension", "--db", db)
    assert r.stdout.startswith(f"{P}: 1 recorded")
    assert js("status", P, "--as-of", "2026-05-02", "--db", db)[0]["dose_mg_per_day"] == 0
    assert "dispense" not in {a["action"] for a in js("next", "--as-of", "2026-05-20", "--db", db)}
    run("stop-drug", P, "--date", "2026-05-01", "--db", db, code=2)  # the reason is required


def test_start_without_the_dispensing(db_url: str, tmp_path: Path) -> None:
    elig = tmp_path / "eligible.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    run("init", "--db", db_url)
    run("enroll", P, "--date", "2026-04-01", "--eligibility", elig, "--db", db_url)
    run("start", P, "--date", "2026-04-15", "--no-dispense", "--db", db_url)
    due = {a["action"]: a["status"] for a in js("next", "--as-of", "2026-04-16", "--db", db_url)}
    assert due["dispense"] == "overdue"
    run("start", "P-001", "--date", "2026-04-15", "--dispense-days", "0", "--db", db_url, code=2)
