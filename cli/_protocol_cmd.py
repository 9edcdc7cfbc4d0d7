"""``trialflow protocol``: validate, show, schema, diagram."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

from ._common import AsOfOpt, DbOpt, PasswordStdinOpt, UserOpt, call, open_store, parse_date, resolve_user
from ._output import fail, print_json, print_line

app = typer.Typer(help="Validate, show, draw, diff and amend protocol versions.", no_args_is_help=True)

FileArg = Annotated[Path | None, typer.Argument(help="Protocol YAML file (default: the bundled protocol).",
                                                show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _load(file: Path | None) -> "Protocol":
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
                print_line(str(prob), err=True)
            continue
        print_line(f"{f}: valid — {p.study.id} v{p.version}, {len(p.phases)} phases, {len(p.visits)} visits, "
                   f"{len(p.decision.criteria)} criteria, {len(p.decision.branches)} branches "
                   f"(sha256 {p.content_hash[:12]})")
    if bad:
        raise typer.Exit(code=1)


@app.command()
def show(file: FileArg = None, as_json: JsonOpt = False) -> None:
    """Print a protocol: phases, decision and branches, and the schedule of activities."""
    proto = _load(file)
    if as_json:
        print_json(proto.to_dict())
        return
    from ._output import console
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


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The current protocol YAML.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The amended protocol YAML.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """What changes from OLD to NEW, as an amendment's change log (semantic, not textual)."""
    from trialflow.protocol import diff_protocols

    changes = diff_protocols(_load(old), _load(new))
    if as_json:
        print_json(changes)
        return
    from ._amend_view import render_changes
    from ._output import console

    console.print(render_changes(changes))


@app.command()
def amend(
    new: Annotated[Path, typer.Argument(help="The amended protocol YAML.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why the protocol is amended.")],
    apply: Annotated[bool, typer.Option("--apply", help="Register the version (default: a dry run).")] = False,
    as_of: AsOfOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """Validate NEW, show its impact on every enrolled patient, and (with --apply) register it."""
    from trialflow.engine import amend as do_amend

    report = call(do_amend, open_store(db), new, reason, resolve_user(user, password_stdin), apply=apply,
                  as_of=parse_date(as_of, "--as-of"))
    if as_json:
        print_json(report)
        return
    from ._amend_view import render_amendment
    from ._output import console

    for part in render_amendment(report):
        console.print(part)


@app.command()
def migrate(
    patients: Annotated[list[str] | None, typer.Argument(help="Study ids (or --all).", show_default=False)] = None,
    to: Annotated[str, typer.Option(
        "--to", help="Target version: its version string, or at least 6 characters of its hash.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why the patients move.")] = "",
    all_: Annotated[bool, typer.Option("--all", help="Every patient the version's migration policy moves.")] = False,
    db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """Move patients onto another protocol version; recorded per patient, undone by migrating back."""
    from trialflow.engine import migrate as do_migrate

    if not to:
        fail("--to VERSION is required", code=2)
    if bool(patients) == all_:
        fail("name the patients or give --all (not both)", code=2)
    if not reason.strip():
        fail("--reason is required: why the patients move", code=2)
    who = resolve_user(user, password_stdin)
    result = call(do_migrate, open_store(db), None if all_ else list(patients or []), to, reason, who)
    if as_json:
        print_json(result)
        return
    for w in result:
        print_line(w.message)


@app.command()
def versions(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered protocol version: date, reason, author, content hash, patients on it."""
    store = open_store(db)
    rows = call(store.versions)
    if as_json:
        print_json(rows)
        return
    from ._tables import Column, print_table

    print_table([Column("version"), Column("registered (UTC)"), Column("by"), Column("reason", "text"),
                 Column("sha256"), Column("patients", justify="right")],
                [(v.version, v.registered_at.strftime("%Y-%m-%d %H:%M"), v.registered_by, v.reason,
                  v.content_hash[:12], str(v.patients)) for v in rows], hint="trialflow protocol versions --json")
