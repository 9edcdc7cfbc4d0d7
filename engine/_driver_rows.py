"""Many rows written or read through the database driver: one ``executemany`` of tuples, one COPY on
PostgreSQL, or one ``SELECT`` whose rows come back as tuples.

SQLAlchemy Core's ``insert()`` with a list of dicts compiles and type-processes every row in Python; an
import of 10^5 events spent more time there than the database spent storing them. Here each column's bind
processor (the same one Core applies: SQLite's dates as text, an aware datetime in UTC) is looked up once
per call, the rows go to the driver as tuples, and on PostgreSQL they are copied in (``COPY … FROM
STDIN``). The table's unique indexes check copied rows as they check inserted ones; a violation (a
concurrent writer took the same ``(patient, seq)`` or dedup key first) is raised as SQLAlchemy's
``IntegrityError``, as an ``INSERT`` would raise it, so :meth:`Store.write_bulk` retries on fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

__all__ = ["insert_rows", "select_rows"]


def _processed(column: Sequence[Any], process: Callable[[Any], Any]) -> tuple[Any, ...]:
    """``process`` applied to each value but None, once per distinct value: a column's values repeat (one
    ``recorded_at`` for a whole import, a few hundred dates). Keyed by type too: 1 and 1.0 and True are equal."""
    done: dict[tuple[type, Any], Any] = {}
    out: list[Any] = []
    for v in column:
        if v is None:
            out.append(None)
            continue
        key = (type(v), v)
        if key not in done:
            done[key] = process(v)
        out.append(done[key])
    return tuple(out)


def _raised(sql: str, dialect: Any, err: Exception) -> Exception:
    """A driver's error as SQLAlchemy raises it for the same statement (so callers catch one kind)."""
    return DBAPIError.instance(sql, None, err, dialect.loaded_dbapi.Error, dialect=dialect)


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names of ``table``) in the session's transaction."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    names = list(rows[0])
    values: list[tuple[Any, ...]] = list(map(itemgetter(*names), rows))  # KeyError: a row lacks a column
    if len(names) == 1:
        values = [(v,) for v in values]
    processors = [(i, p) for i, n in enumerate(names)
                  if (p := table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if processors:
        columns_of = list(zip(*values, strict=True))
        for i, process in processors:
            columns_of[i] = _processed(columns_of[i], process)
        values = list(zip(*columns_of, strict=True))
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        sql = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
        driver = conn.connection.driver_connection
        assert driver is not None  # a live connection of the session's transaction
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for v in values:
                    copy.write_row(v)
        except dialect.loaded_dbapi.Error as err:  # as SQLAlchemy raises it for an INSERT
            raise _raised(sql, dialect, err) from err
        return
    marks = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in names)
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})", values)


def select_rows(session: Session, table: Table, names: Sequence[str], key: str, values: Sequence[Any],
                order_by: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """The ``names`` columns of the rows of ``table`` whose ``key`` is one of ``values`` (at most a few thousand:
    the statement binds each), in ``order_by`` order, as tuples of the Python values SQLAlchemy would give (each
    column's result processor applied once per distinct value: SQLite's dates come back as text), read in the
    session's transaction through the driver's cursor: no Row object nor type processing per row."""
    if not values:
        return []
    conn = session.connection()
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(table.name)} "
           f"WHERE {quote(key)} IN ({', '.join(mark for _ in values)})"
           + (f" ORDER BY {', '.join(quote(n) for n in order_by)}" if order_by else ""))
    driver = conn.connection.driver_connection
    assert driver is not None  # a live connection of the session's transaction
    cursor = driver.cursor()
    try:
        cursor.execute(sql, list(values))
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        codes = [d[1] for d in cursor.description]  # the driver's type of each column (psycopg's floats need it)
    except dialect.loaded_dbapi.Error as err:
        raise _raised(sql, dialect, err) from err
    finally:
        cursor.close()
    processors = [(i, p) for i, n in enumerate(names)
                  if (p := table.c[n].type.dialect_impl(dialect).result_processor(dialect, codes[i])) is not None]
    if processors and rows:
        columns_of = list(zip(*rows, strict=True))
        for i, process in processors:
            columns_of[i] = _results(columns_of[i], process)
        rows = list(zip(*columns_of, strict=True))
    return rows


def _results(column: Sequence[Any], process: Callable[[Any], Any]) -> tuple[Any, ...]:
    """:func:`_processed` for a column the driver read. Its values are mostly of one type (SQLite's dates are
    text): then each distinct value is processed once and the column mapped through them at C speed; values of
    several types (1 and 1.0 and True are equal keys) or unhashable ones go through :func:`_processed`."""
    types = set(map(type, column))
    types.discard(type(None))
    if len(types) > 1:
        return _processed(column, process)
    try:
        done = {v: process(v) for v in set(column) if v is not None}
    except TypeError:  # an unhashable value (a driver's JSON or array)
        return _processed(column, process)
    done[None] = None
    return tuple(map(done.__getitem__, column))
