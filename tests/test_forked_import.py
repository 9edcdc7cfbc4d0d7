"""An import's chunks worked out by forked workers (``engine/_forked.py``) while the parent writes.

On SQLite and PostgreSQL (the ``store`` fixture): the forked path writes what the serial path writes (events,
answers, projections, visits, work items), a worker that would use the parent's connections or refuses hands its
chunk back to the parent (which gives the serial path's answer, word for word), and a refused file writes nothing.
The concurrent and SIGKILL cases run on the forked path in ``test_concurrency.py`` (``chunk`` parameter).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from team_helpers import cheap_hashing  # noqa: F401  (a fixture)
from workflow_helpers import DAY0, USER, enrol_started, snapshot

from trialflow.engine import Refused, Store, import_file, verify_chains
from trialflow.engine._projection import rebuild_projections

HALF = 7
FIRST = [f"P-{i:03d}" for i in range(1, HALF + 1)]
SECOND = [f"P-{i:03d}" for i in range(HALF + 1, 2 * HALF + 1)]


def _rows(patients: list[str], weeks: int = 6) -> list[str]:
    """Tg and TgAb every 4 weeks from day 0; a patient's values depend on its place in ``patients`` only."""
    lines = ["patient,kind,date,value,unit,loq,result"]
    for i, pid in enumerate(patients):
        for w in range(weeks):
            d = (DAY0 + dt.timedelta(weeks=4 * w, days=i % 3)).isoformat()
            lines += [f"{pid},tg,{d},{round(60 * 0.9**w + i / 4, 2)},ug/L,0.2,", f"{pid},tgab,{d},,,,negative"]
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _per_patient(db_url: str) -> dict[str, tuple[Any, ...]]:
    """Each patient's events (without ids and times), patient row, visits and work items (without row ids), its
    id in their texts put as ``<patient>``."""
    from sqlalchemy import text

    from trialflow.engine._db import database_url, make_engine

    engine = make_engine(database_url(db_url))
    out: dict[str, Any] = {}
    try:
        with engine.connect() as c:
            for table, columns, order in (
                    ("event", "seq, kind, effective_date, payload, reason, dedup_key IS NULL", "seq"),
                    ("patient", "phase, day0, phase_entered_on, dose_mg_per_day, next_due, valid_from, report, "
                                "last_seq", "id"),
                    ("visit_state", "visit, name, phase, target_date, window_start, window_end, status, by_clock, "
                                    "done_on, reason", "id"),
                    ("work_item", "action, visit, target_date, window_start, window_end, opens, clock, reason, "
                                  "detail, waiting_detail", "id")):
                key = "id" if table == "patient" else "patient_id"
                for r in c.execute(text(f"SELECT {key}, {columns} FROM {table} ORDER BY {key}, {order}")):
                    named = tuple(v.replace(r[0], "<patient>") if isinstance(v, str) else v for v in r[1:])
                    out.setdefault(r[0], {}).setdefault(table, []).append(named)
    finally:
        engine.dispose()
    return {p: tuple(tuple(v.get(t, ())) for t in ("event", "patient", "visit_state", "work_item"))
            for p, v in out.items()}


@pytest.fixture
def started(store: Store) -> Store:
    for pid in FIRST + SECOND:
        enrol_started(store, pid)
    return store


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Chunks of 2 patients, forking allowed whatever the test runner's threads; counts what the workers did."""
    import trialflow.engine._forked as forked
    import trialflow.engine._workflow as workflow

    monkeypatch.setattr(workflow, "IMPORT_CHUNK", 2)
    counts = {"answered": 0, "handed back": 0}
    answer = forked._Worker.answer

    def counted(self: Any) -> Any:
        got = answer(self)
        counts["answered" if got is not None else "handed back"] += 1
        return got

    monkeypatch.setattr(forked._Worker, "answer", counted)
    monkeypatch.setattr(forked, "can_fork", lambda: True)
    return counts


def _serial(monkeypatch: pytest.MonkeyPatch) -> None:
    import trialflow.engine._forked as forked

    monkeypatch.setattr(forked, "can_fork", lambda: False)


def test_a_forked_import_writes_what_the_serial_import_writes(started: Store, db_url: str, tmp_path: Path,
                                                              chunks: dict[str, int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rows for two halves of the patients, one half imported with its chunks worked out in forked
    children, the other in this process: patient i of each half gets the same events, answer, patient row,
    visits and work items, the chains hold and the projections are what a rebuild from the events writes."""
    forked = import_file(started, _write(tmp_path / "a.csv", _rows(FIRST)), USER)
    assert chunks == {"answered": 4, "handed back": 0}  # 7 patients in chunks of 2, each a worker's
    _serial(monkeypatch)
    serial = import_file(started, _write(tmp_path / "b.csv", _rows(SECOND)), USER)
    assert chunks["answered"] == 4
    assert [w.patient for w in forked] == FIRST and [w.patient for w in serial] == SECOND
    assert [w.message.split(": ", 1)[1] for w in forked] == [w.message.split(": ", 1)[1] for w in serial]
    assert [[(e.seq, e.kind, e.payload) for e in w.events] for w in forked] == \
        [[(e.seq, e.kind, e.payload) for e in w.events] for w in serial]
    stored = _per_patient(db_url)
    for a, b in zip(FIRST, SECOND, strict=True):
        assert stored[a] == stored[b], a
    ids = [e.id for w in forked + serial for e in w.events]
    assert len(set(ids)) == len(ids)  # every event its own id (each worker took the ids reserved for it)
    assert verify_chains(started).intact
    rebuild_projections(started)
    assert _per_patient(db_url) == stored
    # idempotent: the file again, forked, records nothing new
    again = import_file(started, tmp_path / "a.csv", USER)
    assert all(not w.events and "12 already recorded" in w.message for w in again)


def test_a_worker_that_would_use_the_parents_connections_hands_its_chunk_back(
        started: Store, db_url: str, tmp_path: Path, chunks: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's work that reads the store through the parent's engine (here: every record_in call asks the store
    which patients exist) is stopped there, and the parent does that chunk itself: the same store as the
    serial import, nothing lost or doubled."""
    import trialflow.engine._workflow as workflow

    record_in = workflow.record_in

    def reads_the_store(store: Store, *args: Any, **kwargs: Any) -> Any:
        store.existing(["P-001"])  # a connection of the parent's engine: refused in a worker
        return record_in(store, *args, **kwargs)

    monkeypatch.setattr(workflow, "record_in", reads_the_store)
    written = import_file(started, _write(tmp_path / "a.csv", _rows(FIRST)), USER)
    assert chunks == {"answered": 0, "handed back": 4}
    _serial(monkeypatch)
    import_file(started, _write(tmp_path / "b.csv", _rows(SECOND)), USER)
    stored = _per_patient(db_url)
    for a, b in zip(FIRST, SECOND, strict=True):
        assert stored[a] == stored[b], a
    assert sum(len(w.events) for w in written) == HALF * 12 and verify_chains(started).intact


def test_a_forked_import_refuses_bad_rows_as_the_serial_one_does_and_writes_nothing(
        started: Store, db_url: str, tmp_path: Path, chunks: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the patients' states refuse, in the second and the last chunk: the same problems, at the same lines
    and columns, in the same order, as the serial import gives, and nothing written."""
    import_file(started, _write(tmp_path / "first.csv", _rows(FIRST, weeks=1)), USER)
    lines = _rows(FIRST, weeks=2)
    # each contradicts the patient's stored first Tg (P-003's two days after day 0): chunk 2 and the last chunk
    lines.insert(5, f"P-003,tg,{(DAY0 + dt.timedelta(days=2)).isoformat()},999,ug/L,0.2,")
    lines.append(f"P-007,tg,{DAY0.isoformat()},999,ug/L,0.2,")
    bad = _write(tmp_path / "bad.csv", lines)
    before = snapshot(db_url)
    with pytest.raises(Refused) as forked:
        import_file(started, bad, USER)
    assert snapshot(db_url) == before
    _serial(monkeypatch)
    with pytest.raises(Refused) as serial:
        import_file(started, bad, USER)
    assert snapshot(db_url) == before
    assert forked.value.problems == serial.value.problems
    assert [p.split(": ", 1)[0] for p in forked.value.problems] == [f"{bad}:6:3", f"{bad}:{len(lines)}:3"]


def test_a_forked_import_refuses_a_patient_of_another_site_as_the_serial_one_does(
        db_url: str, tmp_path: Path, chunks: dict[str, int], cheap_hashing: list[float],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A coordinator of one site importing a file that names patients of another site (in later chunks): the whole
    import is refused, naming each such patient's first row, and nothing is written, forked or not."""
    from team_helpers import new_team_store
    from workflow_helpers import ELIGIBLE, ENROLLED

    from trialflow.engine import PermissionDenied, enroll, start

    team = new_team_store(db_url, cheap_hashing)
    try:
        own, other = ["AMS-01", "AMS-02", "AMS-03"], ["LEI-01", "LEI-02"]
        for pid, who, site in [(p, "anna", "AMS") for p in own] + [(p, "bram", "LEI") for p in other]:
            enroll(team.store, pid, ENROLLED, ELIGIBLE, team[who], site=site)
            start(team.store, pid, DAY0, team[who])
        f = _write(tmp_path / "lab.csv", _rows(own + other, weeks=1))
        before = snapshot(db_url)
        with pytest.raises(PermissionDenied) as forked:
            import_file(team.store, f, team["anna"])
        assert snapshot(db_url) == before
        _serial(monkeypatch)
        with pytest.raises(PermissionDenied) as serial:
            import_file(team.store, f, team["anna"])
        assert forked.value.problems == serial.value.problems and snapshot(db_url) == before
        assert [p.split(": ", 1)[0] for p in forked.value.problems] == [f"{f}:8:1", f"{f}:10:1"]
        assert chunks["answered"] == 1  # the first chunk (AMS-01, AMS-02) was a worker's; the next two refused
    finally:
        team.store.close()


def test_the_console_command_forks_on_this_machine() -> None:
    """The forked path is the one `trialflow import` takes here: a fresh interpreter (no other thread) on a
    machine with two processors may fork (``TRIALFLOW_FORK=0`` turns it off)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one processor: the import runs its chunks in its own process")
    probe = "from trialflow.engine._forked import can_fork; print(can_fork())"
    env = {k: v for k, v in os.environ.items() if k != "TRIALFLOW_FORK"}
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "True"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**env, "TRIALFLOW_FORK": "0"}, check=True).stdout.strip() == "False"


@contextmanager
def _plain(work: Any) -> Iterator[Any]:
    yield work


@pytest.fixture
def worker_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every worker ``pipelined`` forks, in order."""
    from trialflow.engine import _forked

    pids: list[int] = []
    init = _forked._Worker.__init__

    def spied(self: Any, *args: Any) -> None:
        init(self, *args)
        pids.append(self.pid)

    monkeypatch.setattr(_forked._Worker, "__init__", spied)
    return pids


def _reaped(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: not even a zombie


def test_a_worker_that_dies_has_its_chunks_done_by_the_parent_in_order(worker_pids: list[int]) -> None:
    """``pipelined`` on its own, two workers: the one given chunk 2 kills itself, chunk 3's raises; the parent does
    2, 3 and every later chunk sent to the dead worker itself; every chunk is applied or done in the keys' order;
    the workers are all reaped."""
    import signal

    from trialflow.engine import _forked

    done: list[tuple[str, int, Any]] = []

    def work(k: int, ticket: int) -> int:
        if k == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        if k == 3:
            raise ValueError("not this one")
        return k * 10 + ticket

    _forked.pipelined(range(1, 9), lambda: _plain(work), lambda k: 1,
                      lambda k, r: done.append(("worker", k, r)), lambda k: done.append(("parent", k, None)),
                      workers=2)
    # chunks 1, 3, 5, 7 went to one worker, 2, 4, 6, 8 to the other, which died at 2
    assert done == [("worker", 1, 11), ("parent", 2, None), ("parent", 3, None), ("parent", 4, None),
                    ("worker", 5, 51), ("parent", 6, None), ("worker", 7, 71), ("parent", 8, None)]
    assert len(worker_pids) == 2
    _reaped(worker_pids)


def test_a_ticket_of_none_has_that_chunk_and_the_rest_done_by_the_parent_after_those_sent() -> None:
    """From the first chunk whose ticket is None (a refusal found meanwhile) the parent does every chunk itself,
    after finishing the ones already sent, in order."""
    from trialflow.engine._forked import pipelined

    done: list[tuple[str, int]] = []
    pipelined(range(6), lambda: _plain(lambda k, t: k), lambda k: None if k == 3 else k,
              lambda k, r: done.append(("worker", k)), lambda k: done.append(("parent", k)), workers=2)
    assert done == [("worker", 0), ("worker", 1), ("worker", 2), ("parent", 3), ("parent", 4), ("parent", 5)]


def test_when_the_parents_work_fails_every_worker_is_killed(worker_pids: list[int]) -> None:
    """Applying chunk 0 fails while the other worker is still working (it would work a minute): the error comes
    through at once, and both workers are killed and reaped."""
    import time

    from trialflow.engine import _forked

    def apply(k: int, r: int) -> None:
        raise RuntimeError("the database went away")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="went away"):
        _forked.pipelined([0, 1], lambda: _plain(lambda k, t: time.sleep(60 * k) or k), lambda k: k, apply,
                          lambda k: None, workers=2)
    assert time.monotonic() - started < 30 and len(worker_pids) == 2
    _reaped(worker_pids)


def test_a_worker_never_takes_ids_the_parent_did_not_reserve_for_it(store: Store) -> None:
    """A bulk transaction given its ids (a worker's) takes them, and refuses to take more from the store (where
    another process may be taking the same ones)."""
    from trialflow.engine._bulk import BulkTransaction
    from trialflow.engine._db import write_session

    with write_session(store.engine) as s:
        tx = BulkTransaction(s, USER)
        tx.use_ids([7, 8, 9])
        assert tx._take_ids(2) == [7, 8]
        with pytest.raises(RuntimeError, match="2 event ids wanted, 1 reserved"):
            tx._take_ids(2)
        tx.use_ids(None)
        assert tx._take_ids(1) == [1]  # (from the store again: an empty one)


def test_an_sqlite_file_not_in_wal_mode_is_imported_without_workers(tmp_path: Path, chunks: dict[str, int]) -> None:
    """In SQLite's older journal modes a writer's spilled pages lock readers out, so workers reading beside the
    import would wait for it: a store file in such a mode (another tool's, switched back) is imported in one
    process, and to the same rows."""
    import sqlite3

    from workflow_helpers import new_store

    db = tmp_path / "rollback.db"
    store = new_store(str(db))
    try:
        for pid in FIRST:
            enrol_started(store, pid)
        store.engine.dispose()
        with sqlite3.connect(db) as c:
            assert c.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        written = import_file(store, _write(tmp_path / "a.csv", _rows(FIRST)), USER)
        assert chunks == {"answered": 0, "handed back": 0}  # no worker was asked
        assert sum(len(w.events) for w in written) == HALF * 12 and verify_chains(store).intact
    finally:
        store.close()


def test_a_fork_that_fails_leaves_every_chunk_to_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process to be had (``fork`` failing with EAGAIN, as under a process limit): the work is the parent's,
    every chunk in order, and no error reaches the user."""
    import errno

    from trialflow.engine import _forked

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(_forked.os, "fork", no_fork)
    done: list[int] = []
    _forked.pipelined(range(4), lambda: _plain(lambda k, t: k), lambda k: k, lambda k, r: done.append(-k),
                      done.append, workers=2)
    assert done == [0, 1, 2, 3]


def test_a_pg_import_whose_visit_rows_were_rewritten_meanwhile_runs_again(
        started: Store, db_url: str, tmp_path: Path, chunks: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A patient's visit rows written again after a worker read their ids, without a new event (a rebuild of the
    projections keeps ``last_seq``): the parent finds other ids under the guard's lock and runs the import
    again, which then updates the rows that are there (equal to a rebuild)."""
    import trialflow.engine._bulk as bulk

    if started.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the import holds the file's write lock from its start, so no writer comes between")
    apply = bulk.BulkTransaction.apply
    rebuilt: list[bool] = []

    def rebuild_first(self: Any, flush: Any) -> Any:
        if flush.written and not rebuilt:  # once, between the worker's read and the parent's write
            rebuilt.append(True)
            from trialflow.engine._db import make_engine

            other = Store(make_engine(started.engine.url.render_as_string(hide_password=False)))
            rebuild_projections(other)  # another connection: its own transaction, committed
            other.close()
        return apply(self, flush)

    monkeypatch.setattr(bulk.BulkTransaction, "apply", rebuild_first)
    retries = started.retries
    import_file(started, _write(tmp_path / "a.csv", _rows(FIRST)), USER)
    assert rebuilt and started.retries == retries + 1
    stored = _per_patient(db_url)
    rebuild_projections(started)
    assert _per_patient(db_url) == stored and verify_chains(started).intact
