"""Fixtures shared by every test module. Keep this small: helpers for one area live beside its tests."""

from __future__ import annotations

import os
import tempfile

import pytest

from trialflow.protocol import bundled_protocol_path

# Validations remembered across processes (documents/_trusted.py) go to a folder of this test run, never
# the user's ~/.cache: the suite starts cold and leaves nothing behind (subprocesses inherit the setting).
os.environ["TRIALFLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="trialflow-test-cache-")


@pytest.fixture(scope="session")
def bundled_protocol_text() -> str:
    """The text of the bundled protocol ``protocol/sorafenib_dtc.yaml``, exactly as shipped."""
    return bundled_protocol_path().read_text(encoding="utf-8")


# --- Workflow store backends (issue 4; helpers in tests/workflow_helpers.py) --------------------------
# `db_url` is an empty store location, once on SQLite and once on PostgreSQL (`postgres` marker; skipped
# with the reason when TRIALFLOW_TEST_PG_URL is unset or no server answers). Each PostgreSQL test gets
# a fresh schema, dropped afterwards.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    from workflow_helpers import new_db_url

    yield from new_db_url(request.param, tmp_path)


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    """A fresh store on ``db_url`` with the bundled protocol registered."""
    from workflow_helpers import new_store

    s = new_store(db_url)
    yield s
    s.close()
