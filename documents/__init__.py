"""Located documents: YAML or JSON read so that every error names its file, line and column.

The toolkit both the protocol loader and the rules' case files read through. It depends on neither
(only PyYAML and jsonschema), so ``trialflow.protocol`` (which checks rule params through the rules
registry) and ``trialflow.rules`` (whose case files are located documents) import it without a cycle.
The JSON-Schema check imports jsonschema when first used (PEP 562): reading a document needs none.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._source import (
    Document,
    DocumentError,
    PathItem,
    Problem,
    json_path,
    load_document,
    parse_document,
    suggest,
)

if TYPE_CHECKING:
    from ._validate import first_problem, schema_problems, validator_for

_WHERE = {"first_problem": "._validate", "schema_problems": "._validate", "validator_for": "._validate"}


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
    "Document",
    "DocumentError",
    "PathItem",
    "Problem",
    "first_problem",
    "json_path",
    "load_document",
    "parse_document",
    "schema_problems",
    "suggest",
    "validator_for",
]
