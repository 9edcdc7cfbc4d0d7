"""The stored work items answer the worklist exactly as replaying every patient's events would.

The cohort is the demo's (30 patients at every stage, built through the workflow functions); the
reference is the worklist computed from each patient's folded events, which is how `--known-at`
and past `--as-of` dates are answered.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trialflow.engine import Store, fold, next_actions, patient_actions
from trialflow.engine._base import today
from trialflow.engine._demo import build_demo
from trialflow.engine._projection import rebuild_projections
from trialflow.engine._worklist import sort_actions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_demo(str(tmp_path_factory.mktemp("demo") / "demo.db"))


def _replayed(store: Store, as_of: dt.date, horizon: int) -> list[object]:
    out = []
    for evs in store.events_of().values():
        state = fold(evs)
        if state.enrolled_on <= as_of:
            out += patient_actions(store.protocol(state.protocol_hash)[0], state.until(as_of), as_of, horizon)
    return sort_actions(out)


@pytest.mark.parametrize("days_ahead", [0, 1, 7, 30, 90, 400])
@pytest.mark.parametrize("horizon", [0, 28, 365])
def test_stored_items_equal_a_full_replay(demo: Store, days_ahead: int, horizon: int) -> None:
    as_of = today() + dt.timedelta(days=days_ahead)
    assert next_actions(demo, as_of=as_of, horizon=horizon) == _replayed(demo, as_of, horizon)


def test_past_dates_are_replayed_not_read_from_the_cache(demo: Store) -> None:
    as_of = today() - dt.timedelta(days=120)
    assert next_actions(demo, as_of=as_of) == _replayed(demo, as_of, 28)


def test_known_at_before_everything_shows_nothing(demo: Store) -> None:
    assert next_actions(demo, known_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == []


def test_rebuilding_the_projection_changes_nothing(demo: Store, tmp_path: Path) -> None:
    before = next_actions(demo, horizon=90)
    assert rebuild_projections(demo) == len(demo.patient_ids())
    assert next_actions(demo, horizon=90) == before


def test_a_store_from_before_the_work_items_is_brought_up_to_date_by_init(tmp_path: Path) -> None:
    from sqlalchemy import text

    from trialflow.engine import StoreError, init_store

    path = tmp_path / "old.db"
    store = build_demo(str(path))
    expected = next_actions(store)
    with store.engine.begin() as c:  # what a store written by 0.1 before work items looked like
        c.execute(text("DROP TABLE work_item"))
        c.execute(text("DROP TABLE visit_state"))  # what revision 0004 added
        c.execute(text("ALTER TABLE patient DROP COLUMN decision"))
        c.execute(text("ALTER TABLE patient DROP COLUMN report"))  # what revision 0005 added
        c.execute(text("ALTER TABLE patient DROP COLUMN valid_from"))
        for table in ("data_query", "user_site", "audit_log", "login_failure", "app_user", "site"):  # revision 0002
            c.execute(text(f"DROP TABLE {table}"))
        for index, table, column in (("ix_patient_site", "patient", "site"), ("ix_event_user_id", "event", "user_id")):
            c.execute(text(f"DROP INDEX {index}"))
            c.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        c.execute(text("ALTER TABLE event DROP COLUMN context"))
        c.execute(text("DROP TABLE alembic_version"))
        c.execute(text("DROP INDEX uq_protocol_version_study_version"))  # what revision 0002 added
        c.execute(text("ALTER TABLE event DROP COLUMN hash"))
        c.execute(text("ALTER TABLE event DROP COLUMN prev_hash"))
        c.execute(text("UPDATE store_info SET key = 'schema_version', value = '1' WHERE key = 'application'"))
    store.close()
    with pytest.raises(StoreError, match="older trialflow: run `trialflow init`"):
        Store.open(str(path))
    upgraded, _ = init_store(str(path), None, "admin")
    assert next_actions(upgraded) == expected
