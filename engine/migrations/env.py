"""Alembic environment of the trialflow store: run programmatically by ``trialflow.engine._schema``.

There is no ``alembic.ini``: the engine passes the open connection in ``config.attributes["connection"]``,
so migrations run inside the caller's transaction (and under its lock).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from trialflow.engine import _tables  # noqa: F401  # the models, for autogenerate

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - a developer running the alembic CLI by hand
    raise RuntimeError("trialflow runs its migrations itself (trialflow init); use "
                       "`python -m trialflow.engine._schema revision MESSAGE` to write a new one")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # sqlmodel's str columns are plain VARCHAR: render them without importing sqlmodel in the revision
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    return False


context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  compare_type=True, render_item=_render_item)
with context.begin_transaction():
    context.run_migrations()
