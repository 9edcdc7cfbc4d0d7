"""`trialflow verify`: check the per-patient hash chains of the store's events (read-only)."""

import typer

from ._common import DbOpt, JsonOpt, PasswordStdinOpt, UserOpt, call, open_store, resolve_user
from ._output import console, err_console, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
               as_json: JsonOpt = False) -> None:
        """Check that no stored event or protocol version was changed, inserted or deleted outside trialflow
        (exit 1 if one was)."""
        from trialflow.engine import verify_chains

        report = call(verify_chains, open_store(db), resolve_user(user, password_stdin))
        if as_json:
            print_json({"intact": report.intact, "patients": report.patients, "events": report.events,
                        "head": report.head, "problems": report.problems,
                        "protocol_problems": report.protocol_problems})
        elif report.intact:
            console.print(f"{report.events} events of {report.patients} patients: every chain intact", markup=False)
            console.print(f"head digest {report.head} (record it with your backups: it changes with every "
                          "event, and a store whose chains were rewritten as a whole does not reproduce it)",
                          markup=False)
        else:
            for text in report.protocol_problems:
                err_console.print(text, markup=False)
            for p in report.problems:
                where = f"#{p.seq} (event {p.event_id})" if p.event_id is not None else "its events:"
                err_console.print(f"{p.patient} {where} {p.problem}", markup=False)
            err_console.print(f"{len(report.problems) + len(report.protocol_problems)} problem(s) in {report.events} "
                              f"events of {report.patients} patients and the registered protocol versions: the "
                              "store was changed outside trialflow", markup=False)
        if not report.intact:
            raise typer.Exit(1)
