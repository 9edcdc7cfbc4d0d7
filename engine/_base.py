"""What every engine module shares: the refusal, and the clock."""

from __future__ import annotations

import datetime as dt

__all__ = ["EARLIEST_DATE", "Problem", "Refused", "date_problem", "latest_date", "located", "plain_text", "today"]


class Problem(str):
    """A refusal's reason (or a preview's flag) whose terminal sentence carries advice a web page cannot use.

    As a ``str`` it is what the CLI prints (``plain`` + ``advice``, e.g. "a deviation needs a reason" +
    " (--reason)"); ``plain`` is the finding alone, the words a form shows beside its field, followed by
    ``form_advice`` when a form has its own way to act on it ("correct the recorded value" where the terminal
    is told ``trialflow correct P N``). ``unusual`` marks a value outside a plausible range the protocol
    declares: recorded once confirmed with a reason. ``item`` and ``field``: for a refusal of one of several
    records given at once, which of them (its index) and which of its fields, so that an import can name the
    line and column of the file it came from.
    """

    plain: str
    unusual: bool
    _parts: tuple[str, str, str]  # (the finding, the terminal's advice, a form's advice)
    item: int | None = None
    field: str | None = None

    def __new__(cls, plain: str, advice: str = "", *, unusual: bool = False, form_advice: str = "") -> Problem:
        self = super().__new__(cls, plain + advice)
        self.plain, self.unusual = plain + form_advice, unusual
        self._parts = (plain, advice, form_advice)
        return self

    def at(self, place: str) -> Problem:
        """The same problem said at ``place`` (a file's ``FILE:LINE:COLUMN: $.field``): advice and kind kept."""
        plain, advice, form_advice = self._parts
        return Problem(f"{place}: {plain}", advice, unusual=self.unusual, form_advice=form_advice)


def located(sentence: str, item: int, field: str) -> Problem:
    """``sentence`` (a :class:`Problem` or a plain one) marked as a problem of record ``item``'s ``field``."""
    p = sentence if isinstance(sentence, Problem) else Problem(sentence)
    p.item, p.field = item, field
    return p


def plain_text(sentence: str) -> str:
    """An engine sentence without its command-line advice (itself, when it carries none)."""
    return sentence.plain if isinstance(sentence, Problem) else sentence


class Refused(Exception):
    """The action is not allowed; nothing was written. ``problems`` lists every reason."""

    def __init__(self, *problems: str):
        self.problems = problems
        super().__init__("; ".join(problems))

    @property
    def plain(self) -> tuple[str, ...]:
        """The problems without the command-line advice (a flag, a command): what a web form shows."""
        return tuple(plain_text(p) for p in self.problems)

    @property
    def unusual(self) -> tuple[str, ...]:
        """The problems that are values outside a plausible range (recordable with a confirming reason)."""
        return tuple(p.plain for p in self.problems if isinstance(p, Problem) and p.unusual)


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


def date_problem(when: dt.date, what: str = "date", latest: dt.date | None = None) -> str | None:
    """Why ``when`` cannot be a date of this study (outside 1990-01-01 .. ten years ahead), or None.
    ``latest``: :func:`latest_date`, where a caller checking many dates has read it once."""
    latest = latest_date() if latest is None else latest
    if not EARLIEST_DATE <= when <= latest:
        return f"{what} {when} must lie between {EARLIEST_DATE} and {latest}"
    return None
