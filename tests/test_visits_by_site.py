"""``trialflow visits --status S --site SITE`` (issue 12): one site's visits across the cohort, on top of the
reader's own sites (a coordinator of one site cannot ask for another's), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from team_helpers import PASSWORDS, Team, at_decision, cheap_hashing, new_team_store  # noqa: F401  # fixture
from typer.testing import CliRunner

from trialflow.cli import app
from trialflow.engine import PermissionDenied, Refused, cohort_visits, init_store

runner = CliRunner(env={"COLUMNS": "80"})


@pytest.fixture
def team(db_url: str, cheap_hashing: list[float]) -> Any:  # noqa: F811
    t = new_team_store(db_url, cheap_hashing)
    at_decision(t, "P-A01", "anna", "AMS")
    at_decision(t, "P-B01", "bram", "LEI")
    yield t
    t.store.close()


def test_site_keeps_the_cohort_to_that_sites_patients(team: Team) -> None:
    s, mona = team.store, team["mona"]  # a monitor sees every site
    assert {v.patient for v in cohort_visits(s, actor=mona)} == {"P-A01", "P-B01"}
    assert {v.patient for v in cohort_visits(s, site="AMS", actor=mona)} == {"P-A01"}
    assert {v.patient for v in cohort_visits(s, site="lei", actor=mona)} == {"P-B01"}  # the code in any case
    done = cohort_visits(s, status="done", site="LEI", actor=mona)
    assert done and {(v.patient, v.status) for v in done} == {("P-B01", "done")}
    assert cohort_visits(s, site="AMS", actor=team["anna"])  # her own site


def test_an_unknown_site_or_another_sites_patients_are_refused(team: Team) -> None:
    s = team.store
    with pytest.raises(Refused, match=r"unknown site 'AMX'; did you mean 'AMS'\? \(sites: AMS, LEI\)"):
        cohort_visits(s, site="AMX", actor=team["mona"])
    with pytest.raises(PermissionDenied, match="may not read the patients of site LEI: they work at AMS"):
        cohort_visits(s, site="LEI", actor=team["anna"])


def test_a_store_without_sites_says_so(tmp_path: Any) -> None:
    store, _ = init_store(str(tmp_path / "plain.db"), None, "test")
    try:
        with pytest.raises(Refused, match="a store without sites"):
            cohort_visits(store, site="AMS")
    finally:
        store.close()


def test_the_cli_filters_by_site_and_refuses_site_with_a_patient(team: Team, db_url: str) -> None:
    base = ["--db", db_url, "--user", "mona", "--password-stdin"]
    r = runner.invoke(app, ["visits", "--status", "done", "--site", "LEI", "--json", *base],
                      input=PASSWORDS["mona"] + "\n")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and {row["patient"] for row in rows} == {"P-B01"}
    r = runner.invoke(app, ["visits", "--status", "done", "--site", "LEI", *base], input=PASSWORDS["mona"] + "\n")
    assert r.exit_code == 0 and "Done visits at site LEI as of" in r.stdout and "P-A01" not in r.stdout
    r = runner.invoke(app, ["visits", "--site", "UTR", *base], input=PASSWORDS["mona"] + "\n")
    assert r.exit_code == 1 and "unknown site 'UTR'" in r.stderr and "Traceback" not in r.stderr
    r = runner.invoke(app, ["visits", "P-A01", "--site", "AMS", *base], input=PASSWORDS["mona"] + "\n")
    assert r.exit_code == 2 and "--site filters the cohort" in " ".join(r.stderr.replace("│", " ").split())
