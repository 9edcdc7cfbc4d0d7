"""What a user typed is printed as text (issue 10, items 8, 9, 10, 18).

* An AE term ``[/]`` once made ``history`` crash for that patient forever; balanced markup became
  hyperlinks or hidden text; escape codes reached the terminal. Now everything is text, controls escaped.
* ``--user`` is validated (empty, 10 kB, control characters are usage errors, exit 2).
* ``simulate --plots DIR`` never overwrites a figure without ``--force`` and never writes through a
  symbolic link out of DIR.
* A PostgreSQL server that accepts connections and never answers: a clear error within the connect timeout.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from workflow_helpers import DAY0, USER, enrol_started

from trialflow.cli import app
from trialflow.engine import Store, record, withdraw

runner = CliRunner()


def _cli(*args: Any, code: int = 0) -> Any:
    r = runner.invoke(app, [str(a) for a in args])
    out = r.stdout + r.stderr
    assert "Traceback" not in out and (r.exception is None or isinstance(r.exception, SystemExit)), out
    assert r.exit_code == code, out
    return r


HOSTILE = [
    "Hand-foot [/] reaction",
    "[link=https://evil.example/]Rash[/link]",
    "[conceal]hidden[/conceal] nausea",
    "\x1b[2J\x1b[31mfatigue\x1b]8;;https://evil.example\x07",
    "diarrh\u202eoea",
]


@pytest.mark.parametrize("term", HOSTILE)
def test_stored_text_is_printed_as_typed_with_controls_escaped(store: Store, term: str) -> None:
    enrol_started(store, "P-001")
    when = DAY0 + dt.timedelta(days=20)
    record(store, "P-001", {"kind": "adverse_event", "date": when.isoformat(), "term": term, "grade": 2}, USER)
    withdraw(store, "P-001", when + dt.timedelta(days=1), "toxicity", USER, note=f"note: {term}")
    db = store.engine.url.render_as_string(hide_password=False)
    for command in (["history", "P-001"], ["status"], ["next", "--as-of", str(when)]):
        out = _cli(*command, "--db", db).stdout
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, out
    history = _cli("history", "P-001", "--db", db).stdout
    shown = term.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\u202e", "\\u202e")
    assert shown in history.replace("\n", "").replace("│", "").replace(" ", "") or \
        shown.replace(" ", "") in history.replace("\n", "").replace("│", "").replace(" ", ""), history


def test_the_output_helpers() -> None:
    from trialflow.cli._output import escape_controls, user_text

    assert escape_controls("a\x1b[31mb\u202ec\nd\te") == "a\\x1b[31mb\\u202ec\\nd\\te"
    assert escape_controls("a\nb", keep_newlines=True) == "a\nb"
    assert user_text("[bold]x[/]").plain == "[bold]x[/]"


@pytest.mark.parametrize("user, why", [
    ("", "empty"), ("   ", "empty"), ("x" * 10_000, "at most 200"), ("anna\x1b[31m", "control character"),
    ("anna\nben", "control character"),
])
def test_user_is_validated(tmp_path: Path, user: str, why: str) -> None:
    db = tmp_path / "t.db"
    r = _cli("init", "--db", db, "--user", user, code=2)
    assert why in " ".join(r.stderr.replace("│", " ").split()) and not db.exists()


def test_a_plausible_user_name_passes(tmp_path: Path) -> None:
    _cli("init", "--db", tmp_path / "t.db", "--user", "Dr. A. van der Berg (site 2)")


# -- simulate --plots --------------------------------------------------------------------------------
SIM = ["simulate", "--patients", "12", "--runs", "2", "--seed", "3"]


def test_plots_never_overwrite_without_force(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    out.mkdir()
    mine = out / "waterfall.png"
    mine.write_bytes(b"my own figure")
    r = _cli(*SIM, "--plots", out, code=1)
    assert "waterfall.png already exists" in r.stderr and "--force" in r.stderr
    assert mine.read_bytes() == b"my own figure" and sorted(p.name for p in out.iterdir()) == ["waterfall.png"]
    _cli(*SIM, "--plots", out, "--force")
    assert mine.read_bytes() != b"my own figure"


def test_plots_never_follow_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    outside = tmp_path / "important.txt"
    outside.write_text("do not touch", encoding="utf-8")
    out = tmp_path / "figs"
    out.mkdir()
    (out / "swimmer.png").symlink_to(outside)
    r = _cli(*SIM, "--plots", out, code=1)
    assert "symbolic link" in r.stderr
    _cli(*SIM, "--plots", out, "--force")  # replaces the link itself, never writes through it
    assert outside.read_text(encoding="utf-8") == "do not touch"
    assert not (out / "swimmer.png").is_symlink()


# -- PostgreSQL that never answers -------------------------------------------------------------------
@pytest.fixture
def silent_server() -> Any:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    sock.close()


def test_a_server_that_never_answers_is_a_clear_error_not_a_hang(silent_server: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/trial"
    env = {**os.environ, "TRIALFLOW_PG_CONNECT_TIMEOUT": "2"}
    for command in (["status"], ["init"]):
        proc = subprocess.run([sys.executable, "-c", "from trialflow.cli import main; main()", *command,
                               "--db", url], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "cannot open the store" in proc.stderr and "did not answer within 2 s" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.postgres
def test_a_statement_that_runs_too_long_is_stopped(db_url: str) -> None:
    if "://" not in db_url:
        pytest.skip("PostgreSQL only")
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from trialflow.engine import init_store

    os.environ["TRIALFLOW_PG_STATEMENT_TIMEOUT"] = "1"
    try:
        store, _ = init_store(db_url, None, USER)
        with pytest.raises(OperationalError, match="statement timeout"), store.engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        store.close()
    finally:
        del os.environ["TRIALFLOW_PG_STATEMENT_TIMEOUT"]
