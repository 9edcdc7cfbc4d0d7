"""``--help`` is drawn by ``cli/_help_panels.py`` instead of ``typer.rich_utils`` (issue 12, Speed: that import
doubled the cost of ``trialflow --help``); what a user sees must be what typer drew, for every command and
command group, plain and in colour, at any width."""

from __future__ import annotations

import contextlib
import io

import pytest
from typer import core, rich_utils
from typer.main import get_command

from trialflow.cli import _help, app


def _paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*path, name))
    return found


def _helps(command: object) -> dict[tuple[str, ...], str]:
    texts = {}
    for path in _paths(command):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            command.main([*path, "--help"], prog_name="trialflow")  # type: ignore[attr-defined]
        texts[path] = out.getvalue()
    return texts


@pytest.mark.parametrize(("columns", "colour"), [(80, False), (60, False), (132, False), (80, True)])
def test_every_help_is_the_text_typer_drew(monkeypatch: pytest.MonkeyPatch, columns: int, colour: bool) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    monkeypatch.delenv("_TYPER_FORCE_DISABLE_TERMINAL", raising=False)
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", True if colour else None)  # (read at its import)
    monkeypatch.setattr(rich_utils, "MAX_WIDTH", None)
    command = get_command(app)
    ours = _helps(command)
    monkeypatch.setattr(core.TyperCommand, "format_help", _help._TYPER_FORMAT_HELP[core.TyperCommand])
    monkeypatch.setattr(core.TyperGroup, "format_help", _help._TYPER_FORMAT_HELP[core.TyperGroup])
    typers = _helps(command)
    assert len(ours) >= 50 and all("trialflow" in text for text in ours.values())
    assert ("\x1b[" in ours[()]) is colour
    assert {p: t for p, t in ours.items() if t != typers[p]} == {}


@pytest.mark.parametrize("rich_help", [True, False])
def test_brackets_in_help_texts_are_printed_not_taken_for_markup(monkeypatch: pytest.MonkeyPatch,
                                                                 rich_help: bool) -> None:
    """Rich markup takes "[dask]" for a style tag and drops it ("pip install 'trialflow'"): every bracketed
    word of a help text is escaped ("\\[dask]") and printed, in rich help and in plain help (the "\\" not shown)."""
    import re

    from typer.testing import CliRunner

    monkeypatch.setenv("COLUMNS", "400")
    if not rich_help:
        monkeypatch.setattr(core, "HAS_RICH", False)
    command = get_command(app)
    found = {}
    for path in _paths(command):
        cmd = command
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        texts = [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]  # type: ignore[attr-defined]
        brackets = [b.replace("\\[", "[") for t in texts for b in re.findall(r"\\?\[[^\]]*\]", t)]
        if brackets:
            shown = " ".join(CliRunner().invoke(app, [*path, "--help"]).stdout.split())
            found[path] = [b for b in brackets if b not in shown]
    assert found[("simulate",)] == []  # "pip install 'trialflow[dask]'"
    assert {p: missing for p, missing in found.items() if missing} == {}
    shown = CliRunner().invoke(app, ["simulate", "--help"]).stdout
    assert "trialflow[dask]" in " ".join(shown.split()) and "\\[" not in shown
