"""What is wrong with a document, and where: the problem and the error, without the YAML reader.

Kept apart from ``_source`` (which imports PyYAML) so that code which only raises or catches these,
such as a protocol version rebuilt from its cached data (``trialflow.protocol._stored``), loads no YAML.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DocumentError", "Problem"]


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
