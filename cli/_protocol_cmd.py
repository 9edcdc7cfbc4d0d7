"""``trialflow protocol``: validate, show, schema, diagram."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._output import console, err_console, fail, print_json

app = typer.Typer(help="Validate, show and draw protocol YAML files.", no_args_is_help=True)

FileArg = Annotated[Path | None, typer.Argument(help="Protocol YAML file (default: the bundled protocol).",
                                                show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _load(file: Path | None):  # type: ignore[no-untyped-def]  # returns trialflow.protocol.Protocol
    from trialflow.protocol import ProtocolError, load_bundled_protocol, load_protocol
    from trialflow.rules import RuleLoadError

    try:
        return load_bundled_protocol() if file is None else load_protocol(file)
    except ProtocolError as err:
        fail([str(p) for p in err.problems])
    except RuleLoadError as err:
        fail(str(err))


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files to check.", show_default=False)],
) -> None:
    """Check protocol files; print every error as FILE:LINE:COL: PATH: MESSAGE (exit 1 if any)."""
    from trialflow.protocol import ProtocolError, load_protocol

    bad = 0
    for f in files:
        try:
            p = load_protocol(f)
        except ProtocolError as err:
            bad += 1
            for prob in err.problems:
                err_console.print(str(prob), markup=False)
            continue
        console.print(f"{f}: valid — {p.study.id} v{p.version}, {len(p.phases)} phases, {len(p.visits)} visits, "
                      f"{len(p.decision.criteria)} criteria, {len(p.decision.branches)} branches "
                      f"(sha256 {p.content_hash[:12]})", markup=False)
    if bad:
        raise typer.Exit(code=1)


@app.command()
def show(file: FileArg = None, as_json: JsonOpt = False) -> None:
    """Print a protocol: phases, decision and branches, and the schedule of activities."""
    proto = _load(file)
    if as_json:
        print_json(proto.to_dict())
        return
    from ._protocol_view import render_protocol

    console.print(render_protocol(proto))


@app.command()
def schema() -> None:
    """Print the protocol JSON Schema (draft 2020-12), e.g. for an editor's YAML validation."""
    from trialflow.protocol import protocol_schema

    print(json.dumps(protocol_schema(), indent=2, ensure_ascii=False))


@app.command()
def diagram(file: FileArg = None) -> None:
    """Print the phase graph as Mermaid stateDiagram-v2 text."""
    from trialflow.engine import phase_diagram

    print(phase_diagram(_load(file)))
