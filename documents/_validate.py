"""JSON-Schema validation whose errors are :class:`Problem` lines at the right file position."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ._source import Document, PathItem, Problem, suggest

__all__ = ["first_problem", "schema_problems", "validator_for"]

_VALIDATORS: dict[int, Draft202012Validator] = {}
_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A cached validator (building one compiles the schema; protocols are loaded often in tests)."""
    key = id(schema)
    v = _VALIDATORS.get(key)
    if v is None or v.schema is not schema:
        v = Draft202012Validator(schema)
        _VALIDATORS[key] = v
    return v


def _leaves(err: ValidationError) -> Iterator[ValidationError]:
    """For anyOf/oneOf, the errors of the branch that got furthest, which are what a person needs."""
    if err.context:
        best = max(err.context, key=lambda e: (len(e.absolute_path), -len(e.context or ())))
        depth = len(best.absolute_path)
        for sub in err.context:
            if len(sub.absolute_path) == depth and depth > len(err.absolute_path):
                yield from _leaves(sub)
        if depth <= len(err.absolute_path):
            # every branch failed at this value: the ones whose type it has say what is wrong with it
            typed = [sub for sub in err.context if sub.validator != "type" and len(sub.absolute_path) == depth]
            if typed and err.validator in ("anyOf", "oneOf"):
                yield from typed[:1]
            else:
                yield err
    else:
        yield err


#: the schemas' common patterns in words (a schema may say its own with the annotation ``x-expected``)
_PATTERN_WORDS = {
    r"^[a-z][a-z0-9_]*$": "an id of lower-case letters, digits and _, starting with a letter",
    r"^[a-z0-9][a-z0-9_-]*$": "an id of lower-case letters, digits, - and _",
    r"^\d{4}-\d{2}-\d{2}$": "a date as YYYY-MM-DD",
    r"^[a-z][a-z0-9_]*(\[\]\.[a-z][a-z0-9_]*)?$": "a field name (or LIST[].FIELD for a field of a list's items)",
    r"^[A-Za-z_][A-Za-z0-9_-]*$": "a name of letters, digits, - and _",
}


def _short(value: Any, limit: int = 60) -> str:
    """A value as it appears in a message, cut to one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(err: ValidationError) -> tuple[Sequence[PathItem], str, bool]:
    """(path, message, point-at-key) for one leaf error, in a protocol author's words."""
    path = list(err.absolute_path)
    v, inst, sch = err.validator, err.instance, err.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = list(sch.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        if extra:
            k = extra[0]
            return [*path, k], f"unknown key {k!r}{suggest(k, allowed)}", True
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return path, f"missing required field {missing!r}", False
    if v == "type":
        want = sch.get("type")
        names = " or ".join(_TYPE_NAMES.get(t, str(t)) for t in (want if isinstance(want, list) else [want]))
        return path, f"expected {names}, got {_short(inst)}", False
    if v == "enum":
        opts = ", ".join(repr(o) for o in sch["enum"])
        hint = suggest(inst, [str(o) for o in sch["enum"]])
        return path, f"expected one of {opts}, got {_short(inst)}{hint}", False
    if v == "const":
        return path, f"expected {sch['const']!r}, got {_short(inst)}", False
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return path, f"expected a value {words} {sch[v]}, got {_short(inst)}", False
    if v == "minItems":
        return path, f"expected at least {sch['minItems']} item(s), got {len(inst)}", False
    if v == "maxItems":
        return path, f"expected at most {sch['maxItems']} item(s), got {len(inst)}", False
    if v == "uniqueItems":
        return path, "items must be unique", False
    if v == "pattern":
        expected = sch.get("x-expected") or _PATTERN_WORDS.get(sch["pattern"])
        if expected:
            return path, f"expected {expected}, got {_short(inst)}", False
        return path, f"{inst!r} does not match the expected form {sch['pattern']!r}", False
    if v == "minLength":
        return path, "must not be empty", False
    if v in ("minProperties", "maxProperties"):
        return path, err.message, False
    return path, err.message, False


def first_problem(schema: Mapping[str, Any], instance: Any) -> tuple[list[PathItem], str, str] | None:
    """The first schema violation of a plain value (no document to locate it in): (path, message in the
    words of the located errors, the JSON-Schema keyword that failed); None when it is valid."""
    from ._source import json_path

    found = []
    for top in validator_for(schema).iter_errors(instance):
        for leaf in _leaves(top):
            path, message, _ = _describe(leaf)
            found.append((json_path(path), list(path), message, str(leaf.validator)))
    if not found:
        return None
    _, path, message, keyword = min(found)
    return path, message, keyword


def schema_problems(
    doc: Document,
    schema: Mapping[str, Any],
    *,
    data: Any = None,
    at: Sequence[PathItem] = (),
) -> list[Problem]:
    """Every schema violation in ``data`` (default: the whole document), located in ``doc``.

    ``at`` is where ``data`` sits inside the document, for validating a sub-tree such as a rule's
    parameters against the schema that rule publishes.
    """
    instance = doc.data if data is None else data
    out: set[Problem] = set()
    for top in validator_for(schema).iter_errors(instance):
        for leaf in _leaves(top):
            path, message, key = _describe(leaf)
            out.add(doc.problem([*at, *path], message, key=key))
    return sorted(out)
