"""The web worklist cache's key (``Store.write_mark``) moves with every commit, also when a long transaction on
PostgreSQL commits event ids below those of a shorter one that committed meanwhile (ids come from the
sequence when taken, not when committed), which the newest event id, the former key, does not show."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from workflow_helpers import USER, enrol_started, new_db_url, new_store

from trialflow.engine import record
from trialflow.engine._store import Transaction

AE = {"kind": "adverse_event", "date": "2026-01-20", "term": "Fatigue", "grade": 2}


def test_every_write_raises_the_mark(tmp_path: Path) -> None:
    store = new_store(str(tmp_path / "t.db"))
    marks = [store.write_mark()]
    enrol_started(store, "P-1")
    marks.append(store.write_mark())
    record(store, "P-1", AE, USER)
    marks.append(store.write_mark())
    assert marks == sorted(set(marks))
    store.close()


@pytest.mark.postgres
def test_a_transaction_committing_lower_ids_after_a_later_one_moves_the_mark(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = new_db_url("postgres", tmp_path)
    try:
        store = new_store(next(urls))
        enrol_started(store, "P-1")
        enrol_started(store, "P-2")
        took, go_on = threading.Event(), threading.Event()
        original = Transaction.append

        def append(self: Transaction, *args: Any, **kw: Any) -> Any:
            out = original(self, *args, **kw)
            if threading.current_thread() is slow_thread:  # ids taken; wait before committing
                took.set()
                assert go_on.wait(30)
            return out

        monkeypatch.setattr(Transaction, "append", append)
        slow_thread = threading.Thread(target=record, args=(store, "P-1", AE, USER))
        slow_thread.start()
        assert took.wait(30)
        record(store, "P-2", AE, USER)  # takes a higher id and commits first
        newest, mark = store.last_event_id(), store.write_mark()
        go_on.set()
        slow_thread.join(30)
        assert store.events("P-1")[-1].payload["term"] == "Fatigue"  # the slow write committed, lower id
        assert store.events("P-1")[-1].id < newest
        assert store.last_event_id() == newest  # the old key would not have moved
        assert store.write_mark() > mark
        store.close()
    finally:
        for _ in urls:
            pass
