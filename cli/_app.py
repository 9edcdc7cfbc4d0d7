"""The typer application: one sub-app per command group, each in its own module."""

from __future__ import annotations

import typer

from . import _protocol_cmd, _rules_cmd

app = typer.Typer(
    name="trialflow",
    help="Run a clinical-trial protocol declared in YAML: validate it, evaluate response criteria, "
    "follow patients, see what is due.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # patient data must never land in a traceback
    add_completion=False,
)
app.add_typer(_protocol_cmd.app, name="protocol")
app.add_typer(_rules_cmd.app, name="rules")


def main() -> None:
    """Console-script entry point."""
    app()
