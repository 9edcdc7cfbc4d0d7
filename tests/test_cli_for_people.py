"""Findings 7-11 of issue 12: lab CSVs, a missing optional dependency and a closed pipe, 80-column output,
help texts with domain metavariables, and the project's own clinical reference."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import ELIGIBLE

from trialflow.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner(env={"COLUMNS": "80"})


def run(*args: Any, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == code, f"exit {result.exit_code} != {code}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def two_patients(tmp_path: Path) -> str:
    db = str(tmp_path / "t.db")
    elig = tmp_path / "e.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    run("init", "--db", db)
    for p in ("P-001", "P-002"):
        run("enroll", p, "--date", "2026-04-01", "--eligibility", elig, "--db", db)
        run("start", p, "--date", "2026-04-15", "--db", db)
    return db


# -- finding 7: laboratory CSVs ------------------------------------------------------------------
def test_csv_reports_an_unknown_patient_with_line_and_column_beside_the_other_bad_rows(
        two_patients: str, tmp_path: Path) -> None:
    f = tmp_path / "lab.csv"
    f.write_text("patient,kind,date,value,result\nP-001,tg,2026-04-15,120,\nP-099,tg,2026-04-15,80,\n"
                 "P-002,tg,2026-04-15,abc,\n", encoding="utf-8")
    r = run("import", f, "--db", two_patients, code=1)
    assert f"{f}:3:1: $.patient: unknown patient 'P-099': enrol them first" in r.stderr
    assert f"{f}:4:4: $.value: expected a number, got 'abc'" in r.stderr
    assert "1 recorded" not in r.stdout  # nothing written
    assert json.loads(run("history", "P-001", "--db", two_patients, "--json").stdout)[-1]["kind"] != "observation" \
        or all(e["payload"].get("kind") != "tg" for e in json.loads(run("history", "P-001", "--db", two_patients,
                                                                         "--json").stdout))


def test_a_semicolon_csv_with_decimal_commas_imports(two_patients: str, tmp_path: Path) -> None:
    f = tmp_path / "lab-excel.csv"
    f.write_text("patient;kind;date;value;loq;result\nP-001;tg;2026-04-15;12,5;0,2;\nP-001;tgab;2026-04-15;;;negative\n",
                 encoding="utf-8")
    r = run("import", f, "--db", two_patients)
    assert r.stdout.startswith("P-001: 2 recorded")
    hist = json.loads(run("history", "P-001", "--db", two_patients, "--json").stdout)
    assert any(e["payload"].get("value") == 12.5 and e["payload"].get("loq") == 0.2 for e in hist)


def test_a_txt_export_with_the_csv_header_is_read_as_csv(two_patients: str, tmp_path: Path) -> None:
    f = tmp_path / "lab-export.txt"
    f.write_text("patient,kind,date,value\nP-002,tg,2026-04-15,33\n", encoding="utf-8")
    assert run("import", f, "--db", two_patients).stdout.startswith("P-002: 1 recorded")


# -- finding 8: a missing optional dependency, a closed pipe ----------------------------------------
def _trialflow(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from trialflow.cli import main; sys.argv[0] = 'trialflow'; main()",
            *args]


def test_plots_without_matplotlib_prints_the_results_names_the_extra_and_exits_1(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None; from trialflow.cli import main; "
            "sys.argv = ['trialflow', 'simulate', '--patients', '30', '--seed', '1', '--plots', sys.argv[1]]; main()")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "figs")], capture_output=True, text=True,
                          env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"}, timeout=600, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "simulated patients" in done.stdout and "Primary endpoint" in done.stdout
    assert "pip install 'trialflow[plots]'" in done.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    p = subprocess.Popen(_trialflow("protocol", "schema"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0, err
    assert err == ""


# -- finding 9: 80 columns --------------------------------------------------------------------------
def _lines_fit(text: str) -> None:
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)


def test_protocol_show_and_rules_list_print_every_parameter_name_whole() -> None:
    from trialflow.protocol import load_bundled_protocol
    from trialflow.rules import get_rule

    proto = load_bundled_protocol()
    shown = run("protocol", "show").stdout
    _lines_fit(shown)  # the tables and their captions (a phase's visits) alike
    assert "…" not in shown
    for c in proto.decision.criteria:
        for name, value in c.params.items():
            assert value is None or re.search(rf"\b{name}\b", shown), name
    listed = run("rules", "list").stdout
    _lines_fit(listed)
    assert "…" not in listed
    for c in proto.decision.criteria:
        for name in get_rule(c.rule).params_schema["properties"]:
            assert re.search(rf"^{name}\s", listed, re.M), name


def test_next_says_which_column_it_left_out(two_patients: str) -> None:
    out = run("next", "--as-of", "2026-05-12", "--db", two_patients).stdout
    _lines_fit(out)
    assert "left out at 80 columns: why" in " ".join(out.split())
    assert "Worklist as of 2026-05-12" in out
    status = run("status", "--db", two_patients).stdout
    _lines_fit(status)
    for token in ("P-001", "P-002", "sorafenib_6m"):
        assert token in status  # never broken inside


# -- finding 10: help texts --------------------------------------------------------------------------
COMMANDS = ["init", "enroll", "rescreen", "start", "record", "import", "correct", "decide", "withdraw", "complete",
            "next", "evaluate", "status", "history", "report", "visits", "deviation", "skip", "screen-fail",
            "stop-drug", "reverse", "safety"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_uses_domain_metavariables_and_marks_what_is_required(command: str) -> None:
    text = run(command, "--help").stdout
    assert not re.search(r"<(str|bool|int|float|path|list\[str\]|text)>", text), text
    usage = text.split("Usage:", 1)[1].splitlines()[0]
    assert not re.search(r"\b[a-z_]+\b(?=\]?\s*$)", usage.split("[OPTIONS]", 1)[1]) if "[OPTIONS]" in usage else True
    if "--as-of" in text:
        import datetime as dt

        assert f"today, {dt.date.today()}" in " ".join(text.split())


def test_required_options_are_marked() -> None:
    text = " ".join(run("deviation", "--help").stdout.split())
    for opt in ("--kind", "--reason"):
        assert re.search(rf"\* {opt} ", text), opt


# -- finding 11: the project's own clinical reference -------------------------------------------------
def test_the_product_cites_docs_domain_md_not_a_file_outside_the_repository() -> None:
    product = [ROOT / "README.md", *(p for d in ("protocol", "engine", "cli", "rules") for p in (ROOT / d).rglob("*")
                                     if p.suffix in (".py", ".yaml", ".json", ".md"))]
    assert not [str(p) for p in product if "shared/DOMAIN" in p.read_text(encoding="utf-8")]
    domain = (ROOT / "docs" / "DOMAIN.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (.+)$", domain, re.M))
    for f in (ROOT / "protocol" / "sorafenib_dtc.yaml", ROOT / "engine" / "default_scenario.yaml"):
        text = f.read_text(encoding="utf-8")
        assert "docs/DOMAIN.md" in text
        for cited in re.findall(r'docs/DOMAIN\.md[^"\n]*"([^"\n]+)"', text):
            assert any(s.startswith(cited) for s in sections), (f.name, cited)
