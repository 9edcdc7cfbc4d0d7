"""Options and argument parsing shared by the workflow commands."""

from __future__ import annotations

import datetime as dt
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ._output import fail

if TYPE_CHECKING:
    from trialflow.engine import Store

__all__ = ["AsOfOpt", "DbOpt", "JsonOpt", "KnownAtOpt", "PasswordStdinOpt", "UserOpt", "cluster_option", "open_store",
           "parse_date", "parse_known_at", "read_new_password", "refusals", "resolve_user"]

T = TypeVar("T")

DbOpt = Annotated[str | None, typer.Option("--db", metavar="PATH_OR_URL", envvar="TRIALFLOW_DB",
                                           show_default="trialflow.db",
                                           help="Store: a SQLite file path or a database URL "
                                                "(postgresql+psycopg://user@host/db).")]
UserOpt = Annotated[str | None, typer.Option("--user", metavar="NAME", envvar="TRIALFLOW_USER",
                                             show_default="your login",
                                             help="Who is recording (kept in the audit trail).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PasswordStdinOpt = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of stdin (in a store with users; "
                             "otherwise TRIALFLOW_PASSWORD or a prompt).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", metavar="DATE", show_default=f"today, {dt.date.today()}",
                                             help="Clinical date (YYYY-MM-DD): only what is effective by then counts.")]
KnownAtOpt = Annotated[str | None, typer.Option(
    "--known-at", metavar="TIMESTAMP",
    help="Show the store as it stood then (ISO timestamp, UTC if no zone): later records are ignored.")]


def cluster_option(value: str | None) -> str | None:
    """``--cluster`` of ``simulate`` and ``design`` is local:N (N from 1 to 256, as the simulator takes) or
    tcp://HOST:PORT (bad usage, exit 2, before anything runs)."""
    if value is None:
        return None
    import re

    local = re.fullmatch(r"local:([1-9][0-9]{0,2})", value)
    if (local and int(local.group(1)) <= 256) or re.fullmatch(r"tcp://[^\s:/]+:[0-9]{1,5}", value):
        return value
    raise typer.BadParameter(f"expected local:N (N worker processes, 1 to 256) or tcp://HOST:PORT, got {value!r}")


def parse_date(value: str | None, option: str = "--date") -> dt.date | None:
    """A clinical date: ISO, and between 1990-01-01 and ten years from today (usage error otherwise)."""
    from trialflow.engine._base import date_problem

    if value is None:
        return None
    try:
        when = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}", param_hint=option) from None
    problem = date_problem(when, "the date")
    if problem:
        raise typer.BadParameter(problem, param_hint=option)
    return when


def parse_known_at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"expected an ISO timestamp such as 2026-03-01T12:00:00, got {value!r}",
                                 param_hint="--known-at") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


MAX_USER = 200  # a real name with a title and site fits; 10 kB does not (store users are checked by the engine)


def user_problem(user: str) -> str | None:
    """Why ``user`` cannot stand in the audit trail as who recorded (or None)."""
    if not user.strip():
        return "is empty: give who is recording (e.g. coordinator.anna)"
    if len(user) > MAX_USER:
        return f"is {len(user)} characters long: at most {MAX_USER}"
    bad = next((c for c in user if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        return f"contains the control character U+{ord(bad):04X}: use letters, digits and punctuation"
    return None


def _user_name(user: str | None) -> str:
    """``--user`` / ``TRIALFLOW_USER`` / the login name, validated (a usage error, exit 2, if unusable)."""
    if user is None:
        import getpass  # (here: with termios, a noticeable part of a short command's start-up)

        try:
            user = os.environ.get("TRIALFLOW_USER") or getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    problem = user_problem(user)
    if problem:
        raise typer.BadParameter(problem, param_hint="--user")
    return user.strip()


class _Password:
    """The password, read once and only if the store asks for it: stdin, TRIALFLOW_PASSWORD, or a prompt."""

    def __init__(self, name: str, from_stdin: bool, purpose: str = ""):
        self.name, self.from_stdin, self.purpose = name, from_stdin, purpose
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._read()
        return self._value

    def _read(self) -> str:
        import sys

        from trialflow.engine import Refused

        if self.from_stdin:
            line = sys.stdin.readline()
            if not line.strip():
                raise Refused("--password-stdin: stdin holds no password")
            return line.rstrip("\r\n")
        env = os.environ.get("TRIALFLOW_PASSWORD")
        if env:
            return env
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass(f"Password for {self.name}{self.purpose}: ")
        raise Refused(f"this store has users: {self.name} must authenticate: give the password on a terminal, "
                      "with --password-stdin, or in TRIALFLOW_PASSWORD")


def resolve_user(user: str | None, password_stdin: bool = False, purpose: str = "") -> Any:
    """Who acts: a :class:`Login` the engine authenticates when the store has users (a plain name otherwise)."""
    from trialflow.engine import Login, cli_context

    name = _user_name(user)
    return Login(name, _Password(name, password_stdin, purpose), cli_context())


def read_new_password(name: str, from_stdin: bool, env_var: str = "TRIALFLOW_NEW_PASSWORD") -> str:
    """A new password: the next line of stdin, ``env_var``, or typed twice on a terminal. Never a default."""
    import sys

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail("--password-stdin: stdin holds no (new) password")
        return line
    env = os.environ.get(env_var)
    if env:
        return env
    if not sys.stdin.isatty():
        fail(f"a password for {name} is needed: type it on a terminal, or give it with --password-stdin or "
             f"{env_var}", code=2)
    import getpass

    first = getpass.getpass(f"New password for {name}: ")
    if getpass.getpass("Again: ") != first:
        fail("the two passwords differ; nothing was changed")
    return first


def _raised(err: Exception, module: str, name: str) -> bool:
    """Is ``err`` a ``module.name``? Asked without importing ``module``: had it not been imported, nothing
    could have raised its exception (the documents' module imports PyYAML, which a worklist never needs)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(err, getattr(loaded, name))


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the library's refusals into an error message and exit code 1 (never a traceback)."""
    from sqlalchemy.exc import SQLAlchemyError

    from trialflow.engine import Refused, StoreError

    try:
        yield
    except Refused as err:
        fail([f"refused: {p}" for p in err.problems])
    except StoreError as err:
        fail(str(err))
    except SQLAlchemyError as err:  # the database refused or failed: nothing was committed
        detail = str(getattr(err, "orig", err)).strip().splitlines()[0]
        fail(f"database error, nothing was written: {detail}")
    except Exception as err:
        if _raised(err, "trialflow.documents._problems", "DocumentError"):
            fail([str(p) for p in err.problems])  # type: ignore[attr-defined]  # a DocumentError's
        if _raised(err, "trialflow.engine._state", "DamagedEvent"):
            fail(str(err))
        if _raised(err, "trialflow.rules._registry", "RuleLoadError"):
            fail(str(err))
        raise


def open_store(db: str | None) -> Store:
    from trialflow.engine import Store

    from . import _startup

    with refusals():
        store = Store.open(db)
        _startup.resume()  # start-up is over: the command's own work runs with the collector on
        return store
    raise AssertionError("unreachable")  # pragma: no cover


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a library function, mapping refusals to exit 1."""
    with refusals():
        return fn(*args, **kwargs)
    raise AssertionError("unreachable")  # pragma: no cover
