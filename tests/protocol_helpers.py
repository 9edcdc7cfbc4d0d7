"""Broken copies of the real protocol, for tests that assert exactly where each error is reported.

A test names one textual edit of the bundled YAML (a unique snippet and its replacement) and checks
the :class:`~trialflow.protocol.Problem` lines the loader answers: line, column, JSON path, message.
Positions are computed from the edited text itself (``where``), so the tests say *which token* an
error must point at and keep working when unrelated lines of the protocol move.
"""

from __future__ import annotations

import pytest

from trialflow.protocol import Problem, ProtocolError, bundled_protocol_path, parse_protocol

BROKEN = "broken.yaml"


def bundled_text() -> str:
    return bundled_protocol_path().read_text(encoding="utf-8")


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new`` (fails if ``old`` is not unique)."""
    n = text.count(old)
    if n != 1:
        pytest.fail(f"the snippet must occur exactly once in the protocol, found {n}: {old!r}")
    return text.replace(old, new)


def where(text: str, snippet: str, offset: int = 0, *, nth: int | None = None) -> tuple[int, int]:
    """1-based (line, column) of ``snippet`` in ``text`` (plus ``offset`` characters).

    The snippet must be unique, unless ``nth`` (0-based) says which occurrence is meant.
    """
    n = text.count(snippet)
    if (n != 1 and nth is None) or (nth is not None and nth >= n):
        pytest.fail(f"the marker occurs {n} time(s) in the edited text: {snippet!r}")
    i = -1
    for _ in range(1 if nth is None else nth + 1):
        i = text.index(snippet, i + 1)
    i += offset
    line = text.count("\n", 0, i) + 1
    column = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, column


def problems_of(text: str, file: str = BROKEN) -> tuple[Problem, ...]:
    """The problems of protocol ``text``; fails the test if the text is a valid protocol."""
    try:
        parse_protocol(text, file)
    except ProtocolError as err:
        assert err.problems, "a ProtocolError must list at least one problem"
        return err.problems
    pytest.fail("the edited protocol was accepted; expected a ProtocolError")


def broken(old: str, new: str, text: str | None = None) -> tuple[str, tuple[Problem, ...]]:
    """Edit the bundled protocol (or ``text``) once; answer the edited text and its problems."""
    changed = edit(bundled_text() if text is None else text, old, new)
    return changed, problems_of(changed)


def only(problems: tuple[Problem, ...]) -> Problem:
    """The single problem in ``problems`` (fails with all of them listed otherwise)."""
    if len(problems) != 1:
        pytest.fail("expected exactly one problem, got:\n" + "\n".join(map(str, problems)))
    return problems[0]


def find(problems: tuple[Problem, ...], path: str) -> Problem:
    """The one problem reported at JSON ``path``."""
    hits = [p for p in problems if p.path == path]
    if len(hits) != 1:
        pytest.fail(f"expected one problem at {path}, got:\n" + "\n".join(map(str, problems)))
    return hits[0]
