"""What every engine module shares: the refusal, and the clock."""

from __future__ import annotations

import datetime as dt

__all__ = ["EARLIEST_DATE", "Refused", "date_problem", "latest_date", "today"]


class Refused(Exception):
    """The action is not allowed; nothing was written. ``problems`` lists every reason."""

    def __init__(self, *problems: str):
        self.problems = problems
        super().__init__("; ".join(problems))


def today() -> dt.date:
    """The clinical date of today (the one place the engine reads the clock)."""
    return dt.date.today()


EARLIEST_DATE = dt.date(1990, 1, 1)
YEARS_AHEAD = 10


def latest_date() -> dt.date:
    """The latest clinical date accepted: ten years from today (a date beyond is a typing error)."""
    t = today()
    try:
        return t.replace(year=t.year + YEARS_AHEAD)
    except ValueError:  # 29 February
        return t.replace(year=t.year + YEARS_AHEAD, day=28)


def date_problem(when: dt.date, what: str = "date") -> str | None:
    """Why ``when`` cannot be a date of this study (outside 1990-01-01 .. ten years ahead), or None."""
    if not EARLIEST_DATE <= when <= latest_date():
        return f"{what} {when} must lie between {EARLIEST_DATE} and {latest_date()}"
    return None
