"""Reading YAML or JSON documents so that every later error can name its file, line and column.

PyYAML is used through its composer: the node tree keeps the position of every key and value, which
is what lets a JSON-Schema error at ``$.phases[3].visits[0].day`` be reported as ``FILE:41:14``.
Only safe construction is used (``CSafeLoader`` when the C extension is present), duplicate keys are
errors rather than silently keeping the last one, and YAML timestamps stay ISO strings so that YAML
and JSON inputs validate alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._problems import DocumentError, Problem, suggest

__all__ = [
    "Document",
    "DocumentError",
    "Problem",
    "json_path",
    "load_document",
    "parse_document",
    "suggest",
]

_Loader: type[yaml.SafeLoader]
try:  # the C loader is ~10x faster; both construct only plain data
    _Loader = yaml.CSafeLoader  # type: ignore[assignment]  # same interface as SafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


class _TextDatesLoader(_Loader):  # type: ignore[misc,valid-type]  # base chosen at import time
    """A safe loader that keeps timestamps as their ISO text (JSON has no date type), and reads numbers
    as YAML 1.2 (and JSON) do: ``1:20`` is the text "1:20", not 80 (YAML 1.1 sexagesimal), and
    ``0o17``, ``0x1f``, ``1_000`` are text too, so a schema expecting a number says so."""


_TextDatesLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}
_TextDatesLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_TextDatesLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"),
)

#: limits on what a document may be (a case file of 20,000 rows is ~3 MB; the bundled protocol 12 kB)
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
#: a document's nodes counted with every alias expanded, at most this many times its distinct nodes
#: (plus a margin): anchors for reuse are fine, a "billion laughs" alias bomb is refused before it expands
ALIAS_EXPANSION = 4
ALIAS_MARGIN = 10_000

PathItem = str | int


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_path(path: Sequence[PathItem]) -> str:
    """``("phases", 2, "id")`` → ``$.phases[2].id``."""
    out = "$"
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        elif _IDENT.match(item):
            out += f".{item}"
        else:
            out += f"[{item!r}]"
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """Plain data loaded from a file, with the composed node tree kept for locating positions."""

    file: str
    data: Any
    root: yaml.Node | None

    def locate(self, path: Sequence[PathItem], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path`` (of its key with ``key=True``).

        Follows the path as far as the document goes and answers the deepest node reached, so an
        error about a missing field points at the mapping that lacks it.
        """
        node = self.root
        if node is None:
            return (1, 1)
        mark = node.start_mark
        for item in path:
            if isinstance(node, yaml.MappingNode) and isinstance(item, str):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == item:
                        mark = k.start_mark if key and item == path[-1] else v.start_mark
                        node = v
                        break
                else:
                    break
            elif (isinstance(node, yaml.SequenceNode) and isinstance(item, int)
                  and 0 <= item < len(node.value)):
                node = node.value[item]
                mark = node.start_mark
            else:
                break
        return (mark.line + 1, mark.column + 1)

    def problem(self, path: Sequence[PathItem], message: str, *, key: bool = False) -> Problem:
        line, column = self.locate(path, key=key)
        return Problem(self.file, line, column, json_path(path), message)


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of the character at ``index`` in ``text``."""
    index = max(0, min(index, len(text)))
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, start) + 1, index - start + 1


def _mark_problem(file: str, err: yaml.MarkedYAMLError) -> Problem:
    """Located where the problem starts (PyYAML's context mark: the unclosed ``[``, the key being read),
    naming the place PyYAML noticed it too when that is elsewhere."""
    noticed = err.problem_mark
    # "while parsing a flow sequence", "while scanning a simple key": the context mark is where the
    # construct starts; other contexts ("expected a single document") mark something else
    start = err.context_mark if (err.context or "").startswith("while ") else None
    mark = start or noticed or err.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = err.problem or "invalid YAML"
    if err.context:
        what = f"{what} ({err.context}{' that starts here' if start is not None else ''})"
    if start is not None and noticed is not None and (start.line, start.column) != (noticed.line, noticed.column):
        what += f"; noticed at line {noticed.line + 1}, column {noticed.column + 1}"
    return Problem(file, line, column, "$", f"YAML syntax error: {what}")


class _TooBig(Exception):
    """The tree is refused as a whole (too deep, or an alias bomb); ``problem`` says where and why."""

    def __init__(self, problem: Problem):
        self.problem = problem


_DEFAULT_TAGS: dict[type, str] = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}


def _explicit_tag(loader: Any, node: yaml.Node) -> bool:
    """Whether the node carries a tag its text would not get by itself (``!!float x``, ``!python/...``)."""
    if isinstance(node, yaml.ScalarNode):
        plain = not node.style  # None from the Python parser, "" from the C one
        implicit = loader.resolve(yaml.ScalarNode, node.value, (plain, not plain))
        return bool(node.tag != implicit)
    return bool(node.tag != _DEFAULT_TAGS[type(node)])


def _check_tree(file: str, loader: Any, root: yaml.Node, out: list[Problem]) -> None:
    """Every node, iteratively: duplicate and non-string keys (PyYAML would keep the last duplicate),
    explicit tags, nesting deeper than :data:`MAX_DEPTH`, and alias expansion beyond the budget."""
    distinct: set[int] = set()
    visited = 0
    stack: list[tuple[yaml.Node, tuple[PathItem, ...], frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        node, path, ancestors = stack.pop()
        if id(node) in ancestors:
            raise _TooBig(Problem(file, 1, 1, "$", "an alias (*name) refers to the collection that contains "
                                  "it: such a document never ends; write the repeated part out"))
        inside = ancestors | {id(node)} if isinstance(node, yaml.CollectionNode) else ancestors
        visited += 1
        distinct.add(id(node))
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        if visited > ALIAS_EXPANSION * len(distinct) + ALIAS_MARGIN:
            raise _TooBig(Problem(file, *where, json_path(path), "aliases (*name) expand this document beyond "
                                  f"{ALIAS_EXPANSION}x its size: refused (an alias bomb, or an alias inside "
                                  "its own anchor); write the repeated parts out"))
        if len(path) > MAX_DEPTH:
            raise _TooBig(Problem(file, *where, json_path(path[:MAX_DEPTH]), f"nested deeper than {MAX_DEPTH} "
                                  "levels: refused (no protocol or case file needs that many)"))
        if _explicit_tag(loader, node):
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            out.append(Problem(file, *where, json_path(path), f"YAML tag {shown!r} is not accepted: write the "
                               "value plainly (quote it for text)"))
            continue
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            children = []
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                    shown = k.value if isinstance(k, yaml.ScalarNode) else "a collection"
                    out.append(
                        Problem(file, k.start_mark.line + 1, k.start_mark.column + 1, json_path(path),
                                f"key {shown!r} must be a string; quote it")
                    )
                    continue
                if k.value in seen:
                    first = seen[k.value].start_mark
                    out.append(
                        Problem(file, k.start_mark.line + 1, k.start_mark.column + 1, json_path([*path, k.value]),
                                f"duplicate key {k.value!r} (first defined at line {first.line + 1}); "
                                "a YAML mapping keeps only one value per key")
                    )
                else:
                    seen[k.value] = k
                children.append((v, (*path, k.value), inside))
            stack.extend(reversed(children))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i), inside) for i, item in reversed(list(enumerate(node.value))))


def parse_document(text: str, file: str) -> Document:
    """Parse YAML (JSON is YAML) text; raise :class:`DocumentError` with every problem located."""
    if len(text) > MAX_BYTES:
        raise DocumentError([Problem(file, 1, 1, "$", f"the document is {len(text) / 2**20:.1f} MB; at most "
                                     f"{MAX_BYTES // 2**20} MB are read (split a case file into several)")])
    loader = _TextDatesLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise DocumentError([Problem(file, 1, 1, "$", "the document is empty")])
        problems: list[Problem] = []
        try:
            _check_tree(file, loader, root, problems)
        except _TooBig as err:
            problems = [err.problem]
        if problems:
            raise DocumentError(problems)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        raise DocumentError([_mark_problem(file, err)]) from None
    except yaml.reader.ReaderError as err:  # a character YAML refuses; its position is an index into text
        line, column = _position(text, err.position)
        char = f"U+{err.character:04X}" if isinstance(err.character, int) else repr(err.character)
        message = f"YAML error: character {char}: {err.reason}"
        raise DocumentError([Problem(file, line, column, "$", message)]) from None
    except yaml.YAMLError as err:
        raise DocumentError([Problem(file, 1, 1, "$", "YAML error: " + " ".join(str(err).split()))]) from None
    except (ValueError, TypeError, OverflowError) as err:  # a constructor refused a value the checks let by
        raise DocumentError([Problem(file, 1, 1, "$", f"YAML error: {err}")]) from None
    except RecursionError:  # from the composer or the key check; an alias inside its own anchor recurses too
        raise DocumentError([Problem(file, 1, 1, "$", "the document is nested too deeply "
                                     "(or an alias refers to the collection that contains it)")]) from None
    finally:
        loader.dispose()
    return Document(file=file, data=data, root=root)


def load_document(path: str | Path) -> Document:
    """Read and parse a YAML or JSON file; unreadable files are a :class:`DocumentError` too."""
    p = Path(path)
    try:
        size = p.stat().st_size if p.is_file() else 0
        if size > MAX_BYTES:  # refused before reading: a 50 MB file once took minutes and 0.8 GB
            raise DocumentError([Problem(str(p), 1, 1, "$", f"the file is {size / 2**20:.1f} MB; at most "
                                         f"{MAX_BYTES // 2**20} MB are read (split a case file into several)")])
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError([Problem(str(p), 1, 1, "$", "no such file")]) from None
    except IsADirectoryError:
        raise DocumentError([Problem(str(p), 1, 1, "$", "is a directory, not a file")]) from None
    except UnicodeDecodeError as err:  # point at the first bad byte (its column counted in characters)
        raw = p.read_bytes()
        start = raw.rfind(b"\n", 0, err.start) + 1
        line, column = raw.count(b"\n", 0, start) + 1, len(raw[start:err.start].decode("utf-8")) + 1
        message = f"not UTF-8 text (byte 0x{raw[err.start]:02x}: {err.reason}); save the file as UTF-8"
        raise DocumentError([Problem(str(p), line, column, "$", message)]) from None
    except OSError as err:
        raise DocumentError([Problem(str(p), 1, 1, "$", f"cannot read: {err.strerror}")]) from None
    return parse_document(text, str(p))
