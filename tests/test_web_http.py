"""The web workspace over HTTP (FastAPI's TestClient): every role on every route, sessions, CSRF, errors.

The store is a two-site team (``web_helpers``): coordinators at LEI (anna) and GRO (bert), an
investigator at LEI (dr.smit), a monitor (mona), a data manager (dave) and the admin. Reads use one
store per module; every test that writes gets its own.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from web_client import app_for, post, signed_in, token
from web_helpers import ADMIN, PASSWORDS, build_team

from trialflow.engine import Store

USERS = [ADMIN, "anna", "bert", "dr.smit", "mona", "dave"]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_team(str(tmp_path_factory.mktemp("web") / "team.db"))


@pytest.fixture(scope="module")
def app(team):  # type: ignore[no-untyped-def]
    return app_for(team.db)


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A team store of this test's own, for tests that write."""
    return build_team(str(tmp_path / "team.db"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_both(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A team store of this test's own on SQLite and on PostgreSQL (skipped with the reason without a server)."""
    from workflow_helpers import new_db_url

    for url in new_db_url(request.param, tmp_path):
        yield build_team(url)


def events(db: str, patient: str) -> int:
    store = Store.open(db)
    try:
        return len(store.events(patient))
    finally:
        store.close()


# -- the server itself -------------------------------------------------------------------------------
def test_healthz_answers_ok_without_signing_in(app) -> None:  # type: ignore[no-untyped-def]
    r = signed_in(app, None).get("/healthz")
    assert r.status_code == 200 and r.text == "ok"


def test_pages_carry_a_strict_csp_and_no_caching(app) -> None:  # type: ignore[no-untyped-def]
    r = signed_in(app, "anna").get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert "<script>" not in r.text  # no inline script anywhere


def test_session_cookie_is_signed_httponly_and_samesite_strict(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, None)
    r = client.post("/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf_token": token(client)})
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    forged = signed_in(app, None)
    forged.cookies.set("trialflow_session", cookie.split(";")[0].split("=", 1)[1][:-4] + "AAAA")
    assert forged.get("/").status_code == 303  # a tampered cookie is no session


def test_behind_tls_the_session_cookie_is_secure(team) -> None:  # type: ignore[no-untyped-def]
    from trialflow.web import create_app

    client = signed_in(create_app(team.db, secret_key="k", secure_cookies=True), None)
    r = client.post("/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf_token": token(client)})
    assert "secure" in r.headers["set-cookie"].lower()


def test_vendored_htmx_and_mermaid_are_served_from_the_package(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, None)
    assert "htmx" in client.get("/static/htmx.min.js").text[:2000]
    assert client.get("/static/mermaid.min.js").status_code == 200
    page = signed_in(app, "anna").get("/protocol").text
    assert 'src="/static/mermaid.min.js"' in page and "http" not in re.sub(r'(href|src)="/[^"]*"', "", page).split(
        "<main", 1)[0].replace("http-equiv", "")


# -- signing in --------------------------------------------------------------------------------------
def test_wrong_password_and_unknown_user_get_the_same_answer(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, None)
    wrong = client.post("/login", data={"name": "anna", "password": "not-her-password", "csrf_token": token(client)})
    unknown = client.post("/login", data={"name": "nobody", "password": "not-her-password",
                                          "csrf_token": token(client)})
    assert wrong.status_code == unknown.status_code == 401
    msg = re.compile(r'<p class="error" role="alert" id="login-error">(.*?)</p>', re.S)
    a, b = msg.search(wrong.text), msg.search(unknown.text)
    assert a and b and a.group(1).replace("anna", "X") == b.group(1).replace("nobody", "X")
    assert "not-her-password" not in wrong.text


def test_login_goes_only_to_a_path_on_this_site(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, None)
    r = client.post("/login", data={"name": "anna", "password": PASSWORDS["anna"], "next": "//evil.example/",
                                    "csrf_token": token(client)})
    assert r.headers["location"] == "/"


def test_logout_ends_the_session(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, "anna")
    assert post(client, "/logout", {}).status_code == 303
    assert client.get("/").status_code == 303


# -- every role on every read route ------------------------------------------------------------------
# 200: shown; 404: not a patient this user may see (same as a patient that does not exist); 403: the role
# may not read patient data at all (the admin).
READ = {
    "/": {ADMIN: 403},
    "/patients/A-001": {"bert": 404, ADMIN: 404},
    "/patients/B-001": {"anna": 404, "dr.smit": 404, ADMIN: 404},
    "/patients/A-002/decision": {"bert": 404, ADMIN: 404},
    "/patients/A-001/record/tg": {"bert": 404, ADMIN: 404},
    "/patients/NOPE-999": {u: 404 for u in USERS},
    "/protocol": {},
    "/report": {ADMIN: 403},
    "/api/worklist": {ADMIN: 403},
    "/api/patients": {ADMIN: 403},
    "/api/patients/A-001": {"bert": 404, ADMIN: 404},
    "/api/patients/B-001": {"anna": 404, "dr.smit": 404, ADMIN: 404},
    "/api/patients/A-002/evaluate": {"bert": 404, ADMIN: 404},
    "/api/patients/A-001/history": {"bert": 404, ADMIN: 404},
    "/api/report": {ADMIN: 403},
}


@pytest.mark.parametrize("user", USERS)
def test_every_role_on_every_read_route(app, user: str) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, user)
    got = {route: client.get(route).status_code for route in READ}
    want = {route: rules.get(user, 200) for route, rules in READ.items()}
    assert got == want


@pytest.mark.parametrize("route", list(READ))
def test_signed_out_pages_lead_to_login_and_the_api_answers_401(app, route: str) -> None:  # type: ignore[no-untyped-def]
    r = signed_in(app, None).get(route)
    if route.startswith("/api/"):
        assert r.status_code == 401
    else:
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_site_scoping_holds_in_lists_too(app) -> None:  # type: ignore[no-untyped-def]
    anna = signed_in(app, "anna")
    ids = {a["patient"] for a in anna.get("/api/worklist").json()}
    assert "A-001" in ids and "B-001" not in ids
    page = anna.get("/").text
    assert "A-001" in page and "B-001" not in page
    assert "B-001" in {a["patient"] for a in signed_in(app, "mona").get("/api/worklist").json()}


# -- the API has the --json shapes -------------------------------------------------------------------
def test_api_worklist_and_evaluate_are_the_cli_json(app, team, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from trialflow.cli import app as cli

    monkeypatch.setenv("TRIALFLOW_PASSWORD", PASSWORDS["anna"])
    runner = CliRunner()
    client = signed_in(app, "anna")
    for api, args in (("/api/worklist", ["next"]), ("/api/patients/A-002/evaluate", ["evaluate", "A-002"]),
                      ("/api/patients/A-001", ["status", "A-001"]), ("/api/report", ["report"])):
        out = runner.invoke(cli, [*args, "--db", team.db, "--user", "anna", "--json"])
        assert out.exit_code == 0, out.output
        expected = json.loads(out.stdout)
        assert client.get(api).json() == (expected[0] if args[0] == "status" else expected), api


def test_openapi_document_lists_the_api(app) -> None:  # type: ignore[no-untyped-def]
    doc = signed_in(app, None).get("/api/openapi.json").json()
    assert {"/api/worklist", "/api/patients/{patient}", "/api/patients/{patient}/evaluate"} <= set(doc["paths"])


def test_bad_parameters_are_400_not_500(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, "anna")
    r = client.get("/api/worklist?as_of=yesterday")
    assert r.status_code == 400 and "as_of" in r.json()["detail"]
    assert client.get("/patients/A-001/record/teleportation").status_code == 404
    assert client.get("/no/such/page").status_code == 404


# -- CSRF on every form ------------------------------------------------------------------------------
def test_every_state_changing_route_refuses_a_missing_or_wrong_token(app, team) -> None:  # type: ignore[no-untyped-def]
    import importlib
    import pkgutil

    import trialflow.web

    # every router of the package, so a new module's routes are checked without listing it here
    modules = [importlib.import_module(f"trialflow.web.{m.name}") for m in pkgutil.iter_modules(trialflow.web.__path__)]
    posts = [r.path for m in modules if hasattr(m, "router") for r in m.router.routes
             if "POST" in getattr(r, "methods", set())]
    assert len(posts) >= 8 and "/patients/{patient}/visits/{visit}/{action}" in posts
    client = signed_in(app, "dr.smit")
    before = events(team.db, "A-001")
    paths = [p.replace("{patient}", "A-001").replace("{kind}", "tg").replace("{query}", "1").replace("{event}", "5")
             .replace("{visit}", "tg_w8").replace("{action}", "skip") for p in posts]
    for path in paths:
        assert client.post(path, data={"value": "12", "date": "2026-01-01"}).status_code == 403, path
        assert client.post(path, data={"csrf_token": "forged", "value": "12"}).status_code == 403, path
    assert events(team.db, "A-001") == before


# -- writes: who may, and a refused write changes nothing ---------------------------------------------
def test_who_may_record_a_tg(fresh) -> None:  # type: ignore[no-untyped-def]
    """Refused writers first (nothing stored), then the two who may (2 events each: Tg and its TgAb)."""
    import datetime as dt

    app = app_for(fresh.db)
    today = dt.date.today()
    for user, status, value in (("bert", 404, "61"), ("mona", 403, "62"), ("dave", 403, "63"), (ADMIN, 404, "64"),
                                ("anna", 303, "65"), ("dr.smit", 303, "66")):
        before = events(fresh.db, "A-001")
        day = (today - dt.timedelta(days=1 if user == "dr.smit" else 0)).isoformat()  # one Tg per sample and day
        r = post(signed_in(app, user), "/patients/A-001/record/tg", {"date": day, "value": value, "unit": "ug/L",
                                                                      "tgab": "negative" if value == "65" else ""})
        assert r.status_code == status, (user, r.text[-500:])
        assert events(fresh.db, "A-001") == before + {303: 2 if value == "65" else 1}.get(status, 0), user


def beside(page: str, field: str) -> str:
    """The text of the block that holds ``field`` (its label, input, help and errors)."""
    found = re.search(rf'id="field-{field}">(.*?)</div>', page, re.S)
    assert found, f"no field {field} on the page"
    return html.unescape(found.group(1))


def test_a_bad_value_is_shown_beside_its_field_with_the_cli_words_and_stores_nothing(fresh) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    client = signed_in(app_for(fresh.db), "anna")
    before = events(fresh.db, "A-001")
    today = dt.date.today()
    cases = {
        "value": ({"value": "abc"}, "expected a number or '<LoQ', got 'abc'"),
        "loq": ({"value": "12", "loq": "x"}, "expected a number, got 'x'"),
        "date": ({"value": "12", "date": (today + dt.timedelta(days=30)).isoformat()}, "in the future"),
    }
    for field, (data, words) in cases.items():
        r = post(client, "/patients/A-001/record/tg", {"date": today.isoformat(), "unit": "ug/L", **data})
        assert r.status_code == 422, field
        assert words in beside(r.text, field), field
    r = post(client, "/patients/A-001/record/tg", {"date": today.isoformat(), "value": "-3"})
    assert r.status_code == 422 and "value must be > 0" in beside(r.text, "value")
    assert events(fresh.db, "A-001") == before


def test_the_ct_form_records_targets_and_non_targets(fresh) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    client = signed_in(app_for(fresh.db), "anna")
    day = dt.date.today().isoformat()
    r = post(client, "/patients/A-001/record/ct", {"date": day, "slice_thickness": "5", "t1_id": "T1",
                                                    "t1_organ": "lung", "t1_mm": "20", "t2_id": "T2",
                                                    "t2_organ": "lymph_node", "t2_mm": "16", "t2_nodal": "on",
                                                    "n1_id": "N1", "n1_organ": "bone", "n1_status": "present"})
    assert r.status_code == 303, r.text
    store = Store.open(fresh.db)
    last = store.events("A-001")[-1].payload
    store.close()
    assert [t["diameter_mm"] for t in last["target"]] == [20.0, 16.0] and last["target"][1]["nodal"] is True
    assert last["non_target"] == [{"id": "N1", "organ": "bone", "status": "present"}]
    bad = post(client, "/patients/A-001/record/ct", {"date": day, "t1_id": "T1", "t1_organ": "lung", "t1_mm": "big"})
    assert bad.status_code == 422 and "diameter must be a number of mm" in bad.text


def test_the_decision_is_signed_by_an_investigator_only(fresh_both) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    app = app_for(fresh_both.db)
    day = dt.date.today().isoformat()
    page = "/patients/A-002/decision"
    anna, smit = signed_in(app, "anna"), signed_in(app, "dr.smit")
    assert "Sign the decision" not in anna.get(page).text  # offered to investigators only ...
    reviewed = re.search(r'name="reviewed" value="([^"]+)"', smit.get(page).text).group(1)
    before = events(fresh_both.db, "A-002")
    # ... and refused by the engine to anyone else who posts it anyway
    assert post(anna, page, {"date": day, "password": PASSWORDS["anna"], "reviewed": reviewed}, page).status_code == 403
    wrong = post(smit, page, {"date": day, "password": "not-my-password", "reviewed": reviewed}, page)
    assert wrong.status_code == 422 and "wrong user name or password" in wrong.text
    override = post(smit, page, {"date": day, "password": PASSWORDS["dr.smit"], "override": "off_study",
                                 "reviewed": reviewed}, page)
    assert override.status_code == 422 and "an override needs a reason" in override.text
    assert events(fresh_both.db, "A-002") == before
    ok = post(smit, page, {"date": day, "password": PASSWORDS["dr.smit"], "reviewed": reviewed}, page)
    assert ok.status_code == 303, ok.text
    assert smit.get("/api/patients/A-002").json()["phase"] == "continued_sorafenib"
    signed = smit.get(page).text
    assert "Signed decisions" in signed and "Dr. Eva Smit" in signed
    report = html.unescape(signed_in(app, "mona").get("/report").text)
    assert "Dr. Eva Smit" in report and "approved: move to continued_sorafenib" in report


def test_the_decision_is_signed_for_the_date_the_page_previewed(fresh) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    app = app_for(fresh.db)
    smit = signed_in(app, "dr.smit")
    page = "/patients/A-002/decision"
    day = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    bad = smit.get(f"{page}?date=2026-02-30")
    assert bad.status_code == 422 and "expected a date as YYYY-MM-DD, got '2026-02-30'" in html.unescape(bad.text)
    ahead = smit.get(f"{page}?date={(dt.date.today() + dt.timedelta(days=3)).isoformat()}")
    assert ahead.status_code == 422 and "future" in ahead.text
    before = events(fresh.db, "A-002")
    preview = smit.get(f"{page}?date={day}")
    assert preview.status_code == 200 and f"as of {day}" in preview.text
    assert f'name="date" value="{day}"' in preview.text  # the signing form carries the previewed date
    reviewed = re.search(r'name="reviewed" value="([^"]+)"', preview.text).group(1)
    assert events(fresh.db, "A-002") == before
    ok = post(smit, page, {"date": day, "password": PASSWORDS["dr.smit"], "reviewed": reviewed}, page)
    assert ok.status_code == 303, ok.text
    decision = next(e for e in smit.get("/api/patients/A-002/history").json() if e["kind"] == "decision")
    assert decision["effective_date"] == day


def test_the_api_refuses_a_preview_before_enrolment_as_the_date_not_as_no_patient(app) -> None:  # type: ignore[no-untyped-def]
    smit = signed_in(app, "dr.smit")
    early = smit.get("/api/patients/A-002/evaluate?as_of=2000-01-01")
    assert early.status_code == 422 and "was enrolled on" in early.json()["detail"][0], early.text
    assert smit.get("/api/patients/A-002/evaluate").status_code == 200
    assert smit.get("/api/patients/NO-SUCH/evaluate?as_of=2000-01-01").status_code == 404
    assert signed_in(app, "bert").get("/api/patients/A-002/evaluate?as_of=2000-01-01").status_code == 404
    page = smit.get("/patients/A-002/decision?date=2000-01-01")  # the page names the date it refuses
    assert page.status_code == 422 and "was enrolled on" in page.text


def test_a_monitor_opens_a_query_and_the_coordinator_answers_it(fresh_both) -> None:  # type: ignore[no-untyped-def]
    app = app_for(fresh_both.db)
    mona, anna, bert = signed_in(app, "mona"), signed_in(app, "anna"), signed_in(app, "bert")
    event = signed_in(app, "anna").get("/api/patients/A-001/history").json()[-1]["event"]
    assert post(anna, "/patients/A-001/queries", {"event": event, "text": "is this right?"}).status_code == 403
    r = post(mona, "/patients/A-001/queries", {"event": event, "text": "Tg week 4: please confirm the unit"})
    assert r.status_code == 303, r.text
    page = anna.get("/patients/A-001").text
    qid = int(re.search(r'id="q-(\d+)"', page).group(1))
    assert post(bert, f"/patients/A-001/queries/{qid}/answer", {"text": "mine?"}).status_code == 404
    assert post(mona, f"/patients/A-001/queries/{qid}/answer", {"text": "I answer"}).status_code == 403
    assert post(anna, f"/patients/A-001/queries/{qid}/answer", {"text": "confirmed: ug/L"}).status_code == 303
    assert "confirmed: ug/L" in mona.get("/patients/A-001").text


def test_a_write_from_outside_the_web_shows_on_the_next_page_view(fresh_both) -> None:  # type: ignore[no-untyped-def]
    """The worklist is cached while the store is unchanged; a record made through the library (as the CLI
    makes it) is a new event, so the next view is fresh."""
    import datetime as dt

    from web_helpers import cheap_hashing

    from trialflow.engine import authenticate, record_many

    anna = signed_in(app_for(fresh_both.db), "anna")
    due = [a for a in anna.get("/api/worklist").json() if a["patient"] == "A-001" and a["visit"] == "tg_w8"]
    assert due and anna.get("/api/worklist").json() == anna.get("/api/worklist").json()
    cheap_hashing()
    store = Store.open(fresh_both.db)
    day = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    record_many(store, [("A-001", {"kind": "tg", "date": day, "value": 61.0}),
                        ("A-001", {"kind": "tgab", "date": day, "result": "negative"})],
                authenticate(store, "anna", PASSWORDS["anna"]))
    store.close()
    assert not [a for a in anna.get("/api/worklist").json() if a["patient"] == "A-001" and a["visit"] == "tg_w8"]
    assert 'data-visit="tg_w8"' not in anna.get("/").text.split('data-patient="A-001"', 1)[-1].split("</tr>")[0]


def test_a_correction_is_a_new_event_shown_beside_the_original(fresh) -> None:  # type: ignore[no-untyped-def]
    app = app_for(fresh.db)
    anna, mona = signed_in(app, "anna"), signed_in(app, "mona")
    hist = anna.get("/api/patients/A-001/history").json()
    tg4 = next(e for e in hist if e["kind"] == "observation" and e["payload"]["kind"] == "tg"
               and e["payload"]["value"] == 95)
    path = f"/patients/A-001/correct/{tg4['event']}"
    before = events(fresh.db, "A-001")
    assert post(mona, path, {"value": "29.5", "reason": "lab re-issued"}, path).status_code == 403
    no_reason = post(anna, path, {"value": "29.5", "reason": " "}, path)
    assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
    bad = post(anna, path, {"value": "lots", "reason": "lab re-issued"}, path)
    assert bad.status_code == 422 and "expected a number, got 'lots'" in html.unescape(bad.text)
    assert events(fresh.db, "A-001") == before
    ok = post(anna, path, {"value": "92", "reason": "lab re-issued the week 4 result"}, path)
    assert ok.status_code == 303, ok.text
    row = re.search(rf'<tr id="obs-{tg4["event"]}".*?</tr>', anna.get("/patients/A-001").text, re.S)
    assert row and "tg 92.0 ug/L" in row.group(0) and "original: tg 95.0 ug/L" in row.group(0)
    assert "lab re-issued the week 4 result" in html.unescape(row.group(0))


def test_a_correction_to_an_implausible_value_is_refused_until_the_form_confirms_it(fresh) -> None:  # type: ignore[no-untyped-def]
    app = app_for(fresh.db)
    anna = signed_in(app, "anna")
    hist = anna.get("/api/patients/A-001/history").json()
    tg4 = next(e for e in hist if e["kind"] == "observation" and e["payload"]["kind"] == "tg"
               and e["payload"]["value"] == 95)
    path = f"/patients/A-001/correct/{tg4['event']}"
    before = events(fresh.db, "A-001")
    refused = post(anna, path, {"value": "300000", "reason": "lab re-issued"}, path)
    text = html.unescape(refused.text)
    assert refused.status_code == 422 and "outside the plausible range the protocol declares" in text
    assert 'name="confirm_unusual"' in text and "--confirm-unusual" not in text  # the form's words, not the CLI's
    assert events(fresh.db, "A-001") == before
    bound = re.search(r'name="confirm_for" value="([^"]*)"', refused.text)
    assert bound
    # a confirmation given for other values confirms nothing
    other = post(anna, path, {"value": "400000", "reason": "lab re-issued", "confirm_unusual": "re-assayed",
                              "confirm_for": html.unescape(bound.group(1))}, path)
    assert other.status_code == 422 and events(fresh.db, "A-001") == before
    ok = post(anna, path, {"value": "300000", "reason": "lab re-issued", "confirm_unusual": "re-assayed",
                           "confirm_for": html.unescape(bound.group(1))}, path)
    assert ok.status_code == 303, ok.text
    fix = anna.get("/api/patients/A-001/history").json()[-1]
    assert fix["kind"] == "correction" and fix["reason"] == "lab re-issued; unusual value confirmed: re-assayed"


def test_a_patient_whose_stored_event_was_stripped_gets_a_page_naming_it_not_a_generic_error(fresh) -> None:  # type: ignore[no-untyped-def]
    """A payload changed outside trialflow is the store's trouble: the page says which patient, event and field,
    and points at ``trialflow verify``, instead of "something went wrong" (or "no such patient")."""
    from sqlalchemy import create_engine, text

    store = Store.open(fresh.db)
    enrolled = next(e for e in store.events("A-001") if e.kind == "enrolled")
    store.close()
    payload = {k: v for k, v in enrolled.payload.items() if k != "phase"}
    engine = create_engine(fresh.db if "://" in fresh.db else f"sqlite:///{fresh.db}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE event SET payload = :p WHERE id = :id"),
                     {"p": json.dumps(payload), "id": enrolled.id})
    engine.dispose()
    client = signed_in(app_for(fresh.db), "anna")
    r = client.get("/patients/A-001")
    assert r.status_code == 500
    shown = html.unescape(r.text)
    assert f"patient A-001: event #1 (event {enrolled.id}, enrolled): its payload lacks 'phase'" in shown
    assert "trialflow verify" in shown and "Traceback" not in shown
    api = client.get("/api/patients/A-001/history")
    assert api.status_code == 500 and "lacks 'phase'" in api.json()["detail"]
