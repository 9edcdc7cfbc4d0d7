"""Every workflow command through typer's CliRunner, on SQLite and PostgreSQL.

Exit codes: 0 ok, 1 refused, 2 bad usage. No traceback, ever; a failed command changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import (
    DAY0,
    DECISION_DAY,
    ELIGIBLE,
    ENROLLED,
    MONTH6,
    PR_MM,
    TG_RESPONSE,
    patient_at_decision,
    snapshot,
)

from trialflow.cli import app

CASES = Path(__file__).parent / "cases"
runner = CliRunner()

NEXT_KEYS = {"patient", "action", "visit", "target_date", "window_start", "window_end", "status", "reason"}


def run(*args: Any, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (
        f"exit {result.exit_code} != {code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


def run_json(*args: Any) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture
def elig(tmp_path: Path) -> Path:
    f = tmp_path / "eligibility.yaml"
    f.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    return f


@pytest.fixture
def cli_db(db_url: str) -> str:
    run("init", "--db", db_url, "--user", "investigator.dr-smit")
    return db_url


def _started(db: str, elig: Path, pid: str = "P-001") -> None:
    run("enroll", pid, "--date", ENROLLED, "--eligibility", elig, "--db", db, "--user", "coordinator.anna")
    run("record", pid, "rai_scan", "--date", "2026-01-05", "--modalities", "planar,spect", "--db", db)
    run(
        "record",
        pid,
        "ct",
        "--date",
        "2026-01-08",
        "--target",
        "T1:lung:22",
        "--target",
        "T2:lung:14",
        "--target",
        "T3:lymph_node:18:nodal",
        "--non-target",
        "N1:bone:present",
        "--slice-thickness",
        "5",
        "--db",
        db,
    )
    run("start", pid, "--date", DAY0, "--db", db)


# -- init -------------------------------------------------------------------------------------------
def test_init_json_and_idempotent(db_url: str) -> None:
    out = run_json("init", "--db", db_url, "--user", "investigator.dr-smit")
    assert out["protocol"]["study_id"] == "sorafenib-dtc" and out["protocol"]["version"] == "1.0"
    again = run_json("init", "--db", db_url)
    assert again["protocol"]["id"] == out["protocol"]["id"]
    assert len(snapshot(db_url)[2]) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["next"],
        ["status"],
        ["report"],
        ["history", "P-001"],
        ["evaluate", "P-001"],
        ["record", "P-001", "tg", "--date", "2026-02-09", "--value", "95"],
        ["start", "P-001", "--date", "2026-01-12"],
    ],
)
def test_missing_store_says_to_run_init(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "nowhere.db"
    r = run(*command, "--db", db, code=1)
    assert "trialflow init" in r.stderr
    assert not db.exists()


def test_unreachable_database_url_is_a_clear_error() -> None:
    r = run("status", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none", code=1)
    assert "cannot open the store" in r.stderr


# -- enroll / start ---------------------------------------------------------------------------------
def test_enroll_json_and_screen_failure(cli_db: str, elig: Path, tmp_path: Path) -> None:
    out = run_json("enroll", "P-001", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db)
    assert out["eligible"] is True and out["phase"] == "screening" and out["unmet"] == []
    bad = tmp_path / "fail.yaml"
    bad.write_text(yaml.safe_dump({**ELIGIBLE, "prior_tki": "yes"}), encoding="utf-8")
    r = run("enroll", "P-002", "--date", ENROLLED, "--eligibility", bad, "--db", cli_db)
    assert "screen failure recorded; not met: prior_tki" in r.stdout


def test_enroll_refuses_identifying_ids(cli_db: str, elig: Path) -> None:
    r = run("enroll", "JanJansen", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db, code=1)
    assert "looks like a name" in r.stderr
    r = run("enroll", "P-19610314", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db, code=1)
    assert "date of birth" in r.stderr
    r = run("enroll", "111222333", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db, code=1)
    assert "BSN" in r.stderr


def test_enroll_bad_eligibility_file(cli_db: str, tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("- adult\n", encoding="utf-8")
    assert (
        "expected a mapping"
        in run("enroll", "P-001", "--date", ENROLLED, "--eligibility", f, "--db", cli_db, code=1).stderr
    )
    r = run(
        "enroll",
        "P-001",
        "--date",
        ENROLLED,
        "--eligibility",
        tmp_path / "missing.yaml",
        "--db",
        cli_db,
        code=1,
    )
    assert "missing.yaml" in r.stderr


def test_start_json_warns_about_incomplete_baseline(cli_db: str, elig: Path) -> None:
    run("enroll", "P-001", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db)
    r = run("start", "P-001", "--date", DAY0, "--db", cli_db, "--json")
    out = json.loads(r.stdout)
    assert out["phase"] == "sorafenib_6m" and out["events"][0]["kind"] == "phase_changed"
    assert any("baseline not complete" in w for w in out["warnings"])


# -- record (every kind) --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "stored"),
    [
        (
            ["tg", "--date", "2026-02-09", "--value", "95", "--unit", "ng/mL", "--loq", "0.2"],
            {"kind": "tg", "value": 95.0, "loq": 0.2, "unit": "ug/L"},
        ),
        (["tg", "--date", "2026-02-09", "--value", "<0.2"], {"kind": "tg", "below_loq": True, "loq": 0.2}),
        (
            ["tg", "--date", "2026-02-09", "--value", "31.5", "--stimulated"],
            {"kind": "tg", "stimulated": True},
        ),
        (["tgab", "--date", "2026-02-09", "--result", "positive"], {"kind": "tgab", "result": "positive"}),
        (
            [
                "ct",
                "--date",
                "2026-04-06",
                "--target",
                "T1:lung:17",
                "--target",
                "T3:lymph_node:12:nodal",
                "--new-lesion",
                "liver segment 6",
            ],
            {"kind": "ct", "new_lesions": ["liver segment 6"]},
        ),
        (["ct", "--date", "2026-04-06", "--not-evaluated"], {"kind": "ct", "not_evaluated": True}),
        (
            ["rai_scan", "--date", "2026-04-06", "--modalities", "planar,spect", "--avid", "lung-left-lower"],
            {"kind": "rai_scan", "avid_lesions": ["lung-left-lower"]},
        ),
        (
            ["adverse_event", "--date", "2026-02-01", "--term", "Hypertension", "--grade", "3"],
            {"kind": "adverse_event", "grade": 3},
        ),
        (
            ["dose_change", "--date", "2026-02-02", "--dose", "600", "--reason", "hand-foot skin reaction"],
            {"kind": "dose_change", "dose_mg_per_day": 600.0},
        ),
        (
            ["dispense", "--date", "2026-02-09", "--dose", "800", "--days", "28"],
            {"kind": "dispense", "dose_mg_per_day": 800.0, "days_supply": 28},
        ),
        (
            ["rai_therapy", "--date", "2026-03-01", "--activity", "6000"],
            {"kind": "rai_therapy", "activity_mbq": 6000.0},
        ),
    ],
)
def test_record_each_kind(cli_db: str, elig: Path, args: list[str], stored: dict[str, Any]) -> None:
    _started(cli_db, elig)
    out = run_json("record", "P-001", *args, "--db", cli_db, "--user", "coordinator.ben")
    assert out["patient"] == "P-001" and out["message"] == "P-001: 1 recorded"
    (ev,) = out["events"]
    assert ev["kind"] == "observation" and ev["user"] == "coordinator.ben"
    assert stored.items() <= ev["payload"].items()
    # the same observation again records nothing and says so
    again = run("record", "P-001", *args, "--db", cli_db)
    assert "0 recorded, 1 already recorded (skipped)" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["weight", "--date", "2026-02-09"], "unknown kind 'weight'"),
        (["tg", "--date", "2026-02-31", "--value", "95"], "expected a date as YYYY-MM-DD"),
        (["tg", "--date", "09-02-2026", "--value", "95"], "expected a date as YYYY-MM-DD"),
        (["tg", "--date", "2026-02-09"], "tg needs --value"),
        (["tg", "--date", "2026-02-09", "--value", "ninety"], "expected a number or '<LoQ'"),
        (["tg", "--date", "2026-02-09", "--value", "95", "--grade", "2"], "--grade does not apply to tg"),
        (["ct", "--date", "2026-04-06", "--target", "T1:lung"], "expected ID:ORGAN:MM"),
        (["tg", "--value", "95"], "Missing option '--date'"),
    ],
)
def test_record_bad_usage_exits_2(cli_db: str, elig: Path, args: list[str], message: str) -> None:
    _started(cli_db, elig)
    before = snapshot(cli_db)
    r = run("record", "P-001", *args, "--db", cli_db, code=2)
    assert message in r.stderr
    assert snapshot(cli_db) == before


@pytest.mark.parametrize(
    ("pid", "args", "message"),
    [
        (
            "P-001",
            ["tg", "--date", (dt.date.today() + dt.timedelta(days=1)).isoformat(), "--value", "95"],
            "in the future",
        ),
        ("P-001", ["tg", "--date", "2025-12-20", "--value", "95"], "outside every baseline window"),
        ("P-404", ["tg", "--date", "2026-02-09", "--value", "95"], "unknown patient 'P-404'"),
        (
            "P-001",
            ["tgab", "--date", "2026-02-09", "--result", "maybe"],
            "result must be 'positive' or 'negative'",
        ),
        (
            "P-001",
            ["adverse_event", "--date", "2026-02-09", "--term", "Rash", "--grade", "7"],
            "grade must be",
        ),
    ],
)
def test_record_refusals_exit_1_and_change_nothing(
    cli_db: str, elig: Path, pid: str, args: list[str], message: str
) -> None:
    _started(cli_db, elig)
    before = snapshot(cli_db)
    r = run("record", pid, *args, "--db", cli_db, code=1)
    assert r.stderr.startswith("refused:") and message in r.stderr
    assert snapshot(cli_db) == before


# -- import / correct -------------------------------------------------------------------------------
def test_import_case_file_twice(cli_db: str, elig: Path) -> None:
    run("enroll", "P-001", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db)
    run("start", "P-001", "--date", DAY0, "--db", cli_db)
    out = run_json("import", CASES / "P-001.yaml", "--db", cli_db)
    assert len(out[0]["events"]) == 14
    r = run("import", CASES / "P-001.yaml", "--db", cli_db)
    assert "0 recorded, 14 already recorded (skipped)" in r.stdout


def test_import_bad_csv_reports_line_and_writes_nothing(cli_db: str, elig: Path, tmp_path: Path) -> None:
    _started(cli_db, elig)
    f = tmp_path / "lab.csv"
    f.write_text(
        "patient,date,value,unit\nP-001,2026-01-12,120,ug/L\nP-001,2026-02-09,9S,ug/L\n", encoding="utf-8"
    )
    before = snapshot(cli_db)
    r = run("import", f, "--db", cli_db, code=1)
    assert f"{f}:3:3: $.value: expected a number, got '9S'" in r.stderr
    r = run("import", tmp_path / "none.csv", "--db", cli_db, code=1)
    assert "no such file" in r.stderr
    assert snapshot(cli_db) == before


def test_correct_and_history(cli_db: str, elig: Path) -> None:
    _started(cli_db, elig)
    (ev,) = run_json("record", "P-001", "tg", "--date", "2026-02-09", "--value", "950", "--db", cli_db)[
        "events"
    ]
    out = run_json(
        "correct", "P-001", ev["id"], "--value", "95", "--reason", "transcription error", "--db", cli_db
    )
    corr = out["events"][0]
    assert corr["kind"] == "correction" and corr["corrects"] == ev["id"]
    hist = run_json("history", "P-001", "--db", cli_db)
    assert {
        "event",
        "seq",
        "kind",
        "effective_date",
        "recorded_at",
        "user",
        "reason",
        "summary",
        "corrects",
        "corrected_by",
        "payload",
    } <= hist[0].keys()
    by_id = {h["event"]: h for h in hist}
    assert by_id[ev["id"]]["corrected_by"] == corr["id"] and by_id[corr["id"]]["corrects"] == ev["id"]
    assert by_id[corr["id"]]["reason"] == "transcription error"
    assert "History of P-001" in run("history", "P-001", "--db", cli_db).stdout
    # refusals: no field, unknown event, no reason
    assert (
        "--value, --date" in run("correct", "P-001", ev["id"], "--reason", "x", "--db", cli_db, code=2).stderr
    )
    assert (
        "no observation event 9999"
        in run("correct", "P-001", 9999, "--value", "1", "--reason", "x", "--db", cli_db, code=1).stderr
    )
    run("correct", "P-001", corr["id"], "--value", "96", "--db", cli_db, code=2)  # --reason is required
    run("correct", "P-001", corr["id"], "--retract", "--reason", "sample haemolysed", "--db", cli_db)


# -- next / evaluate / decide -----------------------------------------------------------------------
def test_next_json_shape_and_statuses(cli_db: str, elig: Path) -> None:
    _started(cli_db, elig)
    run("record", "P-001", "tg", "--date", DAY0, "--value", "120", "--db", cli_db)
    items = run_json("next", "--as-of", "2026-02-10", "--db", cli_db)
    assert items and all(i.keys() >= NEXT_KEYS for i in items)
    w4 = next(i for i in items if i["visit"] == "tg_w4")
    assert w4 == {
        **w4,
        "patient": "P-001",
        "action": "visit",
        "target_date": "2026-02-09",
        "window_start": "2026-02-06",
        "window_end": "2026-02-12",
        "status": "overdue",
    }
    assert w4["reason"].startswith("sorafenib_6m visit tg_w4")
    assert {i["status"] for i in items} <= {"upcoming", "due", "overdue", "missed"}
    one = run_json("next", "P-001", "--as-of", "2026-02-13", "--db", cli_db)
    assert next(i for i in one if i["visit"] == "tg_w4")["status"] == "missed"
    assert "nothing due" in run("next", "--as-of", "2025-06-01", "--db", cli_db).stdout
    table = run("next", "--as-of", "2026-02-10", "--db", cli_db).stdout
    assert "P-001" in table and "overdue" in table
    run("next", "--as-of", "2026-13-01", "--db", cli_db, code=2)
    assert "unknown patient 'P-404'" in run("next", "P-404", "--db", cli_db, code=1).stderr


def _responder_at_decision(cli_db: str) -> None:
    """P-001 with a Tg response and RECIST PR, every 6-month assessment in (written through the library)."""
    from trialflow.engine import Store

    store = Store.open(cli_db)
    try:
        patient_at_decision(store, "P-001", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    finally:
        store.close()


def test_evaluate_decide_json(cli_db: str, elig: Path) -> None:
    _responder_at_decision(cli_db)
    waiting = run_json("evaluate", "P-001", "--as-of", MONTH6 - dt.timedelta(days=1), "--db", cli_db)
    assert waiting["ready"] is False and waiting["missing"]
    p = run_json("evaluate", "P-001", "--as-of", DECISION_DAY, "--db", cli_db)
    assert {"ready", "missing", "criteria", "favourable", "recommended_branch", "flags"} <= p.keys()
    assert p["ready"] is True and p["missing"] == []
    assert set(p["criteria"]) == {"rai_uptake", "tg_slope", "recist"}
    assert p["criteria"]["tg_slope"]["outcome"] == "response" and p["criteria"]["recist"]["outcome"] == "PR"
    assert p["favourable"] is True and p["recommended_branch"] == "favourable_without_uptake"
    assert "continued_sorafenib" in run("evaluate", "P-001", "--as-of", DECISION_DAY, "--db", cli_db).stdout
    # decide: too early (exit 1), then for real, then again (exit 1)
    early = run("decide", "P-001", "--date", MONTH6, "--db", cli_db, code=1)
    assert "not ready" in early.stderr
    out = run_json(
        "decide", "P-001", "--date", DECISION_DAY, "--db", cli_db, "--user", "investigator.dr-smit"
    )
    assert out["phase"] == "continued_sorafenib"
    assert [e["kind"] for e in out["events"]] == ["phase_changed", "decision", "phase_changed"]
    before = snapshot(cli_db)
    assert (
        "no decision is pending"
        in run("decide", "P-001", "--date", DECISION_DAY, "--db", cli_db, code=1).stderr
    )
    assert snapshot(cli_db) == before


def test_decide_override_needs_reason(cli_db: str, elig: Path) -> None:
    _responder_at_decision(cli_db)
    before = snapshot(cli_db)
    r = run("decide", "P-001", "--date", DECISION_DAY, "--override", "off_study", "--db", cli_db, code=2)
    assert "--override needs --reason" in r.stderr
    assert snapshot(cli_db) == before
    out = run_json(
        "decide",
        "P-001",
        "--date",
        DECISION_DAY,
        "--override",
        "off_study",
        "--reason",
        "patient declines further treatment",
        "--db",
        cli_db,
    )
    assert out["phase"] == "off_study"
    dec = next(e for e in out["events"] if e["kind"] == "decision")
    assert dec["reason"] == "patient declines further treatment" and dec["payload"]["override"] is True


# -- withdraw / complete / status / report / demo --------------------------------------------------
def test_withdraw_and_status(cli_db: str, elig: Path) -> None:
    _started(cli_db, elig)
    r = run("withdraw", "P-001", "--date", "2026-03-01", "--reason", "toxic", "--db", cli_db, code=1)
    assert "did you mean 'toxicity'" in r.stderr
    out = run_json(
        "withdraw",
        "P-001",
        "--date",
        "2026-03-01",
        "--reason",
        "toxicity",
        "--note",
        "grade 3 hand-foot skin reaction",
        "--db",
        cli_db,
    )
    assert out["phase"] == "withdrawn"
    st = run_json("status", "--db", cli_db)
    assert st[0]["patient"] == "P-001" and st[0]["phase"] == "withdrawn"
    assert {"patient", "phase", "phase_entered", "day0", "study_day", "dose_mg_per_day", "next_action"} <= st[
        0
    ].keys()
    assert "withdrawn" in run("status", "P-001", "--db", cli_db).stdout
    run("withdraw", "P-001", "--date", "2026-03-02", "--db", cli_db, code=2)  # --reason missing


def test_complete(cli_db: str, elig: Path) -> None:
    _started(cli_db, elig)
    r = run("complete", "P-001", "--date", "2026-08-01", "--db", cli_db, code=1)
    assert "trialflow decide P-001" in r.stderr


def test_report_json(cli_db: str, elig: Path) -> None:
    from statsmodels.stats.proportion import proportion_confint

    _responder_at_decision(cli_db)
    run("decide", "P-001", "--date", DECISION_DAY, "--db", cli_db)
    r = run_json("report", "--as-of", DECISION_DAY, "--db", cli_db)
    assert (r["evaluable"], r["favourable"], r["proportion"]) == (1, 1, 1.0)
    lo, hi = proportion_confint(1, 1, alpha=0.05, method="beta")
    assert r["ci95"] == pytest.approx([lo, hi], abs=1e-12)
    assert r["ci_method"] == "Clopper-Pearson exact"
    assert "Primary endpoint" in run("report", "--db", cli_db).stdout


def test_known_at_bad_timestamp_is_usage_error(cli_db: str) -> None:
    assert "--known-at" in run("history", "P-001", "--known-at", "yesterday", "--db", cli_db, code=2).stderr


def test_demo_builds_a_store_with_due_and_overdue_items(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    r = run("demo", "--db", db)
    assert "Primary endpoint" in r.stdout and "overdue" in r.stdout and "due" in r.stdout
    items = run_json("next", "--db", db)
    assert {"due", "overdue"} <= {i["status"] for i in items}
    assert len(run_json("status", "--db", db)) == 30
    run("demo", "--db", db)  # replaces its own demo file
    assert len(run_json("status", "--db", db)) == 30


def test_demo_refuses_to_replace_a_real_store(tmp_path: Path, elig: Path) -> None:
    real = tmp_path / "real.db"
    run("init", "--db", real)
    run("enroll", "P-001", "--date", ENROLLED, "--eligibility", elig, "--db", real)
    before = snapshot(str(real))
    assert "that the demo did not create" in run("demo", "--db", real, code=1).stderr
    assert snapshot(str(real)) == before


def test_a_sequence_of_failed_commands_changes_nothing(cli_db: str, elig: Path, tmp_path: Path) -> None:
    _started(cli_db, elig)
    run("record", "P-001", "tg", "--date", DAY0, "--value", "120", "--db", cli_db)
    before = snapshot(cli_db)
    run(
        "enroll", "P-001", "--date", ENROLLED, "--eligibility", elig, "--db", cli_db, code=1
    )  # already enrolled
    run("start", "P-001", "--date", DAY0, "--db", cli_db, code=1)  # already started
    run("start", "P-002", "--date", DAY0, "--db", cli_db, code=1)
    run("decide", "P-001", "--date", "2026-03-01", "--db", cli_db, code=1)
    run("withdraw", "P-001", "--date", "2025-12-01", "--reason", "consent", "--db", cli_db, code=1)
    run("complete", "P-001", "--date", "2026-03-01", "--db", cli_db, code=1)
    run("correct", "P-001", 1, "--value", "3", "--reason", "x", "--db", cli_db, code=1)
    run("init", "--db", cli_db, "--protocol", tmp_path / "nope.yaml", code=1)
    run("record", "P-001", "tg", "--date", "2026-02-09", "--value", "-4", "--db", cli_db, code=1)
    assert snapshot(cli_db) == before
