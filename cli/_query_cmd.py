"""Commands that only read: next, evaluate, status, history, report."""

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
    parse_known_at,
    resolve_user,
)
from ._long_lists import AllOpt, LimitOpt, page
from ._output import print_json, print_line
from ._tables import Column, print_table

_STYLE = {"overdue": "bold red", "due": "yellow", "missed": "magenta", "upcoming": "dim", "done": "green"}


def worklist_rows(actions: list[Any]) -> list[list[str]]:
    rows = []
    for a in actions:
        window = f"{a.window_start:%d %b}–{a.window_end:%d %b}" if a.window_end else f"from {a.window_start:%d %b}"
        rows.append([a.patient, a.status, str(a.target_date), window, a.detail, a.reason])
    return rows


WORKLIST_COLUMNS = [Column("patient"), Column("status"), Column("target"), Column("window", optional=True),
                    Column("action", "text", min_width=24), Column("why", "text", optional=True, min_width=40)]


def print_worklist(actions: list[Any], title: str) -> None:
    """The worklist as a table; the why column is left out (and said so) when the terminal is too narrow."""
    print_table(WORKLIST_COLUMNS, worklist_rows(actions), title=title, hint="trialflow next --json")


def render_report(r: Any) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    prop = "n/a" if r.proportion is None else f"{r.favourable}/{r.evaluable} = {r.proportion:.1%}"
    ci = "" if r.ci95 is None else f" (95 % CI {r.ci95[0]:.1%} – {r.ci95[1]:.1%}, {r.ci_method})"
    out.append(Text.assemble(("Primary endpoint", "bold"), f" as of {r.as_of}: favourable response {prop}{ci}"))
    if r.proportion_treated is not None and r.ci95_treated is not None:
        out.append(f"counting withdrawals before the decision as not favourable: {r.favourable}/{r.treated} = "
                   f"{r.proportion_treated:.1%} (95 % CI {r.ci95_treated[0]:.1%} – {r.ci95_treated[1]:.1%})")
    out.append(f"enrolled {r.enrolled} · screen failures {r.screen_failures} · started Sorafenib {r.started} · "
               f"evaluable at the decision {r.evaluable} · still before the decision {r.before_decision}")
    signed = [p["signature"] for p in r.patients if p.get("signature")]
    if signed:
        invalid = sum(not s["valid"] for s in signed)
        out.append(f"decisions signed: {len(signed)} of {len(r.patients)}"
                   + (f" ({invalid} invalidated by later corrections: see history)" if invalid else ""))
    if r.withdrawn_before_decision:
        out.append("withdrawn before the decision: " + ", ".join(f"{k} {v}" for k, v in
                                                                r.withdrawn_before_decision.items()))
    t = Table(title="Criteria at the decision", title_justify="left", header_style="bold")
    t.add_column("criterion")
    t.add_column("favourable", justify="right")
    t.add_column("outcomes")
    for cid, counts in r.criteria.items():
        t.add_row(cid, str(counts["favourable"]), ", ".join(f"{k} {v}" for k, v in counts.items() if k != "favourable"))
    out.append(t)
    p = Table(title="Patients per phase (arm after the decision)", title_justify="left", header_style="bold")
    p.add_column("phase")
    p.add_column("patients now", justify="right")
    p.add_column("assigned at decision", justify="right")
    for phase in sorted(set(r.per_phase) | set(r.per_arm)):
        p.add_row(phase, str(r.per_phase.get(phase, 0)), str(r.per_arm.get(phase, "")))
    out.append(p)
    return out


def register(app: typer.Typer) -> None:
    @app.command("next")
    def next_(
        patient: Annotated[str | None, typer.Argument(metavar="ID", help="Only this patient.",
                                                      show_default=False)] = None,
        as_of: AsOfOpt = None, known_at: KnownAtOpt = None,
        horizon: Annotated[int, typer.Option(min=0, max=3650, help="Show upcoming items opening within this many "
                                                                   "days.")] = 28,
        db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
        limit: LimitOpt = None, show_all: AllOpt = False,
    ) -> None:
        """The worklist: what is due, for whom, by when, and why, most urgent first."""
        from trialflow.engine import next_actions

        store = open_store(db)
        day = parse_date(as_of, "--as-of")
        actions = call(next_actions, store, patient, as_of=day, known_at=parse_known_at(known_at), horizon=horizon,
                       actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(actions)
            return
        if not actions:
            print_line(f"nothing due as of {day or dt.date.today()}")
            return
        noun = "item" if len(actions) == 1 else "items"
        when = f"{day}" if day else f"today, {dt.date.today()}"
        shown = page(actions, lambda a: str(a.status), limit=limit, show_all=show_all)
        print_worklist(list(shown.rows), f"Worklist as of {when} ({len(actions):,} {noun})")
        if (more := shown.footer()) is not None:
            print_line(more)

    @app.command()
    def evaluate(
        patient: Annotated[str, typer.Argument(metavar="ID", help="Study id.", show_default=False)],
        as_of: AsOfOpt = None, known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """Preview the decision (changes nothing): each criterion, favourable or not, recommended branch."""
        from rich.table import Table
        from rich.text import Text

        from trialflow.engine import evaluate as do_evaluate

        from ._output import console, user_text

        p = call(do_evaluate, open_store(db), patient, as_of=parse_date(as_of, "--as-of"),
                 known_at=parse_known_at(known_at), actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(p)
            return
        state = "ready" if p.ready else ("waiting" if p.applicable else "not applicable")
        console.print(Text.assemble((p.patient, "bold"), f" decision {p.decision} as of {p.as_of}: {state} "
                                    f"(phase {p.phase})"))
        t = Table(header_style="bold")
        for col in ("criterion", "outcome", "favourable", "evidence"):
            t.add_column(col, overflow="fold")
        for cid, res in p.criteria.items():
            wait = (f"\nwaiting on {', '.join(res['waiting_on'])}", "dim") if res["waiting_on"] else ""
            t.add_row(cid, res["outcome"], "yes" if res["favourable"] else "no",
                      Text.assemble(user_text(res["reason"]), wait))
        console.print(t)
        if p.ready:
            console.print(Text.assemble(f"favourable response: {'yes' if p.favourable else 'no'}; recommended: "
                                        f"{p.recommended_branch} → ", (str(p.recommended_phase), "bold")))
        for m in p.missing:
            print_line(f"missing: {m}")
        for f in p.flags:
            console.print(Text.assemble(("flag:", "yellow"), " ", user_text(f)))

    @app.command()
    def status(
        patient: Annotated[str | None, typer.Argument(metavar="ID", help="Only this patient.",
                                                      show_default=False)] = None,
        as_of: AsOfOpt = None, known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
        limit: LimitOpt = None, show_all: AllOpt = False,
    ) -> None:
        """Where each patient is: phase, study day, dose, visits done and missed, next action."""
        from trialflow.engine import status as do_status

        rows_ = call(do_status, open_store(db), patient, as_of=parse_date(as_of, "--as-of"),
                     known_at=parse_known_at(known_at), actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(rows_)
            return
        shown = page(rows_, lambda r: str(r.phase), limit=limit, show_all=show_all)
        rows = []
        for r in shown.rows:
            dose = f"{r.dose_mg_per_day:g} mg/d" if r.dose_mg_per_day is not None else ""
            nxt = f"{r.next_action} ({r.next_action_date})" if r.next_action else ""
            seen = f"{r.visits_done} done, {r.visits_missed} missed" + (
                f" ({r.visits_unresolved} open)" if r.visits_unresolved else "") + (
                f", {r.visits_skipped} skipped" if r.visits_skipped else "")
            rows.append([r.patient, r.phase, str(r.phase_entered), str(r.study_day if r.study_day is not None else ""),
                         dose, seen, nxt])
        day = parse_date(as_of, "--as-of") or dt.date.today()
        print_table([Column("patient"), Column("phase"), Column("since", optional=True), Column("day", justify="right"),
                     Column("dose"), Column("visits", "text", min_width=9), Column("next", "text", min_width=16)],
                    rows, title=f"Status as of {day}", hint="trialflow status --json")
        if (more := shown.footer()) is not None:
            print_line(more)

    @app.command()
    def history(
        patient: Annotated[str, typer.Argument(metavar="ID", help="Study id.", show_default=False)],
        known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
        password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
    ) -> None:
        """The full audit trail: who recorded what, when, and why; corrections beside what they correct."""
        from trialflow.engine import history as do_history
        from trialflow.engine import store_users

        store = open_store(db)
        entries = call(do_history, store, patient, known_at=parse_known_at(known_at),
                       actor=resolve_user(user, password_stdin))
        team = call(store_users, store) > 0
        if as_json:
            print_json(entries)
            return
        kinds = {e.event: e.kind for e in entries}
        rows = []
        for e in entries:
            by = ""
            if e.corrected_by:
                by = f" (reversed by {e.corrected_by})" if kinds.get(e.corrected_by) == "reversal" else \
                    f" (corrected by {e.corrected_by})"
            who = e.user + (" (legacy name)" if team and e.user_id is None else "")
            rows.append([str(e.event), str(e.effective_date), e.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), who,
                         e.summary + by, e.reason or ""])
        print_table([Column("event", justify="right"), Column("effective"), Column("recorded (UTC)", optional=True),
                     Column("by", "text", min_width=10), Column("what", "text", min_width=24),
                     Column("why", "text", min_width=12)], rows, title=f"History of {patient}",
                    hint=f"trialflow history {patient} --json")

    @app.command()
    def report(as_of: AsOfOpt = None, known_at: KnownAtOpt = None, db: DbOpt = None, user: UserOpt = None,
               password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False) -> None:
        """The primary endpoint with its exact 95 % CI, criterion counts, and patients per arm and phase."""
        from trialflow.engine import report as do_report

        from ._output import console

        r = call(do_report, open_store(db), as_of=parse_date(as_of, "--as-of"), known_at=parse_known_at(known_at),
                 actor=resolve_user(user, password_stdin))
        if as_json:
            print_json(r)
            return
        for part in render_report(r):
            console.print(part)
