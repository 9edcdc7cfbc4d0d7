"""Alembic owns the store's tables (issue 10, item 16, and the store marker of item 11), on SQLite and PostgreSQL.

* A new store is created by the shipped migrations, and they agree with the models (autogenerate finds
  nothing to do), so a model change without a revision fails here.
* A store written by trialflow 0.1 (before Alembic; ``tests/legacy/v1_store.*.sql``, written by
  ``tests/legacy/make_v1_store.py`` on main at 66ced54) is recognised by its marker, refused for work
  until ``trialflow init`` upgrades it, and keeps every event.
* A store at a revision this code does not know (a newer trialflow) and a store with a renamed column are
  refused with a clear message, never a traceback; another application's database is refused before
  anything is written.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner
from workflow_helpers import BACKENDS, new_db_url

from trialflow.cli import app
from trialflow.engine import Store, StoreError, history, init_store, verify_chains
from trialflow.engine._schema import MIGRATIONS, _revisions, head_revision

LEGACY = Path(__file__).parent / "legacy"
runner = CliRunner()


def cli(*args: Any, code: int) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit)), out
    assert result.exit_code == code, out
    return result


@pytest.fixture(params=BACKENDS)
def any_db(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from new_db_url(request.param, tmp_path)


def _sql(db: str, *statements: str) -> None:
    from trialflow.engine import database_url

    engine = create_engine(database_url(db))
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def _load_v1(db: str) -> None:
    """A store exactly as trialflow 0.1 wrote it, from the committed dump."""
    if "://" not in db:
        con = sqlite3.connect(db)
        con.executescript((LEGACY / "v1_store.sqlite.sql").read_text(encoding="utf-8"))
        con.close()
        return
    import psycopg

    dsn = "postgresql://" + db.split("://", 1)[1]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((LEGACY / "v1_store.postgres.sql").read_text(encoding="utf-8"))  # type: ignore[arg-type]


def test_the_cheap_revision_reader_agrees_with_alembic_and_there_is_one_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == [head_revision()]
    assert _revisions()[1] == {r.revision for r in script.walk_revisions()}


def test_the_migrations_build_exactly_the_models(any_db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from trialflow.engine import database_url

    db = any_db
    init_store(db, None, "investigator.dr-smit")[0].close()
    engine = create_engine(database_url(db))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        marker = conn.execute(text("SELECT value FROM store_info WHERE key = 'application'")).scalar()
    engine.dispose()
    assert diff == [], f"the models and the migrations differ (write a revision): {diff}"
    assert version == head_revision() and marker == "trialflow"


def test_a_store_written_before_alembic_is_upgraded_by_init_and_keeps_everything(any_db: str) -> None:
    _load_v1(any_db)
    before = raw_rows(any_db)
    with pytest.raises(StoreError, match="older trialflow: run `trialflow init`"):
        Store.open(any_db)
    r = cli("status", "--db", any_db, code=1)
    assert "run `trialflow init` on it once" in r.stderr
    r = cli("init", "--db", any_db, code=0)
    assert "schema upgraded from 0.1 (before Alembic)" in r.stdout
    store = Store.open(any_db)
    try:
        entries = history(store, "P-001")
        assert [e.kind for e in entries].count("correction") == 1
        assert len(store.events("P-001")) == 7
        assert verify_chains(store).intact  # revision 0003 chained the events already there
    finally:
        store.close()
    after = raw_rows(any_db, columns_of=before)  # the 0.1 columns; later revisions add (nullable) columns
    assert after["event"] == before["event"] and after["protocol_version"] == before["protocol_version"]
    # the patient row is a cache of the events: revision 0004 has init recompute it (next_due as the
    # worklist reads it now, updated_at), and every other column stays as it was
    cached = [before["patient:columns"].index(c) for c in ("next_due", "updated_at")]
    assert [tuple(v for i, v in enumerate(r) if i not in cached) for r in after["patient"]] == \
        [tuple(v for i, v in enumerate(r) if i not in cached) for r in before["patient"]]
    cli("init", "--db", any_db, code=0)  # a second init finds it current


def test_a_store_from_a_newer_trialflow_is_refused(any_db: str) -> None:
    init_store(any_db, None, "investigator.dr-smit")[0].close()
    _sql(any_db, "UPDATE alembic_version SET version_num = '9999'")
    before = snapshot_or_none(any_db)
    for create in (False, True):
        with pytest.raises(StoreError, match=r"written by a newer trialflow \(schema revision 9999"):
            Store.open(any_db, create=create)
    r = cli("init", "--db", any_db, code=1)
    assert "upgrade trialflow" in r.stderr
    cli("next", "--db", any_db, code=1)
    assert snapshot_or_none(any_db) == before


def raw_rows(db: str, columns_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every row of the 0.1 tables, read with plain SQL (the store API refuses a store it has to upgrade).

    ``columns_of``: an earlier answer whose columns only are read (the 0.1 ones, when later revisions added some).
    """
    from trialflow.engine import database_url

    engine = create_engine(database_url(db))
    rows: dict[str, Any] = {}
    with engine.connect() as conn:
        for t in ("event", "patient", "protocol_version"):
            cols = ", ".join(f'"{c}"' for c in columns_of[f"{t}:columns"]) if columns_of else "*"
            result = conn.execute(text(f"SELECT {cols} FROM {t} ORDER BY 1"))
            rows[f"{t}:columns"] = list(result.keys())
            rows[t] = [tuple(r) for r in result]
    engine.dispose()
    return rows


def snapshot_or_none(db: str) -> Any:
    from trialflow.engine import database_url

    engine = create_engine(database_url(db))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM event ORDER BY id"))]
        rows += [tuple(r) for r in conn.execute(text("SELECT * FROM alembic_version"))]
    engine.dispose()
    return rows


def test_a_renamed_column_is_named_not_a_traceback(any_db: str) -> None:
    init_store(any_db, None, "investigator.dr-smit")[0].close()
    _sql(any_db, "ALTER TABLE event RENAME COLUMN dedup_key TO dedup")
    with pytest.raises(StoreError, match=r"table 'event' has no column 'dedup_key' \(found instead: dedup\)"):
        Store.open(any_db)
    for command in (["next"], ["history", "P-001"], ["init"]):
        r = cli(*command, "--db", any_db, code=1)
        assert "has no column 'dedup_key'" in r.stderr


def test_init_on_another_applications_sqlite_file_writes_nothing(tmp_path: Path) -> None:
    other = tmp_path / "contacts.db"
    con = sqlite3.connect(other)
    con.executescript("CREATE TABLE contact (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO contact (name) VALUES ('Ada');"
                      "CREATE TABLE event (id INTEGER PRIMARY KEY, what TEXT);")
    con.close()
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    r = cli("init", "--db", other, code=1)
    assert "is not a trialflow store (it holds other tables: contact, event); nothing was written" in r.stderr
    cli("next", "--db", other, code=1)
    assert hashlib.sha256(other.read_bytes()).hexdigest() == digest
    assert {p.name for p in tmp_path.iterdir()} == {"contacts.db"}


def test_init_on_another_applications_postgres_schema_writes_nothing(any_db: str) -> None:
    if "://" not in any_db:
        pytest.skip("the SQLite case is the test above")
    _sql(any_db, "CREATE TABLE invoice (id serial PRIMARY KEY, total numeric)")
    cli("init", "--db", any_db, code=1)
    from trialflow.engine import database_url

    engine = create_engine(database_url(any_db))
    with engine.connect() as conn:
        from sqlalchemy import inspect

        assert inspect(conn).get_table_names() == ["invoice"]
    engine.dispose()
