"""The rule registry: plug-ins are checked at load time and their errors name the plug-in."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from trialflow.rules import RuleLoadError, _registry, available_rules, get_rule
from trialflow.rules.casefile import load_case
from trialflow.rules.tg_slope import RULE as TG_SLOPE

EXAMPLE = Path(__file__).parents[1] / "examples" / "tg_doubling_time"
CASE = Path(__file__).parent / "cases" / "P-001.yaml"
GROUP = _registry.ENTRY_POINT_GROUP


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    available_rules.cache_clear()
    yield
    available_rules.cache_clear()


def _with(monkeypatch: pytest.MonkeyPatch, *eps: md.EntryPoint) -> None:
    builtin = list(md.entry_points(group=GROUP))
    monkeypatch.setattr(_registry, "entry_points", lambda group: [*builtin, *eps])


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> None:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)


def test_builtins_register_through_entry_points() -> None:
    assert {"rai_uptake", "tg_slope", "recist"} <= set(available_rules())


def test_broken_import_names_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    _with(monkeypatch, md.EntryPoint("broken", "no_such_module_for_trialflow:RULE", GROUP))
    with pytest.raises(
        RuleLoadError, match=r"'broken = no_such_module_for_trialflow:RULE'.*cannot be imported"
    ):
        available_rules()


def test_bad_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bad:
        name, version, title = "bad_sig", "1", "Bad"
        observation_kinds, outcomes, references = ("tg",), ("x",), ()
        params_schema: ClassVar[dict[str, str]] = {"type": "object"}

        def evaluate(self, case):  # type: ignore[no-untyped-def]  # deliberately wrong
            return None

    _module(monkeypatch, "fake_bad_sig", RULE=Bad())
    _with(monkeypatch, md.EntryPoint("bad_sig", "fake_bad_sig:RULE", GROUP))
    with pytest.raises(RuleLoadError, match=r"bad_sig.*evaluate must accept"):
        available_rules()


def test_missing_attributes_and_bad_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "fake_empty", RULE=object())
    _with(monkeypatch, md.EntryPoint("empty", "fake_empty:RULE", GROUP))
    with pytest.raises(RuleLoadError, match="lacks name"):
        available_rules()


def test_name_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    _with(monkeypatch, md.EntryPoint("tg_slope_v2", "trialflow.rules.tg_slope:RULE", GROUP))
    with pytest.raises(RuleLoadError, match="calls itself 'tg_slope' but is registered as 'tg_slope_v2'"):
        available_rules()


def test_duplicate_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "fake_dup", RULE=TG_SLOPE)
    _with(monkeypatch, md.EntryPoint("tg_slope", "fake_dup:RULE", GROUP))
    with pytest.raises(RuleLoadError, match="already registered"):
        available_rules()


def _load_example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Import the example's module from its source file, registered in sys.modules for this test only."""
    spec = importlib.util.spec_from_file_location("tg_doubling_time", EXAMPLE / "tg_doubling_time.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tg_doubling_time", mod)
    spec.loader.exec_module(mod)
    return mod


def test_example_plugin_passes_the_registry_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = _registry.check_rule(_load_example(monkeypatch).RULE, "tg_doubling_time", "example")
    props = rule.params_schema["properties"]
    assert all("default" in v and "description" in v for v in props.values())
    result = rule.evaluate(load_case(CASE), {"max_doubling_time_years": 1.0})
    assert result.outcome == "not_rapid"  # P-001's Tg is falling
    assert result.to_dict()["rule"] == "tg_doubling_time"


def test_example_plugin_is_registered_via_monkeypatched_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    _load_example(monkeypatch)
    _with(monkeypatch, md.EntryPoint("tg_doubling_time", "tg_doubling_time:RULE", GROUP))
    assert get_rule("tg_doubling_time").outcomes == ("rapid", "not_rapid", "not_evaluable")


@pytest.mark.slow
def test_example_plugin_pip_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip-installs examples/tg_doubling_time into a target dir and finds it through its entry point."""
    if shutil.which("pip") is None and importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not available to install the example plug-in")
    target = tmp_path / "site"
    build = tmp_path / "src"
    shutil.copytree(EXAMPLE, build)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(build),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:  # e.g. no `wheel` for setuptools < 70 without build isolation
        errors = [ln.strip() for ln in proc.stderr.splitlines() if "error:" in ln and "subprocess" not in ln]
        pytest.skip(f"pip could not build the example offline here: {errors[:1] or proc.stderr[-200:]}")
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.delitem(sys.modules, "tg_doubling_time", raising=False)
    assert "tg_doubling_time" in available_rules()
    sys.modules.pop("tg_doubling_time", None)
