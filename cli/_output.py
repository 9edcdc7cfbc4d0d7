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
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.text import Text

    from ._consoles import console, err_console

__all__ = ["console", "err_console", "escape_controls", "fail", "jsonable", "print_json", "print_line", "styled",
           "user_text"]

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
    from rich.text import Text

    return Text(escape_controls(str(value)), style=style)


def styled(markup: str) -> Text:
    """Our own styled literal (``"[bold]Primary endpoint[/bold]"``); never pass user text in ``markup``."""
    from rich.text import Text

    return Text.from_markup(markup, emoji=False)


def __getattr__(name: str) -> Any:
    # ``console`` and ``err_console`` (rich's, ``_consoles.py``) are built when a command first asks for them
    # (PEP 562): a command whose output is plain lines (``protocol validate``, a refusal) never loads rich
    if name in ("console", "err_console"):
        from . import _consoles

        globals().update(console=_consoles.console, err_console=_consoles.err_console)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def print_line(text: str, *, err: bool = False) -> None:
    """Print one line of text as the consoles print a string (controls escaped, no markup, no wrapping),
    on stdout or (``err``) stderr, without loading rich."""
    print(escape_controls(text, keep_newlines=True), file=sys.stderr if err else sys.stdout)


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
        print_line(line, err=True)
    raise typer.Exit(code=code)
