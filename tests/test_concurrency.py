"""Real processes writing to one store at once, on SQLite (WAL) and PostgreSQL.

Coordinators recording for the same patient at the same moment lose nothing and duplicate nothing;
a decision is applied once; a process killed in the middle of an import leaves none of it behind.
Children are spawned (fresh interpreters, their own connections) and meet at a barrier.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import concurrency_workers as workers
import pytest
from workflow_helpers import (
    DAY0,
    DECISION_DAY,
    ELIGIBLE,
    ENROLLED,
    PR_MM,
    TG_RESPONSE,
    USER,
    enrol_started,
    patient_at_decision,
    snapshot,
    tg,
)

from trialflow.engine import Store, enroll, import_file

pytestmark = pytest.mark.slow
CTX = mp.get_context("spawn")
TIMEOUT = 60


def _run_all(target: Any, args_per_proc: list[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    barrier = CTX.Barrier(len(args_per_proc))
    out = CTX.Queue()
    procs = [CTX.Process(target=target, args=(*a, barrier, out)) for a in args_per_proc]
    for p in procs:
        p.start()
    results = [out.get(timeout=TIMEOUT) for _ in procs]
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors
    return results


def _check_seq(store: Store, patient: str) -> None:
    seqs = [e.seq for e in store.events(patient)]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_same_observation_from_four_coordinators_is_stored_once(store: Store, db_url: str) -> None:
    enrol_started(store, "P-001")
    n = len(store.events("P-001"))
    same = [("P-001", tg(DAY0 + dt.timedelta(days=28), 95.0))]
    results = _run_all(workers.record_worker, [(db_url, same, f"coordinator.{i}") for i in range(4)])
    assert sorted(r[1] for r in results) == [0, 0, 0, 1]
    evs = store.events("P-001")
    assert len(evs) == n + 1 and evs[-1].payload["value"] == 95.0
    _check_seq(store, "P-001")


def test_different_observations_from_four_coordinators_are_all_stored(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite: a short lock wait, so that writers meeting at the lock take the retry path as PostgreSQL's
    # serialization failures do (with the default 30 s wait they simply queue and never retry)
    monkeypatch.setenv("TRIALFLOW_SQLITE_BUSY_TIMEOUT_MS", "2")
    enrol_started(store, "P-001")
    enrol_started(store, "P-002")
    n = {p: len(store.events(p)) for p in ("P-001", "P-002")}
    batches = []
    for i in range(4):  # each coordinator: 6 Tg values for P-001 and 2 for P-002, one transaction per record
        # on different days: two values for one sample on one day would be a conflict, refused (see test_workflow_e2e)
        items = [("P-001", tg(DAY0 + dt.timedelta(days=28 * k + i), 100.0 + i + k / 10)) for k in range(6)]
        items += [("P-002", tg(DAY0 + dt.timedelta(days=28 * k + i), 50.0 + i + k / 10)) for k in range(2)]
        batches.append(items)
    barrier = CTX.Barrier(4)
    out = CTX.Queue()
    procs = [
        CTX.Process(target=_one_by_one, args=(db_url, b, f"coordinator.{i}", barrier, out))
        for i, b in enumerate(batches)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=TIMEOUT) for _ in procs]
    for p in procs:
        p.join(TIMEOUT)
    assert all(r[:2] == ("ok", 8) for r in results), results
    assert sum(r[2] for r in results) > 0, "no writer ever retried: the test did not make them contend"
    for pid, extra in (("P-001", 24), ("P-002", 8)):
        evs = store.events(pid)
        assert len(evs) == n[pid] + extra
        values = sorted(
            e.payload["value"] for e in evs if e.kind == "observation" and e.payload["kind"] == "tg"
        )
        assert len(values) == len(set(values)) == extra
        _check_seq(store, pid)


def _one_by_one(db: str, items: list[tuple[str, dict[str, Any]]], user: str, barrier: Any, out: Any) -> None:
    """Many small transactions interleaving with the other processes' (spawn imports this module)."""
    from trialflow.engine import Store, record

    store = Store.open(db)
    barrier.wait()
    try:
        out.put(("ok", sum(len(record(store, p, rec, user).events) for p, rec in items), store.retries))
    except Exception as err:
        out.put(("error", f"{type(err).__name__}: {err}"))
    finally:
        store.close()


def test_two_investigators_deciding_at_once_apply_one_decision(store: Store, db_url: str) -> None:
    patient_at_decision(store, "P-001", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    results = _run_all(
        workers.decide_worker, [(db_url, "P-001", DECISION_DAY, f"investigator.{i}") for i in range(3)]
    )
    assert sorted(r[0] for r in results) == ["ok", "refused", "refused"]
    assert all("no decision is pending" in r[1] for r in results if r[0] == "refused")
    evs = store.events("P-001")
    assert sum(e.kind == "decision" for e in evs) == 1
    assert store.state("P-001").phase == "continued_sorafenib"  # type: ignore[union-attr]
    _check_seq(store, "P-001")


# A CLI process that marks when it starts its command and when it ends, after waiting for all its peers
# to be ready (a barrier of files), so the test can assert the processes really ran at the same time.
_CLI_AT_BARRIER = """
import pathlib, sys, time
d, me, n = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
from trialflow.cli import main
(d / f"ready-{me}").touch()
while len(list(d.glob("ready-*"))) < n:
    time.sleep(0.005)
(d / f"start-{me}").write_text(repr(time.time()))
sys.argv = ["trialflow", *sys.argv[4:]]
try:
    main()
finally:
    (d / f"end-{me}").write_text(repr(time.time()))
"""


def test_cli_record_from_two_processes_at_once(store: Store, db_url: str, tmp_path: Path) -> None:
    enrol_started(store, "P-001")
    n = len(store.events("P-001"))
    env = {**os.environ, "TRIALFLOW_DB": db_url}
    marks = tmp_path / "marks"
    marks.mkdir()
    cmd = [
        sys.executable,
        "-c",
        _CLI_AT_BARRIER,
        str(marks),
        "record",
        "P-001",
        "tg",
        "--date",
        "2026-02-09",
        "--value",
        "95",
        "--user",
    ]
    procs = [
        subprocess.Popen(
            [*cmd[:4], str(i), "3", *cmd[4:], f"coordinator.{i}"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    starts = [float((marks / f"start-{i}").read_text()) for i in range(3)]
    ends = [float((marks / f"end-{i}").read_text()) for i in range(3)]
    assert max(starts) < min(ends), "the three commands did not overlap"
    assert sorted("1 recorded" in o for o, _ in outs) == [False, False, True]
    assert len(store.events("P-001")) == n + 1


def _big_lab_csv(path: Path, patients: list[str]) -> int:
    lines = ["patient,kind,date,value,unit,loq,result"]
    for i, pid in enumerate(patients):
        for w in range(8):
            d = (DAY0 + dt.timedelta(weeks=4 * w)).isoformat()
            lines.append(f"{pid},tg,{d},{round(120 * 0.95**w + i / 100, 2)},ug/L,0.2,")
            lines.append(f"{pid},tgab,{d},,,,negative")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


#: an import's chunk size in the child processes: as shipped (one chunk), and small enough for the forked path
#: (chunks worked out in forked children while the parent writes, ``engine/_forked.py``)
CHUNKS = pytest.mark.parametrize("chunk", [None, 7], ids=["one-chunk", "forked-chunks"])


@CHUNKS
def test_four_bulk_imports_of_the_same_file_at_once_store_it_once(store: Store, db_url: str, tmp_path: Path,
                                                                  chunk: int | None) -> None:
    """Four processes import one lab file at the same moment (one bulk transaction each): every row is
    stored exactly once, each patient's events stay numbered 1..n and every hash chain holds."""
    from trialflow.engine import start, verify_chains

    patients = [f"P-{i:03d}" for i in range(1, 21)]
    for pid in patients:
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
        start(store, pid, DAY0, USER)
    f = tmp_path / "lab.csv"
    rows = _big_lab_csv(f, patients)
    before = len(snapshot(db_url)[0])
    results = _run_all(workers.import_worker, [(db_url, str(f), USER, chunk)] * 4)
    assert sorted(r[1] for r in results) == [0, 0, 0, rows]  # one import wrote the file, three found it there
    assert len(snapshot(db_url)[0]) == before + rows
    for pid in patients:
        _check_seq(store, pid)
    assert verify_chains(store).intact


@CHUNKS
def test_bulk_imports_of_different_files_for_the_same_patients_lose_nothing(
    store: Store, db_url: str, tmp_path: Path, chunk: int | None
) -> None:
    """Three processes import three different lab files about the same patients at once: all rows of all
    three are stored (the losers of each race are run again on fresh state), chains intact."""
    from trialflow.engine import start, verify_chains

    patients = [f"P-{i:03d}" for i in range(1, 16)]
    for pid in patients:
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
        start(store, pid, DAY0, USER)
    files, total = [], 0
    for k in range(3):
        f = tmp_path / f"lab-{k}.csv"
        lines = ["patient,kind,date,value,unit,loq,result"]
        for i, pid in enumerate(patients):
            for w in range(4):
                d = (DAY0 + dt.timedelta(weeks=4 * w, days=k + 1)).isoformat()
                lines.append(f"{pid},tg,{d},{round(50 + k + w + i / 10, 2)},ug/L,0.2,")
        f.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(str(f))
        total += len(lines) - 1
    before = len(snapshot(db_url)[0])
    results = _run_all(workers.import_worker, [(db_url, f, USER, chunk) for f in files])
    assert sum(r[1] for r in results) == total
    assert len(snapshot(db_url)[0]) == before + total
    for pid in patients:
        _check_seq(store, pid)
        assert len(store.state(pid).of_kind("tg")) == 12  # type: ignore[union-attr]
    assert verify_chains(store).intact


@CHUNKS
def test_killed_import_leaves_nothing_half_written(store: Store, db_url: str, tmp_path: Path,
                                                   chunk: int | None) -> None:
    patients = [f"P-{i:03d}" for i in range(1, 81)]
    for pid in patients:
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
    from trialflow.engine import start

    for pid in patients:
        start(store, pid, DAY0, USER)
    f = tmp_path / "lab-export.csv"
    rows = _big_lab_csv(f, patients)
    before = snapshot(db_url)

    flushed = CTX.Event()
    child = CTX.Process(
        target=workers.import_until_killed,
        args=(db_url, str(f), len(patients) // 2 if chunk is None else chunk, chunk, flushed)
    )
    child.start()
    assert flushed.wait(TIMEOUT), "the import never reached the middle"
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGKILL

    assert snapshot(db_url) == before  # nothing of the import, everything committed before it
    # The store is usable at once: the same import now goes through whole.
    written = import_file(store, f, USER)
    assert sum(len(w.events) for w in written) == rows
    for pid in patients[:3] + patients[-3:]:
        assert len(store.state(pid).of_kind("tg")) == 8  # type: ignore[union-attr]


@CHUNKS
def test_an_import_killed_at_random_points_leaves_all_or_nothing(store: Store, db_url: str, tmp_path: Path,
                                                                 chunk: int | None) -> None:
    """SIGKILL the `trialflow import` process at random moments, repeatedly (fixed seed, bounded rounds):
    every time the store holds either none of the file or all of it, and every hash chain is intact."""
    import random
    import time

    from trialflow.engine import start, verify_chains

    patients = [f"P-{i:03d}" for i in range(1, 31)]
    for pid in patients:
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
        start(store, pid, DAY0, USER)
    f = tmp_path / "lab-export.csv"
    rows = _big_lab_csv(f, patients)
    before = snapshot(db_url)
    n_before = len(before[0])
    rng = random.Random(20091)
    seen = []
    for _ in range(5):
        prelude = f"import trialflow.engine._workflow as w; w.IMPORT_CHUNK = {chunk}; " if chunk else ""
        child = subprocess.Popen([sys.executable, "-c", prelude + "from trialflow.cli import main; main()", "import",
                                  str(f), "--db", db_url, "--user", USER],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 3.0))
        child.send_signal(signal.SIGKILL)
        child.wait(TIMEOUT)
        events = snapshot(db_url)[0]
        assert len(events) in (n_before, n_before + rows), (len(events), n_before, rows)
        assert events[:n_before] == before[0]
        assert verify_chains(store).intact
        seen.append("all" if len(events) > n_before else "none")
    # whatever the kills left, the import then completes exactly once
    import_file(store, f, USER)
    assert len(snapshot(db_url)[0]) == n_before + rows, seen
