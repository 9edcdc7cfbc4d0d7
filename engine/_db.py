"""Opening a store: a SQLite file (the default) or PostgreSQL by URL, with safe transaction settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

from . import _tables  # noqa: F401  # registers the tables on SQLModel.metadata

__all__ = ["DEFAULT_DB", "StoreError", "database_url", "make_engine", "read_session", "write_session"]

DEFAULT_DB = "trialflow.db"


class StoreError(Exception):
    """The store cannot be opened or used (missing, unreachable, wrong kind)."""


def database_url(db: str | None) -> str:
    """``--db`` / ``TRIALFLOW_DB`` / default, as a SQLAlchemy URL; a bare path means a SQLite file."""
    value = db or os.environ.get("TRIALFLOW_DB") or DEFAULT_DB
    if "://" in value:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://"):]
        return value
    return f"sqlite:///{Path(value).expanduser()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes the write lock at BEGIN, so two writers queue (busy_timeout) instead
    # of both reading and then one failing to upgrade its lock; readers use a deferred BEGIN.
    mode = "DEFERRED" if conn.get_execution_options().get("trialflow_readonly") else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")


def _add_missing_columns(engine: Engine) -> None:
    """Bring a store written by an earlier trialflow up to date: new nullable columns are added.

    Only columns that can be NULL are ever added this way; a cache column filled later (the patient
    projection) is recomputed from the events by ``trialflow init``.
    """
    with engine.begin() as conn:
        inspector = inspect(conn)
        for table in SQLModel.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url``; a missing SQLite file is an error unless ``create``."""
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                if not create and not Path(path).exists():
                    raise StoreError(f"no trialflow store at {path}: create one with `trialflow init` "
                                     "(or point --db / TRIALFLOW_DB at an existing one)")
                if create and not Path(path).parent.is_dir():
                    raise StoreError(f"cannot create a store at {path}: the folder {Path(path).parent} does not "
                                     "exist (create it first, or check the path)")
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except ArgumentError as err:
        raise StoreError(f"not a database URL: {url!r} ({err})") from None
    except ModuleNotFoundError as err:
        raise StoreError(f"the database driver for {url.split(':', 1)[0]!r} is not installed ({err.name}); "
                         "for PostgreSQL: pip install 'trialflow[postgres]'") from None
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            has_tables = inspector.has_table("event")
            current = has_tables and inspector.has_table("work_item")
    except OperationalError as err:
        raise StoreError(f"cannot open the store at {engine.url.render_as_string(hide_password=True)}: "
                         f"{str(err.orig).strip().splitlines()[0]}") from None
    if create:
        SQLModel.metadata.create_all(engine)
        _add_missing_columns(engine)
    elif not has_tables:
        raise StoreError(f"{engine.url.render_as_string(hide_password=True)} holds no trialflow store: "
                         "create one with `trialflow init`")
    elif not current:
        raise StoreError(f"{engine.url.render_as_string(hide_password=True)} was written by an older trialflow: "
                         "run `trialflow init` on it once to bring it up to date (nothing recorded is changed)")
    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One transaction: committed if the block succeeds, rolled back (nothing written) if it raises."""
    with Session(engine) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only session (a deferred transaction on SQLite, so it does not block writers)."""
    with engine.connect() as conn:
        conn = conn.execution_options(trialflow_readonly=True)
        with Session(bind=conn) as session:
            yield session
