"""Validations remembered across processes (documents/_trusted.py): what passed once, with the same
code, is not validated again; a changed document or checker is; a failure is never remembered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trialflow.documents import _trusted
from trialflow.protocol import _loader as loader
from trialflow.protocol import load_protocol
from trialflow.protocol._loader import bundled_protocol_path


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIALFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_trusted, "_known", None)
    return tmp_path / "cache"


def test_a_pass_is_remembered_for_the_same_data_and_code_only(cache_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"a": 1, "b": [1, 2]}
    assert not _trusted.trusted("scenario", data)
    _trusted.remember("scenario", data)
    assert _trusted.trusted("scenario", {"b": [1, 2], "a": 1})  # the data, not its layout
    assert not _trusted.trusted("scenario", {"a": 2, "b": [1, 2]})  # changed data: validated again
    assert not _trusted.trusted("protocol", data)  # another check
    monkeypatch.setattr(_trusted, "_known", None)  # a new process reads the file
    assert _trusted.trusted("scenario", data)
    assert len((cache_dir / "validated").read_text().split()) == 1
    _trusted._code.cache_clear()
    monkeypatch.setattr(_trusted, "_code", lambda: "other checking code")
    assert not _trusted.trusted("scenario", data)  # changed checker: validated again


def test_a_changed_checker_file_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _trusted._code()
    checker = str(Path(_trusted.__file__))
    real = _trusted._stat_line
    monkeypatch.setattr(_trusted, "_stat_line", lambda path: real(path) + ("x" if path == checker else ""))
    _trusted._code.cache_clear()
    try:
        assert _trusted._code() != before  # the checking code's own files are in the fingerprint
    finally:
        monkeypatch.undo()
        _trusted._code.cache_clear()
    assert _trusted._code() == before


def test_an_edit_that_keeps_size_and_time_stamp_still_changes_the_fingerprint(tmp_path: Path) -> None:
    checker = tmp_path / "check.py"
    checker.write_text("LIMIT = 1\n")
    st = checker.stat()
    before = _trusted._stat_line(str(checker))
    checker.write_text("LIMIT = 2\n")  # same size
    os.utime(checker, ns=(st.st_atime_ns, st.st_mtime_ns))  # same time stamp
    assert _trusted._stat_line(str(checker)) != before


def test_cache_off_or_unwritable_means_validating_every_time(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALFLOW_CACHE_DIR", "off")
    monkeypatch.setattr(_trusted, "_known", None)
    _trusted.remember("scenario", {"x": 1})
    monkeypatch.setattr(_trusted, "_known", None)
    assert not _trusted.trusted("scenario", {"x": 1})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TRIALFLOW_CACHE_DIR", str(blocker / "cache"))
    _trusted.remember("scenario", {"x": 1})  # no error: best effort
    monkeypatch.setattr(_trusted, "_known", None)
    assert not _trusted.trusted("scenario", {"x": 1})


def test_the_trusted_bundled_protocol_is_the_validated_one(cache_dir: Path) -> None:
    loader.load_bundled_protocol.cache_clear()
    try:
        validated = loader.load_bundled_protocol()  # validated, then remembered
        assert (cache_dir / "validated").is_file()
        loader.load_bundled_protocol.cache_clear()
        trusted = loader.load_bundled_protocol()  # built from the remembered pass
        assert trusted == validated == load_protocol(bundled_protocol_path())
    finally:
        loader.load_bundled_protocol.cache_clear()


_RUN = ("import json, sys\n"
        "from trialflow.engine.simulation import simulate\n"
        "r = simulate(30, 2026, runs=20)\n"
        "print(json.dumps({'jsonschema': 'jsonschema' in sys.modules, 'branch': r.per_branch}))\n")


def _run(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, env=env, timeout=300,
                          check=True)
    out: dict[str, object] = json.loads(done.stdout)
    return out


def test_a_second_simulation_imports_no_jsonschema_and_a_pass_not_on_record_is_validated(tmp_path: Path) -> None:
    env = {**os.environ, "TRIALFLOW_CACHE_DIR": str(tmp_path / "cache")}
    first, second = _run(env), _run(env)
    assert first["jsonschema"] and not second["jsonschema"]
    assert first["branch"] == second["branch"]
    # a cache without this pass (fingerprints of other data or code only): validated again
    (tmp_path / "cache" / "validated").write_text("0" * 64 + "\n")
    assert _run(env)["jsonschema"]
