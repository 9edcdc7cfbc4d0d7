"""The typer application: one sub-app per command group, each in its own module."""

import copy
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_name
from typer.models import CommandInfo, TyperInfo

from . import (
    _demo_cmd,
    _design_cmd,
    _exchange_cmd,
    _help,
    _oversight_cmd,
    _protocol_cmd,
    _query_cmd,
    _rules_cmd,
    _serve_cmd,
    _simulate_cmd,
    _team_cmd,
    _verify_cmd,
    _visits_cmd,
    _workflow_cmd,
)

_help.install()

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


app.add_typer(_protocol_cmd.app, name="protocol")
app.add_typer(_rules_cmd.app, name="rules")
app.add_typer(_exchange_cmd.app, name="export")
app.add_typer(_team_cmd.site_app, name="site")
app.add_typer(_team_cmd.user_app, name="user")
app.add_typer(_oversight_cmd.query_app, name="query")
app.add_typer(_oversight_cmd.app)
_workflow_cmd.register(app)
_query_cmd.register(app)
_visits_cmd.register(app)
_demo_cmd.register(app)
_simulate_cmd.register(app)
_design_cmd.register(app)
app.add_typer(_serve_cmd.app)  # `trialflow serve` (one command: merged at the top level)
_verify_cmd.register(app)


def _command_name(info: CommandInfo) -> str:
    return info.name or get_command_name(info.callback.__name__ if info.callback else "")


def _group_name(info: TyperInfo) -> str | None:
    return info.name if isinstance(info.name, str) else None  # None: merged into the top level


def _only(name: str) -> typer.Typer | None:
    """The application with only the command or command group ``name``, or None if there is none such.

    Typer turns every registered command into a click command (its parameters, their types) before it
    parses the arguments: some 50 commands, a noticeable part of a command's start-up, for the one that
    runs. The top-level help, and a name that is no command (typer's "No such command"), use the whole app.
    """
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if _group_name(g) == name]
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


def main() -> None:
    """Console-script entry point: builds only the command the arguments name (see :func:`_only`)."""
    first = next((a for a in sys.argv[1:2] if not a.startswith("-")), None)
    try:
        ((_only(first) if first else None) or app)()
    except BrokenPipeError:  # a closed pipe while typer itself printed (help, usage errors)
        _quiet_stdout()
        sys.exit(0)
