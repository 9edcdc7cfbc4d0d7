"""The ODM round trip of every event kind the engine appends: each comes back with its kind and its payload.

The demo store of ``test_exchange_odm.py`` holds enrolments, records, phase changes and decisions. This
store holds one of everything else a study team records: a deviation (its own ``kind`` field, 'missed', is
not the event's kind), a skipped visit, a screen failure and its reversal, a withdrawal, an adverse event
with every field, a dose change, a dispensing, the drug stopped, a value outside the plausible range
confirmed with its reason, a correction and a retraction, a data query opened, answered and closed, the
case book locked and unlocked, and a signed decision. Patients are enrolled out of the order the import
restores them in, so the restored events get other ids than the exported ones: every payload that names
another event by id (a reversal, a query, a lock, a decision's evidence) must be mapped, not copied.

A generated (hypothesis) history is not used: each example would cost an ODM export with its schema
check (seconds of CPU); the kinds, not their order, are what the export writes differently.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from team_helpers import Team, at_decision, cheap_hashing, copy_sites, new_team_store  # noqa: F401  # fixture
from workflow_helpers import (
    BACKENDS,
    DAY0,
    DECISION_DAY,
    ELIGIBLE,
    ENROLLED,
    TG_RESPONSE,
    ct,
    new_db_url,
    new_store,
    rai_scan,
    tg_series,
)

from trialflow.engine import (
    Store,
    answer_query,
    close_query,
    correct,
    decide,
    deviation,
    enroll,
    history,
    list_queries,
    lock,
    next_actions,
    record,
    record_many,
    reverse,
    screen_fail,
    skip_visit,
    start,
    stop_drug,
    unlock,
    verify_signatures,
    visits,
    withdraw,
)
from trialflow.engine import open_query as open_data_query
from trialflow.engine._state import EVENT_KINDS
from trialflow.exchange import export_odm, import_odm, validate_odm_file

pytestmark = pytest.mark.slow
AS_OF = dt.date(2026, 9, 1)
# payload keys that name another event by its id (written out here, not read from the engine's table, so a
# key the import forgets to map fails this test)
ID_KEYS = {"event_id", "event_ids", "reverses", "event", "query", "previous"}


def _days(n: int) -> str:
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def _every_kind(team: Team) -> None:
    """Four patients at Amsterdam, enrolled in the order P-A03, P-A04, P-A02, P-A01."""
    s, anna, dina, mona = team.store, team["anna"], team["dina"], team["mona"]
    enroll(s, "P-A03", ENROLLED, ELIGIBLE, anna, site="AMS")  # screen failure, reversed
    failed = screen_fail(s, "P-A03", ENROLLED + dt.timedelta(days=3), "baseline CT not possible", anna)
    reverse(s, "P-A03", failed.events[0].id, "the CT was booked after all", anna)
    enroll(s, "P-A04", ENROLLED, ELIGIBLE, anna, site="AMS")  # withdrawn
    start(s, "P-A04", DAY0, anna)
    withdraw(s, "P-A04", DAY0 + dt.timedelta(days=5), "consent", anna, note="moved abroad")

    enroll(s, "P-A02", ENROLLED, ELIGIBLE, anna, site="AMS")  # treated: every visit and record event
    record_many(s, [("P-A02", rai_scan(ENROLLED + dt.timedelta(days=7))),
                    ("P-A02", ct(ENROLLED + dt.timedelta(days=10), (22.0, 14.0, 18.0)))], anna)
    start(s, "P-A02", DAY0, anna)  # dispenses 28 days
    first = record_many(s, [("P-A02", r) for r in tg_series(DAY0, TG_RESPONSE)[:2]], anna)[0]  # Tg, TgAb week 0
    deviation(s, "P-A02", "tg_w4", "missed", "patient on holiday", DAY0 + dt.timedelta(days=40), anna)
    skip_visit(s, "P-A02", "tg_w8", "laboratory closed", DAY0 + dt.timedelta(days=50), anna)
    record(s, "P-A02", {"kind": "adverse_event", "date": _days(60), "term": "Palmar-plantar erythrodysesthesia",
                        "grade": 3, "serious": True, "resolved": _days(80), "relatedness": "probable",
                        "action": "dose_reduced"}, anna)
    record(s, "P-A02", {"kind": "dose_change", "date": _days(61), "dose_mg_per_day": 400, "reason": "HFSR grade 3"},
           anna)
    record(s, "P-A02", {"kind": "dispense", "date": _days(62), "dose_mg_per_day": 400, "days_supply": 28}, anna)
    unusual = record(s, "P-A02", {"kind": "tg", "date": _days(84), "value": 250000}, anna,
                     confirm_unusual="lab confirmed on repeat, bulky lung disease")
    tg = next(e for e in unusual.events if e.payload.get("kind") == "tg")
    corrected = correct(s, "P-A02", tg.id, {"value": 251000}, "lab re-issued the result", anna,
                        confirm_unusual="the re-issued result is as high: bulky lung disease")
    tgab = next(e for e in first.events if e.payload.get("kind") == "tgab")
    correct(s, "P-A02", tgab.id, None, "sample mislabelled", anna)
    stop_drug(s, "P-A02", DAY0 + dt.timedelta(days=90), "toxicity", anna)
    q = open_data_query(s, "P-A02", corrected.events[0].id, "please send the lab report", mona)
    answer_query(s, q.id, "report filed in the source documents", anna)
    close_query(s, q.id, dina, "seen")
    open_data_query(s, "P-A02", tg.id, "unit ug/L or ng/mL?", mona, assigned_to="anna")  # left open
    lock(s, "P-A02", "interim analysis", dina)
    unlock(s, "P-A02", "analysis done", dina)

    at_decision(team, "P-A01", "anna", "AMS")  # decided and signed
    decide(s, "P-A01", DECISION_DAY, team["dr.smit"], signature="smit-pass-0001")


def _comparable(store: Store, patient: str, actor: Any = None) -> list[dict[str, Any]]:
    """The patient's history with every event id (the store's own numbering) replaced by the event's place."""
    entries = history(store, patient, actor=actor)
    seq = {e.event: e.seq for e in entries}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in ID_KEYS and isinstance(value, int) and not isinstance(value, bool):
            return f"seq {seq[value]}"
        if key == "root":
            return f"seq {seq[value]}"
        return value

    out = []
    for e in entries:
        # a signature binds events by their places in the history, not by ids: it is copied as signed
        payload = dict(e.payload) if e.kind == "signature" else walk(dict(e.payload))
        out.append({"seq": e.seq, "kind": e.kind, "date": e.effective_date, "recorded_at": e.recorded_at,
                    "user": e.user, "reason": e.reason, "payload": payload,
                    "summary": re.sub(r"(event|query) (\d+)", lambda m: f"{m.group(1)} #{seq[int(m.group(2))]}",
                                      e.summary),
                    "corrects": seq[e.corrects] if e.corrects else None,
                    "corrected_by": seq[e.corrected_by] if e.corrected_by else None})
    return out


def _as_seq(store: Store, answer: Any, actor: Any = None) -> Any:
    """A library answer as JSON data with every event id replaced by (patient, place in the history)."""
    from trialflow.cli._output import jsonable

    where = {e.event: (p, e.seq) for p in store.patient_ids() for e in history(store, p, actor=actor)}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in ID_KEYS and isinstance(value, int) and not isinstance(value, bool):
            return where[value]
        return value

    return walk(jsonable(answer))


@pytest.fixture
def every_kind(tmp_path: Path, cheap_hashing: list[float]) -> Iterator[Team]:  # noqa: F811
    team = new_team_store(str(tmp_path / "team.db"), cheap_hashing)
    _every_kind(team)
    yield team
    team.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_event_kind_survives_the_round_trip_with_its_payload(every_kind: Team, backend: str,
                                                                   tmp_path: Path) -> None:
    source, dina = every_kind.store, every_kind["dina"]
    kinds = {e.kind for p in source.patient_ids() for e in history(source, p, actor=dina)}
    # a migration, and the answers to the criteria a version adds, need a second protocol version: their round trip
    # is test_exchange_odm's test_eligibility_answered_after_the_enrolment_is_checked_as_rescreen_and_migrate_check_it
    assert kinds == set(EVENT_KINDS) - {"migrated", "eligibility_answered"}
    out = tmp_path / "every-kind.xml"
    exported = export_odm(source, out, actor=dina)
    validate_odm_file(out)
    urls = new_db_url(backend, tmp_path / "target")
    try:
        (tmp_path / "target").mkdir()
        target = new_store(next(urls))
        copy_sites(source, target)
        result = import_odm(target, out, "data.manager")
        assert result.events == exported.events and set(result.restored) == set(source.patient_ids())
        for patient in source.patient_ids():
            ours = [e.event for e in history(source, patient, actor=dina)]
            theirs = [e.event for e in history(target, patient)]
            assert len(ours) == len(theirs), patient
            if patient != "P-A03":  # enrolled first: its events keep their ids; the others must get new ones
                assert ours != theirs, patient
            assert _comparable(target, patient) == _comparable(source, patient, dina), patient
            assert verify_signatures(target.events(patient)) == [], patient  # P-A01's signed decision too
            assert _as_seq(target, visits(target, patient, as_of=AS_OF)) == \
                _as_seq(source, visits(source, patient, as_of=AS_OF, actor=dina), dina), patient
        assert _as_seq(target, next_actions(target, as_of=AS_OF)) == \
            _as_seq(source, next_actions(source, as_of=AS_OF, actor=dina), dina)

        dev = next(e for e in history(target, "P-A02") if e.effective_date == DAY0 + dt.timedelta(days=40))
        assert (dev.kind, dev.payload) == ("deviation", {"visit": "tg_w4", "kind": "missed",
                                                         "reason": "patient on holiday"})
        tg_w4 = next(v for v in visits(target, "P-A02", as_of=AS_OF).visits if v.visit == "tg_w4")
        assert tg_w4.deviations and tg_w4.deviations[0].kind == "missed"
        # the reversal undoes the screen failure here too: P-A03 is back in screening
        assert visits(target, "P-A03", as_of=AS_OF).phase == "screening"
        # the data queries are listed as they stand (the store caches them beside the events)
        def queries(store: Store, actor: Any = None) -> list[tuple[Any, ...]]:
            seq = {e.event: e.seq for e in history(store, "P-A02", actor=actor)}
            return sorted((seq[q.id], seq[q.event], q.status, q.text, q.answer, q.opened_by, q.assigned_to)
                          for q in list_queries(store, actor))
        assert queries(target) == queries(source, dina) and len(queries(target)) == 2

        assert import_odm(target, out, "data.manager").events == 0  # idempotent
        again = tmp_path / "again.xml"
        export_odm(target, again)
        assert import_odm(target, again, "data.manager").events == 0
        target.close()
    finally:
        for _ in urls:
            pass
