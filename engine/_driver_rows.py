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

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

__all__ = ["insert_rows"]


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names of ``table``) in the session's transaction."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    names = list(rows[0])
    processors = [(i, p) for i, n in enumerate(names)
                  if (p := table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    values: list[Any] = [[r[n] for n in names] for r in rows]  # KeyError: a row without one of the columns
    for i, process in processors:
        for v in values:
            if v[i] is not None:
                v[i] = process(v[i])
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
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})", [tuple(v) for v in values])
