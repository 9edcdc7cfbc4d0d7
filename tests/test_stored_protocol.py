"""A stored protocol is parsed once (issue 17): validated when it is registered, afterwards rebuilt from its
stored text by content hash (no JSON Schema, no semantic checks) and cached per process; a stored text
that no longer has its registered hash is refused with a clear error. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner
from workflow_helpers import USER, enrol_started

import trialflow.documents
from trialflow.cli import app
from trialflow.engine import Store, StoreError
from trialflow.engine._store import _stored_model
from trialflow.engine._tables import ProtocolVersionRow
from trialflow.protocol import _semantic, load_bundled_protocol

runner = CliRunner()


def _set_stored_text(store: Store, text: str) -> None:
    table: Any = ProtocolVersionRow.__table__  # type: ignore[attr-defined]
    with store.engine.begin() as c:
        c.execute(update(table).values(yaml_text=text))
    _stored_model.cache_clear()  # as a new process would see it


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a stored, registered version was validated again")

    monkeypatch.setattr(trialflow.documents, "schema_problems", refuse)  # the loader imports both when it validates
    monkeypatch.setattr(_semantic, "semantic_problems", refuse)


def test_a_stored_version_is_rebuilt_without_validating_it_again(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                                  db_url: str) -> None:
    _stored_model.cache_clear()
    _no_validation(monkeypatch)
    again = Store.open(db_url)
    try:
        protocol, version = again.protocol()
        assert protocol == load_bundled_protocol()  # the same model the validating loader builds
        assert protocol.content_hash == version.content_hash
        assert again.protocol(version.content_hash)[0] is protocol  # cached in the process
    finally:
        again.close()


def test_a_comment_changes_nothing_the_hash_covers(store: Store, bundled_protocol_text: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _set_stored_text(store, "# re-typed by the data manager\n" + bundled_protocol_text)
    _no_validation(monkeypatch)
    assert store.protocol()[0] == load_bundled_protocol()


def test_a_tampered_stored_text_is_refused_by_its_hash(store: Store, bundled_protocol_text: str,
                                                       db_url: str) -> None:
    enrol_started(store, "DTC-001")
    version = store.versions()[0]
    assert "enrolment_target: 30" in bundled_protocol_text
    _set_stored_text(store, bundled_protocol_text.replace("enrolment_target: 30", "enrolment_target: 280", 1))
    with pytest.raises(StoreError, match=rf"protocol version {version.content_hash[:12]} in this store is damaged"
                                         r".*does not match the content hash it was registered under"):
        store.protocol()
    result = runner.invoke(app, ["evaluate", "DTC-001", "--db", db_url])
    out = result.stdout + result.stderr
    assert result.exit_code == 1 and "Traceback" not in out, out
    assert "damaged" in out and "content hash" in out


def test_a_stored_text_that_is_no_longer_yaml_is_refused(store: Store) -> None:
    _set_stored_text(store, "study: [unclosed\n")
    with pytest.raises(StoreError, match="no longer readable YAML"):
        store.protocol()


def test_registration_refuses_a_text_that_is_not_the_validated_protocol(store: Store,
                                                                        bundled_protocol_text: str) -> None:
    other = load_bundled_protocol()
    before = store.versions()
    with pytest.raises(StoreError, match="not the text of the validated protocol"):
        store.register_protocol(other, bundled_protocol_text.replace('version: "1.0"', 'version: "1.1"', 1),
                                USER, "amendment")
    assert store.versions() == before


def _cached_files() -> list[Any]:
    from trialflow.documents._trusted import cache_file

    where = cache_file()
    assert where is not None  # (the tests' cache: conftest.py)
    return sorted((where.parent / "protocols").glob("*.json"))


def test_a_stored_text_read_once_is_rebuilt_from_its_cached_data_without_yaml(
        store: Store, bundled_protocol_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_stored_text(store, "# read from the YAML once\n" + bundled_protocol_text)
    first = store.protocol()[0]  # read from its YAML, its data cached
    _stored_model.cache_clear()

    from trialflow.documents import _source

    def no_yaml(*_: Any, **__: Any) -> Any:
        raise AssertionError("the stored text was read from its YAML again")

    monkeypatch.setattr(_source, "parse_document", no_yaml)
    again = store.protocol()[0]
    assert again == first == load_bundled_protocol() and list(again.data) == list(first.data)


def test_cached_data_that_is_not_the_registered_data_is_not_used(store: Store, bundled_protocol_text: str) -> None:

    text = "# cached, then damaged\n" + bundled_protocol_text
    _set_stored_text(store, text)
    store.protocol()
    (cached,) = [p for p in _cached_files() if p.name == f"{hashlib.sha256(text.encode()).hexdigest()}.json"]
    data = json.loads(cached.read_text(encoding="utf-8"))
    data["study"]["enrolment_target"] = 280
    cached.write_text(json.dumps(data), encoding="utf-8")
    _stored_model.cache_clear()
    assert store.protocol()[0].study.enrolment_target == 30  # read from the YAML, which has the registered hash
    assert json.loads(cached.read_text(encoding="utf-8"))["study"]["enrolment_target"] == 30  # and cached again
    cached.write_text("not json {", encoding="utf-8")
    _stored_model.cache_clear()
    assert store.protocol()[0] == load_bundled_protocol()


def test_without_the_cache_a_stored_text_is_read_from_its_yaml(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALFLOW_CACHE_DIR", "off")
    _stored_model.cache_clear()
    assert store.protocol()[0] == load_bundled_protocol()


def test_registration_reads_the_text_given_not_what_the_cache_says_it_holds(store: Store,
                                                                           bundled_protocol_text: str) -> None:
    from trialflow.protocol._stored import remember_data

    other = load_bundled_protocol()
    changed = bundled_protocol_text.replace('version: "1.0"', 'version: "1.1"', 1)
    remember_data(changed, dict(other.data))  # a cache entry claiming the changed text holds the validated data
    before = store.versions()
    with pytest.raises(StoreError, match="not the text of the validated protocol"):
        store.register_protocol(other, changed, USER, "amendment")
    assert store.versions() == before
