"""Oversight: data queries (`query open/answer/close/list`), the case-book lock, and the audit trail."""

from typing import Annotated

import typer

from ._common import DbOpt, JsonOpt, PasswordStdinOpt, UserOpt, call, open_store, parse_date, resolve_user
from ._long_lists import AllOpt, LimitOpt, page
from ._output import console, print_json
from ._tables import Column, print_table, say

query_app = typer.Typer(help="Data queries on recorded events: open (monitor, data manager), answer (site), close "
                             "(data manager).", no_args_is_help=True)
app = typer.Typer()  # top-level commands: lock, unlock, audit

PatientArg = Annotated[str, typer.Argument(metavar="PATIENT", help="Study id.", show_default=False)]
QueryArg = Annotated[int, typer.Argument(metavar="QUERY", help="The query's id (see query list).", show_default=False)]
TextOpt = Annotated[str, typer.Option("--text", help="What is asked / answered.")]


def _print_query(q: object, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(q)
        return
    console.print(f"query {q.id} {verb} ({q.patient}, event {q.event}): {q.status}",  # type: ignore[attr-defined]
                  markup=False)


@query_app.command("open")
def query_open(patient: PatientArg,
               event: Annotated[int, typer.Argument(metavar="EVENT", help="The recorded event questioned (see "
                                                                          "history).", show_default=False)],
               text: TextOpt,
               to: Annotated[str | None, typer.Option("--to", metavar="USER", help="Assign to this user (default: the "
                                                                                   "patient's site).")] = None,
               db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
               as_json: JsonOpt = False) -> None:
    """Open a data query on one recorded event (monitor, data manager)."""
    from trialflow.engine import open_query

    q = call(open_query, open_store(db), patient, event, text, resolve_user(user, password_stdin), to)
    _print_query(q, "opened", as_json)


@query_app.command("answer")
def query_answer(query: QueryArg, text: TextOpt, db: DbOpt = None, user: UserOpt = None,
                 password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False) -> None:
    """Answer a query (coordinator, investigator at the patient's site); correct the value with `correct`."""
    from trialflow.engine import answer_query

    _print_query(call(answer_query, open_store(db), query, text, resolve_user(user, password_stdin)), "answered",
                 as_json)


@query_app.command("close")
def query_close(query: QueryArg, text: Annotated[str | None, typer.Option("--text", help="Closing note.")] = None,
                db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
                as_json: JsonOpt = False) -> None:
    """Close a query (data manager)."""
    from trialflow.engine import close_query

    _print_query(call(close_query, open_store(db), query, resolve_user(user, password_stdin), text), "closed",
                 as_json)


@query_app.command("list")
def query_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only queries not yet closed.")] = False,
    site: Annotated[str | None, typer.Option("--site", metavar="CODE", help="Only this site.")] = None,
    mine: Annotated[bool, typer.Option("--assigned-to-me", help="Only those waiting for me.")] = False,
    limit: LimitOpt = None, show_all: AllOpt = False,
    db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """Data queries you may see (your sites, or all sites for monitors and data managers)."""
    from trialflow.engine import list_queries

    qs = call(list_queries, open_store(db), resolve_user(user, password_stdin), open_only=open_only, site=site,
              assigned_to_me=mine)
    if as_json:
        print_json(qs)
        return
    if not qs:
        console.print("no data queries", markup=False)
        return
    shown = page(qs, lambda q: q.status, limit=limit, show_all=show_all)  # a screenful (counts by status)
    print_table([Column("query", justify="right"), Column("patient"), Column("site"), Column("event", justify="right"),
                 Column("status"), Column("opened"), Column("by", optional=True), Column("text", "text"),
                 Column("answer", "text", optional=True)],
                [(str(q.id), q.patient, q.site or "", str(q.event), q.status, f"{q.opened_at:%Y-%m-%d}", q.opened_by,
                  q.text, q.answer or "") for q in shown.rows], hint="trialflow query list --json")
    footer = shown.footer()
    if footer:
        say(footer)


@app.command()
def lock(patient: PatientArg, reason: Annotated[str, typer.Option("--reason", help="Why (e.g. database lock).")],
         db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
         as_json: JsonOpt = False) -> None:
    """Lock a patient's case book (data manager): no clinical write until unlocked."""
    from trialflow.engine import lock as do_lock

    ev = call(do_lock, open_store(db), patient, reason, resolve_user(user, password_stdin))
    if as_json:
        print_json(ev)
    else:
        console.print(f"{patient}: case book locked (event {ev.id})", markup=False)


@app.command()
def unlock(patient: PatientArg, reason: Annotated[str, typer.Option("--reason", help="Why it is reopened.")],
           db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
           as_json: JsonOpt = False) -> None:
    """Unlock a patient's case book (data manager)."""
    from trialflow.engine import unlock as do_unlock

    ev = call(do_unlock, open_store(db), patient, reason, resolve_user(user, password_stdin))
    if as_json:
        print_json(ev)
    else:
        console.print(f"{patient}: case book unlocked (event {ev.id})", markup=False)


@app.command()
def audit(
    of_user: Annotated[str | None, typer.Option("--user", metavar="NAME", help="Only what this user did.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="DATE", help="Only from this date (UTC).")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Only this patient's events.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check signatures and the stored events instead; exit 1 "
                                                          "if anything was altered.")] = False,
    limit: LimitOpt = None, show_all: AllOpt = False,
    db: DbOpt = None,
    login: Annotated[str | None, typer.Option("--login", envvar="TRIALFLOW_USER", metavar="NAME",
                                              help="Who is asking (here --user filters the trail).")] = None,
    password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """Who did what, when, from where, across the store (data manager, monitor, admin)."""
    from trialflow.engine import audit_trail, verify_store

    store = open_store(db)
    who = resolve_user(login, password_stdin)
    if verify:
        rep = call(verify_store, store, who)
        if as_json:
            print_json({**{k: getattr(rep, k) for k in ("patients", "events", "signatures", "problems")},
                        "ok": rep.ok})
        else:
            for p in rep.problems:
                console.print(f"ALTERED: {p}", markup=False)
            verdict = "intact" if rep.ok else f"{len(rep.problems)} problem(s)"
            console.print(f"verified {rep.patients} patients, {rep.events} events, {rep.signatures} signatures: "
                          f"{verdict}", markup=False)
        if not rep.ok:
            raise typer.Exit(1)
        return
    day = parse_date(since, "--since")
    entries = call(audit_trail, store, who, user=of_user, since=day, patient=patient)
    if as_json:
        print_json(entries)
        return
    # the latest screenful (or --limit N; --all: every entry), in time order; the earlier ones are counted
    latest = page(entries[::-1], lambda e: e.action, limit=limit, show_all=show_all)
    rows = []
    legacy = False
    for e in latest.rows[::-1]:
        marked = e.legacy and e.action != "login_failed"
        legacy |= marked
        name = e.user + ("*" if marked else "")  # (a name is never broken: the mark is explained below)
        where = "@".join(x for x in (e.context.get("os_login"), e.context.get("host")) if x)
        what = e.target if e.event is None else f"{e.target}, event {e.event}"
        rows.append((f"{e.at:%Y-%m-%d %H:%M:%S}", name, e.action, what, where))
    print_table([Column("when (UTC)"), Column("who"), Column("action"), Column("what", "text", min_width=14),
                 Column("from", "text", optional=True)], rows, hint="trialflow audit --json")
    if legacy:
        console.print("* a legacy name: recorded before this store had users", markup=False)
    footer = latest.footer()
    if footer:  # "… 12,345 more" are earlier: said so, with the way to narrow them
        say(footer.replace("more (--all, --json)", "earlier (--all, --json, --since DATE)"))
