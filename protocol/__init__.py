"""Protocols declared in YAML: the schema, loading with located errors, and the frozen model.

The located-document names (``Document``, ``DocumentError``, ``Problem``, ...) live in
:mod:`trialflow.documents` and are re-exported here for the protocol's readers."""

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
