"""The typer application: one sub-app per command group, each in its own module."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # a closed pipe while typer itself printed (help, usage errors)
        _quiet_stdout()
        sys.exit(0)
