"""Loading a protocol file: YAML → schema → semantic checks → frozen model, all errors at once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialflow.documents._problems import DocumentError, Problem

from ._build import build_protocol, content_hash
from ._model import Protocol

if TYPE_CHECKING:
    from trialflow.documents import Document

__all__ = ["BUNDLED_PROTOCOL", "ProtocolError", "StoredProtocolMismatch", "bundled_protocol_path",
           "load_bundled_protocol", "load_protocol", "parse_protocol", "protocol_schema", "rebuild_protocol"]

BUNDLED_PROTOCOL = "sorafenib_dtc.yaml"


class ProtocolError(DocumentError):
    """A protocol file is invalid; ``problems`` lists every error, sorted by position."""


@cache
def protocol_schema() -> dict[str, Any]:
    """The protocol JSON Schema (draft 2020-12) shipped with trialflow."""
    from importlib import resources  # (here: reading a protocol file that passed before needs neither)

    text = resources.files("trialflow.protocol").joinpath("protocol.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def bundled_protocol_path() -> Path:
    """Path of the bundled Sorafenib protocol."""
    from importlib import resources

    return Path(str(resources.files("trialflow.protocol").joinpath(BUNDLED_PROTOCOL)))


def _item(path: str) -> str:
    """``$.phases[1].visits[0].day`` → ``$.phases[1]``: the top-level item a path lies in."""
    head, _, rest = path.partition("]")
    return head + "]" if rest or path.endswith("]") else path


def _follows_from(problem: Problem, schema: list[Problem]) -> bool:
    """A semantic problem in the same top-level item as a schema problem is most likely its echo."""
    return any(_item(problem.path) == _item(s.path) for s in schema)


def _from_document(doc: Document) -> Protocol:
    """The validated model of ``doc``; :class:`ProtocolError` lists every problem.

    Data that passed the same checks before, with the same checking code, is not checked again
    (``trialflow.documents._trusted``): ``protocol validate`` of an unchanged file, or ``init`` with it,
    then imports no validator. Only a pass is remembered, so a file with errors is checked every time.
    """
    from trialflow.documents._trusted import remember, trusted

    if trusted("protocol", doc.data):
        return build_protocol(doc.data, doc.file)
    protocol = _validated(doc)
    remember("protocol", doc.data)
    return protocol


def _validated(doc: Document) -> Protocol:
    # the validators (jsonschema, the rule plug-ins) load only when a protocol is validated, not when a
    # registered version is rebuilt from the store
    from trialflow.documents import schema_problems

    from ._semantic import semantic_problems

    problems = schema_problems(doc, protocol_schema())
    if not problems:
        problems = semantic_problems(doc)
    elif isinstance(doc.data, dict):
        # Report the semantic problems too where the shapes they read are intact, so an author sees
        # every error at once. The semantic checks trust the schema; on a shape it rejected they may
        # fail in any way, and then only the schema's problems are reported.
        try:
            extra = semantic_problems(doc)
        except Exception:  # best effort on data the schema already rejected
            extra = []
        problems = sorted(set(problems) | {p for p in extra if not _follows_from(p, problems)})
    if problems:
        raise ProtocolError(problems)
    return build_protocol(doc.data, doc.file)


def parse_protocol(text: str, file: str = "<protocol>") -> Protocol:
    """Validate protocol YAML text; :class:`ProtocolError` lists every problem."""
    from trialflow.documents._source import parse_document

    try:
        doc = parse_document(text, file)
    except DocumentError as err:
        raise ProtocolError(err.problems) from None
    return _from_document(doc)


class StoredProtocolMismatch(ValueError):
    """A stored protocol text no longer has the content hash it was registered (validated) under."""

    def __init__(self, file: str, expected: str, found: str):
        self.file, self.expected, self.found = file, expected, found
        super().__init__(f"{file}: the stored protocol text does not match the content hash it was registered "
                         f"under (registered {expected[:12]}, the text now hashes to {found[:12]}): it was changed "
                         "after validation, so it is not used")


def rebuild_protocol(text: str, file: str, expected_hash: str, *, cached: bool = True) -> Protocol:
    """The model of a version validated when it was registered, rebuilt from its stored text.

    Its data is read from the cache of stored texts when that holds it (``_stored``: JSON, used only if it
    hashes to ``expected_hash``), else from the YAML with the same safe loader, and then cached; either way
    the content hash must be the one it was registered under. The JSON Schema and the semantic checks are
    not run again (they passed at registration, and the hash says the data is the data they passed).
    :class:`StoredProtocolMismatch` if the text was changed, :class:`ProtocolError` if it is no longer
    even readable YAML. ``cached=False`` reads the YAML whatever the cache holds (a text being registered
    is checked against the validated model by its own content, not by what a cache says it holds).
    """
    from ._stored import cached_data, remember_data

    data = cached_data(text, expected_hash) if cached else None
    if data is None:
        from trialflow.documents._source import parse_document

        try:
            doc = parse_document(text, file)
        except DocumentError as err:
            raise ProtocolError(err.problems) from None
        found = content_hash(doc.data)
        if found != expected_hash:
            raise StoredProtocolMismatch(file, expected_hash, found)
        data = doc.data
        remember_data(text, data)
    return build_protocol(data, file)


def load_protocol(path: str | Path) -> Protocol:
    """Load and validate a protocol file; :class:`ProtocolError` lists every problem."""
    from trialflow.documents._source import load_document

    try:
        doc = load_document(path)
    except DocumentError as err:
        raise ProtocolError(err.problems) from None
    return _from_document(doc)


@cache
def load_bundled_protocol() -> Protocol:
    """The bundled protocol (``protocol/sorafenib_dtc.yaml``), loaded once per process.

    Validated like any file (:func:`_from_document`: not again when the same data passed before with
    the same checking code)."""
    from trialflow.documents._source import load_document

    try:
        doc = load_document(bundled_protocol_path())
    except DocumentError as err:
        raise ProtocolError(err.problems) from None
    return _from_document(doc)
