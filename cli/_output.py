"""Printing for the CLI: JSON for scripts, rich for people, errors on stderr. No business logic."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import typer
from rich.console import Console

__all__ = ["console", "err_console", "fail", "jsonable", "print_json"]

# emoji=False: rich would turn ":smile:" in a key, path or file name into 😄; output must be verbatim
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def jsonable(obj: Any) -> Any:
    """Dataclasses, dates, enums, mappings and sequences as plain JSON data."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN or infinity; a quantity that could not be computed is null
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (plain print: rich would re-wrap long strings)."""
    print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False))


def fail(lines: str | Iterable[str], code: int = 1) -> NoReturn:
    """Print the error line(s) to stderr and exit with ``code`` (1 refused, 2 bad usage)."""
    for line in [lines] if isinstance(lines, str) else lines:
        err_console.print(line, markup=False)
    raise typer.Exit(code=code)
