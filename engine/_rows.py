"""How a table class of ``_tables`` becomes a SQL table and a mapped class, at a fraction of SQLModel's cost.

A table class declares each column once, as an annotated attribute: the annotation gives the SQL type
and whether the column may be NULL (``X | None``), :func:`field` the rest (key, index, unique, foreign
key, TEXT instead of VARCHAR, the default a new row takes). :class:`Row` turns that list into a Core
``Table`` on sqlmodel's ``SQLModel.metadata`` (which Alembic's autogenerate and the schema check read)
and maps the class onto it with SQLAlchemy's imperative mapping, so the class works with the ORM as a
SQLModel table model did: ``select(PatientRow)``, ``PatientRow.site == code``, ``session.add(row)``.

Why not ``SQLModel, table=True``: each such class also builds a pydantic model and goes through the
declarative scan, some 50 ms for the store's eleven tables on every command, though no row is ever
validated by pydantic (SQLModel does not validate table models). The columns are the ones SQLModel
made, type for type (``AutoString`` for ``str``, ``UTCDateTime`` for ``datetime``), nullability and
Python-side defaults included; ``tests/test_store_schema.py`` compares them with the migrations.
"""

import datetime as dt
import types
from typing import Any, ClassVar, dataclass_transform, get_args

from sqlalchemy import Boolean, Column, Date, Float, ForeignKey, Integer, Table, Text
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

__all__ = ["Row", "field"]

_REQUIRED: Any = object()  # a column without a default: a new row must be given its value
_SQL_TYPES: dict[type, type[TypeEngine[Any]]] = {str: AutoString, int: Integer, float: Float, bool: Boolean,
                                                 dt.date: Date, dt.datetime: UTCDateTime}
_registry = registry(metadata=SQLModel.metadata)


class _Field:
    __slots__ = ("default", "foreign_key", "index", "primary_key", "text", "unique")

    def __init__(self, default: Any, primary_key: bool, index: bool, unique: bool, foreign_key: str | None,
                 text: bool):
        self.default, self.primary_key, self.index, self.unique = default, primary_key, index, unique
        self.foreign_key, self.text = foreign_key, text


def field(default: Any = _REQUIRED, *, primary_key: bool = False, index: bool = False, unique: bool = False,
          foreign_key: str | None = None, text: bool = False) -> Any:
    """A column's options beyond its annotation (``text``: TEXT, for values of any length)."""
    return _Field(default, primary_key, index, unique, foreign_key, text)


def _column(name: str, annotation: Any, spec: _Field) -> Column[Any]:
    args = get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    nullable = type(None) in args
    if spec.text:
        return Column(name, Text, nullable=nullable)
    (python_type,) = (a for a in args if a is not type(None))
    extra: dict[str, Any] = {} if spec.default is _REQUIRED else {"default": spec.default}
    return Column(name, _SQL_TYPES[python_type](), *([ForeignKey(spec.foreign_key)] if spec.foreign_key else []),
                  primary_key=spec.primary_key, nullable=nullable and not spec.primary_key, index=spec.index,
                  unique=spec.unique, **extra)


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Row:
    """A table class: ``__tablename__``, optional ``__table_args__`` (indexes, constraints), the columns."""

    __tablename__: ClassVar[str]
    __table_args__: ClassVar[tuple[Any, ...]] = ()
    _defaults: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns, defaults = [], {}
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            value = vars(cls).get(name, _REQUIRED)
            spec = value if isinstance(value, _Field) else field(value)
            columns.append(_column(name, annotation, spec))
            if spec.default is not _REQUIRED:
                defaults[name] = spec.default
            if name in vars(cls):
                delattr(cls, name)  # the mapping puts the column's attribute in its place
        cls._defaults = defaults
        table = Table(cls.__tablename__, SQLModel.metadata, *columns, *cls.__table_args__)
        cls.__table__ = table  # type: ignore[attr-defined]  # as on a declarative class (Core queries read it)
        _registry.map_imperatively(cls, table)

    def __init__(self, **values: Any) -> None:
        # as a SQLModel table model: the values given, the declared defaults for the rest, no validation
        unknown = values.keys() - self.__table__.c.keys()  # type: ignore[attr-defined]  # set above
        if unknown:
            raise TypeError(f"{type(self).__name__} has no column {', '.join(sorted(unknown))}")
        for name, value in {**self._defaults, **values}.items():
            setattr(self, name, value)
