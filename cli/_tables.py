"""Tables for people at any terminal width, 80 columns included.

Ids, dates and numbers are never broken inside: their columns do not wrap and keep their full width;
only text columns wrap, at word boundaries. A column that does not fit is left out with a line saying
so and how to see it, never silently. Cells are printed as text (never rich markup).

The table is rich's (``rich.table.Table``); when ``_plain_tables`` can draw it exactly as rich would (text
of one-cell characters, to a pipe, a file or a terminal), that module draws it and rich is not loaded
(issue 12: rich was a fifth of what ``next`` added to its imports).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from trialflow.documents._frozen import frozen

from . import _plain_tables
from ._output import escape_controls, print_line

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Column", "keep_words", "print_table", "say"]

Kind = Literal["id", "text"]


@frozen
class Column:
    """A column: ``id`` (ids, dates, numbers: never wrapped) or ``text`` (wraps at word boundaries).

    ``optional`` columns are the first left out when the terminal is too narrow; ``min_width`` is the
    narrowest a text column may become before that happens.
    """

    name: str
    kind: Kind = "id"
    optional: bool = False
    min_width: int = 12
    justify: Literal["left", "right"] = "left"


GAP = 2  # spaces between columns


def _fits(columns: Sequence[Column], widths: Sequence[int], total: int) -> bool:
    return sum(widths) + GAP * (len(columns) - 1) <= total


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, title: str | None = None,
                hint: str = "--json") -> None:
    """Print ``rows`` under ``columns`` at the console's width; say which columns were left out."""
    width = _plain_tables.console_size()[0]
    keep = list(range(len(columns)))

    def need(i: int) -> int:
        c = columns[i]
        longest = max([len(c.name), *(len(str(r[i])) for r in rows)])
        if c.kind == "id":
            return longest
        # a text column wraps between words, never inside one (up to a third of the width)
        word = max([0, *(len(w) for r in rows for w in str(r[i]).split())])
        return min(longest, max(c.min_width, min(word, width // 3)))

    while not _fits([columns[i] for i in keep], [need(i) for i in keep], width):
        optional = [i for i in keep if columns[i].optional]
        if not optional:
            break
        keep.remove(optional[-1])
    dropped = [columns[i].name for i in range(len(columns)) if i not in keep]
    # the width each column is given: an id column its longest cell, a text column what it may shrink to
    shown = [(columns[i], need(i) if columns[i].kind == "id" else min(columns[i].min_width, need(i)),
              [escape_controls(str(r[i])) for r in rows]) for i in keep]
    heading = escape_controls(title) if title else None
    drawn = _plain(shown, heading, width)
    if drawn is not None:
        sys.stdout.write(drawn)
    else:
        _rich(shown, heading)
    if dropped:
        say(f"left out at {width} columns: {', '.join(dropped)} (see them with a wider terminal, e.g. COLUMNS=160, "
            f"or {hint})")


_Shown = Sequence[tuple[Column, int, list[str]]]  # each column kept, its minimum width, its cells as printed


def _plain(shown: _Shown, title: str | None, width: int) -> str | None:
    """The table drawn by ``_plain_tables``, or None if only rich can draw it as rich does."""
    texts = [title or "", *(c.name for c, _, _ in shown), *(t for _, _, cells in shown for t in cells)]
    if not shown or not _plain_tables.drawable(*texts):
        return None
    plain = [_plain_tables.PlainColumn(c.name, cells, c.kind == "id", lo, c.justify) for c, lo, cells in shown]
    return _plain_tables.render(plain, _plain_tables.layout(plain, width), title, bold_header=_plain_tables.styled())


def _rich(shown: _Shown, title: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from ._output import console

    t = Table(title=Text(title) if title else None, title_justify="left",
              header_style="bold underline", box=None, padding=(0, GAP // 2), pad_edge=False,
              show_edge=False, expand=False)
    for c, lo, _ in shown:
        if c.kind == "id":
            t.add_column(c.name, no_wrap=True, min_width=lo, justify=c.justify)
        else:
            t.add_column(c.name, overflow="fold", min_width=lo, justify=c.justify)
    for r in range(len(shown[0][2]) if shown else 0):
        t.add_row(*(Text(cells[r]) for _, _, cells in shown))
    console.print(t)


def say(text: str) -> None:
    """A line of text for people, wrapped at word boundaries to the terminal's width."""
    line = escape_controls(text, keep_newlines=True)
    if "\n" not in line and _plain_tables.drawable(line):
        width = _plain_tables.console_size()[0]
        for part in _plain_tables.wrap_line(line, width):
            print_line(part[:width])
        return
    from rich.text import Text

    from ._output import console

    console.print(Text(line), soft_wrap=False, overflow="fold")


def keep_words(table: Table) -> Table:
    """Fix each column's width of a rich table so that it holds its longest word, rich wraps between words
    and never cuts one with "…", and the table fits the terminal; when the words cannot all fit, the
    longest are folded rather than a column pushed off the screen."""

    from rich.text import Text

    from ._output import console

    def texts(col: Any) -> list[str]:
        return [str(col.header), *(c.plain if isinstance(c, Text) else str(c) for c in col._cells)]

    longest = [max(len(w) for t in texts(col) for w in [*t.split(), ""]) or 1 for col in table.columns]
    natural = [max(len(line) for t in texts(col) for line in [*t.splitlines(), ""]) or 1 for col in table.columns]
    overhead = 3 * len(table.columns) + 1 if table.box is not None else 2 * len(table.columns)
    avail = max(len(table.columns), console.width - overhead)
    cap = max(longest, default=1)
    while cap > 8 and sum(min(n, cap) for n in longest) > avail:
        cap -= 1
    widths = [min(n, cap) for n in longest]
    spare = avail - sum(widths)
    # the rest goes first to the columns that want least beyond their width (a short phrase on one line),
    # then the long text columns share what is left
    for k in sorted(range(len(widths)), key=lambda k: natural[k] - widths[k]):
        give = min(max(0, natural[k] - widths[k]), spare)
        widths[k] += give
        spare -= give
    for col, w in zip(table.columns, widths, strict=True):
        col.width = w
        col.overflow = "fold"  # only a word longer than the cap is folded
    return table
