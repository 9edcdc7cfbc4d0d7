"""Located documents: YAML or JSON read so that every error names its file, line and column.

The toolkit both the protocol loader and the rules' case files read through. It depends on neither
(only PyYAML and jsonschema), so ``trialflow.protocol`` (which checks rule params through the rules
registry) and ``trialflow.rules`` (whose case files are located documents) import it without a cycle.
The JSON-Schema check imports jsonschema when first used (PEP 562): reading a document needs none, and
raising or catching a :class:`DocumentError` needs no YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._problems import DocumentError, Problem, suggest
    from ._source import Document, PathItem, json_path, load_document, parse_document
    from ._validate import first_problem, schema_problems, validator_for

# Every name is loaded on first use (PEP 562): the YAML reader (``_source``) and jsonschema (``_validate``)
# only by what reads or checks a document; the problem, the error and the suggestion (``_problems``) need
# neither.
_WHERE = {"DocumentError": "._problems", "Problem": "._problems", "suggest": "._problems",
          **{name: "._source" for name in ("Document", "PathItem", "json_path", "load_document", "parse_document")},
          "first_problem": "._validate", "schema_problems": "._validate", "validator_for": "._validate"}


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
