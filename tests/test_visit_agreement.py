"""The worklist, ``status``, the decision preview and the visit ledger agree on every visit (issue 12).

Over the demo cohort (30 patients at every stage), for every day on which any visit changes state (the
day before and the first day of each window, its target, the day after it, its last day and the day
after) and every week of the study, the pure readings are compared from one fold per patient; on a
sample of days the same is checked through the store (stored work items, SQL) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest

from trialflow.engine import (
    Store,
    cohort_visits,
    evaluate,
    evaluate_decision,
    fold,
    next_actions,
    patient_actions,
    patient_status,
    schedule,
    status,
    visits,
)
from trialflow.engine._base import today
from trialflow.engine._demo import populate_demo
from trialflow.engine._workflow import init_store
from trialflow.protocol import Protocol

HORIZON = 28


def _expected_on_worklist(ledger, phase: str, day: dt.date) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What the ledger says the worklist must show: every unresolved visit of the current phase opening
    within the horizon, and every unresolved missed visit of an earlier phase."""
    return {v.visit: v.status for v in ledger
            if not v.resolved and (v.phase == phase or v.status == "missed")
            and (v.status != "upcoming" or v.window_start <= day + dt.timedelta(days=HORIZON))}


def _criterion_visits(protocol: Protocol) -> list[str]:
    return [v for c in protocol.decision.criteria for v in c.visits]


def _check_day(protocol: Protocol, state, day: dt.date, *, with_decision: bool) -> None:  # type: ignore[no-untyped-def]
    cut = state.until(day)
    ledger = schedule(protocol, cut, day)
    shown = {a.visit: a.status for a in patient_actions(protocol, cut, day, HORIZON) if a.visit is not None}
    assert shown == _expected_on_worklist(ledger, cut.phase, day), (state.patient, day)
    st = patient_status(protocol, cut, day)
    assert (st.visits_done, st.visits_missed) == (sum(v.status == "done" for v in ledger),
                                                  sum(v.status == "missed" for v in ledger)), (state.patient, day)
    if with_decision:
        preview = evaluate_decision(protocol, cut, day)
        by_id = {v.visit: v for v in ledger}
        waiting = {m.split(": ", 1)[1].split(" ", 1)[0] for m in preview.missing}
        scheduled = [v for v in _criterion_visits(protocol) if v in by_id]
        assert waiting & set(scheduled) == {v for v in scheduled if by_id[v].status in ("upcoming", "due",
                                                                                         "overdue")}, (state.patient,
                                                                                                       day)
        missed = {m.split(": ", 1)[1].split(" ", 1)[0] for m in preview.missed}
        assert missed == {v for v in scheduled if by_id[v].status == "missed"}, (state.patient, day)


def _days(protocol: Protocol, state) -> list[dt.date]:  # type: ignore[no-untyped-def]
    end = today() + dt.timedelta(days=30)
    days = {state.enrolled_on + dt.timedelta(days=k) for k in range(0, (end - state.enrolled_on).days + 1, 7)}
    for v in schedule(protocol, state, end):
        one = dt.timedelta(days=1)
        days |= {v.window_start - one, v.window_start, v.target_date, v.target_date + one, v.window_end,
                 v.window_end + one}
    return sorted(d for d in days if state.enrolled_on <= d <= end)


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store, _ = init_store(str(tmp_path_factory.mktemp("demo") / "demo.db"), None, "test")
    populate_demo(store)
    return store


@pytest.mark.slow
def test_ledger_worklist_status_and_decision_agree_on_every_visit_of_the_demo(demo_sqlite: Store) -> None:
    store = demo_sqlite
    protocol = store.protocol()[0]
    checked = 0
    for events in store.events_of().values():
        state = fold(events)
        for i, day in enumerate(_days(protocol, state)):
            _check_day(protocol, state, day, with_decision=i % 3 == 0)
            checked += 1
    assert checked > 1000


def _agree_through_the_store(store: Store) -> None:
    protocol = store.protocol()[0]
    now = today()
    for day in (now - dt.timedelta(days=300), now - dt.timedelta(days=120), now - dt.timedelta(days=31), now):
        worklist = next_actions(store, as_of=day, horizon=HORIZON)
        rows = {s.patient: s for s in status(store, as_of=day)}
        missed = {(v.patient, v.visit) for v in cohort_visits(store, status="missed", as_of=day)}
        for pid in rows:
            ledger = visits(store, pid, as_of=day)
            shown = {a.visit: a.status for a in worklist if a.patient == pid and a.visit is not None}
            assert shown == _expected_on_worklist(ledger.visits, ledger.phase, day), (pid, day)
            assert rows[pid].visits_missed == sum(v.status == "missed" for v in ledger.visits)
            assert rows[pid].visits_done == sum(v.status == "done" for v in ledger.visits)
            assert {v.visit for v in ledger.visits if v.status == "missed"} == {v for p, v in missed if p == pid}
        for pid in [p for p in rows if rows[p].phase == "sorafenib_6m"][:3]:
            preview = evaluate(store, pid, as_of=day)
            ledger = {v.visit: v for v in visits(store, pid, as_of=day).visits}
            waiting = {m.split(": ", 1)[1].split(" ", 1)[0] for m in preview.missing}
            assert waiting == {v for v in _criterion_visits(protocol)
                               if v in ledger and ledger[v].status in ("upcoming", "due", "overdue")}


@pytest.mark.slow
def test_the_store_answers_agree_on_sqlite(demo_sqlite: Store) -> None:
    _agree_through_the_store(demo_sqlite)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_store_answers_agree_on_postgresql(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from workflow_helpers import new_db_url

    for url in new_db_url("postgres", tmp_path):
        store, _ = init_store(url, None, "test")
        try:
            populate_demo(store)
            _agree_through_the_store(store)
            protocol = store.protocol()[0]
            for events in list(store.events_of().values())[::5]:  # the pure readings from PostgreSQL's events
                state = fold(events)
                for day in _days(protocol, state)[::4]:
                    _check_day(protocol, state, day, with_decision=False)
        finally:
            store.close()
