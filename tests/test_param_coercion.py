"""``cli/_params.py`` builds typer's coercion of a parameter only when a value needs it, and coerces plain text
and paths without pydantic (issue 12, Speed: ``protocol validate`` imported pydantic for them). What a command
receives, and every message a bad value gets, must be what typer's own coercion gives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer import _coercion, core
from typer.testing import CliRunner

import trialflow.cli._app  # noqa: F401  (installs the deferred coercion)

demo = typer.Typer()


@demo.command()
def show(
    files: Annotated[list[Path], typer.Argument()],
    text: Annotated[str, typer.Option("--text")] = "default",
    where: Annotated[Path | None, typer.Option("--where")] = None,
    must: Annotated[Path | None, typer.Option("--must", exists=True, dir_okay=False)] = None,
    folder: Annotated[Path, typer.Option("--folder", file_okay=False, resolve_path=True)] = Path("sdtm"),
    tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
    count: Annotated[int, typer.Option("--count", min=0, max=9)] = 1,
    rate: Annotated[float | None, typer.Option("--rate")] = None,
    share: Annotated[float, typer.Option("--share", min=0.0, max=0.999)] = 0.5,
    level: Annotated[int, typer.Option("--level", min=1, max=3, clamp=True)] = 1,
    flag: Annotated[bool, typer.Option("--flag", envvar="DEMO_FLAG")] = False,
    name: Annotated[str | None, typer.Option("--name", envvar="DEMO_NAME")] = None,
) -> None:
    for value in (files, text, where, must, folder, tags, count, rate, share, level, flag, name):
        print(type(value).__name__, repr(value))


@demo.command()
def other() -> None:
    """(so that ``show`` is a subcommand, as trialflow's are)"""


def _typers(self: core._TyperParameter) -> _coercion.RuntimeParam:
    return _coercion.build_runtime_param(self.type_descriptor)  # typer's own get_runtime_param, uncached


CASES = [
    ["show", "a.yaml"],
    ["show", "a.yaml", "b.yaml", "--text", "x", "--where", "out/x.xml", "--tag", "t1", "--tag", "t2"],
    ["show", "", "--where", "", "--text", ""],
    ["show", "-", "--where", "-"],
    ["show", "a", "--must", "{tmp}/exists.txt"],
    ["show", "a", "--must", "{tmp}/missing.txt"],
    ["show", "a", "--must", "{tmp}"],
    ["show", "a", "--folder", "{tmp}/exists.txt"],
    ["show", "a", "--folder", "{tmp}/../{tmpname}"],
    ["show", "a", "--count", "3", "--rate", "0.5"],
    ["show", "a", "--count", "12"],
    ["show", "a", "--count", "x"],
    ["show", "a", "--rate", "fast"],
    *(["show", "a", "--count", v] for v in ("0", "9", "-1", "09", "+3", "3_0", " 3", "3 ", "3.0", "")),
    *(["show", "a", "--rate", v] for v in ("-0.5", ".5", "5.", "1e3", "nan", "inf", "0.1000000000000000055511",
                                           "123456789012345678901234567890")),
    *(["show", "a", "--share", v] for v in ("0", "0.999", "0.9991", "1", "-0.0", "0.25")),
    *(["show", "a", "--level", v] for v in ("2", "0", "7")),
    ["show", "a", "--flag"],
    ["show", "a", "", "b"],
    ["show"],
]


@pytest.mark.parametrize("case", CASES, ids=" ".join)
def test_a_command_receives_what_typers_coercion_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       case: list[str]) -> None:
    (tmp_path / "exists.txt").write_text("x", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{tmpname}", tmp_path.name) for a in case]
    monkeypatch.setenv("DEMO_FLAG", "1")
    monkeypatch.setenv("DEMO_NAME", "from the environment")
    runner = CliRunner()
    ours = runner.invoke(demo, args, terminal_width=200)
    monkeypatch.setattr(core._TyperParameter, "get_runtime_param", _typers)
    typers = runner.invoke(demo, args, terminal_width=200)
    assert (ours.exit_code, ours.output) == (typers.exit_code, typers.output)
    assert ours.exception is None or isinstance(ours.exception, SystemExit)

