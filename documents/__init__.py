"""Located documents: YAML or JSON read so that every error names its file, line and column.

The toolkit both the protocol loader and the rules' case files read through. It depends on neither
(only PyYAML and jsonschema), so ``trialflow.protocol`` (which checks rule params through the rules
registry) and ``trialflow.rules`` (whose case files are located documents) import it without a cycle.
"""

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
from ._validate import schema_problems, validator_for

__all__ = [
    "Document",
    "DocumentError",
    "PathItem",
    "Problem",
    "json_path",
    "load_document",
    "parse_document",
    "schema_problems",
    "suggest",
    "validator_for",
]
