"""Long lists for people: at most a screenful (or ``--limit N``) of rows, then how many more and the counts.

A worklist of 17,000 rows drawn as one rich table took 20 of ``next``'s 23 s; the table is now cut before it
is built, and the rows left out are summarised (``--all`` prints every row, ``--json`` gives all the data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

import typer

from trialflow.documents._frozen import frozen

from ._plain_tables import console_size

__all__ = ["AllOpt", "LimitOpt", "Page", "page"]

T = TypeVar("T")

LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, metavar="N", show_default="a screenful",
                                              help="Print at most N rows.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Print every row (default: a screenful).")]

# A table row plus its header, borders and the lines printed around it.
_LINES_AROUND = 8
_FEWEST = 10


@frozen
class Page(Generic[T]):
    """The rows to print, how many were left out, and the counts by ``key`` over all the rows."""

    rows: Sequence[T]
    hidden: int
    counts: tuple[tuple[str, int], ...]

    def footer(self) -> str | None:
        """``… 16,970 more (--all, --json) · overdue 12 · due 40 · upcoming 16,938``, or None if all shown."""
        if not self.hidden:
            return None
        counts = " · ".join(f"{k} {n:,}" for k, n in self.counts)
        return f"… {self.hidden:,} more (--all, --json)" + (f" · {counts}" if counts else "")


def screenful() -> int:
    """Rows that fit the terminal with the table's header and the lines around it."""
    return max(_FEWEST, console_size()[1] - _LINES_AROUND)


def page(rows: Sequence[T], key: Callable[[T], str], *, limit: int | None, show_all: bool) -> Page[T]:
    """The first ``limit`` rows (default a screenful; every row with ``show_all``)."""
    n = len(rows) if show_all else (limit if limit is not None else screenful())
    shown = rows[:n]
    counts = tuple(Counter(key(r) for r in rows).most_common()) if len(rows) > n else ()
    return Page(shown, max(0, len(rows) - n), counts)
