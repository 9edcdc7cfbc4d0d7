"""``trialflow next`` over 10,000 and 100,000 patients, and import throughput, on SQLite and PostgreSQL.

The cohort is the demo's 30 patients (built through the workflow functions, dates relative to today,
so every stage of the study is present) replicated under new study ids with SQLAlchemy Core bulk
inserts of their event and patient rows. Each figure is set against a naive baseline measured in the
same run:

- worklist: the library's ``next_actions`` (one indexed query over the work items the store keeps
  beside each patient's events) vs. replaying every patient (``Store.state`` per patient id, then
  ``patient_actions``), timed on a sample and scaled to the cohort;
- import: ``import_file`` of a laboratory CSV (one transaction) vs. ``record`` once per row.

Run:  python benchmarks/bench_worklist.py [--sizes 10000 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
(``--pg`` defaults to $TRIALFLOW_TEST_PG_URL; PostgreSQL runs in a throw-away schema.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from trialflow.engine import (
    Store,
    enroll,
    import_file,
    init_store,
    next_actions,
    patient_actions,
    record,
    start,
)
from trialflow.engine._demo import build_demo
from trialflow.engine._tables import EventRow, PatientRow, WorkItemRow

ELIGIBLE: dict[str, str] = {}


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


@contextmanager
def backend(kind: str, pg: str | None, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp / f"bench-{uuid.uuid4().hex[:6]}.db")
        return
    import psycopg

    assert pg is not None
    dsn = "postgresql://" + pg.split("://", 1)[1].split("?", 1)[0]
    schema = f"tf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')


Seed = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def seed_rows(tmp: Path) -> Seed:
    """The demo cohort's patient, event and work-item rows (plain dicts)."""
    demo = build_demo(str(tmp / "seed-demo.db"))
    with demo.engine.connect() as c:
        patients = [dict(r._mapping) for r in c.execute(select(PatientRow.__table__))]  # type: ignore[attr-defined]
        events = [dict(r._mapping) for r in c.execute(select(EventRow.__table__))]  # type: ignore[attr-defined]
        items = [dict(r._mapping) for r in c.execute(select(WorkItemRow.__table__))]  # type: ignore[attr-defined]
    demo.close()
    return patients, events, items


def fill(url: str, n: int, seed: Seed) -> Store:
    """A store with ``n`` patients: the seed cohort replicated under new ids (Core bulk inserts)."""
    store, _ = init_store(url, None, "bench")
    patients, events, items = seed
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_patient.setdefault(e["patient_id"], []).append(e)
    items_of: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        items_of.setdefault(it["patient_id"], []).append(it)
    chunk_p: list[dict[str, Any]] = []
    chunk_e: list[dict[str, Any]] = []
    chunk_w: list[dict[str, Any]] = []
    for i in range(n):
        src = patients[i % len(patients)]
        new_id = f"B{i:06d}"
        chunk_p.append({**src, "id": new_id, "protocol_version_id": 1})
        for e in by_patient[src["id"]]:
            row = {k: v for k, v in e.items() if k not in ("id", "corrects_id")}
            row.update(patient_id=new_id, dedup_key=None)
            chunk_e.append(row)
        chunk_w += [{**{k: v for k, v in it.items() if k != "id"}, "patient_id": new_id}
                    for it in items_of.get(src["id"], [])]
        if len(chunk_p) >= 5000 or i == n - 1:
            with store.engine.begin() as c:
                c.execute(insert(PatientRow), chunk_p)
                c.execute(insert(EventRow), chunk_e)
                if chunk_w:
                    c.execute(insert(WorkItemRow), chunk_w)
            chunk_p, chunk_e, chunk_w = [], [], []
    return store


def naive_next(store: Store, sample: int) -> tuple[float, int]:
    """Seconds per patient and items for one-query-per-patient folding over ``sample`` patients."""
    ids = store.patient_ids()[:sample]
    today = dt.date.today()
    t = time.perf_counter()
    items = 0
    for pid in ids:
        st = store.state(pid)
        if st is None:
            continue
        cut = st.until(today)
        items += len(patient_actions(store.protocol(cut.protocol_hash)[0], cut, today))
    return (time.perf_counter() - t) / len(ids), items


def bench_next(url: str, n: int, seed: Any) -> None:
    t_fill, store = timed(lambda: fill(url, n, seed))
    fast, acts = timed(lambda: next_actions(store), repeat=2)
    per, _ = naive_next(store, min(n, 1000))
    naive = per * n
    print(
        f"  next over {n:>7,} patients: {fast * 1000:9.1f} ms ({len(acts):,} items)   naive per-patient "
        f"{naive * 1000:10.1f} ms (est. from 1,000)   ratio {naive / fast:6.1f}x   [fill {t_fill:.1f} s]",
        flush=True,
    )
    store.close()


def bench_import(url: str, tmp: Path, patients: int = 500) -> None:
    store, _ = init_store(url, None, "bench")
    global ELIGIBLE
    proto = store.protocol()[0]
    ELIGIBLE = {c.id: "yes" for c in proto.eligibility.inclusion} | {
        c.id: "no" for c in proto.eligibility.exclusion
    }
    day0 = dt.date(2026, 1, 12)
    ids = [f"L{i:05d}" for i in range(patients)]
    for pid in ids:
        enroll(store, pid, dt.date(2025, 12, 29), ELIGIBLE, "bench")
        start(store, pid, day0, "bench")
    lines = ["patient,kind,date,value,unit,loq,result"]
    naive_rows: list[tuple[str, dict[str, Any]]] = []
    for i, pid in enumerate(ids):
        for w in range(8):
            d = (day0 + dt.timedelta(weeks=4 * w)).isoformat()
            v = round(120 * 0.95**w + i / 1000, 3)
            lines += [f"{pid},tg,{d},{v},ug/L,0.2,", f"{pid},tgab,{d},,,,negative"]
            # the naive baseline records other samples (a day later: one value per sample and day)
            later = (day0 + dt.timedelta(weeks=4 * w, days=1)).isoformat()
            naive_rows.append((pid, {"kind": "tg", "date": later, "value": v, "unit": "ug/L", "loq": 0.2}))
    f = tmp / "lab.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = len(lines) - 1
    t_imp, _ = timed(lambda: import_file(store, f, "bench"))
    t_again, _ = timed(lambda: import_file(store, f, "bench"))
    sample = naive_rows[:400]
    t_naive, _ = timed(lambda: [record(store, p, r, "bench") for p, r in sample])
    fast, slow = rows / t_imp, len(sample) / t_naive
    print(
        f"  import {rows:,} lab rows ({patients} patients): {fast:9,.0f} rows/s   re-import (all skipped) "
        f"{rows / t_again:9,.0f} rows/s   naive record per row {slow:7,.0f} rows/s   "
        f"ratio {fast / slow:5.1f}x",
        flush=True,
    )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--pg", default=os.environ.get("TRIALFLOW_TEST_PG_URL"))
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seed = seed_rows(tmp)
        print(
            f"seed cohort: {len(seed[0])} demo patients, {len(seed[1])} events "
            f"({len(seed[1]) / len(seed[0]):.0f} per patient); today {dt.date.today()}"
        )
        for kind in args.backends:
            if kind == "postgres" and not args.pg:
                print("postgres: skipped (no --pg / TRIALFLOW_TEST_PG_URL)")
                continue
            print(f"{kind}:")
            for n in args.sizes:
                with backend(kind, args.pg, tmp) as url:
                    bench_next(url, n, seed)
            with backend(kind, args.pg, tmp) as url:
                bench_import(url, tmp)


if __name__ == "__main__":
    sys.exit(main())
