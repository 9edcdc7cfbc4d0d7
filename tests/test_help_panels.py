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
