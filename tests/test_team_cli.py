"""The team from the command line: init --admin, sites, users, authenticated commands, a signed decision, audit.

Refusals exit 1 with one clear line and write nothing; bad usage exits 2; no traceback ever.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from team_helpers import Team, at_decision, cheap_hashing  # noqa: F401  # fixture
from typer.testing import CliRunner
from workflow_helpers import DECISION_DAY, ELIGIBLE, snapshot

from trialflow.cli import app
from trialflow.engine import Store, authenticate

runner = CliRunner()


def run(*args: Any, code: int = 0, password: str | None = None, stdin: str | None = None,
        new_password: str | None = None) -> Any:
    env = {"TRIALFLOW_PASSWORD": password, "TRIALFLOW_NEW_PASSWORD": new_password, "TRIALFLOW_USER": None}
    r = runner.invoke(app, [str(a) for a in args], input=stdin, env=env)  # type: ignore[arg-type]
    assert r.exit_code == code, (args, r.exit_code, r.output, r.stderr if hasattr(r, "stderr") else "")
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


@pytest.fixture
def study(db_url: str, tmp_path: Path, cheap_hashing: list[float]) -> dict[str, Any]:  # noqa: F811
    """A two-site study: admin, AMS and LEI, coordinator anna and investigator dr.smit at AMS."""
    db = db_url
    r = run("init", "--db", db, "--admin", "admin.jo", "--full-name", "Jo Admin", "--password-stdin",
            stdin="admin-pass-0001\n")
    assert "first admin admin.jo created" in r.output
    run("site", "add", "AMS", "--name", "Amsterdam UMC", "--db", db, "--user", "admin.jo", password="admin-pass-0001")
    run("site", "add", "LEI", "--name", "LUMC", "--db", db, "--user", "admin.jo", password="admin-pass-0001")
    run("user", "add", "anna", "--role", "coordinator", "--site", "AMS", "--full-name", "Anna de Vries", "--db", db,
        "--user", "admin.jo", "--password-stdin", stdin="admin-pass-0001\nanna-pass-0001\n")
    run("user", "add", "dr.smit", "--role", "investigator", "--site", "AMS", "--full-name", "Dr. Jan Smit",
        "--db", db, "--user", "admin.jo", password="admin-pass-0001", new_password="smit-pass-0001")
    elig = tmp_path / "eligibility.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    return {"db": db, "elig": elig}


def test_init_without_admin_says_single_user_mode(db_url: str) -> None:
    r = run("init", "--db", db_url)
    assert "no users: single-user mode" in r.output and "init --admin NAME" in r.output


def test_init_admin_needs_a_password_and_has_no_default(db_url: str, cheap_hashing: list[float]) -> None:  # noqa: F811
    r = run("init", "--db", db_url, "--admin", "admin.jo", code=2)
    assert "a password for admin.jo is needed" in r.output
    run("init", "--db", db_url, "--admin", "admin.jo", "--password-stdin", stdin="short\n", code=1)
    r = run("user", "list", "--db", db_url, "--json", code=1)
    assert "trialflow init" in r.output  # refused before anything was created: no store, no weak or default admin


def test_two_site_study_and_a_signed_decision(study: dict[str, Any]) -> None:
    db = study["db"]
    store = Store.open(db)  # the six months of records, through the library as anna (the CLI tests cover record)
    at_decision(Team(store, {"anna": authenticate(store, "anna", "anna-pass-0001")}), "P-001", "anna", "AMS")
    store.close()
    before = snapshot(db)
    # a coordinator cannot decide; an investigator with the wrong password cannot either
    r = run("decide", "P-001", "--date", DECISION_DAY, "--db", db, "--user", "anna", password="anna-pass-0001", code=1)
    assert "needs the investigator role" in r.output
    r = run("decide", "P-001", "--date", DECISION_DAY, "--db", db, "--user", "dr.smit", password="wrong-password",
            code=1)
    assert "wrong user name or password" in r.output
    assert snapshot(db)[0] == before[0]
    r = run("decide", "P-001", "--date", DECISION_DAY, "--db", db, "--user", "dr.smit", "--password-stdin",
            stdin="smit-pass-0001\n")
    assert "P-001: decision month6 →" in r.output
    r = run("history", "P-001", "--db", db, "--user", "dr.smit", "--json", password="smit-pass-0001")
    sig = next(e for e in json.loads(r.stdout) if e["kind"] == "signature")
    assert sig["signature"]["valid"] and sig["signature"]["full_name"] == "Dr. Jan Smit"
    assert sig["user_id"] is not None
    r = run("audit", "--verify", "--db", db, "--login", "admin.jo", password="admin-pass-0001")
    assert "1 signatures: intact" in r.output
    r = run("audit", "--user", "dr.smit", "--db", db, "--login", "admin.jo", "--json", password="admin-pass-0001")
    actions = [e["action"] for e in json.loads(r.stdout)]
    assert "decision" in actions and "signature" in actions and "login_failed" in actions
    assert all(e["context"].get("os_login") for e in json.loads(r.stdout) if e["action"] != "login_failed")


def test_reads_need_authentication_and_stay_within_the_site(study: dict[str, Any]) -> None:
    db = study["db"]
    run("enroll", "P-101", "--date", "2025-12-29", "--eligibility", study["elig"], "--site", "LEI", "--db", db,
        "--user", "admin.jo", password="admin-pass-0001", code=1)
    r = run("status", "--db", db, "--user", "anna", code=1)
    assert "must authenticate" in r.output
    r = run("status", "--db", db, "--user", "anna", "--json", password="anna-pass-0001")
    assert json.loads(r.stdout) == []


def test_monitor_cannot_record_and_nothing_is_written(study: dict[str, Any]) -> None:
    db = study["db"]
    run("user", "add", "mona", "--role", "monitor", "--db", db, "--user", "admin.jo", password="admin-pass-0001",
        new_password="mona-pass-0001")
    run("enroll", "P-001", "--date", "2025-12-29", "--eligibility", study["elig"], "--db", db, "--user", "anna",
        "--site", "AMS", password="anna-pass-0001")
    before = snapshot(db)
    r = run("record", "P-001", "tg", "--date", "2026-01-02", "--value", "12", "--db", db, "--user", "mona",
            password="mona-pass-0001", code=1)
    assert "refused: mona (monitor) may not record clinical data: that needs the coordinator or investigator role" \
        in r.output
    assert snapshot(db) == before


def test_hostile_user_names_exit_1(study: dict[str, Any]) -> None:
    for name in ("robert'); DROP TABLE app_user;--", "ádmin", "x" * 70):
        r = run("user", "add", name, "--role", "monitor", "--db", study["db"], "--user", "admin.jo",
                password="admin-pass-0001", new_password="a-long-password-1", code=1)
        assert "is not allowed" in r.output
        r = run("status", "--db", study["db"], "--user", name, password="anything-at-all", code=1)
        assert "wrong user name or password" in r.output


def _data_manager_and_p001(study: dict[str, Any]) -> None:
    """The study plus a data manager, dina, and one patient, P-001, enrolled at AMS by anna."""
    db = study["db"]
    run("user", "add", "dina", "--role", "data_manager", "--db", db, "--user", "admin.jo", password="admin-pass-0001",
        new_password="dina-pass-0001")
    run("enroll", "P-001", "--date", "2025-12-29", "--eligibility", study["elig"], "--db", db, "--user", "anna",
        "--site", "AMS", password="anna-pass-0001")


def test_lock_and_queries_from_the_cli(study: dict[str, Any]) -> None:
    db = study["db"]
    _data_manager_and_p001(study)
    r = run("query", "open", "P-001", "1", "--text", "Date of consent?", "--db", db, "--user", "dina", "--json",
            password="dina-pass-0001")
    qid = json.loads(r.stdout)["id"]
    r = run("query", "list", "--assigned-to-me", "--db", db, "--user", "anna", "--json", password="anna-pass-0001")
    assert [q["text"] for q in json.loads(r.stdout)] == ["Date of consent?"]
    run("lock", "P-001", "--reason", "interim lock", "--db", db, "--user", "dina", password="dina-pass-0001")
    r = run("record", "P-001", "rai_scan", "--date", "2026-01-05", "--modalities", "planar", "--db", db,
            "--user", "anna", password="anna-pass-0001", code=1)
    assert "case book is locked" in r.output
    run("query", "answer", str(qid), "--text", "2025-12-20", "--db", db, "--user", "anna", password="anna-pass-0001")
    run("unlock", "P-001", "--reason", "reopened", "--db", db, "--user", "dina", password="dina-pass-0001")
    r = run("query", "close", str(qid), "--db", db, "--user", "dina", password="dina-pass-0001")
    assert "closed" in r.output


def test_the_team_tables_never_break_an_id_or_a_date_at_80_columns(study: dict[str, Any]) -> None:
    db = study["db"]
    _data_manager_and_p001(study)
    run("query", "open", "P-001", "1", "--text", "Date of consent? The form says one date, the letter another.",
        "--db", db, "--user", "dina", password="dina-pass-0001")
    as_admin = ("--user", "admin.jo")
    tables = {
        "query list": run("query", "list", "--db", db, "--user", "dina", password="dina-pass-0001").stdout,
        "protocol versions": run("protocol", "versions", "--db", db).stdout,  # (no clinical data: no sign-in)
        "audit": run("audit", "--db", db, "--login", "admin.jo", password="admin-pass-0001").stdout,
        "user list": run("user", "list", "--db", db, *as_admin, password="admin-pass-0001").stdout,
        "site list": run("site", "list", "--db", db).stdout,
    }
    versions = json.loads(run("protocol", "versions", "--db", db, "--json").stdout)
    today = __import__("datetime").date.today().isoformat()
    for name, text in tables.items():
        assert all(len(line) <= 80 for line in text.splitlines()), (name, text)
    assert today in tables["query list"] and "P-001" in tables["query list"]
    assert versions[0]["content_hash"][:12] in tables["protocol versions"]
    assert "admin.jo" in tables["audit"] and f"{today} " in tables["audit"]
    for login in ("admin.jo", "anna", "dr.smit", "dina"):
        assert any(line.split()[0] == login for line in tables["user list"].splitlines()[1:] if line.strip())
    assert "Amsterdam UMC" in tables["site list"]


def test_the_audit_trail_and_the_query_list_print_a_screenful_and_count_the_rest(study: dict[str, Any]) -> None:
    db = study["db"]
    _data_manager_and_p001(study)
    for text in ("Date of consent?", "Which lab?", "Unit of the week 0 Tg?"):
        run("query", "open", "P-001", "1", "--text", text, "--db", db, "--user", "dina", password="dina-pass-0001")
    trail = json.loads(run("audit", "--db", db, "--login", "admin.jo", "--json", password="admin-pass-0001").stdout)
    latest = run("audit", "--db", db, "--login", "admin.jo", "--limit", "2", password="admin-pass-0001").stdout
    assert f"… {len(trail) - 2} earlier (--all, --json, --since DATE)" in " ".join(latest.split())
    assert "query_opened" in latest.splitlines()[-3] + latest.splitlines()[-4]  # the latest two are shown
    every = run("audit", "--db", db, "--login", "admin.jo", "--all", password="admin-pass-0001").stdout
    assert "earlier" not in every and "site_added" in every and "enrolled" in every
    one = run("query", "list", "--db", db, "--user", "dina", "--limit", "1", password="dina-pass-0001").stdout
    assert "Date of consent?" not in one and "Which lab?" not in one  # the newest, query 4, alone
    assert [line.split()[0] for line in one.splitlines()[1:] if line[:5].strip().isdigit()] == ["4"]
    assert "… 2 more (--all, --json) · open 3" in " ".join(one.split())
    assert "earlier" not in run("query", "list", "--db", db, "--user", "dina", "--all",
                                password="dina-pass-0001").stdout
