"""The store's life cycle (issue 10): init on an existing store, the demo's own files, file modes, the marker.

On SQLite and PostgreSQL where the store is involved; through the CLI as a user runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from workflow_helpers import snapshot

from trialflow.cli import app
from trialflow.protocol import bundled_protocol_path

runner = CliRunner()


def cli(*args: Any, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit)), out
    assert result.exit_code == code, out
    return result


@pytest.fixture
def site_protocol(tmp_path: Path) -> Path:
    """The bundled protocol as a site adapted it (another version label, so another content hash)."""
    text = bundled_protocol_path().read_text(encoding="utf-8").replace('version: "1.0"', 'version: "1.0-leiden"', 1)
    f = tmp_path / "leiden.yaml"
    f.write_text(text, encoding="utf-8")
    return f


def test_init_on_an_existing_store_changes_nothing_and_says_what_is_there(db_url: str, site_protocol: Path) -> None:
    cli("init", "--db", db_url, "--protocol", site_protocol, "--user", "investigator.dr-smit")
    before = snapshot(db_url)
    r = cli("init", "--db", db_url)  # plain init: the bundled v1.0 must not become the newest version
    assert "already holds sorafenib-dtc: v1.0-leiden (0 patients)" in r.stdout and "Nothing changed" in r.stdout
    assert snapshot(db_url) == before
    again = cli("init", "--db", db_url, "--protocol", site_protocol)
    assert "Nothing changed" in again.stdout
    r = cli("init", "--db", db_url, "--protocol", bundled_protocol_path(), code=1)
    assert "is not one of its versions: register it with `trialflow protocol amend`" in r.stderr
    assert snapshot(db_url) == before


def _amendment(tmp_path: Path, n: int) -> Path:
    """Four different amendments that all call themselves v1.1 (each a different Tg alpha)."""
    text = bundled_protocol_path().read_text(encoding="utf-8").replace('version: "1.0"', 'version: "1.1"', 1)
    text = text.replace("alpha: 0.05", f"alpha: 0.0{n + 1}", 1)
    f = tmp_path / f"amend-{n}.yaml"
    f.write_text(text, encoding="utf-8")
    return f


def test_four_simultaneous_amendments_named_1_1_register_one(db_url: str, tmp_path: Path) -> None:
    import threading

    from trialflow.engine import Refused, Store, StoreError, amend, init_store

    init_store(db_url, None, "investigator.dr-smit")[0].close()
    files = [_amendment(tmp_path, n) for n in range(4)]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def run(f: Path) -> None:
        store = Store.open(db_url)
        try:
            barrier.wait()
            amend(store, f, "Tg alpha per the statistician", "investigator.dr-smit", apply=True)
            outcomes.append("registered")
        except (Refused, StoreError) as err:
            outcomes.append(f"refused: {err}")
        finally:
            store.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(o.split(":")[0] for o in outcomes) == ["refused", "refused", "refused", "registered"], outcomes
    store = Store.open(db_url)
    try:
        assert [v.version for v in store.versions()] == ["1.0", "1.1"]
    finally:
        store.close()


def test_a_version_name_is_unique_in_the_database_itself(db_url: str) -> None:
    import datetime as dt

    from sqlalchemy.exc import IntegrityError

    from trialflow.engine import Store, init_store
    from trialflow.engine._tables import ProtocolVersionRow

    init_store(db_url, None, "investigator.dr-smit")[0].close()
    store = Store.open(db_url)
    from trialflow.engine._db import write_session

    with pytest.raises(IntegrityError), write_session(store.engine) as s:  # bypassing every check in the code
        s.add(ProtocolVersionRow(study_id="sorafenib-dtc", version="1.0", content_hash="0" * 64, yaml_text="x",
                                 source_file="x.yaml", registered_at=dt.datetime.now(dt.UTC), registered_by="x",
                                 reason="x"))
    store.close()


# -- the demo never deletes what it did not create (item 1) -------------------------------------------
def test_demo_refuses_an_empty_real_store_and_keeps_it(tmp_path: Path) -> None:
    real = tmp_path / "site.db"
    cli("init", "--db", real, "--user", "investigator.dr-smit")
    before = snapshot(str(real))
    r = cli("demo", "--db", real, code=1)
    assert "that the demo did not create" in r.stderr
    assert snapshot(str(real)) == before


def test_demo_refuses_another_applications_file_and_a_symlink(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "notes.db"
    con = sqlite3.connect(other)
    con.executescript("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO note (body) VALUES ('x');")
    con.close()
    data = other.read_bytes()
    assert "is not a demo store" in cli("demo", "--db", other, code=1).stderr
    assert other.read_bytes() == data
    link = tmp_path / "link.db"
    link.symlink_to(other)
    assert "symbolic link" in cli("demo", "--db", link, code=1).stderr
    assert other.read_bytes() == data


def test_demo_ids_belong_to_the_demo(db_url: str, tmp_path: Path) -> None:
    import yaml
    from workflow_helpers import ELIGIBLE

    elig = tmp_path / "elig.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    cli("init", "--db", db_url)
    before = snapshot(db_url)
    for pid in ("DEMO-001", "demo-007"):
        r = cli("enroll", pid, "--date", "2026-01-05", "--eligibility", elig, "--db", db_url, code=1)
        assert "ids starting with DEMO- belong to the demo store" in r.stderr
    assert snapshot(db_url) == before


def test_demo_replaces_its_own_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    cli("demo", "--db", db)
    cli("demo", "--db", db)  # its own file, marked when it was made


# -- created 0600 (item 12) ---------------------------------------------------------------------------
def test_a_new_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    db = tmp_path / "trial.db"
    old = os.umask(0o022)  # the usual umask, which gave 0644 before
    try:
        r = cli("init", "--db", db)
        cli("record", "P-404", "tg", "--date", "2026-01-05", "--value", "3", "--db", db, code=1)
    finally:
        os.umask(old)
    assert "file mode 0600" in r.stdout
    for f in tmp_path.iterdir():  # the store and SQLite's -wal / -shm beside it
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


# -- the demo's ids at registry scale --------------------------------------------------------------
def test_every_demo_id_is_an_acceptable_pseudonym_at_any_cohort_size() -> None:
    """From 10^5 patients on a zero-padded number holds a 6-digit run (DEMO-000101 would read as 1 January 2000,
    a date of birth): the demo writes such numbers in groups of three, and keeps DEMO-001… below 10^5."""
    from trialflow.engine._demo import demo_ids
    from trialflow.engine._pseudonym import pseudonym_problem

    assert demo_ids(30)[:2] == ["DEMO-001", "DEMO-002"] and demo_ids(10_000)[-1] == "DEMO-10000"
    assert demo_ids(99_999, 101, 101) == ["DEMO-00101"]
    for n in (100_000, 1_000_000):
        ids = demo_ids(n)
        assert len(set(ids)) == n and ids == sorted(ids)  # one per patient, in enrolment order
        refused = [(pid, why) for pid in ids[:: 1 if n == 100_000 else 97] + ids[-1000:]
                   if (why := pseudonym_problem(pid)) is not None]
        assert refused == []
    assert pseudonym_problem("DEMO-000101") is not None  # the id the old scheme gave patient 101 of 10^5


@pytest.mark.parametrize("command", [["status"], ["init"], ["verify"], ["next", "--json"]])
def test_a_file_that_is_not_a_database_is_named_and_left_as_it_is(tmp_path: Path, command: list[str]) -> None:
    f = tmp_path / "notes.db"
    f.write_text("patient list, do not delete\n", encoding="utf-8")
    r = runner.invoke(app, [*command, "--db", str(f)])
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert f"{f} is not a SQLite database (a trialflow store is one): nothing was read or written" in r.stderr
    assert f.read_text(encoding="utf-8") == "patient list, do not delete\n"
