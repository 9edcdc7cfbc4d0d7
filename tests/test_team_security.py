"""What an attacker or a mistaken user tries against identity, signatures and locks (issue 13), on both backends.

Each attempt is refused cleanly (Refused / PermissionDenied, never another exception) and writes
nothing clinical; failed logins are recorded and slow the next attempt down.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text
from team_helpers import PASSWORDS, Team, at_decision, cheap_hashing, new_team_store  # noqa: F401  # fixture
from workflow_helpers import DECISION_DAY, ELIGIBLE, ENROLLED, tg

from trialflow.engine import (
    Actor,
    Login,
    PermissionDenied,
    Refused,
    Store,
    add_user,
    answer_query,
    authenticate,
    correct,
    decide,
    decision_digest,
    disable_user,
    enroll,
    evaluate,
    history,
    list_queries,
    lock,
    next_actions,
    open_query,
    record,
    unlock,
    verify_store,
)
from trialflow.engine._tables import EventRow, LoginFailureRow, UserRow


@pytest.fixture
def team(db_url: str, cheap_hashing: list[float]) -> Any:  # noqa: F811
    t = new_team_store(db_url, cheap_hashing)
    at_decision(t, "P-A01", "anna", "AMS")
    yield t
    t.store.close()


def _events(store: Store) -> int:
    with store.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(EventRow)).scalar_one())


def _kinds(store: Store, pid: str) -> list[str]:
    return [e.kind for e in store.events(pid)]


# -- passwords ------------------------------------------------------------------------------------
def test_decision_without_or_with_wrong_password_is_refused(team: Team) -> None:
    s, smit = team.store, team["dr.smit"]
    before = _events(s)
    with pytest.raises(Refused, match="must be signed"):
        decide(s, "P-A01", DECISION_DAY, smit)
    with pytest.raises(Refused, match="wrong user name or password"):
        decide(s, "P-A01", DECISION_DAY, smit, signature="not-the-password")
    assert _events(s) == before
    assert "decision" not in _kinds(s, "P-A01")
    with s.engine.connect() as c:  # the wrong signature password is a recorded failed login
        assert c.execute(select(func.count()).select_from(LoginFailureRow)
                         .where(LoginFailureRow.name == "dr.smit")).scalar_one() == 1


def test_a_free_text_name_cannot_act_in_a_store_with_users(team: Team) -> None:
    before = _events(team.store)
    for who in ("anna", Login("anna"), Actor("anna")):
        with pytest.raises(Refused, match="must authenticate"):
            record(team.store, "P-A01", tg(ENROLLED + dt.timedelta(days=3), 99.0), who)
    with pytest.raises(Refused, match="authenticate"):
        history(team.store, "P-A01")
    assert _events(team.store) == before


def test_brute_force_is_recorded_and_slowed_down_within_a_bound(team: Team) -> None:
    from trialflow.engine import auth_settings

    cap = auth_settings().delay_cap
    for _ in range(9):
        with pytest.raises(Refused, match="wrong user name or password"):
            authenticate(team.store, "dr.smit", "guess-123456")
    # no wait before the first attempt; then doubling from delay_base, never above the cap
    base = auth_settings().delay_base
    assert team.waits == [min(base * 2 ** i, cap) for i in range(8)]
    assert max(team.waits) == cap
    with team.store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(LoginFailureRow)).scalar_one() == 9
    # the right password still works (after the wait), and a success resets the count
    team.waits.clear()
    authenticate(team.store, "dr.smit", PASSWORDS["dr.smit"])
    authenticate(team.store, "dr.smit", PASSWORDS["dr.smit"])
    assert team.waits == [cap]
    # unknown names are slowed the same way, so names cannot be probed
    for _ in range(3):
        with pytest.raises(Refused, match="wrong user name or password"):
            authenticate(team.store, "nobody", "guess-123456")
    assert team.waits[-2:] == [base, base * 2]


def test_disabled_user_is_refused_even_with_a_session_from_before(team: Team) -> None:
    s = team.store
    anna = team["anna"]  # authenticated before being disabled (a web session, a long script)
    disable_user(s, team["admin.jo"], "anna", "left the study team")
    before = _events(s)
    with pytest.raises(Refused, match="disabled"):
        record(s, "P-A01", tg(ENROLLED + dt.timedelta(days=3), 99.0), anna)
    with pytest.raises(Refused, match="disabled"):
        authenticate(s, "anna", PASSWORDS["anna"])
    assert _events(s) == before
    # never deleted: her events still name her
    assert {e.user for e in s.events("P-A01")} == {"anna"}
    with pytest.raises(Refused, match="last admin"):
        disable_user(s, team["admin.jo"], "admin.jo")


HOSTILE_NAMES = [
    "x'; DROP TABLE app_user; --",
    "anna' OR '1'='1",
    "аdmin",  # Cyrillic а: a look-alike of admin
    "dr.müller",
    "Robert\u200b",  # zero-width space
    "a",
    "",
]


def test_sql_looking_and_unicode_user_names_are_refused(team: Team) -> None:
    s = team.store
    for name in HOSTILE_NAMES:
        with pytest.raises(Refused, match="is not allowed"):
            add_user(s, team["admin.jo"], name, "monitor", "a-long-password-1")
        with pytest.raises(Refused, match="wrong user name or password"):
            authenticate(s, name, "a-long-password-1")
    with s.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(UserRow)).scalar_one() == 7
        assert c.execute(text("SELECT count(*) FROM event")).scalar_one() > 0


def test_unicode_full_names_are_kept_verbatim(team: Team) -> None:
    info = add_user(team.store, team["admin.jo"], "dr.muller", "investigator", "muller-pass-0001", sites=["AMS"],
                    full_name="Dr. Jörg Müller-Łukasiewicz")
    assert info.full_name == "Dr. Jörg Müller-Łukasiewicz"


def test_passwords_are_argon2_hashed_never_stored(team: Team) -> None:
    with team.store.engine.connect() as c:
        hashes = dict(c.execute(select(UserRow.name, UserRow.password_hash)).all())
        dump = " ".join(str(v) for row in c.execute(text("SELECT * FROM audit_log")) for v in row)
    for name, password in PASSWORDS.items():
        assert hashes[name].startswith("$argon2id$")
        assert password not in hashes[name] and password not in dump
    with pytest.raises(Refused, match="too short"):
        add_user(team.store, team["admin.jo"], "short.pw", "monitor", "abc")


# -- signatures -----------------------------------------------------------------------------------
def test_signed_decision_records_signer_time_meaning_and_binding(team: Team) -> None:
    s = team.store
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    evs = s.events("P-A01")
    decision = next(e for e in evs if e.kind == "decision")
    sig = next(e for e in evs if e.kind == "signature")
    assert sig.payload["decision_seq"] == decision.seq
    assert sig.payload["full_name"] == "Dr. Jan Smit" and sig.payload["signer"] == "dr.smit"
    assert sig.payload["meaning"] == f"approved: move to {decision.payload['to']}"
    assert dt.datetime.fromisoformat(sig.payload["signed_at"]).tzinfo is not None
    assert len(sig.payload["records"]) >= 18  # Tg/TgAb weeks 0-28, both CTs and both scans
    entry = next(h for h in history(s, "P-A01", actor=team["mona"]) if h.kind == "signature")
    assert entry.signature is not None and entry.signature.valid
    assert "signed by Dr. Jan Smit (dr.smit)" in entry.summary
    assert verify_store(s, team["dina"]).ok


def test_signature_reviewed_for_one_decision_cannot_sign_another(team: Team) -> None:
    s = team.store
    at_decision(team, "P-A02", "anna", "AMS")
    shown_for_a01 = decision_digest("P-A01", evaluate(s, "P-A01", as_of=DECISION_DAY, actor=team["dr.smit"]))
    before = _events(s)
    with pytest.raises(Refused, match="not this one"):
        decide(s, "P-A02", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"], reviewed=shown_for_a01)
    assert _events(s) == before
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"], reviewed=shown_for_a01)


def test_signature_copied_onto_another_decision_is_detected(team: Team) -> None:
    s = team.store
    at_decision(team, "P-A02", "anna", "AMS")
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    decide(s, "P-A02", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    sig1 = next(e for e in s.events("P-A01") if e.kind == "signature")
    sig2 = next(e for e in s.events("P-A02") if e.kind == "signature")
    import json

    with s.engine.begin() as c:  # an insider pastes P-A01's signature over P-A02's
        c.execute(text("UPDATE event SET payload = :p WHERE id = :i"),
                  {"p": json.dumps(dict(sig1.payload)), "i": sig2.id})
    report = verify_store(s, team["dina"])
    assert not report.ok
    assert any(f"signature event {sig2.id}" in p and "no longer matches" in p for p in report.problems)


def test_altering_signed_evidence_is_detected_by_verify(team: Team) -> None:
    import json

    s = team.store
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    decision = next(e for e in s.events("P-A01") if e.kind == "decision")
    payload = dict(decision.payload)
    payload["outcomes"] = {**payload["outcomes"], "tg_slope": "progression"}
    with s.engine.begin() as c:
        c.execute(text("UPDATE event SET payload = :p WHERE id = :i"), {"p": json.dumps(payload), "i": decision.id})
    problems = verify_store(s, team["dina"]).problems
    assert any(f"decision event {decision.id} no longer matches" in p for p in problems)
    # and a Tg value the decision rested on, changed in place
    tg_ev = next(e for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
    with s.engine.begin() as c:
        c.execute(text("UPDATE event SET payload = :p WHERE id = :i"),
                  {"p": json.dumps({**tg_ev.payload, "value": 12.0}), "i": tg_ev.id})
    assert any(f"evidence event {tg_ev.id} was altered" in p for p in verify_store(s, team["dina"]).problems)


def test_audit_verify_finds_an_edit_of_an_unsigned_record_through_the_hash_chain(team: Team) -> None:
    """A direct SQL edit of a record no signature covers is still found: audit --verify runs the chain check."""
    import json

    s = team.store
    assert verify_store(s, team["dina"]).ok
    tg_ev = next(e for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
    with s.engine.begin() as c:
        c.execute(text("UPDATE event SET payload = :p WHERE id = :i"),
                  {"p": json.dumps({**tg_ev.payload, "value": 12.0}), "i": tg_ev.id})
    problems = verify_store(s, team["dina"]).problems
    assert any("P-A01" in p and "no longer matches its hash" in p for p in problems), problems


def test_correcting_the_evidence_invalidates_the_signature_in_history(team: Team) -> None:
    s = team.store
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    tg_ev = next(e for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
    fix = correct(s, "P-A01", tg_ev.id, {"value": 130}, "lab re-issued the week 0 result", team["anna"])
    entry = next(h for h in history(s, "P-A01", actor=team["anna"]) if h.kind == "signature")
    assert entry.signature is not None and not entry.signature.valid
    assert f"event {fix.events[0].id} corrected evidence event {tg_ev.id}" in entry.signature.invalidated_by
    assert "INVALIDATED" in entry.summary
    assert verify_store(s, team["dina"]).ok  # a correction is honest: nothing was altered


def test_concurrent_decide_by_two_investigators_gives_one_signed_decision(team: Team) -> None:
    s = team.store
    add_user(s, team["admin.jo"], "dr.bakker", "investigator", "bakker-pass-0001", sites=["AMS"])
    pw = {"dr.smit": PASSWORDS["dr.smit"], "dr.bakker": "bakker-pass-0001"}
    results: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        store = Store.open(s.url)
        try:
            actor = authenticate(store, name, pw[name])
            barrier.wait()
            results[name] = decide(store, "P-A01", DECISION_DAY, actor, signature=pw[name]).phase
        except Refused as err:
            results[name] = f"refused: {err}"
        finally:
            store.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in pw]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = [r for r in results.values() if r.startswith("refused")]
    assert len(results) == 2 and len(refused) == 1, results
    assert "no decision is pending" in refused[0]
    kinds = _kinds(s, "P-A01")
    assert kinds.count("decision") == 1 and kinds.count("signature") == 1
    assert verify_store(s, team["dina"]).ok


# -- lock and queries -----------------------------------------------------------------------------
def test_locked_case_book_refuses_clinical_writes_until_unlocked(team: Team) -> None:
    s = team.store
    lock(s, "P-A01", "interim analysis database lock", team["dina"])
    before = _events(s)
    ae = {"kind": "adverse_event", "date": "2026-02-01", "term": "fatigue", "grade": 1}
    with pytest.raises(Refused, match="case book is locked"):
        record(s, "P-A01", ae, team["anna"])
    with pytest.raises(Refused, match="case book is locked"):
        decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    assert _events(s) == before
    tg_id = next(e.id for e in s.events("P-A01") if e.kind == "observation")
    open_query(s, "P-A01", tg_id, "source check", team["mona"])  # queries go on while locked
    unlock(s, "P-A01", "the query needs a correction", team["dina"])
    record(s, "P-A01", ae, team["anna"])
    kinds = _kinds(s, "P-A01")
    assert kinds.index("casebook_locked") < kinds.index("casebook_unlocked")


def test_open_query_on_evidence_flags_evaluate_and_reaches_the_coordinators_worklist(team: Team) -> None:
    s = team.store
    at_decision(team, "P-B01", "bram", "LEI")
    tg_id = next(e.id for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
    q = open_query(s, "P-A01", tg_id, "Week 0 Tg differs from the lab report", team["mona"])
    preview = evaluate(s, "P-A01", as_of=DECISION_DAY, actor=team["dr.smit"])
    assert any(f"open data query {q.id} on event {tg_id}" in f for f in preview.flags)
    anna_items = [a for a in next_actions(s, as_of=dt.date.today(), actor=team["anna"]) if a.action == "answer_query"]
    assert [a.patient for a in anna_items] == ["P-A01"]
    assert not [a for a in next_actions(s, as_of=dt.date.today(), actor=team["bram"]) if a.action == "answer_query"]
    assert [x.id for x in list_queries(s, team["anna"], assigned_to_me=True)] == [q.id]
    assert list_queries(s, team["bram"], open_only=True) == []
    with pytest.raises(PermissionDenied, match="site AMS"):
        answer_query(s, q.id, "checked", team["bram"])
    answer_query(s, q.id, "transcription error: corrected to 121", team["anna"])
    assert [x.id for x in list_queries(s, team["mona"], assigned_to_me=True)] == [q.id]  # waiting for her to close
    kinds = _kinds(s, "P-A01")
    assert kinds[-2:] == ["query_opened", "query_answered"]


def test_the_visit_ledger_and_safety_keep_to_the_readers_sites(team: Team) -> None:
    """visits, visits --status and safety are reads like next and evaluate: site staff see their own sites only."""
    from trialflow.engine import cohort_visits, safety, visits

    s = team.store
    at_decision(team, "P-B01", "bram", "LEI")
    assert visits(s, "P-A01", actor=team["anna"]).patient == "P-A01"
    with pytest.raises(PermissionDenied):
        visits(s, "P-B01", actor=team["anna"])
    with pytest.raises(Refused, match="say who you are"):
        visits(s, "P-A01")
    assert {v.patient for v in cohort_visits(s, actor=team["anna"])} == {"P-A01"}
    assert {v.patient for v in cohort_visits(s, actor=team["bram"])} == {"P-B01"}
    assert {v.patient for v in cohort_visits(s, actor=team["mona"])} == {"P-A01", "P-B01"}  # study-wide monitor
    assert {p.patient for p in safety(s, actor=team["bram"]).patients} <= {"P-B01"}
    assert safety(s, actor=team["bram"]).treated == 1


def test_enrolment_needs_a_site_when_there_are_several(team: Team) -> None:
    s = team.store
    with pytest.raises(Refused, match="unknown site 'UTR'"):
        enroll(s, "P-A09", ENROLLED, ELIGIBLE, team["dr.smit"], site="UTR")
    assert enroll(s, "P-A09", ENROLLED, ELIGIBLE, team["dr.smit"]).site == "AMS"  # the investigator's only site


def test_the_report_shows_the_signature_and_its_invalidation(team: Team) -> None:
    from trialflow.engine import report

    s = team.store
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    row = report(s, actor=team["mona"]).patients[0]
    assert row["signature"]["full_name"] == "Dr. Jan Smit" and row["signature"]["valid"]
    tg_ev = next(e for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
    correct(s, "P-A01", tg_ev.id, {"value": 130}, "lab re-issued the week 0 result", team["anna"])
    assert not report(s, actor=team["mona"]).patients[0]["signature"]["valid"]


def test_a_cheaper_setting_never_weakens_a_stored_hash(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import extract_parameters

    from trialflow.engine import auth_settings

    def stored() -> str:
        with team.store.engine.connect() as c:
            return str(c.execute(select(UserRow.password_hash).where(UserRow.name == "anna")).scalar_one())

    before = extract_parameters(stored())
    monkeypatch.setattr(auth_settings(), "memory_kib", 512)  # below what anna's hash was made with
    monkeypatch.setattr(auth_settings(), "_hasher", None)
    authenticate(team.store, "anna", PASSWORDS["anna"])
    assert extract_parameters(stored()) == before
    monkeypatch.setattr(auth_settings(), "memory_kib", 2048)  # stronger: re-hashed at the next login
    monkeypatch.setattr(auth_settings(), "_hasher", None)
    authenticate(team.store, "anna", PASSWORDS["anna"])
    assert extract_parameters(stored()).memory_cost == 2048
    authenticate(team.store, "anna", PASSWORDS["anna"])


def test_a_coordinator_is_told_the_decision_needs_an_investigator(team: Team) -> None:
    with pytest.raises(PermissionDenied, match="may not take the decision: that needs the investigator role"):
        decide(team.store, "P-A01", DECISION_DAY, team["anna"], signature=PASSWORDS["anna"])
