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
