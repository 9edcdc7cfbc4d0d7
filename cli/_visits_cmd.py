"""The coordinator's visit and safety commands: visits, deviation, skip, screen-fail, stop-drug, reverse, safety."""

import datetime as dt
from typing import Annotated, Any

import typer

from ._common import (
    AsOfOpt,
    DbOpt,
    JsonOpt,
    KnownAtOpt,
    PasswordStdinOpt,
    UserOpt,
    call,
    open_store,
    parse_date,
    resolve_user,
)
from ._long_lists import AllOpt, LimitOpt, page
from ._output import print_json, print_line
from ._tables import Column, print_table, say
from ._workflow_cmd import PatientArg, _written

_STATUSES = ("upcoming", "due", "overdue", "done", "missed", "skipped", "not_required")
ReasonOpt = Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (kept in the audit trail).",
                                        show_default=False)]
VisitArg = Annotated[str, typer.Argument(metavar="VISIT", help="Visit id, as trialflow visits ID lists it.",
                                         show_default=False)]


def _today() -> str:
    return dt.date.today().isoformat()


DateTodayOpt = Annotated[str | None, typer.Option("--date", metavar="DATE", show_default=f"today, {_today()}",
                                                  help="Effective date, YYYY-MM-DD.")]


def _state_text(v: Any) -> str:
    if v.status == "missed":
        return "missed, deviation" if v.deviations else "missed"
    return str(v.status).replace("_", " ")


def _what(v: Any) -> str:
    parts = []
    if v.records:
        parts.append("; ".join(f"{r.kind} {r.date} (event {r.event})" for r in v.records))
    if v.missing and v.status not in ("not_required",):
        parts.append(v.missing_text)
    if v.skip_reason:
        parts.append(f"skipped: {v.skip_reason}")
    for d in v.deviations:
        parts.append(f"deviation {d.kind} ({d.date}): {d.reason}")
    return "; ".join(parts)


def _ledger_rows(vs: list[Any], with_patient: bool) -> tuple[list[Column], list[list[str]]]:
    cols = [*([Column("patient")] if with_patient else []), Column("visit"), Column("target"),
            Column("window", optional=True), Column("status"), Column("records / missing", "text", min_width=16)]
    rows = [[*([v.patient] if with_patient else []), v.visit, str(v.target_date),
             f"{v.window_start:%d %b}–{v.window_end:%d %b %Y}", _state_text(v), _what(v)] for v in vs]
    return cols, rows


def register(app: typer.Typer) -> None:
    @app.command()
    def visits(
        patient: Annotated[str | None, typer.Argument(metavar="ID", help="This patient's ledger (default: the "
                                                                         "cohort, with --status).",
                                                      show_default=False)] = None,
        status: Annotated[str | None, typer.Option("--status", metavar="STATUS", help=f"Only visits in this state: "
                                                   f"{', '.join(_STATUSES)}.")] = None,
        unresolved: Annotated[bool, typer.Option("--unresolved", help="Only visits still calling for action "
                                                 "(missed without a deviation).")] = False,
        site: Annotated[str | None, typer.Option("--site", metavar="CODE", help="Only the patients of this site "
                                                 "(across the cohort; not with ID).")] = None,
        as_of: AsOfOpt = None, known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
        limit: LimitOpt = None, show_all: AllOpt = False,
    ) -> None:
        """The visit ledger: every visit with its target date, window, state, records and what is missing."""
        from trialflow.engine import cohort_visits
        from trialflow.engine import visits as ledger

        from ._common import parse_known_at

        if status is not None and status not in _STATUSES:
            raise typer.BadParameter(f"expected one of {', '.join(_STATUSES)}, got {status!r}", param_hint="--status")
        store = open_store(db)
        day = parse_date(as_of, "--as-of") or dt.date.today()
        if patient is not None and site is not None:
            raise typer.BadParameter("a patient's ledger is one patient's; --site filters the cohort (leave out ID)",
                                     param_hint="--site")
        if patient is not None:
            result = call(ledger, store, patient, as_of=day, known_at=parse_known_at(known_at),
                          actor=resolve_user(user, password_stdin))
            vs = [v for v in result.visits if (status is None or v.status == status)
                  and not (unresolved and v.resolved)]
            if as_json:
                print_json(result if status is None and not unresolved else vs)
                return
            title = f"Visits of {patient} as of {day} (phase {result.phase}, protocol v{result.protocol_version})"
            cols, rows = _ledger_rows(vs, with_patient=False)
            print_table(cols, rows, title=title, hint=f"trialflow visits {patient} --json")
            for p in result.unscheduled:
                print_line(f"{p}: visits get their dates at day 0 (trialflow start {patient})")
            return
        vs = call(cohort_visits, store, status=status, unresolved=unresolved, as_of=day, site=site,
                  known_at=parse_known_at(known_at), actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(vs)
            return
        what = (f"{status} visits" if status else "visits") + (f" at site {site}" if site else "")
        if not vs:
            print_line(f"no {what} as of {day}")
            return
        # the cohort's list is cut to a screenful; the rows left out are counted by state (by phase with --status)
        shown = page(vs, (lambda v: str(v.phase)) if status else (lambda v: str(v.status)), limit=limit,
                     show_all=show_all)
        cols, rows = _ledger_rows(list(shown.rows), with_patient=True)
        print_table(cols, rows, title=f"{what[0].upper()}{what[1:]} as of {day} ({len(vs)})",
                    hint="trialflow visits --json")
        if (more := shown.footer()) is not None:
            print_line(more)

    @app.command()
    def deviation(
        patient: PatientArg, visit: VisitArg,
        kind: Annotated[str, typer.Option("--kind", metavar="KIND", help="missed, out_of_window, not_done or other.",
                                          show_default=False)],
        reason: ReasonOpt, date: DateTodayOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Record a protocol deviation for a visit; a missed visit leaves the worklist once it has one."""
        from trialflow.engine import deviation as do_deviation

        when = parse_date(date) or dt.date.today()
        who = resolve_user(user, password_stdin)
        _written(call(do_deviation, open_store(db), patient, visit, kind, reason, when, who), as_json)

    @app.command()
    def skip(patient: PatientArg, visit: VisitArg, reason: ReasonOpt, date: DateTodayOpt = None, db: DbOpt = None,
             user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False) -> None:
        """Mark a visit as not to be done, with the reason; the decision no longer waits for it."""
        from trialflow.engine import skip_visit

        when = parse_date(date) or dt.date.today()
        who = resolve_user(user, password_stdin)
        _written(call(skip_visit, open_store(db), patient, visit, reason, when, who), as_json)

    @app.command("screen-fail")
    def screen_fail(
        patient: PatientArg,
        date: Annotated[str, typer.Option("--date", metavar="DATE", help="Effective date, YYYY-MM-DD.",
                                          show_default=False)],
        reason: ReasonOpt, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """A patient still in screening does not qualify after all (baseline incomplete, a criterion unmet)."""
        from trialflow.engine import screen_fail as do_screen_fail

        who = resolve_user(user, password_stdin)
        _written(call(do_screen_fail, open_store(db), patient, parse_date(date), reason, who),
                 as_json)

    @app.command("stop-drug")
    def stop_drug(
        patient: PatientArg,
        date: Annotated[str, typer.Option("--date", metavar="DATE", help="Last day of the drug, YYYY-MM-DD.",
                                          show_default=False)],
        reason: ReasonOpt, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Stop the study drug (recorded as a dose change to 0 mg/day with the reason)."""
        from trialflow.engine import stop_drug as do_stop

        who = resolve_user(user, password_stdin)
        _written(call(do_stop, open_store(db), patient, parse_date(date), reason, who), as_json)

    @app.command()
    def reverse(
        patient: PatientArg,
        event: Annotated[int, typer.Argument(metavar="EVENT", help="The completion, withdrawal or screen-failure "
                                             "event to reverse (see trialflow history ID).", show_default=False)],
        reason: ReasonOpt, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Undo a mistaken completion, withdrawal or screen failure; both events stay in history."""
        from trialflow.engine import reverse as do_reverse

        _written(call(do_reverse, open_store(db), patient, event, reason, resolve_user(user, password_stdin)), as_json)

    @app.command()
    def safety(as_of: AsOfOpt = None, known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
               password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False) -> None:
        """Adverse events per patient and CTCAE grade, serious adverse events and dose reductions."""
        from trialflow.engine import safety as do_safety

        from ._common import parse_known_at

        r = call(do_safety, open_store(db), as_of=parse_date(as_of, "--as-of"), known_at=parse_known_at(known_at),
                 actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(r)
            return
        render_safety(r)


def render_safety(r: Any) -> None:
    say(f"Safety as of {r.as_of}: {r.treated} treated; {r.patients_grade3_plus} with a grade ≥ 3 adverse event, "
        f"{r.patients_with_sae} with a serious adverse event ({r.serious_events} SAEs), {r.patients_dose_reduced} "
        "with a dose reduction")
    rows = []
    for p in r.patients:
        for e in p.events:
            rows.append([p.patient, str(e.grade), str(e.onset), str(e.resolved or "ongoing"), "yes" if e.serious
                         else "no", (e.relatedness or "").replace("_", " "), e.action.replace("_", " "), e.term])
        if not p.events:
            rows.append([p.patient, "", "", "", "", "", "dose reduced", "(dose change without an adverse event)"])
    if rows:
        print_table([Column("patient"), Column("grade", justify="right"), Column("onset"),
                     Column("resolved", optional=True), Column("SAE"), Column("related"),
                     Column("action", "text", min_width=8), Column("term", "text", min_width=14)], rows,
                    title="Adverse events (CTCAE v5)", hint="trialflow safety --json")
    if r.patients_by_worst_grade:
        say("patients by worst grade: " + ", ".join(f"grade {g}: {n}" for g, n in r.patients_by_worst_grade.items()))
