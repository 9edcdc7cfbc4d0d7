"""The typer application: one sub-app per command group, each in its own module."""

import copy
import importlib
import inspect
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_name
from typer.models import CommandInfo, TyperInfo

from . import _help, _params, _startup

_help.install()
_params.install()


class _Commands(TyperGroup):
    """The command group; a reader that closed the pipe (``| head``) ends the command quietly, exit 0."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(0) from None


def _quiet_stdout() -> None:
    # Python would report the broken pipe again when it flushes stdout at exit: point it at /dev/null
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# Each command module, the top-level commands and command groups it adds, and how it adds them, in the
# order of the help listing. ``main()`` imports only the module of the command it runs: importing all
# fourteen (and what they import) is a noticeable part of a command's start-up. A test checks this table
# against the commands the whole application has.
_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("_protocol_cmd", ("protocol",)),
    ("_rules_cmd", ("rules",)),
    ("_exchange_cmd", ("export",)),
    ("_team_cmd", ("site", "user")),
    ("_oversight_cmd", ("query", "lock", "unlock", "audit")),
    ("_workflow_cmd", ("init", "enroll", "rescreen", "start", "record", "import", "correct", "decide", "withdraw",
                       "complete")),
    ("_query_cmd", ("next", "evaluate", "status", "history", "report")),
    ("_visits_cmd", ("visits", "deviation", "skip", "screen-fail", "stop-drug", "reverse", "safety")),
    ("_demo_cmd", ("demo",)),
    ("_simulate_cmd", ("simulate",)),
    ("_design_cmd", ("design",)),
    ("_serve_cmd", ("serve",)),
    ("_verify_cmd", ("verify",)),
)


def _add(app: typer.Typer, module: str) -> None:
    """Add the commands of the command module ``module`` (a name in :data:`_MODULES`) to ``app``."""
    m = importlib.import_module(f"{__package__}.{module}")
    if module == "_protocol_cmd":
        app.add_typer(m.app, name="protocol")
    elif module == "_rules_cmd":
        app.add_typer(m.app, name="rules")
    elif module == "_exchange_cmd":
        app.add_typer(m.app, name="export")
    elif module == "_team_cmd":
        app.add_typer(m.site_app, name="site")
        app.add_typer(m.user_app, name="user")
    elif module == "_oversight_cmd":
        app.add_typer(m.query_app, name="query")
        app.add_typer(m.app)  # lock, unlock, audit: merged at the top level
    elif module == "_serve_cmd":
        app.add_typer(m.app)  # `trialflow serve` (one command: merged at the top level)
    else:
        m.register(app)


def _build(modules: tuple[str, ...]) -> typer.Typer:
    """The application with the commands of ``modules`` (names in :data:`_MODULES`, in its order)."""
    app = typer.Typer(
        name="trialflow",
        cls=_Commands,
        help="Run a clinical-trial protocol declared in YAML: enrol, record, see what is due, decide, report.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # patient data must never land in a traceback
        add_completion=False,
    )

    @app.callback()
    def _group() -> None:
        # a no-op: it keeps the application a command group when :func:`_only` leaves one command in it
        pass

    for module in modules:
        _add(app, module)
    return app


def _command_name(info: CommandInfo) -> str:
    return info.name or get_command_name(info.callback.__name__ if info.callback else "")


def _group_name(info: TyperInfo) -> str | None:
    return info.name if isinstance(info.name, str) else None  # None: merged into the top level


def _only(app: typer.Typer, name: str, sub: str | None = None) -> typer.Typer | None:
    """``app`` with only the command or command group ``name``, or None if it has none such; of a group,
    only its command ``sub`` if it has one so named (``protocol validate``: not the group's seven others).

    Typer turns every registered command into a click command (its parameters, their types) before it
    parses the arguments: a module's several commands, for the one that runs.
    """
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if _group_name(g) == name]
    for i, g in enumerate(groups):
        alone = _only(g.typer_instance, sub) if sub and g.typer_instance is not None else None
        if alone is not None and alone.registered_commands:
            groups[i] = copy.copy(g)
            groups[i].typer_instance = alone
    for g in app.registered_groups:
        if _group_name(g) is None and g.typer_instance is not None:
            mine = [c for c in g.typer_instance.registered_commands if _command_name(c) == name]
            if mine:
                merged = copy.copy(g.typer_instance)
                merged.registered_commands, merged.registered_groups = mine, []
                groups.append(copy.copy(g))
                groups[-1].typer_instance = merged
    if not commands and not groups:
        return None
    lean = copy.copy(app)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def _for(name: str | None, sub: str | None = None) -> typer.Typer:
    """The application to run for the command or group ``name`` (and of a group, its command ``sub``):
    that one alone, from its own module.

    The top-level help (no name) and a name that is no command (typer's "No such command") need the
    whole application; a group's name that is none of its commands (its "No such command", with the
    names it suggests), the whole group.
    """
    module = next((m for m, names in _MODULES if name in names), None)
    lean = _only(_build((module,)), name, sub) if module and name else None
    return lean or _build(tuple(m for m, _ in _MODULES))


def _listed(info: CommandInfo) -> CommandInfo:
    """The command ``info`` as the help of its group lists it: its name, help and panel, no parameters."""

    def listed() -> None:  # never run: the listing is used for the top-level help alone
        raise typer.Exit(0)

    shown = copy.copy(info)
    shown.name = _command_name(info)
    shown.help = info.help if info.help is not None else inspect.getdoc(info.callback)  # typer's choice
    shown.callback = listed
    return shown


def _listed_group(info: TyperInfo) -> TyperInfo:
    shown = copy.copy(info)
    if info.typer_instance is not None:
        shown.typer_instance = copy.copy(info.typer_instance)
        shown.typer_instance.registered_commands = [_listed(c) for c in info.typer_instance.registered_commands]
        shown.typer_instance.registered_groups = [_listed_group(g) for g in info.typer_instance.registered_groups]
    return shown


def _listing() -> typer.Typer:
    """The whole application for its top-level help (``trialflow``, ``trialflow --help``): every command and
    group as the listing shows it, none of them with its parameters. Typer turns every command's signature
    into click parameters before it prints a help; the listing needs the 52 commands' names and help texts
    only. A test checks it prints what the whole application prints."""
    whole = _build(tuple(m for m, _ in _MODULES))
    lean = copy.copy(whole)
    lean.registered_commands = [_listed(c) for c in whole.registered_commands]
    lean.registered_groups = [_listed_group(g) for g in whole.registered_groups]
    return lean


def __getattr__(name: str) -> Any:
    # ``app``, the whole application (every command), is built when first asked for (PEP 562)
    if name == "app":
        whole = _build(tuple(m for m, _ in _MODULES))
        globals()["app"] = whole
        return whole
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def for_arguments(args: list[str]) -> typer.Typer:
    """The application ``main()`` runs for the command-line arguments ``args`` (without the program name):
    the top-level listing (:func:`_listing`), or the command or group command they name (:func:`_for`)."""
    if args in ([], ["--help"]):
        return _listing()
    first = next((a for a in args[:1] if not a.startswith("-")), None)
    second = next((a for a in args[1:2] if first and not a.startswith("-")), None)
    return _for(first, second)


#: the command modules whose commands open their store (``_common.open_store``) before their own work: the
#: collector stays paused (``_startup``) until the store is open, the engine and the database driver loaded
_STORE_FIRST = frozenset({"_query_cmd", "_visits_cmd", "_workflow_cmd"})


def main() -> None:
    """Console-script entry point: imports and builds only the command the arguments name (see :func:`_for`)."""
    try:
        args = sys.argv[1:]
        lean = for_arguments(args)
        first = next((a for a in args[:1] if not a.startswith("-")), None)
        if next((m for m, names in _MODULES if first in names), None) not in _STORE_FIRST:
            _startup.resume()
        lean()
    except BrokenPipeError:  # a closed pipe while typer itself printed (help, usage errors)
        _quiet_stdout()
        sys.exit(0)
