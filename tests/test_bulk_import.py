"""The bulk import path (issue 17): one transaction, set-wise writes, the one-patient path's guarantees.

Run on SQLite and PostgreSQL (the ``store`` fixture). The concurrent and SIGKILL cases are in
``test_concurrency.py``; here: the bulk write gives exactly what the one-patient path gives (events,
projections, work items), chains stay valid, a re-import is idempotent, every bad row is located and
a refused import (bad rows, an unknown patient, a patient at another site) writes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from workflow_helpers import DAY0, ELIGIBLE, ENROLLED, USER, enrol_started, snapshot

from trialflow.engine import Refused, Store, enroll, import_file, record_many, verify_chains
from trialflow.engine._demo import populate_demo
from trialflow.engine._projection import rebuild_projections
from trialflow.protocol import DocumentError


def _lab_csv(path: Path, patients: list[str], weeks: int = 6, shift: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Tg and TgAb every 4 weeks from day 0 for ``patients``; answers the same rows as record dicts."""
    lines, items = ["patient,kind,date,value,unit,loq,result"], []
    for i, pid in enumerate(patients):
        for w in range(weeks):
            d = (DAY0 + dt.timedelta(weeks=4 * w, days=shift)).isoformat()
            value = round(80 * 0.93**w + i / 10, 2)
            lines += [f"{pid},tg,{d},{value},ug/L,0.2,", f"{pid},tgab,{d},,,,negative"]
            items += [(pid, {"kind": "tg", "date": d, "value": value, "unit": "ug/L", "loq": 0.2}),
                      (pid, {"kind": "tgab", "date": d, "result": "negative"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items


def _projections(db_url: str) -> tuple[list[Any], list[Any]]:
    """Patient rows (without the write time) and work items (without row ids), in key order."""
    from sqlalchemy import text

    from trialflow.engine._db import database_url, make_engine

    engine = make_engine(database_url(db_url))
    try:
        with engine.connect() as c:
            patients = [tuple(r) for r in c.execute(text(
                "SELECT id, protocol_version_id, phase, enrolled_on, day0, phase_entered_on, dose_mg_per_day, "
                "next_due, valid_from, site, last_seq FROM patient ORDER BY id"))]
            items = [tuple(r) for r in c.execute(text(
                "SELECT patient_id, action, visit, target_date, window_start, window_end, opens, clock, reason, "
                "detail, waiting_detail FROM work_item ORDER BY patient_id, action, visit, target_date"))]
    finally:
        engine.dispose()
    return patients, items


PATIENTS = [f"P-{i:03d}" for i in range(1, 13)]


@pytest.fixture
def started(store: Store) -> Store:
    for pid in PATIENTS:
        enrol_started(store, pid)
    return store


def test_bulk_import_writes_what_the_one_patient_path_writes(started: Store, db_url: str, tmp_path: Path) -> None:
    """The same rows through the bulk import and through record_many (one patient's transaction path):
    the same events in the same order, and projections equal to a rebuild from the events."""
    f = tmp_path / "lab.csv"
    items = _lab_csv(f, PATIENTS[:6])
    import_file(started, f, USER)
    record_many(started, [(p, d) for p, d in _lab_csv(tmp_path / "other.csv", PATIENTS[6:])], USER)
    bulk = {p: [(e.seq, e.kind, e.effective_date, dict(e.payload)) for e in started.events(p)] for p in PATIENTS}
    # patient i of the first half got exactly what patient i of the second half got (same rows, other ids)
    assert len(items) == 6 * 12
    for a, b in zip(PATIENTS[:6], PATIENTS[6:], strict=True):
        assert [x[:3] for x in bulk[a]] == [x[:3] for x in bulk[b]]
    before = _projections(db_url)
    rebuild_projections(started)  # the fold, patient by patient
    assert _projections(db_url) == before
    assert verify_chains(started).intact


def _visit_rows(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every patient's stored visits in the order readers list them (row id), each with its row id first."""
    from sqlalchemy import text

    from trialflow.engine._db import database_url, make_engine

    engine = make_engine(database_url(db_url))
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT patient_id, id, visit, name, phase, target_date, window_start, window_end, "
                                  "status, by_clock, done_on, reason, body FROM visit_state ORDER BY patient_id, id"))
            out: dict[str, list[tuple[Any, ...]]] = {}
            for r in rows:
                out.setdefault(r[0], []).append(tuple(r[1:]))
    finally:
        engine.dispose()
    return out


def test_a_bulk_import_rewrites_only_the_visits_its_records_change(started: Store, db_url: str,
                                                                  tmp_path: Path) -> None:
    """The import's visits are what a rebuild from the events writes, in the same order; the visits its
    records do not touch keep their rows (row ids) and every changed one is updated where it stands."""
    before = _visit_rows(db_url)
    f = tmp_path / "lab.csv"
    _lab_csv(f, PATIENTS[:6], weeks=3)  # Tg + TgAb on days 0, 28, 56: inside some visits' windows, not all
    import_file(started, f, USER)
    after = _visit_rows(db_url)
    for pid in PATIENTS:
        old, new = before[pid], after[pid]
        assert [r[0] for r in new] == [r[0] for r in old]  # same rows, same order: updated in place
        if pid in PATIENTS[6:]:
            assert new == old  # not in the file: untouched
    changed = [(pid, a[1]) for pid in PATIENTS[:6] for a, b in zip(after[pid], before[pid], strict=True) if a != b]
    assert changed and len(changed) < sum(len(after[p]) for p in PATIENTS[:6])
    rebuild_projections(started)  # the one-patient path: every visit deleted and written again from the fold
    rebuilt = _visit_rows(db_url)
    assert {p: [r[1:] for r in rows] for p, rows in rebuilt.items()} == \
        {p: [r[1:] for r in rows] for p, rows in after.items()}


def test_an_import_pauses_the_cyclic_collector_and_runs_it_again_however_it_ends(
        started: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """import_file holds a chunk's histories with the cyclic collector paused (engine/_collector.py), and the
    collector runs again afterwards, after an import that is refused too."""
    import gc

    from trialflow.engine import _workflow

    seen: list[bool] = []
    record_in = _workflow.record_in

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return record_in(*args, **kwargs)

    monkeypatch.setattr(_workflow, "record_in", spy)
    good, bad = tmp_path / "lab.csv", tmp_path / "bad.csv"
    _lab_csv(good, PATIENTS[:2], weeks=1)
    bad.write_text(f"patient,kind,date,value,unit\n{PATIENTS[0]},tg,{DAY0 - dt.timedelta(days=400)},5,ug/L\n",
                   encoding="utf-8")
    assert gc.isenabled()
    import_file(started, good, USER)
    assert gc.isenabled()
    with pytest.raises(Refused):
        import_file(started, bad, USER)
    assert gc.isenabled()
    assert seen == [False, False]


def test_bulk_import_is_idempotent_and_continues_each_chain(started: Store, db_url: str, tmp_path: Path) -> None:
    f = tmp_path / "lab.csv"
    rows = len(_lab_csv(f, PATIENTS))
    first = import_file(started, f, USER)
    assert sum(len(w.events) for w in first) == rows
    after = snapshot(db_url)
    again = import_file(started, f, USER)
    assert sum(len(w.events) for w in again) == 0
    assert all("already recorded (skipped)" in w.message for w in again)
    assert snapshot(db_url) == after
    # a later one-patient write continues the chain the bulk write extended
    record_many(started, [(PATIENTS[0], {"kind": "tg", "date": (DAY0 + dt.timedelta(days=3)).isoformat(),
                                         "value": 70.0, "unit": "ug/L"})], USER)
    report = verify_chains(started)
    assert report.intact, report.problems
    seqs = [e.seq for e in started.events(PATIENTS[0])]
    assert seqs == list(range(1, len(seqs) + 1))


def test_refused_bulk_import_names_every_bad_row_and_writes_nothing(started: Store, db_url: str,
                                                                     tmp_path: Path) -> None:
    f = tmp_path / "lab.csv"
    _lab_csv(f, PATIENTS)
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[5] = "P-001,tg,2026-02-30,12,ug/L,0.2,"
    lines[9] = "P-404,tg,2026-03-02,12,ug/L,0.2,"
    lines[14] = "P-002,tg,2026-03-02,twelve,ug/L,0.2,"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(db_url)
    with pytest.raises(DocumentError) as err:
        import_file(started, f, USER)
    where = [(p.line, p.column) for p in err.value.problems]
    assert where == [(6, 3), (10, 1), (15, 4)], err.value.problems
    assert "unknown patient 'P-404'" in str(err.value)
    assert snapshot(db_url) == before


def test_a_refusal_for_one_patient_refuses_the_whole_bulk_import(started: Store, db_url: str, tmp_path: Path) -> None:
    """A row that contradicts a stored value refuses the file: nothing of the other patients is written."""
    f = tmp_path / "lab.csv"
    _lab_csv(f, PATIENTS)
    import_file(started, f, USER)
    before = snapshot(db_url)
    g = tmp_path / "changed.csv"
    _lab_csv(g, PATIENTS, shift=1)
    text = g.read_text(encoding="utf-8").splitlines()
    text.append(f"P-007,tg,{DAY0.isoformat()},999,ug/L,0.2,")  # day 0 already holds another Tg for P-007
    g.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(Refused, match="P-007: a tg of"):
        import_file(started, g, USER)
    assert snapshot(db_url) == before


def test_an_import_written_in_chunks_is_one_transaction(started: Store, db_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Patients are read, checked and written a chunk at a time (memory holds one chunk's histories): a
    refusal after a chunk was written still names the problems of every later chunk and leaves nothing written;
    the file then imports to exactly what one chunk of every patient writes."""
    import trialflow.engine._workflow as workflow

    f = tmp_path / "lab.csv"
    _lab_csv(f, PATIENTS)
    lines = f.read_text(encoding="utf-8").splitlines()
    lines.insert(3, f"P-005,tg,{DAY0.isoformat()},999,ug/L,0.2,")  # contradicts P-005's own day-0 Tg (chunk 2)
    lines.append(f"P-011,tg,{DAY0.isoformat()},999,ug/L,0.2,")  # the same in the last chunk
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(db_url)
    monkeypatch.setattr(workflow, "IMPORT_CHUNK", 3)
    with pytest.raises(Refused) as err:
        import_file(started, f, USER)
    # each named by its place in the file (the line of the second value the file gives for the day, the date's
    # column), then the patient
    second = next(n for n, line in enumerate(lines, start=1) if line.startswith(f"P-005,tg,{DAY0.isoformat()},")
                  and ",999," not in line)
    assert [p.split(": ", 2)[0] for p in err.value.problems] == [f"{f}:{second}:3", f"{f}:{len(lines)}:3"]
    assert [p.split(": ", 2)[2].split(":")[0] for p in err.value.problems] == ["P-005", "P-011"], err.value.problems
    assert snapshot(db_url) == before
    _lab_csv(f, PATIENTS)
    chunked = [(w.patient, len(w.events), w.message) for w in import_file(started, f, USER)]
    assert [p for p, _, _ in chunked] == PATIENTS and all(n == 12 for _, n, _ in chunked)
    projections = _projections(db_url)
    rebuild_projections(started)
    assert _projections(db_url) == projections and verify_chains(started).intact
    chunked_rows = snapshot(db_url)
    monkeypatch.setattr(workflow, "IMPORT_CHUNK", 1000)
    assert sum(len(w.events) for w in import_file(started, f, USER)) == 0  # idempotent across chunk sizes
    assert snapshot(db_url) == chunked_rows


@pytest.mark.parametrize("forked", [False, True], ids=["serial", "forked"])
def test_an_import_takes_its_chunks_in_patient_id_order_and_answers_in_file_order(
        started: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: bool) -> None:
    """Two importers whose files name the same patients in different orders must take the patients' rows in
    one order, or on PostgreSQL each would hold a chunk the other waits for (a deadlock): the chunks are cut
    from the patients in id order, whatever the file's order, and written in that order (also where forked workers
    work them out, ``engine/_forked.py``), while the answer lists them as the file does."""
    import trialflow.engine._bulk as bulk
    import trialflow.engine._forked as forked_path
    import trialflow.engine._workflow as workflow

    f = tmp_path / "lab.csv"
    _lab_csv(f, list(reversed(PATIENTS)))
    written_in: list[list[str]] = []
    apply = bulk.BulkTransaction.apply

    def spy(self: Any, flush: Any) -> Any:
        if flush.written:  # (the transaction's last flush has nothing left to write)
            written_in.append(sorted(flush.written))
        return apply(self, flush)

    monkeypatch.setattr(bulk.BulkTransaction, "apply", spy)
    monkeypatch.setattr(forked_path, "can_fork", lambda: forked)
    monkeypatch.setattr(workflow, "IMPORT_CHUNK", 5)
    written = import_file(started, f, USER)
    assert written_in == [PATIENTS[0:5], PATIENTS[5:10], PATIENTS[10:12]]
    assert [w.patient for w in written] == list(reversed(PATIENTS))
    assert all(len(w.events) == 12 for w in written) and verify_chains(started).intact


def test_the_demo_cohort_at_scale_is_built_in_bulk_with_valid_chains(db_url: str) -> None:
    """`trialflow demo --patients N`'s cohort on either backend: every stage present, chains intact, and the
    projections written set-wise equal a rebuild from the events."""
    from trialflow.engine import init_store

    store, _ = init_store(db_url, None, "investigator.dr-smit")
    try:
        populate_demo(store, patients=120, seed=7)
        phases = {row[2] for row in _projections(db_url)[0]}
        assert {"screening", "sorafenib_6m", "withdrawn", "screen_failure"} <= phases
        kinds = {e.kind for p in store.patient_ids() for e in store.events(p)}
        assert {"decision", "deviation", "withdrawn", "observation", "phase_changed"} <= kinds
        assert phases & {"rai_plus_sorafenib", "continued_sorafenib", "off_study", "end_of_study"}
        assert verify_chains(store).intact
        before = _projections(db_url)
        rebuild_projections(store)
        assert _projections(db_url) == before
        # the report's lean read (observations it does not use left in the database) on this backend
        from trialflow.engine import _queries as queries
        from trialflow.engine import report

        lean, kinds = report(store), queries.REPORT_RECORDS
        try:
            queries.REPORT_RECORDS = None  # type: ignore[assignment]  # the reference: every event folded
            assert report(store) == lean
        finally:
            queries.REPORT_RECORDS = kinds
    finally:
        store.close()


def test_a_refused_write_in_a_batch_leaves_no_row_it_added_on_the_session(db_url: str) -> None:
    """Store.batch: a write that refuses leaves no trace, also of rows it added on the session directly (as a
    data query's row is), while the batch's other writes stay."""
    from trialflow.engine import init_store
    from trialflow.engine._tables import StoreInfoRow

    store, _ = init_store(db_url, None, "investigator.dr-smit")

    def adds(key: str, refuse: bool) -> Any:
        def work(tx: Any) -> None:
            tx.session.add(StoreInfoRow(key=key, value="x"))
            tx.session.flush()
            if refuse:
                raise Refused("refused after adding a row")
        return work

    try:
        with store.batch(USER):
            store.write(USER, adds("kept-before", False))
            with pytest.raises(Refused):
                store.write(USER, adds("refused", True))
            store.write(USER, adds("kept-after", False))
        assert store.info("kept-before") == "x" and store.info("kept-after") == "x"
        assert store.info("refused") is None
    finally:
        store.close()


@pytest.mark.parametrize("ends", ["written", "refused inside", "refused at the flush"])
def test_a_batch_sets_sqlites_page_cache_back_however_it_ends(tmp_path: Path, ends: str) -> None:
    """Store.batch raises SQLite's page cache while it writes; the pooled connection it wrote on has its own
    page cache again afterwards, whether the batch was written or refused (inside the block, or by the
    set-wise write at its end: a patient's event seq already taken)."""
    from trialflow.engine import _store as store_module
    from trialflow.engine import init_store

    store, _ = init_store(str(tmp_path / "s.db"), None, "investigator.dr-smit")
    try:
        def page_caches() -> list[int]:
            """The page cache of every connection the pool holds (all checked out at once, so each is read)."""
            pool = store.engine.pool
            held = [pool.connect() for _ in range(pool.checkedin())]  # type: ignore[attr-defined]  # (QueuePool)
            try:
                return [int(c.cursor().execute("PRAGMA cache_size").fetchone()[0]) for c in held]
            finally:
                for c in held:
                    c.close()

        own = page_caches()[0]
        seen: list[int] = []
        try:
            with store.batch(USER) as tx:
                seen.append(int(tx.session.connection().exec_driver_sql("PRAGMA cache_size").scalar_one()))
                for pid in ("P-001", "P-002"):
                    enroll(store, pid, ENROLLED, ELIGIBLE, USER)
                if ends == "refused inside":
                    raise Refused("the caller gives up")
                if ends == "refused at the flush":
                    tx._rows.append(dict(tx._rows[0]))  # the same (patient, seq) twice: the insert fails
        except Exception as err:
            assert ends != "written", err
        else:
            assert ends == "written"
        assert seen == [-store_module.BATCH_PAGE_CACHE_KIB] and own != seen[0]
        caches = page_caches()
        assert len(caches) >= 2 and set(caches) == {own}  # the batch's connection and the one its reads took
        assert (store.patient_ids() != []) == (ends == "written")
    finally:
        store.close()


def test_the_demo_build_pauses_the_cyclic_collector_and_runs_it_again_however_it_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """populate_demo builds with Python's cyclic garbage collector paused (a chunk's objects are freed by
    reference counting), and the collector runs again afterwards, also after a build that fails."""
    import contextlib
    import gc

    from trialflow.engine import _demo, init_store

    seen: list[bool] = []
    patient = _demo._patient

    def spy(store: Store, pid: str, *args: Any, **kwargs: Any) -> None:
        seen.append(gc.isenabled())
        if pid == broken:
            raise RuntimeError("the build breaks")
        patient(store, pid, *args, **kwargs)

    monkeypatch.setattr(_demo, "_patient", spy)
    assert gc.isenabled()
    for name, broken in (("built.db", None), ("broken.db", "DEMO-003")):
        store, _ = init_store(str(tmp_path / name), None, "investigator.dr-smit")
        try:
            with pytest.raises(RuntimeError) if broken else contextlib.nullcontext():
                populate_demo(store, patients=4)
        finally:
            store.close()
        assert gc.isenabled()
    assert seen == [False] * (4 + 3)


def test_a_state_extended_by_later_events_is_the_fold_of_the_whole_history(tmp_path: Path) -> None:
    """extend() folds appended events onto the state (the bulk path's shortcut): for every patient of a demo
    cohort (enrolments, screen failures, starts, decisions, withdrawals, deviations, completions) and every
    point its history can be cut at, the extended state is the fold of the whole history, with the appended
    observations' records given as built or built from their payloads; corrections and reversals (which
    take back earlier events) are folded from the start."""
    from trialflow.engine import correct, init_store
    from trialflow.engine._state import extend, fold

    store, _ = init_store(str(tmp_path / "s.db"), None, "investigator.dr-smit")
    try:
        populate_demo(store, patients=45, seed=11)
        tg = next(e for e in store.events("DEMO-001") if e.kind == "observation" and e.payload["kind"] == "tg")
        correct(store, "DEMO-001", tg.id, {"value": 99.5}, "transcription error", USER)
        kinds: set[str] = set()
        for pid in store.patient_ids():
            events = store.events(pid)
            whole = fold(events)
            as_built = {v.event_id: v.record for v in whole.records}  # each observation's record (None: corrected)
            for cut in range(1, len(events) + 1):
                head, tail = events[:cut], events[cut:]
                kinds.update(e.kind for e in tail)
                assert extend(fold(head), tail) == whole, (pid, cut)
                assert extend(fold(head), tail, [as_built.get(e.id) for e in tail]) == whole, (pid, cut)
        assert {"phase_changed", "decision", "withdrawn", "deviation", "observation", "correction"} <= kinds
    finally:
        store.close()


def test_a_corrected_value_stays_as_fold_keeps_it_when_later_events_are_folded_onto_it(tmp_path: Path) -> None:
    """A state that holds a corrected value, extended by a later observation: the same state as the fold of
    the whole history at every cut (the corrected value is kept under its original observation, as fold
    keeps it)."""
    from trialflow.engine import correct, init_store, record
    from trialflow.engine._state import extend, fold

    store, _ = init_store(str(tmp_path / "s.db"), None, "investigator.dr-smit")
    try:
        populate_demo(store, patients=45, seed=11)
        pid, tgs = next((p, tgs) for p in store.patient_ids()
                        if (st := fold(store.events(p))).withdrawal is None and st.phase == "continued_sorafenib"
                        and len(tgs := [e for e in store.events(p)
                                        if e.kind == "observation" and e.payload["kind"] == "tg"]) >= 2)
        correct(store, pid, tgs[0].id, {"value": 99.5}, "transcription error", USER)
        last = tgs[-1].payload
        later = dt.date.fromisoformat(last["date"]) + dt.timedelta(days=1)
        record(store, pid, {**{k: last[k] for k in ("kind", "unit", "loq") if k in last},
                            "date": later.isoformat(), "value": 1.2}, USER)
        events = store.events(pid)
        assert [e.kind for e in events[-2:]] == ["correction", "observation"]
        whole = fold(events)
        assert any(v.corrected for v in whole.records)
        for cut in range(1, len(events) + 1):
            assert extend(fold(events[:cut]), events[cut:]) == whole, cut
    finally:
        store.close()


def test_a_record_built_by_its_class_is_recorded_as_its_case_file_form_is(tmp_path: Path) -> None:
    """record_many takes a record its class built (the demo's) as it takes the record's case-file form: the same
    events, payloads, dedup keys and messages in two stores; both are dated and checked against the patient
    alike (a date the study cannot have, a record before enrolment, are refused either way)."""
    from workflow_helpers import TG_RESPONSE, tg_series

    from trialflow.engine import init_store
    from trialflow.engine._records import stored_record

    items = [("P-001", r) for r in tg_series(DAY0, TG_RESPONSE[:3])]
    written, events = [], []
    for name, given in (("forms.db", items), ("records.db", [(p, stored_record(d)) for p, d in items])):
        store, _ = init_store(str(tmp_path / name), None, "investigator.dr-smit")
        try:
            enrol_started(store, "P-001")
            written.append([w.message for w in record_many(store, given, USER)])
            events.append([(e.seq, e.kind, e.effective_date, e.payload) for e in store.events("P-001")])
            assert events[-1][-1][3] == items[-1][1]
            for bad, why in (({"kind": "tgab", "date": "1985-01-01", "result": "negative"}, "must lie between"),
                             ({"kind": "tgab", "date": "2025-01-01", "result": "negative"}, "before")):
                with pytest.raises(Refused, match=why):
                    record_many(store, [("P-001", bad if name == "forms.db" else stored_record(bad))], USER)
        finally:
            store.close()
    assert written[0] == written[1] == ["P-001: 6 recorded"]
    assert events[0] == events[1]


def _dump_script() -> Any:
    """scripts/dump_store.py, the canonical dump that compares two builds of a store."""
    import importlib.util

    path = Path(__file__).parent.parent / "scripts" / "dump_store.py"
    spec = importlib.util.spec_from_file_location("dump_store", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_in_bulk_writes_the_store_the_one_patient_path_writes(db_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's bulk batches (one transaction per 1000 patients, the shortcuts of the bulk path) write the
    same patients, events, projections, visits and work items as the same cohort written one command per
    transaction (Transaction.append: every event inserted on its own, every projection rewritten): every
    table's rows equal but for the write moments and the caches' row ids, and every chain intact."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from trialflow.engine import init_store

    dump = _dump_script()

    def built(url: str) -> dict[str, Any]:
        """The demo's 45 patients written into a new store at ``url``, dumped canonically, chains checked."""
        store, _ = init_store(url, None, "investigator.dr-smit")
        try:
            populate_demo(store, patients=45, seed=11)
            assert verify_chains(store).intact
            return dict(dump.canonical_tables(store, moments=False, cache_ids=False))
        finally:
            store.close()

    bulk = built(db_url)

    @contextmanager
    def one_by_one(self: Store, user: str) -> Any:  # no batch: each command writes in its own transaction
        yield SimpleNamespace(preload=lambda ids: None)

    monkeypatch.setattr(Store, "batch", one_by_one)
    single = built(f"sqlite:///{tmp_path / 'one-by-one.db'}")
    assert bulk.keys() == single.keys()
    for table in bulk:
        if table != "alembic_version":
            assert bulk[table] == single[table], table


def test_rows_read_through_the_driver_are_what_sqlalchemy_reads(store: Store) -> None:
    """select_rows (the bulk path's reads) gives every column of the event, patient, visit and work-item tables
    as a plain SQLAlchemy select gives it: the same values of the same types (dates, aware moments, flags,
    floats such as a dose on PostgreSQL, NULLs), on a demo cohort at every stage."""
    from sqlalchemy import select
    from sqlmodel import Session

    from trialflow.engine._driver_rows import select_rows
    from trialflow.engine._tables import EventRow, PatientRow, VisitRow, WorkItemRow

    populate_demo(store)
    with Session(store.engine) as s:
        ids = sorted(s.execute(select(PatientRow.__table__.c.id)).scalars())  # type: ignore[attr-defined]
        for row_type, key in ((EventRow, "patient_id"), (PatientRow, "id"), (VisitRow, "patient_id"),
                              (WorkItemRow, "patient_id")):
            table = row_type.__table__  # type: ignore[attr-defined]
            names = [c.name for c in table.columns]
            ours = select_rows(s, table, names, key, ids, order_by=("id",))
            theirs = [tuple(r) for r in s.execute(select(*table.columns).where(table.c[key].in_(ids))
                                                  .order_by(table.c.id))]
            assert ours and ours == theirs, table.name
            assert [[type(v) for v in r] for r in ours] == [[type(v) for v in r] for r in theirs], table.name


def test_a_damaged_stored_payload_is_named_by_its_event_not_merged_with_its_neighbour() -> None:
    """The bulk read decodes a chunk's payloads as one JSON array; texts that are not one object each (a damaged
    store) are decoded one by one, so the error names the event, and two damaged halves that would join into
    valid JSON are not read as one payload."""
    import datetime as _dt

    from trialflow.engine._state import events_from_tuples

    at = _dt.datetime(2026, 1, 5, 9, 0, tzinfo=_dt.UTC)

    def row(event_id: int, payload: Any) -> tuple[Any, ...]:
        return (event_id, "P-001", event_id, "observation", _dt.date(2026, 1, 5), at, "anna", None, payload, None)

    good = '{"_v":1,"date":"2026-01-05","kind":"tg","loq":0.2,"unit":"ug/L","value":12.0}'
    assert [e.payload["value"] for e in events_from_tuples([row(1, good), row(2, good)])] == [12.0, 12.0]
    for damaged in (['{"a":1},{"b":2', '"c":3}'], ["", good], [good, "[1, 2]"], [good, '{"a":']):
        with pytest.raises(ValueError, match=r"event [12]: its stored payload is not"):
            events_from_tuples([row(1, damaged[0]), row(2, damaged[1])])


def test_a_bulk_transaction_on_postgresql_runs_without_jit_and_leaves_the_setting_as_it_was(
        store: Store, db_url: str) -> None:
    """On a store the server has not analysed yet, the bulk reads' row estimates passed jit_above_cost and each
    search spent more time being compiled than run: a bulk transaction turns JIT off for itself alone."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's JIT")
    from sqlalchemy import text

    def setting(tx: Any) -> str:
        return str(tx.session.execute(text("SHOW jit")).scalar_one())

    before = store.write(USER, setting)
    assert store.write_bulk(USER, setting) == "off"
    assert store.write(USER, setting) == before


def _lab_rows_on_free_days(store: Store, seed: int) -> str:
    """A lab CSV of Tg and TgAb results for every treated patient of ``store``, one to four per patient on
    random days after its day 0 (and before it left the study) that hold no record of the kind: some before
    a visit's first record (which it then becomes), some after it, some in windows no record had reached,
    some between windows."""
    import random

    rng, lines = random.Random(seed), ["patient,kind,date,value,unit,loq,result"]
    today = dt.date.today()
    for pid in store.patient_ids():
        state = store.state(pid)
        if state is None or state.day0 is None or state.day0 >= today - dt.timedelta(days=2):
            continue
        end = state.stints[-1].entered if store.protocol(state.protocol_hash)[0].phase(state.phase).terminal else today
        for kind in rng.sample(["tg", "tgab"], rng.randint(1, 2)):
            taken = {v.record.date for v in state.records if v.record.kind == kind}
            days = (state.day0 + dt.timedelta(days=k) for k in range(1, (end - state.day0).days))
            free = [d for d in days if d not in taken]
            for d in rng.sample(free, min(len(free), rng.randint(1, 2))):
                lines.append(f"{pid},tg,{d},{round(rng.uniform(0.5, 80), 2)},ug/L,0.2," if kind == "tg" else
                             f"{pid},tgab,{d},,,,{rng.choice(['negative', 'positive'])}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [3, 17])
def test_an_import_into_a_cohort_at_every_stage_leaves_the_visits_a_rebuild_writes(db_url: str, tmp_path: Path,
                                                                                 seed: int) -> None:
    """The import writes the visits of a patient it gives observations only without reading them back: it updates
    in place the visits that take a new record as the first of its kind in the window. On a demo cohort at every
    stage (decided, withdrawn, off study, a corrected and a skipped visit among them), with records on random
    free days, the visits, work items and patient rows it leaves are what a rebuild from the events writes."""
    from trialflow.engine import correct, init_store, skip_visit

    store, _ = init_store(db_url, None, "investigator.dr-smit")
    try:
        populate_demo(store, patients=60, seed=seed)
        treated = [p for p in store.patient_ids() if (s := store.state(p)) is not None and s.day0 is not None]
        tg = next(e for e in store.events(treated[0]) if e.kind == "observation" and e.payload["kind"] == "tg")
        correct(store, treated[0], tg.id, {"value": 42.5}, "transcription error", USER)
        skipped = 0
        for pid, rows in _visit_rows(db_url).items():  # the first missed visit that may be skipped (stored rows
            for r in (r for r in rows if r[7] == "missed" and not skipped):  # are placed as of date.max)
                try:
                    skip_visit(store, pid, r[1], "patient on holiday", dt.date.today(), USER)
                    skipped += 1
                except Refused:
                    pass
        assert skipped == 1
        f = tmp_path / "lab.csv"
        f.write_text(_lab_rows_on_free_days(store, seed), encoding="utf-8")
        before = _visit_rows(db_url)
        written = import_file(store, f, USER)
        assert sum(len(w.events) for w in written) == len(f.read_text(encoding="utf-8").splitlines()) - 1
        after = _visit_rows(db_url), _projections(db_url)
        for pid, rows in after[0].items():
            assert [r[0] for r in rows] == [r[0] for r in before[pid]]  # updated where they stand
        assert any(a != b for pid, rows in after[0].items() for a, b in zip(rows, before[pid], strict=True))
        rebuild_projections(store)
        rebuilt = _visit_rows(db_url)
        assert {p: [r[1:] for r in rows] for p, rows in rebuilt.items()} == \
            {p: [r[1:] for r in rows] for p, rows in after[0].items()}
        assert _projections(db_url) == after[1]
    finally:
        store.close()


def test_an_import_rewrites_a_patients_visits_whose_stored_rows_are_not_one_per_visit(started: Store, db_url: str,
                                                                                   tmp_path: Path) -> None:
    """A patient whose visit rows are not one per visit (a row lost) has them written again as the placement
    says, not updated by position."""
    from sqlalchemy import text

    from trialflow.engine._db import database_url, make_engine

    full = _visit_rows(db_url)
    engine = make_engine(database_url(db_url))
    try:
        with engine.begin() as c:
            c.execute(text("DELETE FROM visit_state WHERE id = :i"), {"i": full[PATIENTS[0]][3][0]})
    finally:
        engine.dispose()
    f = tmp_path / "lab.csv"
    _lab_csv(f, PATIENTS[:2], weeks=1)
    import_file(started, f, USER)
    after = _visit_rows(db_url)
    assert len(after[PATIENTS[0]]) == len(full[PATIENTS[0]])
    rebuild_projections(started)
    assert {p: [r[1:] for r in rows] for p, rows in _visit_rows(db_url).items()} == \
        {p: [r[1:] for r in rows] for p, rows in after.items()}


def test_a_bulk_write_first_analyses_the_tables_a_bulk_load_left_without_statistics(db_url: str) -> None:
    """PostgreSQL's planner scans a table whole for a search of a thousand patients' rows when the table has no
    statistics (a bulk load on a server without autovacuum): a bulk write first analyses the searched tables that
    hold rows and were never analysed, or have changed by more than their size since; then not again until they
    have. SQLite needs none."""
    from sqlalchemy import text

    from trialflow.engine import init_store
    from trialflow.engine._db import refresh_statistics

    store, _ = init_store(db_url, None, "investigator.dr-smit")
    try:
        if store.engine.dialect.name != "postgresql":
            assert refresh_statistics(store.engine) == []
            return
        assert refresh_statistics(store.engine) == []  # empty tables: nothing to analyse
        populate_demo(store, patients=60, seed=5)  # one batch: its tables were empty when it started
        with store.engine.connect() as c:
            never = c.execute(text("SELECT count(*) FROM pg_class WHERE relname = 'visit_state' AND reltuples < 0 "
                                   "AND relnamespace = current_schema()::regnamespace")).scalar_one()
        assert never == 1
        assert refresh_statistics(store.engine) == ["event", "patient", "visit_state", "work_item"]
        with store.engine.connect() as c:
            tuples = dict(c.execute(text(
                "SELECT relname, reltuples FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                "AND relname IN ('event', 'visit_state')")).all())
        assert tuples["event"] > 60 and tuples["visit_state"] > 60
        assert refresh_statistics(store.engine) == []  # analysed: not again until the tables have about doubled
    finally:
        store.close()


def test_a_fold_builds_a_record_only_when_its_values_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folded state knows each record's kind and date from its payload and builds the record itself when
    something first reads its values, once: placing the visits builds none, reading the CTs builds the CTs.
    The state equals one whose records were all built (the fold of the same events), and stays immutable."""
    import pickle

    from trialflow.engine import _state as state_module
    from trialflow.engine import init_store
    from trialflow.engine._schedule import placed
    from trialflow.engine._state import fold

    store, _ = init_store(str(tmp_path / "s.db"), None, "investigator.dr-smit")
    try:
        populate_demo(store, patients=12, seed=4)
        pid = max(store.patient_ids(), key=lambda p: len(store.events(p)))
        events = store.events(pid)
        built: list[str] = []
        stored_record = state_module._stored_record

        def counting(payload: Any) -> Any:
            built.append(payload["kind"])
            return stored_record(payload)

        monkeypatch.setattr(state_module, "_stored_record", counting)
        lazy = fold(events)
        protocol = store.protocol(lazy.protocol_hash)[0]
        visits = placed(protocol, lazy, dt.date.max)
        copied = pickle.loads(pickle.dumps(lazy.records))
        assert built == [] and any(v.records for v, _ in visits) and "RecordedValue(event_id=" in repr(copied[0])
        assert built == []  # placing the visits, pickling and repr build no record
        cts = lazy.of_kind("ct")
        assert cts and built == ["ct"] * len(cts)
        assert [r.date for r in cts] == sorted(v.date for v in lazy.records if v.kind == "ct")
        lazy.of_kind("ct")
        assert built == ["ct"] * len(cts)  # once
        monkeypatch.setattr(state_module, "_stored_record", stored_record)
        whole = fold(events)
        _ = [v.record for v in whole.records]  # every record built
        assert lazy == whole and all(v.kind == v.record.kind and v.date == v.record.date for v in lazy.records)
        assert copied == whole.records and {hash(v) for v in copied} == {hash(v) for v in whole.records}
        with pytest.raises(AttributeError):
            lazy.records[0].date = dt.date(2020, 1, 1)  # type: ignore[misc]
    finally:
        store.close()
