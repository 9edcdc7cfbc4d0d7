"""The tables of ``_tables.print_table`` drawn without rich, character for character as rich draws them.

Why: on the store commands' paths (``next``, ``status``, ``visits``, ``history``) importing rich's console
and table and laying a table out through its renderables cost 40-60 ms of a command's CPU (issue 12),
more than the command's own work. The tables ``print_table`` builds use a small part of rich: no box, one
space of padding between columns and none at the edges, a header row, cells of plain text, columns that
either never wrap (ids, dates, numbers; cut with "…" only when nothing else can give way) or wrap at word
boundaries and fold a word longer than the column. This module is rich 15's layout for exactly that part
(``Table._calculate_column_widths``, ``_collapse_widths``, ``ratio_reduce``, ``Text.wrap``'s
``divide_line``), written out so that a reader can follow it. ``tests/test_plain_tables.py`` compares it
with rich on random tables at many widths, byte for byte.

It draws only what it can draw exactly, and :func:`drawable` says so; ``print_table`` hands anything else
to rich as before:

- text whose every character takes one cell of the terminal and whose only white space is the plain
  space (the :data:`_ONE_CELL` ranges: Latin, general punctuation, arrows; no combining marks, no East
  Asian wide characters, no zero-width or non-breaking spaces, which rich measures and wraps its own way);
- output to a pipe, a file or a terminal, not to a dumb terminal, IDLE or Jupyter (which rich treats in
  ways of its own); at a terminal the header is bold and underlined, as rich draws it.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Sequence

from trialflow.documents._frozen import frozen

__all__ = ["PlainColumn", "console_size", "drawable", "layout", "render", "styled", "terminal_size", "wrap_line"]

# Code point ranges rich measures as one cell each, none of them white space but the space itself
_ONE_CELL = re.compile(r"[\x20-\x7e\xa1-\xac\xae-\u024f\u2010-\u2027\u2030-\u205e\u2190-\u21ff]*")
_WORD = re.compile(r"\s*\S+\s*")  # rich's word: leading space, the word, the space after it
_TRAILING_SPACE = re.compile(r"\s+$")


def _one_cell(text: str) -> bool:
    return _ONE_CELL.fullmatch(text) is not None


def _output_kind() -> str:
    """How rich's console would print to stdout (``Console.is_terminal``, ``is_dumb_terminal``): "plain"
    (no terminal: no styles), "styled" (a terminal: the header bold and underlined), or "rich" (a dumb
    terminal, IDLE or Jupyter, which rich treats its own ways: rich draws)."""
    if "idlelib" in getattr(sys.stdin, "__module__", "") or "ipykernel" in sys.modules:
        return "rich"
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    force = os.environ.get("FORCE_COLOR")
    if compatible in ("0", "1"):
        terminal = compatible == "1"
    elif force is not None:
        terminal = force != ""
    else:
        isatty = getattr(sys.stdout, "isatty", None)
        try:
            terminal = bool(isatty and isatty())
        except ValueError:
            terminal = False
    if not terminal:
        return "plain"
    return "rich" if os.environ.get("TERM", "").lower() in ("dumb", "unknown") else "styled"


def drawable(*texts: str) -> bool:
    """Whether this module draws ``texts`` as rich would (see the module docstring)."""
    return _output_kind() != "rich" and all(_one_cell(t) for t in texts)


def styled() -> bool:
    """Whether the header is to be drawn bold and underlined, as rich draws it at a terminal."""
    return _output_kind() == "styled"


def terminal_size() -> tuple[int, int]:
    """(columns, lines) as rich's console takes them off a terminal: ``COLUMNS`` and ``LINES`` if set,
    else the size of the first of stdin, stdout and stderr that is a terminal, else 80 by 25."""
    width: int | None = None
    height: int | None = None
    for fd in (0, 1, 2):
        try:
            width, height = os.get_terminal_size(fd)
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns, lines = os.environ.get("COLUMNS"), os.environ.get("LINES")
    if columns is not None and columns.isdigit():
        width = int(columns)
    if lines is not None and lines.isdigit():
        height = int(lines)
    return width or 80, height or 25


def console_size() -> tuple[int, int]:
    """(columns, lines) of the output as rich's console sees them: :func:`terminal_size`, or rich's own
    where rich draws (it has its rules for dumb terminals)."""
    if _output_kind() != "rich":
        return terminal_size()
    from ._output import console

    return console.size.width, console.size.height


@frozen
class PlainColumn:
    """A column as rich's ``Table.add_column`` was given it by ``print_table``."""

    header: str
    cells: Sequence[str]
    no_wrap: bool  # an id column: never wrapped ("…" if it must be cut), else folded at words
    min_width: int
    justify: str  # "left" or "right"


# --- measuring: rich's Measurement (minimum, maximum) of a cell and of a column --------------------------

def _normalize(m: tuple[int, int]) -> tuple[int, int]:
    lo = min(max(0, m[0]), m[1])
    return max(0, lo), max(0, max(lo, m[1]))


def _at_most(m: tuple[int, int], width: int) -> tuple[int, int]:
    return min(m[0], width), min(m[1], width)


def _get(m: tuple[int, int], max_width: int) -> tuple[int, int]:
    """What ``Measurement.get`` makes of a renderable's own measurement ``m``."""
    m = _at_most(_normalize(m), max_width)
    return (0, 0) if m[1] < 1 else _normalize(m)


def _measure_cell(text: str, max_width: int, pad: int) -> tuple[int, int]:
    """``Measurement.get`` of a one-line text (its longest word, its length) inside rich's ``Padding`` of
    ``pad`` cells in all."""
    if max_width < 1:
        return 0, 0
    if max_width - pad < 1:
        return _get((max_width, max_width), max_width)
    words = text.split()
    lo, hi = _get((max(len(w) for w in words) if words else len(text), len(text)), max_width)
    return _get(_at_most((lo + pad, hi + pad), max_width), max_width)


def _measure_column(col: PlainColumn, max_width: int, pad: int) -> tuple[int, int]:
    """``Table._measure_column``: the widest minimum and maximum of its cells, no narrower than its
    ``min_width`` (plus padding)."""
    if max_width < 1:
        return 0, 0
    measured = [_measure_cell(t, max_width, pad) for t in (col.header, *col.cells)]
    lo, hi = min(max(m[0] for m in measured), max_width), min(max(m[1] for m in measured), max_width)
    floor = col.min_width + pad
    return max(lo, floor), max(hi, floor)


# --- the widths: rich's _calculate_column_widths for a table that does not expand -------------------------

def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """rich's ``ratio_reduce``: take ``total`` off ``values`` in proportion to ``ratios``, each at most its
    maximum."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, result = total, []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _collapse(widths: list[int], wrapable: list[bool], max_width: int) -> list[int]:
    """``Table._collapse_widths``: narrow the widest wrapping columns, step by step, until the table fits."""
    total = sum(widths)
    excess = total - max_width
    if any(wrapable):
        while total and excess > 0:
            widest = max(w for w, ok in zip(widths, wrapable, strict=True) if ok)
            second = max(w if ok and w != widest else 0 for w, ok in zip(widths, wrapable, strict=True))
            difference = widest - second
            ratios = [1 if (w == widest and ok) else 0 for w, ok in zip(widths, wrapable, strict=True)]
            if not any(ratios) or not difference:
                break
            widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
            total = sum(widths)
            excess = total - max_width
    return widths


def _pads(n: int) -> list[tuple[int, int]]:
    """(left, right) padding of each of ``n`` columns: one space each side between them, none at the edges."""
    return [(0 if i == 0 else 1, 0 if i == n - 1 else 1) for i in range(n)]


def layout(columns: Sequence[PlainColumn], max_width: int) -> list[int]:
    """Each column's width, padding included, as rich lays the table out in ``max_width`` cells."""
    pads = [left + right for left, right in _pads(len(columns))]
    measured = [_measure_column(c, max_width, p) for c, p in zip(columns, pads, strict=True)]
    widths = [hi or 1 for _, hi in measured]
    if sum(widths) > max_width:
        widths = _collapse(widths, [not c.no_wrap for c in columns], max_width)
        if sum(widths) > max_width:  # rich's last resort: narrow every column alike
            widths = _ratio_reduce(sum(widths) - max_width, [1] * len(widths), widths, widths)
        widths = [_measure_column(c, w, p)[1] or 0 for c, w, p in zip(columns, widths, pads, strict=True)]
    return widths


# --- drawing: rich's Text.wrap of one line, then the rows ---------------------------------------------------

def wrap_line(text: str, width: int, *, fold: bool = True) -> list[str]:
    """``text`` (one line) cut into lines of at most ``width`` cells at word boundaries, a word longer than
    ``width`` folded (``fold``) or left whole: rich's ``divide_line``, then each line's trailing space
    beyond ``width`` dropped (``rstrip_end``). A line may keep spaces at its end."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            if fold:
                pieces = [word[i:i + width] for i in range(0, len(word), width)]
                for k, piece in enumerate(pieces):
                    if start:
                        breaks.append(start)
                    if k == len(pieces) - 1:
                        offset = len(piece)
                    else:
                        start += len(piece)
            else:
                if start:
                    breaks.append(start)
                offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    bounds = [0, *breaks, len(text)]
    lines = []
    for a, b in itertools.pairwise(bounds):
        line = text[a:b]
        if len(line) > width and (space := _TRAILING_SPACE.search(line)) is not None:
            line = line[:len(line) - min(len(space.group()), len(line) - width)]
        lines.append(line)
    return lines


def _fit(line: str, width: int, overflow: str) -> str:
    """``Text.truncate``: cut to ``width`` ("…" as the last cell if ``overflow`` is "ellipsis")."""
    if len(line) > width:
        return line[:width - 1] + "…" if overflow == "ellipsis" else line[:width]
    return line


def _cell_lines(text: str, width: int, col: PlainColumn) -> list[str]:
    """The lines of one cell, each exactly ``width`` cells (rich's ``Text.wrap`` and justification)."""
    overflow = "ellipsis" if col.no_wrap else "fold"
    lines = [text] if col.no_wrap else wrap_line(text, width, fold=True)
    out = []
    for line in lines:
        if col.justify == "right":
            line = _fit(line.rstrip(), width, overflow)
            line = " " * (width - len(line)) + line
        else:
            line = _fit(line, width, overflow)
        out.append(_fit(line, width, overflow).ljust(width)[:width])
    return out


_HEADER = "\x1b[1;4m{}\x1b[0m"  # rich's "bold underline" at a terminal (no colour: the same on every terminal)


def render(columns: Sequence[PlainColumn], widths: Sequence[int], title: str | None, *,
           bold_header: bool = False) -> str | None:
    """The table as rich prints it (the title, then the header and each row, a line each row line ends),
    or None if a column is too narrow for its padding (rich's own business then). ``bold_header``: as at a
    terminal, where rich styles each piece of the header (padding, text, blank line) on its own."""
    pads = _pads(len(columns))
    if not columns or any(w - left - right < 1 for w, (left, right) in zip(widths, pads, strict=True)):
        return None
    out = [] if title is None else [title]
    for r in range(len(columns[0].cells) + 1):
        style = (lambda piece: _HEADER.format(piece) if piece else "") if r == 0 and bold_header else str
        cells = []
        for col, w, (left, right) in zip(columns, widths, pads, strict=True):
            text = col.header if r == 0 else col.cells[r - 1]
            cells.append([style(" " * left) + style(line) + style(" " * right)
                          for line in _cell_lines(text, w - left - right, col)])
        height = max(len(c) for c in cells)
        for i, c in enumerate(cells):
            blank = [style(" " * widths[i])] * (height - len(c))
            cells[i] = blank + c if r == 0 else c + blank  # the header at the bottom of its row, a row at the top
        out.extend("".join(c[k] for c in cells) for k in range(height))
    return "\n".join(out) + "\n"
