"""What the web's forms say when they refuse: the engine's words beside the field, never a CLI flag, and a
value outside the protocol's plausible range recorded only once confirmed with a reason, stored as
``trialflow record ... --confirm-unusual REASON`` stores it (over HTTP, against the CLI on a twin store).

The store is the two-site team of ``web_helpers`` (the bundled protocol declares Tg at most 100,000 ug/L and
a target lesion 0-300 mm). Every test writes, so each gets its own store.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import pytest
from web_client import app_for, post, signed_in
from web_helpers import PASSWORDS, build_team

from trialflow.engine import Store

TODAY = dt.date.today().isoformat()
REASON = "lab confirmed on repeat, bulky lung disease"


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    return build_team(str(tmp_path / "team.db"))


@pytest.fixture
def twin(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The same team in a second store, for the CLI to record into."""
    return build_team(str(tmp_path / "twin.db"))


def cli(db: str, user: str, *args: str) -> Any:
    from typer.testing import CliRunner

    from trialflow.cli import app

    return CliRunner(env={"TRIALFLOW_PASSWORD": PASSWORDS[user]}).invoke(app, [*args, "--db", db, "--user", user])


def observations(db: str, patient: str) -> list[tuple[Any, ...]]:
    """The patient's events as facts: kind, date, payload and the reason stored with it (no ids, no clock)."""
    store = Store.open(db)
    try:
        return [(e.kind, e.effective_date, dict(e.payload), e.reason) for e in store.events(patient)]
    finally:
        store.close()


def alerts(page: str) -> list[str]:
    """The text of every error the page shows (they all carry role=alert)."""
    found = re.findall(r'<(p|div)\b[^>]*role="alert"[^>]*>(.*?)</\1>', page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split()) for _, text in found]


def beside(page: str, field: str) -> str:
    found = re.search(rf'id="field-{field}"[^>]*>(.*?)</(?:div|fieldset)>', page, re.S)
    assert found, f"no field {field} on the page"
    return " ".join(html.unescape(found.group(1)).split())


# -- plausibility: refuse, offer the confirmation, store the reason as the CLI does ---------------------
CASES = {  # form kind: (the form's values, the CLI's options for the same input, the field it concerns)
    "tg": ({"value": "250000", "unit": "ug/L", "tgab": "negative"},
           ["--value", "250000", "--tgab", "negative"], "value"),
    "ct": ({"t1_id": "T1", "t1_organ": "lung", "t1_mm": "450"}, ["--target", "T1:lung:450"], "target"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_an_implausible_value_is_recorded_once_confirmed_and_stored_as_the_cli_stores_it(fresh, twin,  # type: ignore[no-untyped-def]
                                                                                         kind: str) -> None:
    values, options, field = CASES[kind]
    client = signed_in(app_for(fresh.db), "anna")
    path = f"/patients/A-001/record/{kind}"
    before = observations(fresh.db, "A-001")
    assert 'name="confirm_unusual"' not in client.get(path).text  # offered only when the engine asks for it
    refused = cli(twin.db, "anna", "record", "A-001", kind, "--date", TODAY, *options)
    assert refused.exit_code != 0 and "--confirm-unusual REASON" in refused.output
    words = re.search(r"refused: (.*?); if it is right", refused.output, re.S)
    assert words, refused.output
    r = post(client, path, {"date": TODAY, **values}, path)
    assert r.status_code == 422, r.text[-400:]
    assert " ".join(words.group(1).split()) in beside(r.text, field)  # the engine's message, beside the field
    assert "is outside the plausible range the protocol declares" in beside(r.text, field)
    assert not [a for a in alerts(r.text) if "--" in a]
    assert 'name="confirm_unusual"' in r.text and "Confirm the unusual value" in r.text
    blank = post(client, path, {"date": TODAY, **values, "confirm_unusual": "   "}, path)  # a blank reason is none
    assert blank.status_code == 422 and 'name="confirm_unusual"' in blank.text
    assert observations(fresh.db, "A-001") == before  # a refused write changes nothing
    r = post(client, path, {"date": TODAY, **values, "confirm_unusual": REASON}, path)
    assert r.status_code == 303, r.text[-400:]
    done = cli(twin.db, "anna", "record", "A-001", kind, "--date", TODAY, *options, "--confirm-unusual", REASON)
    assert done.exit_code == 0, done.output
    web, terminal = observations(fresh.db, "A-001"), observations(twin.db, "A-001")
    added = web[len(before):]
    assert added == terminal[len(before):] and added  # the same events: payloads and the stored reason
    assert added[0][3] == f"unusual value confirmed: {REASON}"
    history = client.get("/api/patients/A-001/history").json()
    assert history[-len(added)]["reason"] == f"unusual value confirmed: {REASON}"


def test_a_confirmed_form_with_another_mistake_keeps_the_reason_and_stores_nothing(fresh) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app_for(fresh.db), "anna")
    path = "/patients/A-001/record/tg"
    before = observations(fresh.db, "A-001")
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = post(client, path, {"date": future, "value": "250000", "confirm_unusual": REASON}, path)
    assert r.status_code == 422 and "in the future" in beside(r.text, "date")
    assert f">{REASON}</textarea>" in r.text  # what was typed is kept
    assert observations(fresh.db, "A-001") == before


def test_a_reason_left_in_the_form_does_not_confirm_a_value_changed_since(fresh) -> None:  # type: ignore[no-untyped-def]
    """The reason confirms the value it was given for: after a refusal that kept it (another mistake), a
    different implausible value is refused again, with the field empty, and nothing is stored; the same
    value with its reason is recorded."""
    client = signed_in(app_for(fresh.db), "anna")
    path = "/patients/A-001/record/tg"
    before = observations(fresh.db, "A-001")
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    first = {"date": future, "value": "250000", "unit": "ug/L", "tgab": "negative", "confirm_unusual": REASON}
    r = post(client, path, first, path)  # refused for the date: the reason is kept, bound to these values
    assert r.status_code == 422 and "in the future" in beside(r.text, "date") and f">{REASON}</textarea>" in r.text
    bound = re.search(r'name="confirm_for" value="([0-9a-f]+)"', r.text)
    assert bound, r.text[-400:]
    # the date fixed and the value changed to another implausible one, the old reason still in the field
    other = {**first, "date": TODAY, "value": "900000", "confirm_for": bound.group(1)}
    r = post(client, path, other, path)
    assert r.status_code == 422 and "plausible range" in beside(r.text, "value")
    assert REASON not in r.text and 'name="confirm_unusual"' in r.text  # asked again, the field empty
    assert observations(fresh.db, "A-001") == before
    again = re.search(r'name="confirm_for" value="([0-9a-f]+)"', r.text)
    assert again and again.group(1) != bound.group(1)
    r = post(client, path, {**other, "confirm_for": again.group(1)}, path)  # confirmed for this value now
    assert r.status_code == 303, r.text[-400:]
    added = observations(fresh.db, "A-001")[len(before):]
    assert added and added[0][3] == f"unusual value confirmed: {REASON}"


# -- no form error names a CLI flag ----------------------------------------------------------------------
def test_no_form_error_shown_in_the_web_names_a_cli_flag(fresh) -> None:  # type: ignore[no-untyped-def]
    """Every form, refused in the ways a user can get wrong: each answer shows an error, and none has '--'."""
    app = app_for(fresh.db)
    anna, mona, smit = signed_in(app, "anna"), signed_in(app, "mona"), signed_in(app, "dr.smit")
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    tg_event = anna.get("/api/patients/A-001/history").json()[-1]["event"]
    assert post(mona, "/patients/A-001/queries", {"event": tg_event, "text": "unit?"}).status_code == 303
    query = int(re.search(r'id="q-(\d+)"', anna.get("/patients/A-001").text).group(1))  # type: ignore[union-attr]
    decision = "/patients/A-002/decision"
    reviewed = re.search(r'name="reviewed" value="([^"]+)"', smit.get(decision).text).group(1)  # type: ignore[union-attr]
    rec = "/patients/A-001/record/"
    cases: list[tuple[Any, str, dict[str, Any], str]] = [  # who, where, what, a word of the expected error
        (anna, rec + "tg", {"date": TODAY, "value": ""}, "value is missing"),
        (anna, rec + "tg", {"date": TODAY, "value": "250000"}, "plausible range"),
        (anna, rec + "tg", {"date": "", "value": "12"}, "YYYY-MM-DD"),
        (anna, rec + "tg", {"date": TODAY, "value": "12", "tgab": "maybe"}, "'positive' or 'negative'"),
        (anna, rec + "ct", {"date": TODAY, "t1_id": "T1", "t1_organ": "lung", "t1_mm": "450"}, "plausible range"),
        (anna, rec + "ct", {"date": TODAY, "t1_id": "T1", "t1_organ": "lung", "t1_mm": "big"}, "diameter"),
        (anna, rec + "rai_scan", {"date": future, "modalities": "planar"}, "in the future"),
        (anna, rec + "rai_scan", {"date": TODAY, "modalities": "x-ray"}, "modalities must be"),
        (anna, rec + "adverse_event", {"date": TODAY, "term": " ", "grade": "2"}, "term is missing"),
        (anna, rec + "adverse_event", {"date": TODAY, "term": "Fatigue", "grade": ""}, "grade is missing"),
        (anna, rec + "dispense", {"date": TODAY, "dose": ""}, "dose_mg_per_day"),
        (anna, rec + "dose_change", {"date": TODAY, "dose": "", "reason": "hand-foot"}, "dose_mg_per_day"),
        (mona, rec + "tg", {"date": TODAY, "value": "12"}, "may not record"),
        (anna, "/patients/A-003/visits/tg_w4/deviation", {"date": TODAY, "kind": "missed", "reason": " "},
         "needs a reason"),
        (anna, "/patients/A-003/visits/tg_w8/deviation", {"date": TODAY, "kind": "missed", "reason": "x"},
         "a deviation is recorded once it is missed"),
        (anna, "/patients/A-003/visits/tg_w8/skip", {"date": TODAY, "reason": ""}, "needs a reason"),
        (anna, "/patients/A-003/visits/tg_w8/skip", {"date": "", "reason": "x"}, "YYYY-MM-DD"),
        (mona, "/patients/A-001/queries", {"event": tg_event, "text": "  "}, "needs a text"),
        (anna, f"/patients/A-001/queries/{query}/answer", {"text": " "}, "needs a text"),
        (anna, f"/patients/A-001/correct/{tg_event}", {"value": "29.5", "reason": " "}, "needs a reason"),
        (smit, decision, {"date": TODAY, "password": PASSWORDS["dr.smit"], "override": "off_study",
                          "reviewed": reviewed}, "an override needs a reason"),
        (smit, decision, {"date": TODAY, "password": "wrong", "reviewed": reviewed}, "wrong user name or password"),
    ]
    before = {p: observations(fresh.db, p) for p in ("A-001", "A-002", "A-003")}
    for client, path, data, expected in cases:
        r = post(client, path, data, path if "/queries" not in path else "/patients/A-001")
        shown = alerts(r.text)
        assert r.status_code in (403, 422) and shown, (path, data, r.status_code)
        assert any(expected in a for a in shown), (path, data, shown)
        assert not [a for a in shown if "--" in a], (path, data, shown)
    login = signed_in(app, None)
    from web_client import token

    r = login.post("/login", data={"name": "anna", "password": "wrong", "next": "/", "csrf_token": token(login)})
    assert alerts(r.text) and not [a for a in alerts(r.text) if "--" in a]
    assert {p: observations(fresh.db, p) for p in before} == before  # every refusal stored nothing


def test_a_second_value_on_the_same_day_is_told_to_correct_the_recorded_one(fresh) -> None:  # type: ignore[no-untyped-def]
    """The form says to correct the recorded value (the web's correct form); the CLI still names its command."""
    client = signed_in(app_for(fresh.db), "anna")
    tg = [e for e in client.get("/api/patients/A-001/history").json()
          if e["kind"] == "observation" and e["payload"]["kind"] == "tg"][-1]
    day, other = tg["effective_date"], str(tg["payload"]["value"] + 1)
    path = "/patients/A-001/record/tg"
    before = observations(fresh.db, "A-001")
    r = post(client, path, {"date": day, "value": other, "unit": "ug/L", "tgab": "negative"}, path)
    shown = alerts(r.text)
    assert r.status_code == 422
    assert any(f"a tg of {day} is already recorded (event {tg['event']}) with other values; to change it, correct "
               "the recorded value" in a for a in shown), shown
    assert not [a for a in shown if "trialflow" in a or "--" in a], shown
    assert observations(fresh.db, "A-001") == before
    out = cli(fresh.db, "anna", "record", "A-001", "tg", "--date", day, "--value", other, "--tgab", "negative")
    assert out.exit_code != 0
    assert (f"A-001: a tg of {day} is already recorded (event {tg['event']}) with other values; to change it use "
            f"trialflow correct A-001 {tg['event']}") in " ".join(out.output.split())


def test_the_cli_keeps_its_flags_in_the_same_refusals(fresh) -> None:  # type: ignore[no-untyped-def]
    """The terminal's sentences are unchanged: the advice the web leaves out is still there."""
    cases = [
        (["record", "A-001", "adverse_event", "--date", TODAY, "--grade", "2"], "adverse_event needs --term"),
        (["record", "A-001", "tg", "--date", TODAY, "--value", "250000"],
         "if it is right, record it with --confirm-unusual REASON"),
        (["deviation", "A-003", "tg_w4", "--kind", "missed", "--reason", " "], "a deviation needs a reason (--reason)"),
        (["deviation", "A-003", "tg_w8", "--kind", "missed", "--reason", "x"],
         "to not do it, use trialflow skip A-003 tg_w8 --reason ..."),
    ]
    for args, words in cases:
        out = cli(fresh.db, "anna", *args)
        assert out.exit_code != 0 and words in " ".join(out.output.split()), (args, out.output)


def test_a_decided_patient_s_decision_page_flags_it_without_the_cli_advice(fresh) -> None:  # type: ignore[no-untyped-def]
    app = app_for(fresh.db)
    smit = signed_in(app, "dr.smit")
    page = "/patients/A-002/decision"
    reviewed = re.search(r'name="reviewed" value="([^"]+)"', smit.get(page).text).group(1)  # type: ignore[union-attr]
    r = post(smit, page, {"date": TODAY, "password": PASSWORDS["dr.smit"], "reviewed": reviewed}, page)
    assert r.status_code == 303, r.text[-400:]
    flags = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", f)).split())
             for f in re.findall(r'<ul class="flags">(.*?)</ul>', smit.get(page).text, re.S)]
    assert flags and "decided on" in flags[0] and "→ continued_sorafenib" in flags[0] and "--" not in flags[0]
    out = cli(fresh.db, "dr.smit", "evaluate", "A-002", "--json")  # the CLI's JSON keeps its advice
    assert out.exit_code == 0 and "evaluate --as-of the day before" in out.stdout
    api = smit.get("/api/patients/A-002/evaluate").json()
    assert any("evaluate --as-of the day before" in f for f in api["flags"])  # the same shape as --json
