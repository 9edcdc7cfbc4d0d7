"""The tables ``print_table`` draws without rich are rich's tables, byte for byte (cli/_plain_tables.py).

Random tables (ids, dates, words of every length, runs of spaces, empty cells, right-justified columns,
columns that must shrink below their words, ids too wide for the terminal) at widths from 8 to 200 are drawn
both ways and compared; so are the wrapped lines of ``say``. The commands' own tables are compared at 40-200
columns by the tour and width tests, which run the plain drawing.
"""

from __future__ import annotations

import io
import random

import pytest

from trialflow.cli import _output, _plain_tables, _tables
from trialflow.cli._consoles import _TextConsole
from trialflow.cli._tables import Column

_WORDS = ["a", "DEMO-020", "2026-11-16", "sorafenib_6m", "→", "–", "done,", "(event", "12)", "overdue", "Tg",
          "x" * 30, "dispense_sorafenib_800_mg_per_day_now", "…", "é", "12,345", ""]


def _text(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(0, 12))]
    return "".join(w + " " * rng.choice((0, 1, 1, 1, 2)) for w in words).lstrip(" " if rng.random() < .7 else "")


def _table(rng: random.Random) -> tuple[list[Column], list[list[str]], str | None]:
    columns = [Column(f"col{i}" + " head" * rng.randint(0, 3), rng.choice(("id", "text")),
                      optional=rng.random() < .3, min_width=rng.randint(1, 40),
                      justify=rng.choice(("left", "left", "right"))) for i in range(rng.randint(1, 7))]
    rows = [[rng.choice(_WORDS) if c.kind == "id" else _text(rng) for c in columns] for _ in range(rng.randint(0, 6))]
    return columns, rows, (_text(rng) or None) if rng.random() < .8 else None


def _rich_console(width: int, terminal: bool = False) -> _TextConsole:
    return _TextConsole(file=io.StringIO(), width=width, height=25, highlight=False, soft_wrap=True, emoji=False,
                        markup=False, force_terminal=terminal, color_system="truecolor" if terminal else None)


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
@pytest.mark.parametrize("seed", range(40))
def test_plain_tables_are_riches(seed: int, terminal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a terminal rich styles the header (bold, underlined): drawn so too, escape for escape."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    rng = random.Random(seed)
    drawn = 0
    for _ in range(25):
        columns, rows, title = _table(rng)
        width = rng.choice((8, 20, 40, 60, 79, 80, 81, 100, 132, 200))
        shown = [(c, len(c.name) if c.kind == "id" else min(c.min_width, len(c.name)),
                  [str(r[i]) for r in rows]) for i, c in enumerate(columns)]
        console = _rich_console(width, terminal)
        monkeypatch.setattr(_output, "console", console, raising=False)
        _tables._rich(shown, title)
        plain = _tables._plain(shown, title, width)
        assert plain is None or plain == console.file.getvalue(), (columns, rows, title, width)
        drawn += plain is not None
    assert drawn >= 10  # (most are drawn plain: the comparison is not vacuous)


@pytest.mark.parametrize("width", [10, 30, 80, 132])
def test_said_lines_are_riches(width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(width)
    monkeypatch.setenv("COLUMNS", str(width))
    for _ in range(60):
        text = _text(rng)
        console = _rich_console(width)
        from rich.text import Text

        console.print(Text(text), soft_wrap=False, overflow="fold")
        _tables.say(text)
        assert capsys.readouterr().out == console.file.getvalue(), (text, width)


def test_plain_only_where_drawn_as_rich_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert _plain_tables.drawable("DEMO-001 → done") and not _plain_tables.styled()
    assert not _plain_tables.drawable("患者")  # two cells a character: rich's to measure
    assert not _plain_tables.drawable("a\u00a0b")  # a non-breaking space: rich wraps at it
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as rich sees it
    assert _plain_tables.drawable("DEMO-001") and _plain_tables.styled()
    monkeypatch.setenv("TERM", "dumb")  # rich has its own rules for a dumb terminal: rich draws
    assert not _plain_tables.drawable("DEMO-001")


def test_one_cell_characters_are_one_cell_for_rich() -> None:
    from rich.cells import cell_len

    chars = [chr(c) for c in range(0x20, 0x2200) if _plain_tables._one_cell(chr(c))]
    assert len(chars) > 700
    assert [c for c in chars if cell_len(c) != 1 or (c.isspace() and c != " ")] == []
