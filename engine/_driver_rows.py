"""Many new rows written through the database driver: one ``executemany`` of tuples, or one COPY on PostgreSQL.

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

__all__ = ["insert_rows"]


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
            raise DBAPIError.instance(sql, None, err, dialect.loaded_dbapi.Error, dialect=dialect) from err
        return
    marks = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in names)
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})", values)
