"""Printing for the CLI: JSON for scripts, rich for people, errors on stderr. No business logic.

Everything printed is text: the consoles never interpret rich markup in a string (an AE term ``[/]``
or ``[link=...]`` is printed as typed), and control characters (escape sequences, bidi overrides,
backspace, carriage return) are shown escaped (``\x1b``, ``\u202e``) so stored text cannot drive the
terminal. Our own styling is built explicitly with :func:`styled` (markup in a literal we wrote), and
a user's text placed inside it with :func:`user_text`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["console", "err_console", "escape_controls", "fail", "jsonable", "print_json", "styled", "user_text"]

# C0 and C1 controls, DEL, and the bidirectional overrides/isolates that can reorder what a line shows
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(value: str, *, keep_newlines: bool = False) -> str:
    """``value`` with every control character shown as an escape (``\x1b``, ``\u202e``, ``\n``)."""
    if keep_newlines:
        return "\n".join(_CONTROLS.sub(lambda m: _escape(m.group()), line) for line in value.split("\n"))
    return _CONTROLS.sub(lambda m: _escape(m.group()), value)


def user_text(value: object, style: str = "") -> Text:
    """What a user typed (or a file said), as terminal-safe text: no markup, controls escaped, one line."""
    return Text(escape_controls(str(value)), style=style)


def styled(markup: str) -> Text:
    """Our own styled literal (``"[bold]Primary endpoint[/bold]"``); never pass user text in ``markup``."""
    return Text.from_markup(markup, emoji=False)


class _TextConsole(Console):
    """A console for which every string is text: markup off, control characters escaped (lines kept)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(escape_controls(text, keep_newlines=True), **kwargs)


# emoji=False: rich would turn ":smile:" in a key, path or file name into 😄; output must be verbatim
console = _TextConsole(highlight=False, soft_wrap=True, emoji=False, markup=False)
err_console = _TextConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)


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
    """Print ``obj`` as indented JSON on stdout (plain print: rich would re-wrap long strings).

    A list is streamed item by item (the same text as one ``json.dumps``), so a 17,000-row worklist is
    never held as one JSON document in memory."""
    if not isinstance(obj, list | tuple) or not obj:
        print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False))
        return
    out = sys.stdout
    out.write("[\n")
    for i, item in enumerate(obj):
        text = json.dumps(jsonable(item), indent=2, ensure_ascii=False, allow_nan=False)
        out.write(("" if i == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
    out.write("\n]\n")


def fail(lines: str | Iterable[str], code: int = 1) -> NoReturn:
    """Print the error line(s) to stderr and exit with ``code`` (1 refused, 2 bad usage)."""
    for line in [lines] if isinstance(lines, str) else lines:
        err_console.print(line, markup=False)
    raise typer.Exit(code=code)
