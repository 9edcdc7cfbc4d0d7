"""``trialflow simulate --cases DIR`` round-trips as a user would do it: enrol each simulated patient on its
case file's enrolment date with every criterion met, start it on its day 0, import the case file, withdraw
it if the simulator did before the decision, and ``evaluate`` gives the simulator's outcomes and branch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from parity_helpers import answers
from typer.testing import CliRunner

from trialflow.cli import app

runner = CliRunner()


def run(*args: Any, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_simulated_case_files_import_and_evaluate_to_the_simulators_decision(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text('study_start: "2020-01-01"\nrai_reinduction_probability: 0.3\ndropout_per_month: 0.05\n')
    cases = tmp_path / "cases"
    out = json.loads(run("simulate", "--patients", 16, "--seed", 3, "--scenario", scenario, "--cases", cases,
                         "--json"))
    assert out["cases"] == {"directory": str(cases), "patients": 16, "summary": str(cases / "patients.jsonl")}
    summary = [json.loads(line) for line in (cases / "patients.jsonl").read_text().splitlines()]
    assert [s["patient"] for s in summary] == [f"SIM-{i:05d}" for i in range(1, 17)]
    assert {"patient", "branch", "phase", "outcomes"} <= set(summary[0])
    # the case files are the import format, enrolment date beside day 0
    first = json.loads((cases / "SIM-00001.json").read_text())
    assert (first["patient"], first["enrolled"], first["day0"]) == ("SIM-00001", summary[0]["enrolled"],
                                                                    summary[0]["day0"])
    eligible = tmp_path / "eligible.yaml"
    eligible.write_text(yaml.safe_dump(answers()))
    db = tmp_path / "roundtrip.db"
    run("init", "--db", db)
    kinds = set()
    for s in summary:
        pid = s["patient"]
        run("enroll", pid, "--date", s["enrolled"], "--eligibility", eligible, "--db", db)
        run("start", pid, "--date", s["day0"], "--db", db)
        run("import", cases / f"{pid}.json", "--db", db)
        if s["branch"] is None:
            run("withdraw", pid, "--date", s["withdrawn"]["date"], "--reason", s["withdrawn"]["reason"], "--db", db)
        got = json.loads(run("evaluate", pid, "--db", db, "--json"))
        if s["branch"] is None:
            assert not got["applicable"] and got["recommended_branch"] is None, pid
        else:
            assert got["ready"], pid
            assert (got["outcomes"], got["recommended_branch"]) == (s["outcomes"], s["branch"]), pid
        kinds.add(s["branch"])
    assert {"rai_reinduced", "favourable_without_uptake"} <= kinds  # the branches the cohort reaches
    # importing a case file into the wrong patient's enrolment is refused, and changes nothing
    run("enroll", "X-1", "--date", summary[1]["enrolled"], "--eligibility", eligible, "--db", db)
    run("start", "X-1", "--date", summary[1]["day0"], "--db", db)
    moved = json.loads((cases / "SIM-00001.json").read_text())
    moved["patient"] = "X-1"
    (tmp_path / "X-1.json").write_text(json.dumps(moved))
    result = runner.invoke(app, ["import", str(tmp_path / "X-1.json"), "--db", str(db)])
    assert result.exit_code == 1
    assert "the file says" in result.stdout + result.stderr


def test_cases_into_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["simulate", "--patients", "5", "--seed", "1", "--cases", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "cannot write the case files" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_cases_into_a_folder_of_an_earlier_run_are_refused_and_force_replaces_them(tmp_path: Path) -> None:
    """The rule of --plots: a second run never mixes its case files with the first's (SIM-00004/5 of a run
    of 5 beside a run of 3, whose patients.jsonl lists 3)."""
    cases = tmp_path / "cases"
    run("simulate", "--patients", 5, "--seed", 1, "--cases", cases)
    first = {p.name: p.read_bytes() for p in cases.iterdir()}
    result = runner.invoke(app, ["simulate", "--patients", "3", "--seed", "7", "--cases", str(cases)])
    assert result.exit_code == 1
    assert "patients.jsonl already exists" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert {p.name: p.read_bytes() for p in cases.iterdir()} == first  # nothing written, nothing removed
    mine = cases / "notes.txt"  # not a case file: left alone, as --plots leaves what is not a figure
    mine.write_text("mine")
    out = json.loads(run("simulate", "--patients", 3, "--seed", 7, "--cases", cases, "--force", "--json"))
    assert out["cases"]["patients"] == 3
    assert sorted(p.name for p in cases.iterdir()) == ["SIM-00001.json", "SIM-00002.json", "SIM-00003.json",
                                                        "notes.txt", "patients.jsonl"]
    assert len((cases / "patients.jsonl").read_text().splitlines()) == 3 and mine.read_text() == "mine"


def test_cases_never_write_through_a_symbolic_link(tmp_path: Path) -> None:
    outside = tmp_path / "important.json"
    outside.write_text("do not touch")
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "SIM-00002.json").symlink_to(outside)
    result = runner.invoke(app, ["simulate", "--patients", "3", "--seed", "7", "--cases", str(cases)])
    assert result.exit_code == 1 and "symbolic link" in result.stderr
    run("simulate", "--patients", 3, "--seed", 7, "--cases", cases, "--force")  # replaces the link itself
    assert outside.read_text() == "do not touch" and not (cases / "SIM-00002.json").is_symlink()


def test_cases_into_a_file_say_it_is_not_a_folder_as_plots_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for option in ("--cases", "--plots"):
        result = runner.invoke(app, ["simulate", "--patients", "5", "--seed", "1", option, str(blocker)])
        assert result.exit_code == 1, option
        assert result.stderr.strip() == f"{blocker} is not a folder", option
    assert blocker.read_text() == "not a folder"


def test_cases_with_a_grid_are_refused_up_front(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    result = runner.invoke(app, ["simulate", "--patients", "5", "--seed", "1", "--grid",
                                 "rai_reinduction_probability=0.1,0.2", "--cases", str(cases)])
    assert result.exit_code == 2
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "--cases" in said and "cannot be combined with --grid" in said
    assert "Traceback" not in result.stdout + result.stderr and not cases.exists()
