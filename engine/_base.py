"""What every engine module shares: the refusal, and the clock."""

from __future__ import annotations

import datetime as dt

__all__ = ["Refused", "today"]


class Refused(Exception):
    """The action is not allowed; nothing was written. ``problems`` lists every reason."""

    def __init__(self, *problems: str):
        self.problems = problems
        super().__init__("; ".join(problems))


def today() -> dt.date:
    """The clinical date of today (the one place the engine reads the clock)."""
    return dt.date.today()
