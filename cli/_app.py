"""The typer application: one sub-app per command group, each in its own module."""

from __future__ import annotations

import typer

from . import (
    _demo_cmd,
    _design_cmd,
    _exchange_cmd,
    _oversight_cmd,
    _protocol_cmd,
    _query_cmd,
    _rules_cmd,
    _serve_cmd,
    _simulate_cmd,
    _team_cmd,
    _verify_cmd,
    _workflow_cmd,
)

app = typer.Typer(
    name="trialflow",
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
_demo_cmd.register(app)
_simulate_cmd.register(app)
_design_cmd.register(app)
app.add_typer(_serve_cmd.app)  # `trialflow serve` (one command: merged at the top level)
_verify_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
