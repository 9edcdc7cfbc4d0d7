"""A small XML tree that remembers where each element starts, for import messages with line:column.

Parsed with expat (the standard library's parser). A DOCTYPE is refused outright: ODM needs none, and
refusing it shuts out entity expansion and external entities altogether.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from trialflow.protocol import DocumentError, Problem

__all__ = ["Node", "parse_xml"]


@dataclass(slots=True)
class Node:
    """One element: namespace, local name, attributes (``{ns}name`` for a namespaced one), position."""

    ns: str
    tag: str
    attrs: dict[str, str]
    line: int
    col: int
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str, ns: str | None = None) -> Iterator[Node]:
        return (c for c in self.children if c.tag == tag and (ns is None or c.ns == ns))

    def first(self, tag: str, ns: str | None = None) -> Node | None:
        return next(self.all(tag, ns), None)


class _Refused(Exception):
    pass


def parse_xml(path: str | Path) -> Node:
    """The document's root element; :class:`DocumentError` (with the position) if it is not well-formed XML."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise DocumentError([Problem(file, 1, 1, "$", f"cannot read: {err.strerror or err}")]) from None
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[Node] = []
    root: list[Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        ns, _, tag = name.rpartition(" ")
        node = Node(ns, tag, {(f"{{{k.split(' ')[0]}}}{k.split(' ')[1]}" if " " in k else k): v
                              for k, v in attrs.items()},
                    parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text += text

    def doctype(*_args: object) -> None:
        raise _Refused("a DOCTYPE is not accepted in an ODM file (it could define entities)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except _Refused as err:
        raise DocumentError([Problem(file, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1, "$",
                                     str(err))]) from None
    except expat.ExpatError as err:
        raise DocumentError([Problem(file, err.lineno, err.offset + 1, "$",
                                     f"not well-formed XML: {expat.errors.messages[err.code]}")]) from None
    if not root:
        raise DocumentError([Problem(file, 1, 1, "$", "no XML element found")])
    return root[0]
