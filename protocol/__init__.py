"""Protocols declared in YAML: the schema, loading with located errors, and the frozen model.

The located-document names (``Document``, ``DocumentError``, ``Problem``, ...) live in
:mod:`trialflow.documents` and are re-exported here for the protocol's readers. The JSON-Schema check
(which imports jsonschema), the located documents (which import PyYAML) and the diff of two versions are
imported when first used (PEP 562): rebuilding a registered version from its cached data needs none of
them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._loader import (
    BUNDLED_PROTOCOL,
    ProtocolError,
    StoredProtocolMismatch,
    bundled_protocol_path,
    load_bundled_protocol,
    load_protocol,
    parse_protocol,
    protocol_schema,
    rebuild_protocol,
)
from ._model import (
    Assessment,
    Branch,
    Condition,
    Criterion,
    Decision,
    EarlyTermination,
    Eligibility,
    EligibilityCriterion,
    EvidenceSelection,
    Phase,
    Protocol,
    Study,
    Transition,
    Treatment,
    Triggers,
    Visit,
    Window,
)

if TYPE_CHECKING:
    from trialflow.documents import (
        Document,
        DocumentError,
        Problem,
        load_document,
        parse_document,
        schema_problems,
        suggest,
    )

    from ._diff import Change, diff_protocols

_WHERE = {"Change": "._diff", "diff_protocols": "._diff",
          **{name: "trialflow.documents" for name in ("Document", "DocumentError", "Problem", "load_document",
                                                      "parse_document", "schema_problems", "suggest")}}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})

__all__ = [
    "BUNDLED_PROTOCOL",
    "Assessment",
    "Branch",
    "Change",
    "Condition",
    "Criterion",
    "Decision",
    "Document",
    "DocumentError",
    "EarlyTermination",
    "Eligibility",
    "EligibilityCriterion",
    "EvidenceSelection",
    "Phase",
    "Problem",
    "Protocol",
    "ProtocolError",
    "StoredProtocolMismatch",
    "Study",
    "Transition",
    "Treatment",
    "Triggers",
    "Visit",
    "Window",
    "bundled_protocol_path",
    "diff_protocols",
    "load_bundled_protocol",
    "load_document",
    "load_protocol",
    "parse_document",
    "parse_protocol",
    "protocol_schema",
    "rebuild_protocol",
    "schema_problems",
    "suggest",
]
