"""A store written before sites and users (commit 66ced54's demo store): `init` upgrades it, it gains one site.

Its events' free-text names stay as they were, shown as legacy names (no user id); once an admin is
created, the team works on it like on any other store.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

from team_helpers import cheap_hashing  # noqa: F401  # fixture
from typer.testing import CliRunner

from trialflow.cli import app
from trialflow.engine import Store, add_site, add_user, authenticate, history, list_sites, status

OLD = Path(__file__).parent / "reference" / "store_66ced54"


def _old_store(tmp_path: Path) -> Path:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(gzip.decompress((OLD / "store_66ced54.sql.gz").read_bytes()).decode())
    con.close()
    return db


def test_a_store_from_before_users_gains_one_site_and_keeps_legacy_names(tmp_path: Path,
                                                                        cheap_hashing: list[float]) -> None:  # noqa: F811
    db = _old_store(tmp_path)
    con = sqlite3.connect(db)
    names_before = sorted(con.execute("SELECT id, user, payload FROM event ORDER BY id").fetchall())
    con.close()
    r = CliRunner().invoke(app, ["init", "--db", str(db)])  # the upgrade (a read never changes the schema)
    assert r.exit_code == 0, r.output
    assert "no users: single-user mode" in r.output
    store = Store.open(str(db))
    patients = store.patient_ids()
    sites = list_sites(store)
    assert [(s.code, s.patients) for s in sites] == [("main", len(patients))]
    entries = history(store, patients[0])
    assert entries and all(e.user_id is None for e in entries)
    assert {e.user for e in entries} <= {"coordinator.anna", "coordinator.ben", "investigator.dr-smit"}
    # a team on the upgraded store: the first admin, then a coordinator at the site everyone joined
    add_user(store, None, "admin.jo", "admin", "admin-pass-0001", first_admin=True)
    admin = authenticate(store, "admin.jo", "admin-pass-0001")
    add_site(store, admin, "LEI", "Leiden")
    add_user(store, admin, "anna", "coordinator", "anna-pass-0001", sites=["main"])
    anna = authenticate(store, "anna", "anna-pass-0001")
    assert len(status(store, actor=anna, as_of=None)) == len(patients)
    store.close()
    con = sqlite3.connect(db)
    assert sorted(con.execute("SELECT id, user, payload FROM event ORDER BY id").fetchall()) == names_before
    con.close()
    r = CliRunner().invoke(app, ["history", patients[0], "--db", str(db), "--user", "anna"],
                           env={"TRIALFLOW_PASSWORD": "anna-pass-0001"})
    assert r.exit_code == 0, r.output
    assert "(legacy name)" in r.output
    r = CliRunner().invoke(app, ["audit", "--db", str(db), "--login", "admin.jo", "--json"],
                           env={"TRIALFLOW_PASSWORD": "admin-pass-0001"})
    trail = json.loads(r.stdout)
    assert any(e["action"] == "site_added" and e["target"] == "main" for e in trail)
    assert all(e["legacy"] for e in trail if e["action"] == "enrolled")
