"""``trialflow rules list`` and ``trialflow rules eval``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialflow.cli import app

CASE = str(Path(__file__).parent / "cases" / "P-001.yaml")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["rules", *args])
    return r.exit_code, r.stdout, r.stderr


def test_list_json() -> None:
    code, out, _ = run("list", "--json")
    rules = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and {"rai_uptake", "tg_slope", "recist"} <= rules.keys()
    assert rules["tg_slope"]["params_schema"]["properties"]["alpha"]["default"] == 0.05
    assert rules["recist"]["observation_kinds"] == ["ct"] and rules["recist"]["references"]


def test_list_table() -> None:
    code, out, _ = run("list")
    assert code == 0 and "tg_slope" in out and "recist" in out


def test_eval_tg_slope_json() -> None:
    code, out, _ = run("eval", "tg_slope", "--input", CASE, "--json")
    d = json.loads(out)
    assert code == 0 and d["outcome"] == "response" and d["n"] == 8
    assert {"rule", "reason", "slope_per_week", "p_value"} <= d.keys()


def test_eval_recist_uses_bundled_protocol_params() -> None:
    """The bundled protocol runs RECIST 1.0 (the trial's version); --param switches to 1.1."""
    code, out, _ = run("eval", "recist", "--input", CASE, "--json")
    d = json.loads(out)
    assert code == 0 and d["version"] == "1.0"
    assert [a["overall"] for a in d["assessments"]] == ["SD", "PR"] and d["best_overall_response"] == "SD"
    code, out, _ = run("eval", "recist", "-i", CASE, "--param", "version=1.1", "--json")
    assert json.loads(out)["version"] == "1.1"


def test_eval_rai_and_human_output() -> None:
    code, out, _ = run("eval", "rai_uptake", "--input", CASE, "--json")
    assert code == 0 and json.loads(out)["new_avid_lesions"] == []
    code, out, _ = run("eval", "recist", "--input", CASE)
    assert code == 0 and "P-001 recist: PR" in out


def test_eval_as_of() -> None:
    code, out, _ = run("eval", "tg_slope", "-i", CASE, "--as-of", "2026-02-20", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "not_evaluable"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["eval", "recis", "-i", CASE], 2, "did you mean 'recist'?"),
        (["eval", "tg_slope", "-i", CASE, "-p", "alpah=0.1"], 2, "did you mean 'alpha'?"),
        (["eval", "tg_slope", "-i", CASE, "-p", "alpha"], 2, "expected KEY=VALUE"),
        (["eval", "tg_slope", "-i", CASE, "-p", "alpha=2"], 2, "alpha"),
        (["eval", "tg_slope", "-i", CASE, "-p", "min_values=many"], 2, "min_values"),
        (["eval", "tg_slope", "-i", CASE, "--as-of", "soon"], 2, "ISO date"),
        (["eval", "tg_slope", "-i", "missing.yaml"], 1, "missing.yaml:1:1: $: no such file"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], code: int, message: str) -> None:
    got, out, err = run(*args)
    assert got == code and message in err and "Traceback" not in err + out


def test_invalid_case_file_lists_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: P-9\nobservations:\n  - {kind: tg, date: 2026-01-12, value: 3, unit: mmol/L}\n")
    code, _, err = run("eval", "tg_slope", "-i", str(bad))
    assert code == 1 and f"{bad}:3:" in err and "mmol/L" in err
