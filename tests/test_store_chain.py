"""Per-patient hash chain of events and `trialflow verify` (issue 10, item 12), on SQLite and PostgreSQL.

A coordinator's real sequence (enrol, baseline, start, a Tg series, a correction, a withdrawal) is
chained; then direct SQL edits of the kind an insider could make are each found and named: a changed
value, a changed user, a deleted event, an inserted event, a removed tail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import text as text_
from typer.testing import CliRunner
from workflow_helpers import DAY0, TG_RESPONSE, USER, enrol_started, tg_series

from trialflow.cli import app
from trialflow.engine import Store, correct, database_url, record_many, withdraw
from trialflow.engine import verify_chains as verify_store

runner = CliRunner()


def _cohort(store: Store) -> None:
    for pid in ("P-001", "P-002"):
        enrol_started(store, pid)
    record_many(store, [("P-001", r) for r in tg_series(DAY0, TG_RESPONSE[:4])], USER)
    tg_w4 = [e for e in store.events("P-001") if e.kind == "observation" and e.payload["kind"] == "tg"][1]
    correct(store, "P-001", tg_w4.id, {"value": 96}, "transcription error", USER)
    withdraw(store, "P-002", DAY0 + __import__("datetime").timedelta(days=30), "consent", USER, "moved abroad")


def _sql(store: Store, statement: str, **params: Any) -> None:
    engine = create_engine(database_url(str(store.engine.url.render_as_string(hide_password=False))))
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def test_an_untouched_store_verifies_and_the_cli_says_so(store: Store) -> None:
    _cohort(store)
    report = verify_store(store)
    assert report.intact and report.patients == 2 and report.events == len(store.events("P-001")) + len(
        store.events("P-002"))
    db = store.engine.url.render_as_string(hide_password=False)
    r = runner.invoke(app, ["verify", "--db", db])
    assert r.exit_code == 0 and "every chain intact" in r.stdout
    out = json.loads(runner.invoke(app, ["verify", "--db", db, "--json"]).stdout)
    assert out["intact"] is True and out["problems"] == [] and out["head"] == report.head


@pytest.mark.parametrize("edit, expected", [
    ("UPDATE event SET payload = replace(payload, '120.0', '12.0') WHERE id = :id", "was changed after it"),
    ('UPDATE event SET "user" = \'someone.else\' WHERE id = :id', "was changed after it was recorded"),
    ("UPDATE event SET effective_date = effective_date + 1 WHERE id = :id", "was changed after it was recorded"),
    ("DELETE FROM event WHERE id = :id", "comes after a gap: #N deleted"),
])
def test_a_direct_sql_edit_of_a_past_event_is_found(store: Store, edit: str, expected: str) -> None:
    _cohort(store)
    first_tg = next(e for e in store.events("P-001") if e.kind == "observation" and e.payload["kind"] == "tg")
    tg_w0 = first_tg.id  # week 0, 120 ug/L
    expected = expected.replace("#N", f"#{first_tg.seq}")
    if "effective_date + 1" in edit and store.engine.dialect.name == "sqlite":
        edit = "UPDATE event SET effective_date = date(effective_date, '+1 day') WHERE id = :id"
    _sql(store, edit, id=tg_w0)
    report = verify_store(store)
    assert not report.intact
    assert [p.patient for p in report.problems] == ["P-001"] * len(report.problems)
    assert any(expected in p.problem for p in report.problems), report.problems
    db = store.engine.url.render_as_string(hide_password=False)
    r = runner.invoke(app, ["verify", "--db", db])
    assert r.exit_code == 1 and "the store was changed outside trialflow" in r.stderr and "Traceback" not in r.stderr


def test_an_inserted_event_and_a_removed_tail_are_found(store: Store) -> None:
    _cohort(store)
    last = store.events("P-002")[-1]
    _sql(store, "DELETE FROM event WHERE id = :id", id=last.id)
    report = verify_store(store)
    assert any("the store says" in p.problem and p.patient == "P-002" for p in report.problems)
    # an insertion that copies a genuine row's hash fields still breaks the chain after it
    row = store.events("P-001")[3]
    _sql(store, "UPDATE event SET seq = seq + 100 WHERE patient_id = 'P-001' AND seq > 3")
    _sql(store, "INSERT INTO event (patient_id, seq, kind, effective_date, recorded_at, \"user\", payload, prev_hash, "
         "hash) SELECT patient_id, 4, kind, effective_date, recorded_at, 'intruder', payload, prev_hash, hash "
         "FROM event WHERE id = :id", id=row.id)
    problems = verify_store(store).problems
    assert any(p.patient == "P-001" and "was changed" in p.problem for p in problems)


def test_a_protocol_version_edited_in_the_store_is_found(store: Store) -> None:
    _cohort(store)
    _sql(store, "UPDATE protocol_version SET yaml_text = replace(yaml_text, 'before: 7, after: 0', "
         "'before: 9, after: 0')")
    report = verify_store(store)
    assert not report.intact and report.problems == ()  # the events are as they were ...
    [problem] = report.protocol_problems  # ... the registered version is not
    assert problem.startswith("protocol version 1.0 (") and "was changed after it was registered" in problem
    db = store.engine.url.render_as_string(hide_password=False)
    r = runner.invoke(app, ["verify", "--db", db])
    assert r.exit_code == 1 and "was changed after it was registered" in r.stderr and "Traceback" not in r.stderr
    out = json.loads(runner.invoke(app, ["verify", "--db", db, "--json"]).stdout)
    assert out["intact"] is False and out["protocol_problems"] == [problem]


def test_verify_signs_in_on_a_store_with_users_and_needs_the_audit_role(tmp_path: Any) -> None:
    """It names patients of every site: the roles that read the audit trail check it, as audit --verify."""
    from web_helpers import ADMIN, PASSWORDS, build_team

    db = str(tmp_path / "team.db")
    build_team(db)
    anonymous = runner.invoke(app, ["verify", "--db", db], env={"TRIALFLOW_USER": "", "TRIALFLOW_PASSWORD": ""},
                              input="")
    assert anonymous.exit_code == 1 and "must authenticate" in anonymous.stderr and "intact" not in anonymous.stdout
    wrong = runner.invoke(app, ["verify", "--db", db, "--user", "mona"], env={"TRIALFLOW_PASSWORD": "not-it"})
    assert wrong.exit_code == 1 and "wrong user name or password" in wrong.stderr
    coordinator = runner.invoke(app, ["verify", "--db", db, "--user", "anna"],
                                env={"TRIALFLOW_PASSWORD": PASSWORDS["anna"]})
    assert coordinator.exit_code == 1 and "needs the" in coordinator.stderr and "intact" not in coordinator.stdout
    for who in ("mona", ADMIN):  # a monitor, an admin
        ok = runner.invoke(app, ["verify", "--db", db, "--user", who], env={"TRIALFLOW_PASSWORD": PASSWORDS[who]})
        assert ok.exit_code == 0 and "every chain intact" in ok.stdout, ok.stderr


def test_a_protocol_text_rewritten_with_its_hash_is_found_by_the_patients_enrolled_under_it(store: Store) -> None:
    from trialflow.protocol import parse_document
    from trialflow.protocol._build import content_hash

    _cohort(store)
    with store.engine.connect() as c:
        text = c.execute(text_("SELECT yaml_text FROM protocol_version")).scalar_one()
    for new_text in ("version: '1.0'\nid: x\n", text.replace("before: 7, after: 0", "before: 9, after: 0")):
        rehashed = content_hash(parse_document(new_text, "x.yaml").data)
        _sql(store, "UPDATE protocol_version SET yaml_text = :t, content_hash = :h", t=new_text, h=rehashed)
        report = verify_store(store)
        assert not report.intact
        assert [p for p in report.protocol_problems if "which this store does not hold" in p][:1] and all(
            p.split(":")[0] in ("P-001", "P-002") for p in report.protocol_problems
            if "which this store does not hold" in p), report.protocol_problems
        db = store.engine.url.render_as_string(hide_password=False)
        r = runner.invoke(app, ["verify", "--db", db])
        assert r.exit_code == 1 and "Traceback" not in r.stderr + r.stdout


def test_a_payload_stripped_outside_trialflow_is_named_not_read_as_an_unknown_patient(store: Store) -> None:
    """A stored event whose payload lost a field its kind always holds fails where it is folded, naming the patient,
    the event and the field; it is not taken for "no such patient" (a KeyError is a LookupError, as "not enrolled"
    was)."""
    _cohort(store)
    assert store.state("P-001") is not None
    enrolled = next(e for e in store.events("P-001") if e.kind == "enrolled")
    payload = {k: v for k, v in enrolled.payload.items() if k != "protocol_hash"}
    _sql(store, "UPDATE event SET payload = :p WHERE id = :id", p=json.dumps(payload), id=enrolled.id)
    with pytest.raises(ValueError, match=rf"patient P-001: event #1 \(event {enrolled.id}, enrolled\): its payload "
                                         r"lacks 'protocol_hash'; .* \(trialflow verify checks the store\)"):
        store.state("P-001")
    assert store.state("NOBODY") is None  # an unknown patient is still none
    db = store.engine.url.render_as_string(hide_password=False)
    r = runner.invoke(app, ["history", "P-001", "--db", db])
    assert r.exit_code == 1 and "lacks 'protocol_hash'" in r.output and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_an_appended_event_its_fold_cannot_read_is_refused_and_nothing_is_written(store: Store) -> None:
    """A new event whose payload lacks what its kind holds (a caller's or an import file's mistake, such as a
    correction without the original it corrects) is refused naming it, on the one-patient and the bulk path."""
    from trialflow.engine import Refused
    from trialflow.engine._projection import projection
    from trialflow.engine._state import CORRECTION
    from trialflow.engine._store import NewEvent

    _cohort(store)
    before = len(store.events("P-001"))
    protocol = store.protocol()[0]
    day = store.events("P-001")[-1].effective_date

    def wrong(tx):  # type: ignore[no-untyped-def]
        return tx.append("P-001", tx.state("P-001"), [NewEvent(CORRECTION, day, {"record": None}, "typo")],
                         projection(protocol))

    for how in (store.write, store.write_bulk):
        with pytest.raises(Refused, match=r"P-001: the correction to record lacks 'root': nothing was written"):
            how(USER, wrong)
        assert len(store.events("P-001")) == before


def test_a_stored_value_of_another_type_is_named_too(store: Store) -> None:
    """A stored payload whose value has another form than its kind writes (a correction's record made null) is
    named like a missing one, not raised as a bare TypeError."""
    _cohort(store)
    fix = next(e for e in store.events("P-001") if e.kind == "correction")
    _sql(store, "UPDATE event SET payload = :p WHERE id = :id", p=json.dumps({**fix.payload, "record": None}),
         id=fix.id)
    with pytest.raises(ValueError, match=rf"patient P-001: event #{fix.seq} \(event {fix.id}, correction\): its "
                                         r"payload cannot be read"):
        store.state("P-001")
