"""Stores on both backends and fixture patients for the workflow tests (issue 4).

The ``db_url`` fixture (registered in ``conftest.py``) gives each test an empty store location on
SQLite (a file under ``tmp_path``) and on PostgreSQL (a fresh schema in the database named by
``TRIALFLOW_TEST_PG_URL``, dropped afterwards), so tests never see each other's rows and can run
while other sessions use the same server.

The patients follow the bundled protocol with real-looking dates: enrolled 2025-12-29, day 0 (first
Sorafenib dose) 2026-01-12, the 6-month CT and scintigraphy on day 182 (2026-07-13), Tg at weeks
0..28, and the decision on day 203 (2026-08-03), after the last Tg window (day 196 ± 3) has closed.
Tg series are DOMAIN.md's worked examples.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from trialflow.engine import Store, enroll, init_store, record_many, start
from trialflow.protocol import load_bundled_protocol

PG_ENV = "TRIALFLOW_TEST_PG_URL"
USER = "coordinator.anna"
INVESTIGATOR = "investigator.dr-smit"

ENROLLED = dt.date(2025, 12, 29)
DAY0 = dt.date(2026, 1, 12)
MONTH6 = DAY0 + dt.timedelta(days=182)  # 2026-07-13
DECISION_DAY = DAY0 + dt.timedelta(days=203)  # 2026-08-03

# DOMAIN.md worked examples, weeks 0, 4, ..., 28 (ug/L).
TG_RESPONSE = (120, 95, 70, 61, 48, 42, 30, 27)  # b = -0.053503/week, p = 2.2e-7
TG_STABLE = (45, 52, 41, 50, 47, 55, 43, 49)  # b = +0.001385/week, p = 0.745
TG_PROGRESSION = (10.0, 12.1, 15.5, 18.0, 25.2, 31.0, 38.9, 50.3)  # b = +0.058223/week, p = 1.5e-8

# Baseline target lesions (RECIST 1.0): two lung metastases and a cervical node, sum 54 mm.
BASELINE_MM = (22.0, 14.0, 18.0)
PR_MM = (15.0, 8.0, 11.0)  # 34 mm, -37 %
SD_MM = (21.0, 14.0, 17.0)  # 52 mm, -3.7 %
PD_MM = (27.0, 18.0, 21.0)  # 66 mm, +22.2 % over the nadir 54 mm

_PROTOCOL = load_bundled_protocol()
ELIGIBLE: dict[str, str] = {c.id: "yes" for c in _PROTOCOL.eligibility.inclusion}
ELIGIBLE.update({c.id: "no" for c in _PROTOCOL.eligibility.exclusion})


# -- backends -------------------------------------------------------------------------------------
def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _pg_admin_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1].split("?", 1)[0]


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def pg_available() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    url = pg_base_url()
    if url is None:
        return f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
    try:
        import psycopg
    except ModuleNotFoundError:
        return "psycopg is not installed (pip install 'trialflow[postgres]')"
    try:
        with psycopg.connect(_pg_admin_dsn(url), connect_timeout=3):
            pass
    except psycopg.Error as err:
        return f"no PostgreSQL server answers at {url}: {str(err).strip().splitlines()[0]}"
    return None


def new_db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty store location on ``backend``; a PostgreSQL schema is dropped when the test ends."""
    if backend == "sqlite":
        yield str(tmp_path / "trial.db")
        return
    why = pg_available()
    if why:
        pytest.skip(why)
    import psycopg

    base = pg_base_url()
    assert base is not None
    schema = f"tf_test_{uuid.uuid4().hex[:12]}"
    dsn = _pg_admin_dsn(base)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(base, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# -- store contents -------------------------------------------------------------------------------
def snapshot(db_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of the event, patient and protocol_version tables, in key order."""
    from sqlalchemy import text

    from trialflow.engine._db import database_url, make_engine

    engine = make_engine(database_url(db_url))
    try:
        with engine.connect() as conn:
            events = [tuple(r) for r in conn.execute(text("SELECT * FROM event ORDER BY id"))]
            patients = [tuple(r) for r in conn.execute(text("SELECT * FROM patient ORDER BY id"))]
            versions = [tuple(r) for r in conn.execute(text("SELECT * FROM protocol_version ORDER BY id"))]
    finally:
        engine.dispose()
    return events, patients, versions


def event_count(store: Store, patient: str | None = None) -> int:
    if patient is None:
        return sum(len(v) for v in store.events_of().values())
    return len(store.events(patient))


# -- fixture patients -----------------------------------------------------------------------------
def iso(d: dt.date) -> str:
    return d.isoformat()


def ct(
    date: dt.date, sizes: Sequence[float], *, new_lesions: Sequence[str] = (), non_target: str = "present"
) -> dict[str, Any]:
    organs = ("lung", "lung", "lymph_node")
    return {
        "kind": "ct",
        "date": iso(date),
        "slice_thickness_mm": 5,
        "target": [
            {
                "id": f"T{i + 1}",
                "organ": organs[i],
                "diameter_mm": s,
                **({"nodal": True} if organs[i] == "lymph_node" else {}),
            }
            for i, s in enumerate(sizes)
        ],
        "non_target": [{"id": "N1", "organ": "bone", "status": non_target}],
        "new_lesions": list(new_lesions),
    }


def rai_scan(date: dt.date, avid: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "kind": "rai_scan",
        "date": iso(date),
        "modalities": ["planar", "spect"],
        "avid_lesions": [{"id": a, "modality": "spect"} for a in avid],
    }


def tg(date: dt.date, value: float) -> dict[str, Any]:
    return {"kind": "tg", "date": iso(date), "value": value, "unit": "ug/L", "loq": 0.2}


def tg_series(day0: dt.date, values: Sequence[float], *, tgab: str = "negative") -> list[dict[str, Any]]:
    """Tg (with TgAb) at weeks 0, 4, ... on the target days."""
    out: list[dict[str, Any]] = []
    for i, v in enumerate(values):
        d = day0 + dt.timedelta(weeks=4 * i)
        out += [tg(d, v), {"kind": "tgab", "date": iso(d), "result": tgab}]
    return out


def new_store(db_url: str) -> Store:
    store, _ = init_store(db_url, None, INVESTIGATOR)
    return store


def enrol_started(
    store: Store,
    pid: str,
    *,
    enrolled: dt.date = ENROLLED,
    day0: dt.date | None = DAY0,
    baseline_avid: Sequence[str] = (),
) -> None:
    """Enrolled, baseline scintigraphy and CT done (days 7 and 10), started on ``day0`` (if given)."""
    enroll(store, pid, enrolled, ELIGIBLE, USER)
    record_many(
        store,
        [
            (pid, rai_scan(enrolled + dt.timedelta(days=7), baseline_avid)),
            (pid, ct(enrolled + dt.timedelta(days=10), BASELINE_MM)),
        ],
        USER,
    )
    if day0 is not None:
        start(store, pid, day0, USER)


def six_months(
    store: Store,
    pid: str,
    *,
    tg_values: Sequence[float] = TG_RESPONSE,
    tgab: str = "negative",
    month6_mm: Sequence[float] | None = PR_MM,
    new_lesions: Sequence[str] = (),
    avid: Sequence[str] = (),
    day0: dt.date = DAY0,
) -> None:
    """The treatment phase's observations: Tg weeks 0-28, the 6-month CT (unless None) and scintigraphy."""
    items = [(pid, r) for r in tg_series(day0, tg_values, tgab=tgab)]
    month6 = day0 + dt.timedelta(days=182)
    if month6_mm is not None:
        items.append((pid, ct(month6, month6_mm, new_lesions=new_lesions)))
    items.append((pid, rai_scan(month6, avid)))
    record_many(store, items, USER)


def patient_at_decision(store: Store, pid: str, **course: Any) -> None:
    enrol_started(store, pid)
    six_months(store, pid, **course)
