"""``trialflow export odm|fhir|sdtm-design|sdtm-dv`` and the ODM branch of ``trialflow import``.

odmlib and fhir.resources are imported only inside these commands, so ``trialflow --help`` and every
other command start without them; without the ``exchange`` extra the commands say how to install it.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import DbOpt, JsonOpt, PasswordStdinOpt, UserOpt, call, open_store, resolve_user
from ._output import console, err_console, fail, print_json

app = typer.Typer(
    help="Export the store for the systems trial teams use: CDISC ODM 1.3.2, HL7 FHIR R5, SDTM trial design and DV.",
    no_args_is_help=True,
)

INSTALL_HINT = "the exchange formats need the 'exchange' extra: pip install 'trialflow[exchange]'"


def _require_exchange() -> None:
    """Exit 1 with the install command when odmlib or fhir.resources is missing (never a traceback)."""
    try:
        import fhir.resources  # noqa: F401
        import odmlib  # noqa: F401
    except ImportError as err:
        fail(f"{INSTALL_HINT} ({err.name} is not installed)")


def _schema_errors() -> Any:
    from trialflow.exchange import OdmSchemaError

    return OdmSchemaError


@app.command("odm")
def export_odm_cmd(
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write the XML here (default: stdout).")]
    = None,
    metadata_only: Annotated[bool, typer.Option("--metadata-only",
                                                help="Only the study metadata: no users, no clinical data.")] = False,
    db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """CDISC ODM 1.3.2: metadata per protocol version, users, and every event with its audit trail."""
    _require_exchange()
    from trialflow.exchange import export_odm

    store = open_store(db)
    try:
        result = call(export_odm, store, out, metadata_only=metadata_only,
                      actor=None if metadata_only else resolve_user(user, password_stdin))
    except _schema_errors() as err:  # a bug, not a user mistake, but still no traceback
        fail([f"the export does not validate, nothing was written: {p}" for p in err.problems])
    if out is None and not as_json:
        print(result.xml, end="")
        return
    if as_json:
        print_json(result)
        return
    console.print(f"{out}: ODM 1.3.2 {result.file_oid}; {len(result.metadata_versions)} metadata version(s), "
                  f"{result.patients} subject(s), {result.events} event(s), {result.users} user(s); valid against "
                  f"{result.schema}", markup=False)


@app.command("fhir")
def export_fhir_cmd(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for the resources and the Bundle.")]
    = Path("fhir"),
    db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """HL7 FHIR R5: ResearchStudy, PlanDefinition, a ResearchSubject per patient, Tg/TgAb Observations, a Bundle."""
    _require_exchange()
    from trialflow.exchange import export_fhir

    result = call(export_fhir, open_store(db), out, actor=resolve_user(user, password_stdin))
    if as_json:
        print_json(result)
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in result.counts.items())
    console.print(f"{out}: FHIR R5 {counts}; Bundle {result.bundle}", markup=False)


@app.command("sdtm-design")
def export_sdtm_cmd(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for the datasets.")] = Path("sdtm"),
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="json (Dataset-JSON 1.1) or csv.")] = "json",
    db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """SDTM trial design domains TA, TE, TV, TI and TS from the protocol, as Dataset-JSON or CSV."""
    if fmt not in ("json", "csv"):
        raise typer.BadParameter(f"expected json or csv, got {fmt!r}", param_hint="--format")
    _require_exchange()
    from trialflow.exchange import export_sdtm_design

    store = open_store(db)
    protocol = call(lambda: store.protocol()[0])
    result = call(export_sdtm_design, protocol, out, fmt)
    if as_json:
        print_json(result)
        return
    console.print(f"{out}: SDTM trial design for {result.study} v{result.version}: "
                  + ", ".join(f"{d} {n} rows" for d, n in result.rows.items()), markup=False)


@app.command("sdtm-dv")
def export_sdtm_dv_cmd(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for the dataset.")] = Path("sdtm"),
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="json (Dataset-JSON 1.1) or csv.")] = "json",
    db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """SDTM DV (protocol deviations): one row per recorded deviation, as Dataset-JSON or CSV."""
    if fmt not in ("json", "csv"):
        raise typer.BadParameter(f"expected json or csv, got {fmt!r}", param_hint="--format")
    _require_exchange()
    from trialflow.exchange import export_sdtm_dv

    result = call(export_sdtm_dv, open_store(db), out, fmt, actor=resolve_user(user, password_stdin))
    if as_json:
        print_json(result)
        return
    console.print(f"{result.file}: SDTM DV for {result.study}: {result.rows} deviation(s) of {result.subjects} "
                  "subject(s)", markup=False)


def import_odm_command(file: Path, db: str | None, user: Any, as_json: bool,
                       confirm_unusual: str | None = None) -> None:
    """``trialflow import odm FILE [--confirm-unusual REASON]`` (called by the import command)."""
    _require_exchange()
    from trialflow.exchange import import_odm

    result = call(import_odm, open_store(db), file, user, confirm_unusual=confirm_unusual)
    if as_json:
        print_json(result)
        return
    for w in result.written:
        console.print(w.message, markup=False)
    for skipped in result.skipped[:5]:
        err_console.print(f"note: skipped the source system's own field {skipped}", markup=False)
    if len(result.skipped) > 5:
        err_console.print(f"note: ... and {len(result.skipped) - 5} more such fields", markup=False)
    console.print(result.message, markup=False)
