"""The visit ledger on the web: the patient's timeline, the worklist's missed group, deviations, skips and
adverse events, over HTTP (FastAPI's TestClient) and against the CLI's own answers.

The store is the two-site team of ``web_helpers``; A-003 (LEI) has Tg week 0 missed with its TgAb
missing and week 4 missed with nothing recorded. Every test that writes gets its own store.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from web_client import app_for, post, signed_in
from web_helpers import ADMIN, PASSWORDS, build_team

from trialflow.engine import Store

USERS = [ADMIN, "anna", "bert", "dr.smit", "mona", "dave"]
TODAY = dt.date.today()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_team(str(tmp_path_factory.mktemp("web-visits") / "team.db"))


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    return build_team(str(tmp_path / "team.db"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_both(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    from workflow_helpers import new_db_url

    for url in new_db_url(request.param, tmp_path):
        yield build_team(url)


def events(db: str, patient: str) -> int:
    store = Store.open(db)
    try:
        return len(store.events(patient))
    finally:
        store.close()


def cli(db: str, user: str, *args: str) -> Any:
    """``trialflow ARGS --db DB --user USER`` as the user runs it (password from the environment)."""
    from typer.testing import CliRunner

    from trialflow.cli import app

    return CliRunner(env={"TRIALFLOW_PASSWORD": PASSWORDS[user]}).invoke(app, [*args, "--db", db, "--user", user])


def cli_refusal(db: str, user: str, *args: str) -> str:
    out = cli(db, user, *args)
    assert out.exit_code != 0, out.output
    found = re.search(r"refused: (.*)", out.output)
    assert found, out.output
    return found.group(1).strip()


def without_advice(words: str) -> str:
    """The CLI's sentence less its command-line advice (" (--reason)", "; to not do it, use trialflow ..."):
    the engine's words a web form shows."""
    plain = re.sub(r" \(--[a-z-]+\)$|; [^;]*\btrialflow [^;]*$", "", words)
    assert "--" not in plain, words
    return plain


def timeline(page: str) -> dict[str, tuple[str, str]]:
    """Each visit on the patient page: its status and the text of its row."""
    rows = re.findall(r'<li class="v-[a-z_]+" id="visit-([a-z0-9_]+)" data-visit="[^"]*" data-status="([a-z_]+)">'
                      r"(.*?)</li>", page, re.S)
    return {v: (status, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())) for v, status, text in rows}


def missed_rows(page: str) -> set[tuple[str, str]]:
    return set(re.findall(r'<tr class="s-missed" data-patient="([^"]+)" data-action="[^"]*" data-visit="([^"]+)"',
                          page))


def beside(page: str, field: str) -> str:
    found = re.search(rf'id="field-{field}">(.*?)</div>', page, re.S)
    assert found, f"no field {field} on the page"
    return " ".join(html.unescape(found.group(1)).split())


def form_error(page: str) -> str:
    found = re.search(r'<div class="error" role="alert">(.*?)</div>', page, re.S)
    assert found, "no form-level error on the page"
    return " ".join(html.unescape(found.group(1)).split())


# -- reads: the timeline is the ledger, the worklist agrees with it -----------------------------------
def test_the_patient_timeline_is_the_engine_ledger(team) -> None:  # type: ignore[no-untyped-def]
    """Every visit of ``trialflow visits ID --json`` with its status, records, what is missing and the window."""
    client = signed_in(app_for(team.db), "anna")
    for patient in ("A-001", "A-002", "A-003"):
        out = cli(team.db, "anna", "visits", patient, "--json")
        assert out.exit_code == 0, out.output
        ledger = json.loads(out.stdout)["visits"]
        shown = timeline(client.get(f"/patients/{patient}").text)
        assert list(shown) == [v["visit"] for v in ledger], patient
        for v in ledger:
            status, text = shown[v["visit"]]
            assert status == v["status"], (patient, v["visit"])
            assert f"window {v['window_start']} – {v['window_end']}" in text
            for r in v["records"]:
                assert f"{r['kind']} {r['date']} (event {r['event']})" in text
        assert client.get(f"/api/patients/{patient}/visits").json() == json.loads(out.stdout)  # the same shape
    a003 = timeline(client.get("/patients/A-003").text)
    assert a003["tg_w0"][0] == "missed" and "TgAb missing" in a003["tg_w0"][1] and "Tg, TgAb" not in a003["tg_w0"][1]
    assert "no deviation yet" in a003["tg_w0"][1] and "Record a deviation" in a003["tg_w0"][1]
    assert a003["tg_w4"][0] == "missed" and "Tg, TgAb missing" in a003["tg_w4"][1]
    w8 = a003["tg_w8"]
    assert w8[0] == "upcoming" and "Record a deviation" not in w8[1] and "Skip" in w8[1]
    assert a003["baseline_ct"][0] == "done" and "Skip" not in a003["baseline_ct"][1]
    monitor = timeline(signed_in(app_for(team.db), "mona").get("/patients/A-003").text)
    assert "Record a deviation" not in monitor["tg_w4"][1]  # not offered to a role that may not record


def test_a_patient_in_screening_shows_the_baseline_and_says_when_the_rest_gets_dates(fresh) -> None:  # type: ignore[no-untyped-def]
    from web_helpers import cheap_hashing
    from workflow_helpers import ELIGIBLE

    from trialflow.engine import authenticate, enroll

    cheap_hashing()
    store = Store.open(fresh.db)
    enroll(store, "A-010", TODAY - dt.timedelta(days=3), ELIGIBLE, authenticate(store, "anna", PASSWORDS["anna"]),
           site="LEI")
    store.close()
    client = signed_in(app_for(fresh.db), "anna")
    page = client.get("/patients/A-010").text
    shown = timeline(page)
    assert set(shown) == {"baseline_ct", "baseline_rai_scan"} and {s for s, _ in shown.values()} == {"due"}
    ledger = client.get("/api/patients/A-010/visits").json()
    assert ledger["unscheduled"] and f"{ledger['unscheduled'][0]}: its visits get their dates at day 0" in page
    assert "/api/patients/{patient}/visits" in client.get("/api/openapi.json").json()["paths"]


@pytest.mark.parametrize("user", ["anna", "bert", "dr.smit", "mona", "dave"])
def test_the_worklist_missed_group_is_the_ledger_unresolved_missed_visits(team, user: str) -> None:  # type: ignore[no-untyped-def]
    out = cli(team.db, user, "visits", "--status", "missed", "--unresolved", "--json")
    assert out.exit_code == 0, out.output
    ledger = {(v["patient"], v["visit"]) for v in json.loads(out.stdout)}
    page = signed_in(app_for(team.db), user).get("/").text
    assert missed_rows(page) == ledger
    assert bool(ledger) == (user != "bert")  # A-003 is at LEI: bert (GRO) has nothing missed
    if user in ("anna", "dr.smit"):
        assert ledger == {("A-003", "tg_w0"), ("A-003", "tg_w4")}
        assert 'href="/patients/A-003/visits/tg_w4/deviation"' in page
    if user in ("mona", "dave"):
        assert "/visits/tg_w4/deviation" not in page


# -- every role on the new routes ----------------------------------------------------------------------
FORMS = {
    "/patients/A-003/visits/tg_w4/deviation": {"bert": 404, ADMIN: 404},
    "/patients/A-003/visits/tg_w4/skip": {"bert": 404, ADMIN: 404},
    "/patients/B-001/visits/tg_w8/skip": {"anna": 404, "dr.smit": 404, ADMIN: 404},
    "/patients/A-003/visits/no_such_visit/deviation": {u: 404 for u in USERS},
    "/patients/A-003/visits/tg_w4/teleport": {u: 404 for u in USERS},
    "/patients/NOPE-999/visits/tg_w4/deviation": {u: 404 for u in USERS},
    "/patients/A-003/record/adverse_event": {"bert": 404, ADMIN: 404},
    "/api/patients/A-003/visits": {"bert": 404, ADMIN: 404},
    "/api/patients/B-001/visits": {"anna": 404, "dr.smit": 404, ADMIN: 404},
}


@pytest.mark.parametrize("user", USERS)
def test_every_role_on_the_visit_forms(team, user: str) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app_for(team.db), user)
    got = {route: client.get(route).status_code for route in FORMS}
    assert got == {route: rules.get(user, 200) for route, rules in FORMS.items()}


def test_the_visit_forms_refuse_a_missing_or_forged_token(team) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app_for(team.db), "anna")
    before = events(team.db, "A-003")
    for path in ("/patients/A-003/visits/tg_w4/deviation", "/patients/A-003/visits/tg_w4/skip"):
        data = {"kind": "missed", "reason": "patient on holiday", "date": TODAY.isoformat()}
        assert client.post(path, data=data).status_code == 403, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403, path
    assert events(team.db, "A-003") == before


# -- writing a deviation and a skip --------------------------------------------------------------------
def test_who_may_record_a_deviation_and_a_refused_one_changes_nothing(fresh_both) -> None:  # type: ignore[no-untyped-def]
    """A monitor and a data manager are refused by the engine (403); another site and the admin get 404; an
    investigator and a coordinator of the site may. Then the missed visit leaves the worklist's missed group."""
    db = fresh_both.db
    app = app_for(db)
    path = "/patients/A-003/visits/tg_w4/deviation"
    data = {"kind": "missed", "reason": "patient on holiday", "date": TODAY.isoformat()}
    before = events(db, "A-003")
    for user, status in (("bert", 404), ("mona", 403), (ADMIN, 404), ("dave", 403)):
        r = post(signed_in(app, user), path, data, "/login")
        assert r.status_code == status, (user, r.text[-400:])
        if status == 403:
            assert "may not record clinical data: that needs the coordinator or investigator role" in \
                html.unescape(r.text)
    assert events(db, "A-003") == before
    anna = signed_in(app, "anna")
    assert ("A-003", "tg_w4") in missed_rows(anna.get("/").text)
    r = post(anna, path, data, path)
    assert r.status_code == 303, r.text[-400:]
    assert events(db, "A-003") == before + 1
    page = anna.get("/patients/A-003").text
    assert "A-003: deviation (missed) recorded for tg_w4" in page  # the engine's message, as the CLI prints it
    status, text = timeline(page)["tg_w4"]
    assert status == "missed" and "deviation recorded" in text and "patient on holiday" in text
    assert "Record a deviation" not in text
    rows = missed_rows(anna.get("/").text)
    assert ("A-003", "tg_w4") not in rows and ("A-003", "tg_w0") in rows
    ledger = json.loads(cli(db, "anna", "visits", "A-003", "--json").stdout)["visits"]
    dev = next(v for v in ledger if v["visit"] == "tg_w4")["deviations"]
    assert [(d["kind"], d["reason"]) for d in dev] == [("missed", "patient on holiday")]
    smit = signed_in(app, "dr.smit")
    r = post(smit, "/patients/A-003/visits/tg_w0/deviation", {**data, "kind": "not_done", "reason": "TgAb not sent"},
             "/patients/A-003/visits/tg_w0/deviation")
    assert r.status_code == 303, r.text[-400:]
    assert not missed_rows(smit.get("/").text)


def test_a_bad_deviation_shows_the_cli_message_beside_its_field_and_stores_nothing(fresh) -> None:  # type: ignore[no-untyped-def]
    db = fresh.db
    client = signed_in(app_for(db), "anna")
    path = "/patients/A-003/visits/tg_w4/deviation"
    before = events(db, "A-003")
    future = (TODAY + dt.timedelta(days=30)).isoformat()
    cases = [  # field, the form's values, the CLI's arguments for the same input
        ("reason", {"kind": "missed", "reason": "  "}, ["--kind", "missed", "--reason", "  "]),
        ("kind", {"kind": "forgot", "reason": "x"}, ["--kind", "forgot", "--reason", "x"]),
        ("date", {"kind": "missed", "reason": "x", "date": future}, ["--kind", "missed", "--reason", "x",
                                                                    "--date", future]),
    ]
    for field, values, args in cases:
        r = post(client, path, {"date": TODAY.isoformat(), **values}, path)
        assert r.status_code == 422, field
        words = without_advice(cli_refusal(db, "anna", "deviation", "A-003", "tg_w4", *args))
        assert words in beside(r.text, field) and "--" not in beside(r.text, field), (field, words)
    r = post(client, path, {"kind": "missed", "reason": "x", "date": "yesterday"}, path)
    assert r.status_code == 422 and "expected a date as YYYY-MM-DD, got 'yesterday'" in beside(r.text, "date")
    # a visit still open: the engine's message for the visit as a whole
    open_path = "/patients/A-003/visits/tg_w8/deviation"
    r = post(client, open_path, {"kind": "missed", "reason": "x", "date": TODAY.isoformat()}, open_path)
    assert r.status_code == 422
    words = cli_refusal(db, "anna", "deviation", "A-003", "tg_w8", "--kind", "missed", "--reason", "x")
    assert without_advice(words) in form_error(r.text) and "trialflow skip" in words
    assert "--" not in form_error(r.text) and "skip this visit" in r.text  # the page links to the skip form
    assert ">x</textarea>" in beside(r.text, "reason")  # what was typed is kept
    assert events(db, "A-003") == before


def test_a_skip_takes_the_visit_off_the_worklist_with_its_reason(fresh) -> None:  # type: ignore[no-untyped-def]
    db = fresh.db
    app = app_for(db)
    path = "/patients/A-003/visits/tg_w8/skip"
    before = events(db, "A-003")
    mona = signed_in(app, "mona")
    assert post(mona, path, {"reason": "x", "date": TODAY.isoformat()}, path).status_code == 403
    anna = signed_in(app, "anna")
    r = post(anna, path, {"reason": " ", "date": TODAY.isoformat()}, path)
    assert r.status_code == 422
    assert without_advice(cli_refusal(db, "anna", "skip", "A-003", "tg_w8", "--reason", " ")) in \
        beside(r.text, "reason")
    done = "/patients/A-003/visits/baseline_ct/skip"
    r = post(anna, done, {"reason": "x", "date": TODAY.isoformat()}, done)
    assert r.status_code == 422 and "visit baseline_ct is done: it cannot be skipped" in form_error(r.text)
    assert events(db, "A-003") == before
    assert 'data-visit="tg_w8"' in anna.get("/").text.split('data-patient="A-003"', 1)[1]
    r = post(anna, path, {"reason": "patient moved abroad for two months", "date": TODAY.isoformat()}, path)
    assert r.status_code == 303, r.text[-400:]
    status, text = timeline(anna.get("/patients/A-003").text)["tg_w8"]
    assert status == "skipped" and "skipped: patient moved abroad for two months" in text
    worklist = anna.get("/api/worklist").json()
    assert not [a for a in worklist if a["patient"] == "A-003" and a["visit"] == "tg_w8"]


# -- the adverse event with every field ----------------------------------------------------------------
def test_the_adverse_event_form_records_every_field_and_the_dose_reduction_reaches_the_worklist(fresh) -> None:  # type: ignore[no-untyped-def]
    db = fresh.db
    client = signed_in(app_for(db), "anna")
    path = "/patients/A-001/record/adverse_event"
    form = client.get(path).text
    for label in ("Onset date", "CTCAE term", "CTCAE grade", "Resolution date", "Serious adverse event (SAE)",
                  "Relatedness to Sorafenib", "Action taken with Sorafenib"):
        assert label in form, label
    onset = (TODAY - dt.timedelta(days=6)).isoformat()
    resolved = (TODAY - dt.timedelta(days=1)).isoformat()
    r = post(client, path, {"date": onset, "term": "Palmar-plantar erythrodysesthesia syndrome", "grade": "3",
                            "resolved": resolved, "serious": "on", "relatedness": "definite",
                            "action": "dose_reduced"}, path)
    assert r.status_code == 303, r.text[-400:]
    store = Store.open(db)
    payload = store.events("A-001")[-1].payload
    store.close()
    assert payload == {"kind": "adverse_event", "date": onset, "term": "Palmar-plantar erythrodysesthesia syndrome",
                       "grade": 3, "resolved": resolved, "serious": True, "relatedness": "definite",
                       "action": "dose_reduced"}
    page = client.get("/patients/A-001").text
    row = re.search(r'<tr id="ae-\d+">(.*?)</tr>', page, re.S)
    assert row
    cells = [" ".join(html.unescape(re.sub(r"<[^>]+>", "", c)).split())
             for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]
    assert cells[:7] == [onset, "Palmar-plantar erythrodysesthesia syndrome", "3", resolved, "yes", "definite",
                         "dose reduced"]
    dispense = [a for a in client.get("/api/worklist").json() if a["patient"] == "A-001" and a["action"] == "dispense"]
    assert dispense and "600 mg/day" in dispense[0]["detail"]  # the next lower dose level
    safety = json.loads(cli(db, "anna", "safety", "--json").stdout)
    assert safety["patients_with_sae"] == 1 and safety["patients_dose_reduced"] == 1


def test_a_bad_adverse_event_shows_the_cli_message_beside_its_field_and_stores_nothing(fresh) -> None:  # type: ignore[no-untyped-def]
    db = fresh.db
    client = signed_in(app_for(db), "anna")
    path = "/patients/A-001/record/adverse_event"
    onset = (TODAY - dt.timedelta(days=6)).isoformat()
    before = events(db, "A-001")
    base = {"date": onset, "term": "Diarrhoea", "grade": "2"}
    cases = [
        ("resolved", {"resolved": (TODAY - dt.timedelta(days=10)).isoformat()}),
        ("relatedness", {"relatedness": "maybe"}),
        ("action", {"action": "halved"}),
        ("grade", {"grade": "7"}),
    ]
    for field, values in cases:
        r = post(client, path, {**base, **values}, path)
        assert r.status_code == 422, (field, r.status_code)
        args = [f"--{k}={v}" for k, v in {**base, **values}.items()]
        words = cli_refusal(db, "anna", "record", "A-001", "adverse_event", *args)
        assert words.split(": ", 2)[-1] in beside(r.text, field), (field, words)
    r = post(client, path, {**base, "term": " "}, path)  # a blank field: the engine's words, not the CLI's flag
    assert r.status_code == 422 and "A-001: adverse_event: term is missing" in beside(r.text, "term")
    assert "--" not in beside(r.text, "term")
    r = post(client, path, {**base, "resolved": "2026-13-01"}, path)
    assert r.status_code == 422 and "expected a date as YYYY-MM-DD, got '2026-13-01'" in beside(r.text, "resolved")
    assert events(db, "A-001") == before
