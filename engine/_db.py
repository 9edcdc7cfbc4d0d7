"""Opening a store: a SQLite file (the default) or PostgreSQL by URL, with safe transaction settings."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, create_engine

from . import _tables  # noqa: F401  # registers the tables on SQLModel.metadata
from ._schema import SchemaError, prepare

__all__ = ["DEFAULT_DB", "StoreError", "database_url", "make_engine", "read_session", "refresh_statistics",
           "write_session"]

DEFAULT_DB = "trialflow.db"
#: what opening an engine with ``create`` did to the store ("created ...", "schema upgraded ..."), if anything
PREPARED: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


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


def _busy_timeout_ms() -> int:
    """How long a SQLite writer waits for the write lock before the attempt is retried (default 30 s;
    ``TRIALFLOW_SQLITE_BUSY_TIMEOUT_MS``: the concurrency tests make it short so writers really contend)."""
    try:
        return max(0, int(os.environ.get("TRIALFLOW_SQLITE_BUSY_TIMEOUT_MS", "30000")))
    except ValueError:
        return 30000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    # No journal_mode here: WAL is a property of the file, set once when the store is created
    # (engine/_schema.py), so that opening another application's file changes not one byte of it.
    cur.execute(f"PRAGMA busy_timeout={_busy_timeout_ms()}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes the write lock at BEGIN, so two writers queue (busy_timeout) instead
    # of both reading and then one failing to upgrade its lock; readers use a deferred BEGIN.
    mode = "DEFERRED" if conn.get_execution_options().get("trialflow_readonly") else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")


CONNECT_TIMEOUT_ENV = "TRIALFLOW_PG_CONNECT_TIMEOUT"
STATEMENT_TIMEOUT_ENV = "TRIALFLOW_PG_STATEMENT_TIMEOUT"


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        raise StoreError(f"{name} must be a number of seconds, got {os.environ.get(name)!r}") from None
    return value if value > 0 else default


def _pg_connect_args(url: str) -> dict[str, Any]:
    """PostgreSQL never hangs a command: a connect timeout (a server that accepts and never answers) and
    a statement timeout (a query stuck behind a lock or a dying server), both overridable by environment."""
    from sqlalchemy.engine import make_url

    connect = _seconds(CONNECT_TIMEOUT_ENV, 10)
    statement_ms = int(_seconds(STATEMENT_TIMEOUT_ENV, 300) * 1000)
    given = make_url(url).query.get("options", "")
    options = " ".join([*(given if isinstance(given, tuple) else [given]), f"-c statement_timeout={statement_ms}"])
    return {"connect_timeout": max(1, round(connect)), "options": options.strip()}


def _create_private(path: str) -> bool:
    """Create the store's file readable and writable by its owner only (SQLite gives its -wal and -shm
    files the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError as err:
        raise StoreError(f"cannot create a store at {path}: {err.strerror}") from None
    return True


def _sqlite_file(path: str) -> bool:
    """Whether the file at ``path`` is empty (SQLite makes an empty file a database) or begins with SQLite's
    header (https://www.sqlite.org/fileformat.html, 1.3: "SQLite format 3" and a NUL)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return True  # (unreadable: the driver says why)
    return head in (b"", b"SQLite format 3\x00")


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url``; a missing SQLite file is an error unless ``create``."""
    new_file = False
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
                if create and not Path(path).exists():
                    new_file = _create_private(path)
                elif Path(path).is_file() and not _sqlite_file(path):
                    raise StoreError(f"{path} is not a SQLite database (a trialflow store is one): nothing was read "
                                     "or written; check --db / TRIALFLOW_DB")
            engine = create_engine(url, connect_args={"timeout": _busy_timeout_ms() / 1000, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, connect_args=_pg_connect_args(url))
    except ArgumentError as err:
        raise StoreError(f"not a database URL: {url!r} ({err})") from None
    except ModuleNotFoundError as err:
        raise StoreError(f"the database driver for {url.split(':', 1)[0]!r} is not installed ({err.name}); "
                         "for PostgreSQL: pip install 'trialflow[postgres]'") from None
    where = engine.url.render_as_string(hide_password=True)
    try:
        done = prepare(engine, create=create, where=where)
    except SchemaError as err:
        engine.dispose()
        raise StoreError(str(err)) from None
    except OperationalError as err:
        engine.dispose()
        detail = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err.orig).__name__
        if "timeout expired" in detail:
            detail = (f"the server did not answer within {_seconds(CONNECT_TIMEOUT_ENV, 10):g} s "
                      f"(a different timeout: {CONNECT_TIMEOUT_ENV}=SECONDS)")
        raise StoreError(f"cannot open the store at {where}: {detail}") from None
    if done is not None:
        PREPARED[engine] = done + (", file mode 0600 (only its owner can read it)" if new_file else "")
    return engine


def reopened(engine: Engine) -> Engine:
    """In a forked process: a new engine on ``engine``'s database, with connections of its own, and ``engine`` (the
    parent's, inherited) made to refuse any connection, since a connection the parent holds must never be used
    or closed by another process (``engine/_forked.py``)."""
    url = engine.url.render_as_string(hide_password=False)

    def refuse(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the parent's database connections are not for a forked process")

    engine.connect = refuse  # type: ignore[method-assign]  # (this process's copy of the parent's engine only)
    engine.raw_connection = refuse  # type: ignore[method-assign]
    engine.pool.connect = refuse  # type: ignore[method-assign]
    return make_engine(url)


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


#: the tables a bulk write searches by patient (its reads of a chunk's histories and projection rows)
_SEARCHED = ("patient", "event", "visit_state", "work_item")


def refresh_statistics(engine: Engine) -> list[str]:
    """PostgreSQL: ``ANALYZE`` those of the store's searched tables whose rows changed by more than their number at
    the last analysis (never analysed counts as none), and those never analysed that hold rows (the counts of
    changes are lost where the server's statistics were reset, or the database copied from a template); answers
    which. A server without autovacuum, or one that has not got round to a table yet, leaves the planner without
    statistics after a bulk load, and it then takes a search of a thousand patients' rows for most of the table:
    an import into a store of 10^5 patients scanned ``visit_state`` and ``work_item`` whole for every chunk (7.5 s
    of its 43 s, against 1.2 s once analysed, the analysis 0.7 s). Run before a bulk write, in a short transaction
    of its own, so that the write does not hold the lock ANALYZE takes (a role that does not own the tables gets
    PostgreSQL's warning, not an error). The threshold analyses a table growing by bulk writes each time it has
    about doubled, a handful of times on the way to 10^6 rows. SQLite: nothing (its planner needs no statistics
    to take the index on ``patient_id``)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as c:
        stale = list(c.execute(text(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables) "
            "AND (s.n_mod_since_analyze > 50 + greatest(c.reltuples, 0) "
            "OR (c.reltuples < 0 AND pg_relation_size(c.oid) > 0)) ORDER BY s.relname"),
            {"tables": list(_SEARCHED)}).scalars())
    if stale:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE " + ", ".join(f'"{t}"' for t in stale)))
    return stale
