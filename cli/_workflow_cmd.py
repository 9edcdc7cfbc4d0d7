"""Commands that change the store: init, enroll, start, record, import, correct, decide, withdraw, complete."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    DbOpt,
    JsonOpt,
    PasswordStdinOpt,
    UserOpt,
    call,
    open_store,
    parse_date,
    read_new_password,
    resolve_user,
)
from ._output import fail, print_json, print_line

DateOpt = Annotated[str, typer.Option("--date", metavar="DATE", help="Effective date, YYYY-MM-DD.",
                                      show_default=False)]
PatientArg = Annotated[
    str, typer.Argument(metavar="ID", help="Study id (a pseudonym such as P-001).", show_default=False)
]


def _written(result: Any, as_json: bool) -> None:
    items = result if isinstance(result, list) else [result]
    if as_json:
        print_json(result)
        return
    for w in items:
        print_line(w.message)
        for warning in getattr(w, "warnings", ()):
            print_line(f"note: {warning}", err=True)


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a number, got {text!r}", param_hint=option) from None


def _answers_file(path: Path) -> tuple[Any, dict[str, Any]]:
    """An eligibility answers file (criterion id → yes/no): the document (for its lines) and its mapping."""
    from trialflow.protocol import load_document

    doc = call(load_document, path)
    if not isinstance(doc.data, dict):
        fail(str(doc.problem([], "expected a mapping of criterion id to yes/no")))
    return doc, doc.data


def _at_answer_lines(doc: Any, answers: dict[str, Any], work: Any) -> Any:
    """``work()``, a refused answer named at its line in the answers file (the engine's problem names its
    criterion as its ``field``)."""
    from trialflow.engine import Refused

    def located() -> Any:
        try:
            return work()
        except Refused as err:
            fields = [getattr(p, "field", None) for p in err.problems]
            raise Refused(*(str(doc.problem([str(f)], p)) if f in answers else p
                            for f, p in zip(fields, err.problems, strict=True))) from None

    return call(located)


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the top-level app."""

    @app.command()
    def init(
        protocol: Annotated[Path | None, typer.Option("--protocol", metavar="FILE",
                                                      help="Protocol YAML (default: bundled).")] = None,
        admin: Annotated[str | None, typer.Option("--admin", metavar="NAME", help="Create the first admin: from then "
                                                  "on every command authenticates.")] = None,
        full_name: Annotated[str | None, typer.Option("--full-name", metavar="TEXT",
                                                      help="The admin's full name.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Create the store and register the protocol; with --admin, its first user."""
        from trialflow.engine import add_user, check_name, check_password, init_store, store_users
        from trialflow.engine._db import PREPARED

        password = None
        if admin is not None:
            name = call(check_name, admin)
            password = read_new_password(name, password_stdin, "TRIALFLOW_PASSWORD")
            call(check_password, password, name)
        store, version = call(init_store, db, protocol, admin or resolve_user(user).name)
        if admin is not None and password is not None:
            call(add_user, store, admin, admin, "admin", password, full_name=full_name, first_admin=True)
        schema = PREPARED.get(store.engine)
        users = call(store_users, store)
        if as_json:
            print_json({"store": store.url, "schema": schema, "protocol": version, "users": users})
            return
        if schema:
            print_line(f"store {store.url}: {schema}")
        if version.newly_registered:
            print_line(f"store {store.url}: protocol {version.study_id} v{version.version} registered "
                       f"(sha256 {version.content_hash[:12]})")
        else:
            held = ", ".join(f"v{v.version} ({v.patients} patients)" for v in store.versions())
            print_line(f"store {store.url} already holds {version.study_id}: {held}; newest v{version.version} "
                       f"(sha256 {version.content_hash[:12]}). Nothing changed"
                       + (" but the schema" if schema else ""))
        if admin is not None:
            print_line(f"first admin {admin.lower()} created: from now on every command authenticates "
                       "(--user NAME and a password)")
        elif users == 0:
            print_line("no users: single-user mode, anyone who can open this store acts under a free-text "
                       "--user name; create the first admin with trialflow init --admin NAME")
        else:
            print_line(f"{users} user(s): every command authenticates (--user NAME and a password)")

    @app.command()
    def enroll(
        patient: PatientArg, date: DateOpt,
        eligibility: Annotated[Path, typer.Option("--eligibility", metavar="FILE",
                                                  help="YAML mapping criterion id → yes/no.", show_default=False)],
        site: Annotated[str | None, typer.Option("--site", metavar="CODE", help="The patient's site (default: the "
                                                 "store's only site, or yours).")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Screen and enrol a patient; ineligible patients are recorded as screen failures."""
        from trialflow.engine import enroll as do_enroll

        doc, answers = _answers_file(eligibility)
        store = open_store(db)
        when = parse_date(date)  # (--date is required: never None here)
        result = _at_answer_lines(doc, answers, lambda: do_enroll(store, patient, when, answers,  # type: ignore[arg-type]
                                                                   resolve_user(user, password_stdin), site))
        if as_json:
            print_json(result)
        elif result.eligible:
            print_line(f"{patient}: enrolled under protocol v{result.protocol_version}; phase {result.phase}")
        else:
            print_line(f"{patient}: screen failure recorded; not met: {', '.join(result.unmet)}")

    @app.command()
    def rescreen(
        patient: PatientArg,
        eligibility: Annotated[Path, typer.Option("--eligibility", metavar="FILE", show_default=False,
                                                  help="YAML mapping criterion id → yes/no.")],
        version: Annotated[str | None, typer.Option(
            "--version", metavar="VERSION", help="The protocol version whose criteria these are, one the patient "
            "is to be migrated to (default: its own).")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Answer eligibility criteria for a patient still in screening, such as those a new version adds."""
        from trialflow.engine import rescreen as do_rescreen

        doc, answers = _answers_file(eligibility)
        store = open_store(db)
        result = _at_answer_lines(doc, answers, lambda: do_rescreen(store, patient, answers,
                                                                     resolve_user(user, password_stdin), version))
        if as_json:
            print_json(result)
        else:
            print_line(result.message)

    @app.command()
    def start(
        patient: PatientArg, date: DateOpt,
        dispense_days: Annotated[int, typer.Option("--dispense-days", metavar="DAYS", min=1, max=365,
                                                   help="Days of the first supply, dispensed on day 0.")] = 28,
        no_dispense: Annotated[bool, typer.Option("--no-dispense", help="Do not record the first dispensing "
                                                  "here (e.g. the pharmacy records it).")] = False,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Day 0: the first dose, and its supply dispensed. The treatment schedule is anchored here."""
        from trialflow.engine import start as do_start

        _written(call(do_start, open_store(db), patient, parse_date(date), resolve_user(user, password_stdin),
                      None if no_dispense else dispense_days), as_json)

    @app.command()
    def record(
        patient: PatientArg,
        kind: Annotated[str, typer.Argument(metavar="KIND", help="tg, tgab, ct, rai_scan, adverse_event, dose_change, "
                                                                 "rai_therapy or dispense.", show_default=False)],
        date: DateOpt,
        value: Annotated[str | None, typer.Option(metavar="UG_PER_L", help="tg: value in ug/L, or '<LoQ' such as "
                                                                          "'<0.2'.")] = None,
        unit: Annotated[str | None, typer.Option(metavar="UNIT", help="tg: ug/L (default) or ng/mL.")] = None,
        loq: Annotated[float | None, typer.Option(metavar="UG_PER_L", help="tg: limit of quantitation.")] = None,
        stimulated: Annotated[bool, typer.Option("--stimulated", help="tg: drawn after rhTSH or withdrawal.")] = False,
        tgab: Annotated[str | None, typer.Option("--tgab", metavar="RESULT", help="tg: the TgAb result of the same "
                                                 "sample (negative or positive), recorded with it.")] = None,
        result: Annotated[str | None, typer.Option(metavar="RESULT", help="tgab: positive or negative.")] = None,
        target: Annotated[list[str] | None, typer.Option(
            metavar="ID:ORGAN:MM", help="ct: target lesion ID:ORGAN:MM[:nodal] (repeat).")] = None,
        non_target: Annotated[list[str] | None, typer.Option(
            metavar="ID:ORGAN:STATUS", help="ct: non-target, STATUS present, absent or unequivocal_progression "
                                            "(repeat).")] = None,
        new_lesion: Annotated[list[str] | None, typer.Option(metavar="SITE",
                                                             help="ct: a new lesion's site (repeat).")] = None,
        slice_thickness: Annotated[float | None, typer.Option(metavar="MM", help="ct: slice thickness in mm.")] = None,
        not_evaluated: Annotated[bool, typer.Option("--not-evaluated", help="ct: the scan could not be "
                                                                            "assessed.")] = False,
        modalities: Annotated[str | None, typer.Option(metavar="LIST", help="rai_scan: planar,spect.")] = None,
        avid: Annotated[list[str] | None, typer.Option(metavar="LESION",
                                                       help="rai_scan: an RaI-avid lesion id (repeat).")] = None,
        term: Annotated[str | None, typer.Option(metavar="TERM", help="adverse_event: CTCAE v5 term.")] = None,
        grade: Annotated[int | None, typer.Option(metavar="GRADE", help="adverse_event: CTCAE grade 1-5.")] = None,
        resolved: Annotated[str | None, typer.Option(metavar="DATE", help="adverse_event: date resolved "
                                                     "(--date is the onset).")] = None,
        serious: Annotated[bool, typer.Option("--serious", help="adverse_event: a serious adverse event "
                                                                "(SAE).")] = False,
        relatedness: Annotated[str | None, typer.Option(metavar="RELATEDNESS", help="adverse_event: to the study "
                                                        "drug: not_related, unlikely, possible, probable or "
                                                        "definite.")] = None,
        action: Annotated[str | None, typer.Option(metavar="ACTION", help="adverse_event: action with the study "
                                                   "drug: none, dose_reduced, interrupted or stopped.")] = None,
        dose: Annotated[float | None, typer.Option(metavar="MG_PER_DAY", help="dose_change / dispense: mg/day "
                                                                              "(0 = stopped).")] = None,
        days: Annotated[int | None, typer.Option(metavar="DAYS", help="dispense: days of supply (default 28).")] \
            = None,
        activity: Annotated[float | None, typer.Option(metavar="MBQ", help="rai_therapy: activity administered, "
                                                                          "MBq.")] = None,
        reason: Annotated[str | None, typer.Option(metavar="TEXT", help="dose_change: why.")] = None,
        confirm_unusual: Annotated[str | None, typer.Option(
            "--confirm-unusual", metavar="REASON", help="Record a value outside the protocol's plausible range; "
            "the reason it is right is stored with it.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Record one observation or treatment record (a Tg with its TgAb: --tgab)."""
        from trialflow.engine import record_many

        from ._record_options import build_record

        opts = dict(value=value, unit=unit, loq=loq, stimulated=stimulated, result=result, target=target,
                    non_target=non_target, new_lesion=new_lesion, slice_thickness=slice_thickness,
                    not_evaluated=not_evaluated, modalities=modalities, avid=avid, term=term, grade=grade, dose=dose,
                    days=days, activity=activity, reason=reason, tgab=tgab, resolved=resolved, serious=serious,
                    relatedness=relatedness, action=action)
        when = parse_date(date)
        data = build_record(kind, when, opts)
        items = [(patient, data)]
        if tgab is not None:
            items.append((patient, build_record("tgab", when, {"result": tgab})))
        who = resolve_user(user, password_stdin)
        written = call(record_many, open_store(db), items, who, confirm_unusual=confirm_unusual)
        _written(written[0], as_json)

    @app.command("import")
    def import_(
        file: Annotated[str, typer.Argument(
            metavar="FILE", show_default=False,
            help="Case file (.yaml/.json) or laboratory CSV; a .xml file, or the word odm then FILE: CDISC ODM 1.3.")],
        odm_file: Annotated[Path | None, typer.Argument(
            metavar="ODM_FILE", show_default=False, help="After the word odm: the ODM file.")] = None,
        confirm_unusual: Annotated[str | None, typer.Option(
            "--confirm-unusual", metavar="REASON", help="Import the file's values outside the protocol's plausible "
            "ranges; the reason they are right is stored with each.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Import a case file, a CSV of laboratory results, or ODM clinical data; importing twice adds nothing."""
        from trialflow.engine import import_file

        if odm_file is not None and file != "odm":
            fail(f"one file at a time: got {file!r} and {str(odm_file)!r} (for ODM: trialflow import odm FILE)",
                 code=2)
        if file == "odm" or Path(file).suffix.lower() == ".xml":
            from ._exchange_cmd import import_odm_command

            if file == "odm" and odm_file is None:
                fail("trialflow import odm FILE: the ODM file is missing", code=2)
            import_odm_command(odm_file if odm_file is not None else Path(file), db,
                               resolve_user(user, password_stdin), as_json, confirm_unusual)
            return
        store = open_store(db)
        _written(call(import_file, store, Path(file), resolve_user(user, password_stdin),
                      confirm_unusual=confirm_unusual), as_json)

    @app.command()
    def correct(
        patient: PatientArg,
        event: Annotated[int, typer.Argument(metavar="EVENT", help="The observation event to correct (see history).",
                                             show_default=False)],
        reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why the value is corrected.",
                                            show_default=False)],
        retract: Annotated[bool, typer.Option("--retract", help="Withdraw the observation instead of correcting "
                                                                "it.")] = False,
        date: Annotated[str | None, typer.Option(metavar="DATE", help="Corrected date.")] = None,
        value: Annotated[str | None, typer.Option(metavar="UG_PER_L", help="tg: corrected value.")] = None,
        result: Annotated[str | None, typer.Option(metavar="RESULT", help="tgab: corrected result.")] = None,
        grade: Annotated[int | None, typer.Option(metavar="GRADE", help="adverse_event: corrected grade.")] = None,
        dose: Annotated[float | None, typer.Option(metavar="MG_PER_DAY",
                                                   help="dose_change / dispense: corrected mg/day.")] = None,
        confirm_unusual: Annotated[str | None, typer.Option(
            "--confirm-unusual", metavar="REASON", help="Correct to a value outside the protocol's plausible "
            "range; the reason it is right is stored with the correction.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Correct or retract an observation; the original and the correction both stay in history."""
        from trialflow.engine import correct as do_correct

        changes: dict[str, Any] = {}
        if date is not None:
            parsed = parse_date(date)
            changes["date"] = parsed.isoformat() if parsed else None
        if value is not None:
            changes["value"] = value.strip() if value.strip().startswith("<") else _number(value, "--value")
        for key, given in (("result", result), ("grade", grade), ("dose_mg_per_day", dose)):
            if given is not None:
                changes[key] = given
        if retract == bool(changes):
            fail("give the corrected field(s) (--value, --date, ...) or --retract, not both", code=2)
        store = open_store(db)
        data = None if retract else changes
        _written(call(do_correct, store, patient, event, data, reason, resolve_user(user, password_stdin),
                      confirm_unusual=confirm_unusual), as_json)

    @app.command()
    def decide(
        patient: PatientArg, date: DateOpt,
        override: Annotated[str | None, typer.Option(metavar="PHASE",
                                                    help="Take this branch phase instead of the recommended one.")]
        = None,
        reason: Annotated[str | None, typer.Option(metavar="TEXT", help="Why (required with --override).")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Confirm (or override) the decision and move the patient to its branch."""
        from trialflow.engine import decide as do_decide

        if override is not None and not (reason or "").strip():
            fail("--override needs --reason (why the investigator departs from the recommendation)", code=2)
        login = resolve_user(user, password_stdin, f" (signs the decision for {patient})")
        _written(call(do_decide, open_store(db), patient, parse_date(date), login, override, reason,
                      signature=login.password), as_json)

    @app.command()
    def withdraw(
        patient: PatientArg, date: DateOpt,
        reason: Annotated[str, typer.Option(
            metavar="REASON", show_default=False, help="consent, toxicity, death, lost_to_follow_up, progression or "
                                                 "investigator.")],
        note: Annotated[str | None, typer.Option(metavar="TEXT", help="Free-text detail.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Early termination, with the protocol's reason."""
        from trialflow.engine import withdraw as do_withdraw

        who = resolve_user(user, password_stdin)
        _written(call(do_withdraw, open_store(db), patient, parse_date(date), reason, who, note), as_json)

    @app.command()
    def complete(
        patient: PatientArg, date: DateOpt,
        early: Annotated[bool, typer.Option("--early", help="End the phase before its planned end (needs "
                                                            "--reason).")] = False,
        reason: Annotated[str | None, typer.Option("--reason", metavar="TEXT", help="Why it ends early.")] = None,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """End a treatment phase that has run its course (e.g. continued Sorafenib → end of study).

        Before the phase's planned end it is refused unless --early --reason TEXT is given; a mistaken
        completion is undone with trialflow reverse ID EVENT.
        """
        from trialflow.engine import complete_phase

        if early and not (reason or "").strip():
            fail("--early needs --reason (why the phase ends before its planned end)", code=2)
        who = resolve_user(user, password_stdin)
        _written(call(complete_phase, open_store(db), patient, parse_date(date), who, early=early,
                      reason=reason), as_json)
