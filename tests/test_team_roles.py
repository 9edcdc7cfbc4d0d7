"""The role table, row by row, through the engine's public functions, on SQLite and PostgreSQL.

| role | may |
| coordinator | enrol, record, import, correct, deviations, answer queries — at their sites |
| investigator | everything a coordinator may, plus decide/override and sign — at their sites |
| data_manager | read all sites, open and close queries, lock and unlock case books |
| monitor | read all sites, open queries; never writes clinical data |
| admin | users, sites, protocol versions and migration; no clinical writes |

Each role tries every action: what the table allows succeeds; anything else is refused with
PermissionDenied naming the role it needs, and nothing is written (events and audit rows unchanged).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from team_helpers import PASSWORDS, Team, at_decision, cheap_hashing, new_team_store  # noqa: F401  # fixture
from workflow_helpers import DAY0, DECISION_DAY, ELIGIBLE, ENROLLED

from trialflow.engine import (
    Actor,
    PermissionDenied,
    Refused,
    add_site,
    add_user,
    amend,
    answer_query,
    audit_trail,
    close_query,
    correct,
    decide,
    enroll,
    history,
    import_file,
    lock,
    migrate,
    open_query,
    record,
    unlock,
)
from trialflow.protocol import bundled_protocol_path

# The table of the issue, written out (not derived from the engine's PERMISSIONS).
CLINICAL = {"read", "enroll", "record", "import", "correct", "answer_query"}
MAY: dict[str, set[str]] = {
    "coordinator": CLINICAL,
    "investigator": CLINICAL | {"decide"},
    "data_manager": {"read", "open_query", "close_query", "lock", "unlock", "audit"},
    "monitor": {"read", "open_query", "audit"},
    "admin": {"manage_users", "manage_sites", "register_protocol", "migrate", "audit"},
}
ACTORS = {"coordinator": "anna", "investigator": "dr.smit", "data_manager": "dina", "monitor": "mona",
          "admin": "admin.jo"}


@pytest.fixture
def team(db_url: str, cheap_hashing: list[float]) -> Any:  # noqa: F811
    t = new_team_store(db_url, cheap_hashing)
    at_decision(t, "P-A01", "anna", "AMS")
    yield t
    t.store.close()


def _tg_event(team: Team, pid: str) -> int:
    return next(e.id for e in team.store.events(pid) if e.kind == "observation" and e.payload["kind"] == "tg")


def _counts(team: Team) -> tuple[int, int]:
    from sqlalchemy import func, select

    from trialflow.engine._tables import AuditRow, EventRow

    with team.store.engine.connect() as c:
        return (c.execute(select(func.count()).select_from(EventRow)).scalar_one(),
                c.execute(select(func.count()).select_from(AuditRow)).scalar_one())


def _actions(team: Team, tmp_path: Path) -> dict[str, Callable[[Actor, str], Any]]:
    s = team.store
    csv = tmp_path / "lab.csv"
    csv.write_text("patient,kind,date,value,unit,loq,below_loq,stimulated,result\n"
                   f"P-A01,tg,{DAY0 + dt.timedelta(days=30)},88,ug/L,0.2,,,\n", encoding="utf-8")
    tg_id = _tg_event(team, "P-A01")
    dina = team["dina"]
    q_open = open_query(s, "P-A01", tg_id, "Week 0 Tg: please confirm against the lab report", dina)
    q_answered = open_query(s, "P-A01", tg_id, "Is the LoQ 0.2 ug/L?", dina)
    answer_query(s, q_answered.id, "yes, 0.2 ug/L per the lab", team["anna"])
    ae = {"kind": "adverse_event", "date": (DAY0 + dt.timedelta(days=20)).isoformat(),
          "term": "palmar-plantar erythrodysesthesia", "grade": 2}
    return {
        "read": lambda a, n: history(s, "P-A01", actor=a),
        "enroll": lambda a, n: enroll(s, f"P-{900 + len(n)}", ENROLLED, ELIGIBLE, a, site="AMS"),
        "record": lambda a, n: record(s, "P-A01", ae, a),
        "import": lambda a, n: import_file(s, csv, a),
        "correct": lambda a, n: correct(s, "P-A01", tg_id, {"value": 121}, "lab re-issued the week 0 result", a),
        "answer_query": lambda a, n: answer_query(s, q_open.id, "checked against the source: 120 ug/L", a),
        "decide": lambda a, n: decide(s, "P-A01", DECISION_DAY, a, signature=PASSWORDS[n]),
        "open_query": lambda a, n: open_query(s, "P-A01", tg_id, "Please re-check the unit", a),
        "close_query": lambda a, n: close_query(s, q_answered.id, a),
        "audit": lambda a, n: audit_trail(s, a),
        "manage_users": lambda a, n: add_user(s, a, "new.monitor", "monitor", "monitor-pass-0001"),
        "manage_sites": lambda a, n: add_site(s, a, "UMCG", "University Medical Center Groningen"),
        "register_protocol": lambda a, n: amend(s, bundled_protocol_path(), "re-register", a, apply=True),
        "migrate": lambda a, n: migrate(s, ["P-A01"], "1.0", "stay on v1.0", a),
        "lock": lambda a, n: lock(s, "P-A01", "interim database lock", a),
        "unlock": lambda a, n: unlock(s, "P-A01", "query needs a correction", a),
    }


@pytest.mark.parametrize("role", list(MAY))
def test_role_table_row(team: Team, tmp_path: Path, role: str) -> None:
    name = ACTORS[role]
    actor = team[name]
    actions = _actions(team, tmp_path)
    for action, attempt in actions.items():
        if action == "unlock" and role != "data_manager":
            lock(team.store, "P-A01", "locked for the unlock check", team["dina"])
        before = _counts(team)
        if action in MAY[role]:
            try:
                attempt(actor, name)
            except PermissionDenied as err:  # pragma: no cover - the failure message
                pytest.fail(f"{role} should be allowed to {action}: {err}")
            except Refused as err:  # allowed, but refused for a reason of the data: only the admin's re-register
                assert (role, action) == ("admin", "register_protocol"), (role, action, err)
        else:
            with pytest.raises(PermissionDenied) as err:
                attempt(actor, name)
            assert "needs the" in str(err.value) and err.value.needs, err.value
            assert role not in err.value.needs
            assert _counts(team) == before, f"{role} {action}: something was written"
        if action == "unlock" and role != "data_manager":
            unlock(team.store, "P-A01", "lock check done", team["dina"])


@pytest.mark.parametrize("name", ["anna", "dr.smit"])
def test_site_staff_cannot_touch_another_sites_patient(team: Team, name: str) -> None:
    at_decision(team, "P-B01", "bram", "LEI")
    s, actor = team.store, team[name]
    before = _counts(team)
    tg_id = _tg_event(team, "P-B01")
    attempts: list[Callable[[], Any]] = [
        lambda: history(s, "P-B01", actor=actor),
        lambda: record(s, "P-B01", {"kind": "adverse_event", "date": "2026-02-01", "term": "fatigue", "grade": 1},
                       actor),
        lambda: correct(s, "P-B01", tg_id, {"value": 121}, "typo", actor),
        lambda: decide(s, "P-B01", DECISION_DAY, actor, signature=PASSWORDS[name]),
        lambda: enroll(s, "P-B02", ENROLLED, ELIGIBLE, actor, site="LEI"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match=r"site LEI|needs the investigator role"):
            attempt()
    assert _counts(team) == before
    from trialflow.engine import next_actions, report, status

    assert {r.patient for r in status(s, actor=actor)} == {"P-A01"}
    assert {a.patient for a in next_actions(s, as_of=DECISION_DAY, actor=actor)} <= {"P-A01"}
    assert report(s, actor=actor).enrolled == 1
    assert {r.patient for r in status(s, actor=team["mona"])} == {"P-A01", "P-B01"}


def test_an_import_names_every_row_of_a_patient_at_another_site(team: Team, tmp_path: Path) -> None:
    """A Leiden coordinator's lab file that holds Amsterdam patients is refused whole, every such patient named
    at its first row (the role's refusal, as before: PermissionDenied, nothing written)."""
    enroll(team.store, "P-L01", ENROLLED, ELIGIBLE, team["bram"], site="LEI")
    enroll(team.store, "P-A02", ENROLLED, ELIGIBLE, team["anna"], site="AMS")
    day = (DAY0 + dt.timedelta(days=30)).isoformat()
    csv = tmp_path / "leiden-lab.csv"
    csv.write_text("patient,kind,date,value\n"
                   f"P-L01,tg,{day},12\n"
                   f"P-A02,tg,{day},13\n"
                   f"P-A01,tg,{day},14\n"
                   f"P-A02,tg,{DAY0 + dt.timedelta(days=31)},15\n", encoding="utf-8")
    before = _counts(team)
    with pytest.raises(PermissionDenied) as err:
        import_file(team.store, csv, team["bram"])
    assert [p.split(": ", 2)[:2] for p in err.value.problems] == [[f"{csv}:3:1", "$.patient"],
                                                                  [f"{csv}:4:1", "$.patient"]]  # in file order
    assert all("bram (coordinator at LEI) may not record clinical data" in p for p in err.value.problems)
    assert "P-A02" in err.value.problems[0] and "P-A01" in err.value.problems[1]
    assert _counts(team) == before


def _stricter_recist(tmp_path: Path) -> Path:
    """v1.1 of the bundled protocol with RECIST's PR threshold raised: the decided patients' outcomes change."""
    text = bundled_protocol_path().read_text(encoding="utf-8")
    assert 'version: "1.0"' in text and "pr_threshold_pct: 30" in text
    amended = tmp_path / "v1.1.yaml"
    amended.write_text(text.replace('version: "1.0"', 'version: "1.1"', 1)
                       .replace("pr_threshold_pct: 30", "pr_threshold_pct: 50", 1), encoding="utf-8")
    return amended


def test_an_amendments_impact_per_patient_is_shown_only_to_readers_of_their_data(team: Team, tmp_path: Path) -> None:
    """The dry run replays every patient's records: an admin (no clinical data) gets the counts, a site's
    investigator the patients of their sites, a data manager every patient; registering stays the admin's."""
    at_decision(team, "P-B01", "bram", "LEI")
    decide(team.store, "P-A01", DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    decide(team.store, "P-B01", DECISION_DAY, team["dr.visser"], signature=PASSWORDS["dr.visser"])
    amended = _stricter_recist(tmp_path)

    by_admin = amend(team.store, amended, "stricter PR", team["admin.jo"])
    # the admin's count is of schedules: a threshold moves outcomes, not visits (nothing to read them off)
    assert by_admin.patients == () and (by_admin.replayed, by_admin.affected) == (2, 0)
    assert any("does not read" in n for n in by_admin.notes)

    by_smit = amend(team.store, amended, "stricter PR", team["dr.smit"])
    assert [p.patient for p in by_smit.patients] == ["P-A01"]
    assert by_smit.patients[0].decision_changed and "recist PR → SD" in by_smit.patients[0].decision_changed

    assert [p.patient for p in amend(team.store, amended, "stricter PR", team["dina"]).patients] == ["P-A01", "P-B01"]
    before = _counts(team)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        amend(team.store, amended, "stricter PR", team["dr.smit"], apply=True)
    assert _counts(team) == before and len(team.store.versions()) == 1


def test_the_query_list_of_a_site_takes_its_code_in_any_case_and_refuses_an_unknown_one(team: Team) -> None:
    from trialflow.engine import list_queries

    dina = team["dina"]
    opened = open_query(team.store, "P-A01", _tg_event(team, "P-A01"), "Please confirm the unit", dina)
    assert [q.id for q in list_queries(team.store, dina, site="ams")] == [opened.id]
    with pytest.raises(Refused, match=r"unknown site 'XXX' \(sites: AMS, LEI\)"):
        list_queries(team.store, dina, site="XXX")
    with pytest.raises(PermissionDenied, match="site LEI"):
        list_queries(team.store, team["anna"], site="LEI")


def test_a_query_questions_recorded_data_not_the_reviews_own_events(team: Team) -> None:
    dina = team["dina"]
    opened = open_query(team.store, "P-A01", _tg_event(team, "P-A01"), "Please confirm the unit", dina)
    answer_query(team.store, opened.id, "ug/L, per the lab report", team["anna"])
    locked = lock(team.store, "P-A01", "interim lock", dina)
    review = {e.kind: e.id for e in team.store.events("P-A01")}
    before = _counts(team)
    for kind in ("query_answered", "casebook_locked"):
        with pytest.raises(Refused, match=f"event {review[kind]} is a {kind.replace('_', ' ')} event, part of the "
                                          "data review, not recorded data"):
            open_query(team.store, "P-A01", review[kind], "?", dina)
    with pytest.raises(Refused, match=r"P-A01 has no event 999999 \(see trialflow history P-A01\)"):
        open_query(team.store, "P-A01", 999999, "?", dina)
    assert _counts(team) == before and locked is not None


def test_a_screening_patients_eligibility_answers_are_given_by_its_sites_staff_not_the_admin(team: Team,
                                                                                          tmp_path: Path) -> None:
    """Answering a criterion a new version adds is the patient's screening: its site's coordinator or investigator
    gives the answer (clinical data, which the admin does not enter); the admin then migrates it."""
    from trialflow.engine import rescreen

    enroll(team.store, "P-A09", ENROLLED, ELIGIBLE, team["anna"], site="AMS")
    text = bundled_protocol_path().read_text(encoding="utf-8")
    hepatic = tmp_path / "v1.9.yaml"
    hepatic.write_text(text.replace('version: "1.0"', 'version: "1.9"', 1).replace(
        "    - id: pregnancy_or_lactation\n", "    - id: severe_hepatic_impairment\n      question: Child-Pugh C?\n"
        "      source: assumption\n    - id: pregnancy_or_lactation\n", 1), encoding="utf-8")
    amend(team.store, hepatic, "hepatic safety", team["admin.jo"], apply=True)
    answer = {"severe_hepatic_impairment": "no"}
    before = _counts(team)
    with pytest.raises(PermissionDenied, match="needs the coordinator or investigator role"):
        rescreen(team.store, "P-A09", answer, team["admin.jo"], version="1.9")
    with pytest.raises(PermissionDenied, match="site AMS"):
        rescreen(team.store, "P-A09", answer, team["bram"], version="1.9")
    with pytest.raises(Refused, match=r"is in screening and v1\.9 asks"):
        migrate(team.store, ["P-A09"], "1.9", "policy", team["admin.jo"])
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        migrate(team.store, ["P-A09"], "1.9", "policy", team["anna"])
    assert _counts(team) == before
    rescreen(team.store, "P-A09", answer, team["anna"], version="1.9")
    assert migrate(team.store, ["P-A09"], "1.9", "policy", team["admin.jo"])[0].message == "P-A09: v1.0 → v1.9"
