"""What is wrong with a document, and where: the problem, the error and the "did you mean", without the
YAML reader.

Kept apart from ``_source`` (which imports PyYAML) so that code which only raises or catches these,
such as a protocol version rebuilt from its cached data (``trialflow.protocol._stored``), loads no YAML.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DocumentError", "Problem", "suggest"]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with an input document, at a position a person can go to."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class DocumentError(Exception):
    """An input document (protocol, case file, scenario) is not usable; ``problems`` says why, all of them."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def suggest(word: object, candidates: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when one candidate is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    options = list(candidates)
    by_lower = {c.lower(): c for c in options}
    if word.lower() in by_lower and by_lower[word.lower()] != word:  # 'sd' → 'SD'
        return f"; did you mean {by_lower[word.lower()]!r}?"
    import difflib  # (here: only a word that is not one of them needs it)

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
