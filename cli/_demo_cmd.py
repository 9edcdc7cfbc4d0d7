"""``trialflow demo``: a fresh demo store with a realistic cohort, its worklist and its report."""

from typing import Annotated

import typer

from ._common import call
from ._output import console


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        db: Annotated[str | None, typer.Option("--db", help="Where to write the demo store (a SQLite file).",
                                               show_default="trialflow-demo.db")] = None,
        seed: Annotated[int, typer.Option(help="Random seed of the cohort's values.")] = 2009,
        patients: Annotated[int | None, typer.Option(
            "--patients", min=1, max=1_000_000, help="Cohort size for scale tests: the 30 demo patients, then "
            "patients whose courses are drawn from theirs (written in bulk).", show_default="30")] = None,
    ) -> None:
        """Create a demo store (30 patients at every stage of the study, or --patients N), print the worklist
        and the report."""
        from trialflow.engine import DEMO_DB, build_demo, next_actions, report
        from trialflow.engine._base import today as store_today

        from ._long_lists import page
        from ._query_cmd import print_worklist, render_report

        with console.status("building the demo cohort through the workflow commands..."):
            store = call(build_demo, db, seed=seed, patients=patients)
        actions = [a for a in call(next_actions, store) if a.status != "upcoming"]
        console.print(f"Demo store written to {db or DEMO_DB}: {len(store.patient_ids())} patients.\n"
                      f"Try: trialflow status --db {db or DEMO_DB}\n", markup=False)
        shown = page(actions, lambda a: str(a.status), limit=None, show_all=len(actions) <= 60)
        print_worklist(list(shown.rows), f"Worklist today ({store_today()}): {len(actions)} items due, overdue or "
                                         "missed (trialflow next --db ... for upcoming too)")
        if (more := shown.footer()) is not None:
            console.print(more, markup=False)
        if patients is not None and patients > 30:  # a scale cohort: the report is one command away
            console.print(f"Report: trialflow report --db {db or DEMO_DB}", markup=False)
            return
        for part in render_report(call(report, store)):
            console.print(part)
