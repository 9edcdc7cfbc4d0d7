"""The README tour, run as a new user runs it (issue 12): its commands, read from README.md itself, on a
fresh store in an empty folder, print what the README shows.

Two blocks are runnable from what they show: the first of "Running the study" (init, enrolment, the
baseline, day 0, the worklist, recording) and the one of "The coordinator's day" (the ledger, a
deviation, an implausible value), which continues the first block's patient from its baseline. Every
command's output is compared line by line (trailing blanks aside), with the one thing that moves, the
date of today, written as TODAY on both sides; so the worklists and the ledger the README shows are
exactly what the commands print at 80 columns.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import ELIGIBLE

from trialflow.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = ("### Running the study", "### The coordinator's day")


@dataclass(frozen=True)
class Step:
    args: list[str]
    shown: list[str]


def _blocks(section: str) -> list[list[str]]:
    """The ```text blocks of the README section whose heading starts with ``section``."""
    text = README.read_text(encoding="utf-8")
    start = next(i for i, line in enumerate(text.splitlines()) if line.startswith(section))
    lines = text.splitlines()[start + 1:]
    end = next((i for i, line in enumerate(lines) if line.startswith("#")), len(lines))
    blocks: list[list[str]] = []
    inside: list[str] | None = None
    for line in lines[:end]:
        if line.startswith("```text"):
            inside = []
        elif line.startswith("```") and inside is not None:
            blocks.append(inside)
            inside = None
        elif inside is not None:
            inside.append(line)
    return blocks


def steps(block: list[str]) -> list[Step]:
    """``$ trialflow ...`` commands (``\\``-continued, ``# comments`` dropped) and the lines shown after each."""
    out: list[Step] = []
    i = 0
    while i < len(block):
        line = block[i]
        assert line.startswith("$ trialflow "), f"README tour: not a command line: {line!r}"
        command = line[2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + " " + block[i].strip()
        i += 1
        shown = []
        while i < len(block) and not block[i].startswith("$ "):
            shown.append(block[i])
            i += 1
        out.append(Step(shlex.split(command, comments=True)[1:], shown))
    return out


def tours() -> dict[str, list[Step]]:
    running = steps(_blocks(SECTIONS[0])[0])
    day = steps(_blocks(SECTIONS[1])[0])
    setup = running[: next(i for i, s in enumerate(running) if s.args[0] == "start")]
    return {"running the study": running, "the coordinator's day": setup + day}


def _normal(lines: list[str]) -> list[str]:
    today = dt.date.today().isoformat()
    got = [re.sub(r"(today is|as of) \d{4}-\d\d-\d\d", r"\1 TODAY", line.replace(today, "TODAY")).rstrip()
           for line in lines]
    while got and not got[-1]:
        got.pop()
    return got


def test_the_readme_holds_the_tour() -> None:
    """The parser finds the commands (the test below cannot pass on an empty tour)."""
    t = tours()
    commands = [" ".join(s.args[:1]) for s in t["running the study"]]
    assert commands[:5] == ["init", "init", "enroll", "record", "record"] and "next" in commands
    assert [s.args[0] for s in t["the coordinator's day"]].count("visits") == 1


@pytest.mark.parametrize("name", ["running the study", "the coordinator's day"])
def test_the_readme_tour_prints_what_the_readme_shows(name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tour uses the default store, trialflow.db, in the folder it runs in
    for var in ("TRIALFLOW_DB", "TRIALFLOW_USER", "TRIALFLOW_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "eligible.yaml").write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "80"})
    for step in tours()[name]:
        result = runner.invoke(app, step.args, terminal_width=80)
        printed = (result.stdout + result.stderr).splitlines()
        assert "Traceback" not in result.stdout + result.stderr
        refused = any(line.startswith("refused:") for line in step.shown)
        assert result.exit_code == (1 if refused else 0), (step.args, result.stdout, result.stderr)
        assert _normal(printed) == _normal(step.shown), f"$ trialflow {shlex.join(step.args)}"
