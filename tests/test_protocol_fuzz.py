"""Fuzzing the loader: any edit of the real protocol gives a protocol or clean error lines, never a crash.

Each example applies one to three random edits to the bundled YAML (delete, duplicate or swap lines,
re-indent, replace a value, insert characters, truncate). The loader must answer either a valid
:class:`Protocol` or a :class:`ProtocolError` whose every problem is a one-line, located message.
Runs derandomized without an example database, so CI sees the same examples every time.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import bundled_text

from trialflow.protocol import Protocol, ProtocolError, load_protocol, parse_protocol

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TEXT = bundled_text()
LINES = TEXT.splitlines(keepends=True)
_WORD = re.compile(r"\b[a-z][a-z0-9_]+\b")
WORDS = sorted(
    set(_WORD.findall(TEXT))
)  # ids, keys and enum values: swapping them reaches the semantic checks

_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            "~",
            "null",
            "true",
            "no",
            ".inf",
            "-.nan",
            "[]",
            "{}",
            "[",
            "{",
            "'",
            '"',
            "&a",
            "*a",
            "!!python/object:os.system",
            "2024-01-01",
            "0x1F",
            "1e3",
            "|",
            ">-",
            "- x",
            "? x",
            "%YAML",
        ]
    ),
)


@st.composite
def _edit(draw: st.DrawFn, lines: list[str]) -> list[str]:
    n = len(lines)
    if n == 0:
        return lines
    kind = draw(
        st.sampled_from(["delete", "duplicate", "swap", "indent", "scalar", "word", "insert", "truncate"])
    )
    i = draw(st.integers(0, n - 1))
    out = list(lines)
    if kind == "delete":
        del out[i]
    elif kind == "duplicate":
        out.insert(i, out[i])
    elif kind == "swap":
        j = draw(st.integers(0, n - 1))
        out[i], out[j] = out[j], out[i]
    elif kind == "indent":
        delta = draw(st.integers(-4, 4))
        line = out[i]
        out[i] = (
            (" " * delta + line) if delta >= 0 else line[min(-delta, len(line) - len(line.lstrip(" "))) :]
        )
    elif kind == "scalar":
        line = out[i]
        cut = line.find(": ")
        if cut < 0:
            cut = line.find("- ")
        value = draw(_scalars)
        out[i] = (line[: cut + 2] if cut >= 0 else "") + value + "\n"
    elif kind == "word":
        spans = [m.span() for m in _WORD.finditer(out[i])]
        if spans:
            a, b = draw(st.sampled_from(spans))
            out[i] = out[i][:a] + draw(st.sampled_from(WORDS)) + out[i][b:]
    elif kind == "insert":
        line = out[i]
        at = draw(st.integers(0, len(line)))
        junk = draw(st.text(min_size=1, max_size=4))
        out[i] = line[:at] + junk + line[at:]
    else:  # truncate the whole text somewhere on this line
        at = draw(st.integers(0, len(out[i])))
        out = [*out[:i], out[i][:at]]
    return out


@st.composite
def _edited(draw: st.DrawFn) -> str:
    lines = LINES
    for _ in range(draw(st.integers(1, 3))):
        lines = draw(_edit(lines))
    return "".join(lines)


def _check_answer(load: object, file: str) -> None:
    """``load()`` must give a Protocol, or a ProtocolError of located one-line problems."""
    assert callable(load)
    try:
        proto = load()
    except ProtocolError as err:
        assert err.problems
        assert list(err.problems) == sorted(err.problems)
        for p in err.problems:
            assert p.file == file
            assert p.line >= 1 and p.column >= 1, p
            assert p.path.startswith("$"), p
            assert p.message.strip(), p
            assert "\n" not in str(p) and "\r" not in str(p), p
        return
    assert isinstance(proto, Protocol)
    json.dumps(proto.to_dict(), allow_nan=False)  # what `protocol show --json` prints
    assert proto.decision.branches[-1].default


@FUZZ
@given(_edited())
def test_random_edits_give_a_protocol_or_clean_errors(text: str) -> None:
    _check_answer(lambda: parse_protocol(text, "fuzzed.yaml"), "fuzzed.yaml")


@FUZZ
@given(st.integers(0, len(TEXT.encode())), st.binary(min_size=1, max_size=3))
def test_random_bytes_in_the_file_give_a_protocol_or_clean_errors(at: int, junk: bytes) -> None:
    raw = TEXT.encode()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fuzzed.yaml"
        f.write_bytes(raw[:at] + junk + raw[at:])
        _check_answer(lambda: load_protocol(f), str(f))


def test_the_unedited_protocol_passes_the_same_check() -> None:
    _check_answer(lambda: parse_protocol(TEXT, "bundled.yaml"), "bundled.yaml")
