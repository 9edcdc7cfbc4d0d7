"""Shared helpers for the built-in rules: parameter merging and number formatting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = ["ParamsError", "fmt_p", "resolve_params"]


class ParamsError(ValueError):
    """Parameters given to a rule do not fit its schema; names the rule and the parameter."""

    def __init__(self, rule: str, messages: list[str]):
        self.rule = rule
        self.messages = messages
        super().__init__(f"rule {rule!r}: " + "; ".join(messages))


def resolve_params(rule: str, schema: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schema defaults overlaid with ``params`` (which may be partial), validated."""
    props = schema.get("properties", {})
    merged = {k: v["default"] for k, v in props.items() if "default" in v}
    merged.update(params or {})
    key = (id(schema), json.dumps(merged, sort_keys=True, default=str))
    if key in _VALID:  # the same parameters are checked once: a cohort evaluates them per patient
        return merged
    from trialflow.documents._trusted import remember, trusted  # passed in an earlier process?

    checked = {"schema": schema, "params": merged}
    if trusted(f"params of {rule}", checked):
        _VALID.add(key)
        return merged
    v = _validator_for(schema)
    errors = sorted(v.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        msgs = []
        for e in errors:
            where = ".".join(str(p) for p in e.absolute_path)
            if e.validator == "additionalProperties":
                extra = sorted(set(merged) - set(props))
                msgs.append(f"unknown parameter(s) {', '.join(extra)} (known: {', '.join(props)})")
            else:
                msgs.append(f"{where or 'params'}: {e.message}")
        raise ParamsError(rule, msgs)
    if len(_VALID) < 1024:
        _VALID.add(key)
    remember(f"params of {rule}", checked)
    return merged


_VALID: set[tuple[int, str]] = set()


_BY_ID: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}


def _validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    hit = _BY_ID.get(id(schema))
    if hit is None or hit[0] is not schema:
        from jsonschema import Draft202012Validator  # lazily: only a rule that computes checks its params

        hit = (schema, Draft202012Validator(schema))
        _BY_ID[id(schema)] = hit
    return hit[1]


def fmt_p(p: float) -> str:
    """A p-value as people write it: 0.004, 0.745, 2.2e-07, 0."""
    if p == 0:
        return "0"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"
