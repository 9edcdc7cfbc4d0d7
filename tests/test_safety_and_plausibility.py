"""Adverse events with CTCAE v5 fields, ``trialflow safety``, the report's safety section, the dose level
after a "dose reduced" hand-foot skin reaction, and the protocol's plausible ranges (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import ELIGIBLE

from trialflow.cli import app

runner = CliRunner(env={"COLUMNS": "80"})
P = "P-007"
PPE = "Palmar-plantar erythrodysesthesia syndrome"  # CTCAE v5 term for the hand-foot skin reaction


def run(*args: Any, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == code, f"exit {result.exit_code} != {code}\n{result.stdout}\n{result.stderr}"
    return result


def js(*args: Any) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture
def treated(db_url: str, tmp_path: Path) -> str:
    elig = tmp_path / "eligible.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    run("init", "--db", db_url)
    for pid in (P, "P-008"):
        run("enroll", pid, "--date", "2026-03-02", "--eligibility", elig, "--db", db_url)
        run("record", pid, "rai_scan", "--date", "2026-03-09", "--modalities", "planar,spect", "--db", db_url)
        run("record", pid, "ct", "--date", "2026-03-10", "--target", "T1:lung:22", "--db", db_url)
        run("start", pid, "--date", "2026-03-16", "--db", db_url)
    return db_url


def test_grade3_hfsr_with_dose_reduced_asks_the_next_dispensing_for_600(treated: str) -> None:
    db = treated
    run("record", P, "adverse_event", "--date", "2026-04-02", "--term", PPE, "--grade", "3", "--relatedness",
        "definite", "--action", "dose_reduced", "--db", db)
    dispense = next(a for a in js("next", P, "--as-of", "2026-04-10", "--db", db) if a["action"] == "dispense")
    assert dispense["detail"] == f"dispense Sorafenib 600 mg/day: dose reduced from 800 after grade 3 {PPE} " \
                                 "(2026-04-02)"
    run("record", P, "dispense", "--date", "2026-04-13", "--dose", "600", "--db", db)
    dispense = next(a for a in js("next", P, "--as-of", "2026-05-05", "--db", db) if a["action"] == "dispense")
    assert "dose reduced" not in dispense["detail"]


def test_safety_lists_events_per_patient_and_grade_and_the_report_counts_them(treated: str) -> None:
    db = treated
    run("record", P, "adverse_event", "--date", "2026-04-02", "--term", PPE, "--grade", "3", "--relatedness",
        "definite", "--action", "dose_reduced", "--resolved", "2026-04-20", "--db", db)
    run("record", P, "adverse_event", "--date", "2026-04-02", "--term", "Diarrhea", "--grade", "1", "--db", db)
    run("record", "P-008", "adverse_event", "--date", "2026-04-05", "--term", "Hypertension", "--grade", "4",
        "--serious", "--relatedness", "probable", "--action", "interrupted", "--db", db)
    s = js("safety", "--db", db)
    assert (s["patients_grade3_plus"], s["patients_with_sae"], s["serious_events"], s["patients_dose_reduced"]) == \
        (2, 1, 1, 1)
    assert s["patients_by_worst_grade"] == {"3": 1, "4": 1}
    assert s["terms"][PPE] == {"3": 1}
    mine = next(p for p in s["patients"] if p["patient"] == P)
    assert [(e["term"], e["grade"], e["resolved"]) for e in mine["events"]] == [(PPE, 3, "2026-04-20"),
                                                                             ("Diarrhea", 1, None)]
    assert js("report", "--db", db)["safety"]["patients_with_sae"] == 1
    text = run("safety", "--db", db).stdout
    assert "2 with a grade ≥ 3 adverse event, 1 with a serious adverse event (1 SAEs), 1 with a dose reduction" \
        in " ".join(text.split())
    assert all(len(line) <= 80 for line in text.splitlines())
    # history says everything that was recorded
    assert any("(resolved 2026-04-20; definite; action dose reduced)" in e["summary"] for e in js("history", P,
                                                                                                 "--db", db))


@pytest.mark.parametrize(("args", "message"), [
    (("--grade", "6"), "grade must be <= 5, got 6"),
    (("--grade", "2", "--relatedness", "maybe"), "relatedness must be one of"),
    (("--grade", "2", "--action", "halved"), "action must be one of"),
    (("--grade", "2", "--resolved", "2026-03-30"), "resolved (2026-03-30) is before the onset"),
])
def test_bad_adverse_events_are_refused_with_the_field(treated: str, args: tuple[str, ...], message: str) -> None:
    r = run("record", P, "adverse_event", "--date", "2026-04-02", "--term", "Fatigue", *args, "--db", treated, code=1)
    assert message in r.stderr


def test_an_implausible_tg_needs_confirming_and_the_reason_is_stored(treated: str) -> None:
    db = treated
    r = run("record", P, "tg", "--date", "2026-03-16", "--value", "250000", "--tgab", "negative", "--db", db, code=1)
    assert "tg value 250000 ug/L on 2026-03-16 is outside the plausible range the protocol declares (at most " \
           "100000 ug/L)" in r.stderr and "--confirm-unusual REASON" in r.stderr
    assert not [e for e in js("history", P, "--db", db) if e["summary"].startswith("tg ")]  # nothing written
    run("record", P, "tg", "--date", "2026-03-16", "--value", "250000", "--tgab", "negative", "--confirm-unusual",
        "lab confirmed on repeat, bulky lung disease", "--db", db)
    tg = next(e for e in js("history", P, "--db", db) if e["summary"].startswith("tg "))
    assert tg["reason"] == "unusual value confirmed: lab confirmed on repeat, bulky lung disease"


def test_an_implausible_lesion_diameter_is_refused(treated: str) -> None:
    # 450 mm is a finite, storable diameter (the hard limit is 1000 mm) but outside the protocol's plausible range
    r = run("record", P, "ct", "--date", "2026-04-13", "--target", "T1:lung:450", "--db", treated, code=1)
    assert "ct target diameter_mm 450 mm" in r.stderr and "(0-300 mm)" in r.stderr


def test_a_target_lesion_that_has_disappeared_is_recorded_as_0_mm_without_confirming(treated: str) -> None:
    """RECIST records a target lesion that has disappeared as 0 mm (a complete response needs every target at 0);
    the plausible range must not refuse it, nor a lesion shrunk below 1 mm, as a typing error."""
    run("record", P, "ct", "--date", "2026-04-13", "--target", "T1:lung:0", "--target", "T2:liver:0.8",
        "--db", treated)
    ct = next(e for e in js("history", P, "--db", treated) if e["summary"].startswith("ct ")
              and e["effective_date"] == "2026-04-13")
    assert [t["diameter_mm"] for t in ct["payload"]["target"]] == [0, 0.8] and ct["reason"] is None


def test_a_correction_to_an_implausible_tg_needs_confirming_as_a_new_record_does(treated: str) -> None:
    db = treated
    run("record", P, "tg", "--date", "2026-03-16", "--value", "25", "--tgab", "negative", "--db", db)
    tg = next(e for e in js("history", P, "--db", db) if e["summary"].startswith("tg "))
    r = run("correct", P, tg["event"], "--value", "300000", "--reason", "lab re-issued", "--db", db, code=1)
    assert "tg value 300000 ug/L on 2026-03-16 is outside the plausible range the protocol declares" in r.stderr
    assert "correct it with --confirm-unusual REASON" in r.stderr
    assert not [e for e in js("history", P, "--db", db) if e["kind"] == "correction"]  # nothing written
    run("correct", P, tg["event"], "--value", "300000", "--reason", "lab re-issued", "--confirm-unusual",
        "re-assayed after dilution", "--db", db)
    fix = next(e for e in js("history", P, "--db", db) if e["kind"] == "correction")
    assert fix["reason"] == "lab re-issued; unusual value confirmed: re-assayed after dilution"
    assert fix["payload"]["record"]["value"] == 300000
    # a plausible correction needs no confirming and stores its reason alone
    run("correct", P, fix["event"], "--value", "30", "--reason", "dilution error", "--db", db)
    assert [e["reason"] for e in js("history", P, "--db", db) if e["kind"] == "correction"][-1] == "dilution error"


def test_an_import_names_the_line_and_column_of_each_row_the_patients_state_refuses(treated: str,
                                                                                  tmp_path: Path) -> None:
    db = treated
    run("record", P, "tg", "--date", "2026-03-16", "--value", "25", "--db", db)
    lab = tmp_path / "lab.csv"
    lab.write_text("patient,kind,date,value\n"
                   f"{P},tg,2026-04-13,250000\n"       # outside the plausible range
                   f"{P},tg,2026-03-16,26\n"           # a second value for a recorded day
                   f"P-008,tg,2026-04-13,12\n"         # fine
                   f"P-008,tg,2026-04-14,12\n"
                   f"P-008,tg,2026-04-14,13\n",        # two values for one day in the file
                   encoding="utf-8")
    before = js("history", "P-008", "--db", db)
    r = run("import", lab, "--db", db, code=1)
    lines = [ln.removeprefix("refused: ") for ln in r.stderr.splitlines() if ln.startswith(f"refused: {lab}")]
    assert [ln[len(str(lab)):].split(": ", 2)[0:2] for ln in lines] == [
        [":2:4", "$.value"], [":3:3", "$.date"], [":6:3", "$.date"]]
    assert "import the file with --confirm-unusual REASON" in lines[0]
    assert f"to change it use trialflow correct {P}" in lines[1]
    assert js("history", "P-008", "--db", db) == before  # nothing written
    lab.write_text(f"patient,kind,date,value\n{P},tg,2026-04-13,250000\nP-008,tg,2026-04-13,12\n", encoding="utf-8")
    run("import", lab, "--db", db, "--confirm-unusual", "bulky disease, confirmed with the lab")
    tg = next(e for e in js("history", P, "--db", db) if e["effective_date"] == "2026-04-13")
    assert tg["reason"] == "unusual value confirmed: bulky disease, confirmed with the lab"
    assert next(e for e in js("history", "P-008", "--db", db) if e["effective_date"] == "2026-04-13")["reason"] \
        is None  # the reason is stored with the unusual values only


def test_a_csv_cell_the_record_refuses_is_named_by_its_column(treated: str, tmp_path: Path) -> None:
    lab = tmp_path / "lab.csv"
    lab.write_text(f"patient,kind,date,value,unit,result\n{P},tg,2026-04-13,12,mg/dL,\n{P},tgab,2026-04-13,,,\n",
                   encoding="utf-8")
    r = run("import", lab, "--db", treated, code=1)
    assert f"{lab}:2:5: $.unit: unit 'mg/dL' is not accepted for Tg" in r.stderr
    assert f"{lab}:3:6: $.result: result is missing" in r.stderr


def test_a_library_caller_of_the_import_gets_the_engines_problems_at_their_rows(treated: str,
                                                                              tmp_path: Path) -> None:
    """The located refusals are still the engine's: an unusual value is one (``Refused.unusual``), and the
    words a form shows (``plain``) carry no command-line advice."""
    from trialflow.engine import Refused, Store, import_file

    lab = tmp_path / "lab.csv"
    lab.write_text(f"patient,kind,date,value\n{P},tg,2026-04-13,250000\n", encoding="utf-8")
    store = Store.open(treated)
    try:
        with pytest.raises(Refused) as err:
            import_file(store, lab, "coordinator.anna")
    finally:
        store.close()
    [unusual] = err.value.unusual
    assert unusual.startswith(f"{lab}:2:4: $.value: {P}: tg value 250000 ug/L") and "--confirm-unusual" not in unusual
    assert "import the file with --confirm-unusual REASON" in err.value.problems[0]
