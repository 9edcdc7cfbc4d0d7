"""The rule registry: rules are found only through the ``trialflow.rules`` entry-point group.

A rule is checked when it is loaded, not when it is first called: an import error, a missing
attribute, a ``name`` that differs from its entry-point name, an invalid parameter schema or two
distributions claiming one name all raise :class:`RuleLoadError` naming the plug-in.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ._base import Rule

__all__ = ["ENTRY_POINT_GROUP", "RuleLoadError", "UnknownRuleError", "available_rules", "get_rule", "rule_defaults"]

ENTRY_POINT_GROUP = "trialflow.rules"
_REQUIRED = ("name", "version", "title", "observation_kinds", "outcomes", "params_schema", "references", "evaluate")


class RuleLoadError(Exception):
    """A plug-in registered under ``trialflow.rules`` cannot be used."""

    def __init__(self, plugin: str, reason: str):
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"rule plug-in {plugin!r}: {reason}")


class UnknownRuleError(KeyError):
    """No rule of that name is registered."""

    def __init__(self, name: str, known: list[str]):
        from trialflow.documents import suggest

        self.name = name
        self.known = known
        super().__init__(name)
        self.message = f"unknown rule {name!r}{suggest(name, known)} (registered: {', '.join(sorted(known))})"

    def __str__(self) -> str:
        return self.message


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"{ep.name} = {ep.value}{where}"


def check_rule(obj: Any, expected_name: str, plugin: str) -> Rule:
    """Validate a loaded rule object against the :class:`Rule` contract."""
    missing = [a for a in _REQUIRED if not hasattr(obj, a)]
    if missing:
        raise RuleLoadError(plugin, f"the object lacks {', '.join(missing)} (see trialflow.rules.Rule)")
    if obj.name != expected_name:
        raise RuleLoadError(plugin, f"the rule calls itself {obj.name!r} but is registered as {expected_name!r}")
    if not callable(obj.evaluate):
        raise RuleLoadError(plugin, "evaluate is not callable")
    try:
        sig = inspect.signature(obj.evaluate)
        sig.bind(object(), {}, as_of=None)
    except (TypeError, ValueError) as err:
        raise RuleLoadError(plugin, f"evaluate must accept (case, params, *, as_of=None): {err}") from None
    from trialflow.documents._trusted import remember, trusted  # checked in an earlier process?

    if not trusted("params_schema", obj.params_schema):
        from jsonschema import Draft202012Validator  # lazily: a rule is checked when loaded, not on import
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(obj.params_schema)
        except SchemaError as err:
            raise RuleLoadError(plugin, f"params_schema is not a valid JSON Schema: {err.message}") from None
        remember("params_schema", obj.params_schema)
    if obj.params_schema.get("type") != "object":
        raise RuleLoadError(plugin, "params_schema must describe an object (type: object)")
    return obj


@cache
def available_rules() -> Mapping[str, Rule]:
    """Every registered rule by name, loaded and checked once per process."""
    found: dict[str, Rule] = {}
    origin: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        # a plug-in is described (its distribution's metadata read) only when something is to be said of it
        if ep.name in found:
            plugin, first = _describe(ep), _describe(origin[ep.name])
            if first == plugin:  # the same distribution seen twice on sys.path
                continue
            raise RuleLoadError(plugin, f"the name {ep.name!r} is already registered by {first}")
        try:
            obj = ep.load()
        except Exception as err:  # a plug-in may fail in any way while importing; name it and stop
            raise RuleLoadError(_describe(ep), f"cannot be imported: {type(err).__name__}: {err}") from err
        try:
            found[ep.name] = check_rule(obj, ep.name, ep.name)
        except RuleLoadError as err:
            raise RuleLoadError(_describe(ep), err.reason) from None
        origin[ep.name] = ep
    return found


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``; :class:`UnknownRuleError` with a suggestion otherwise."""
    rules = available_rules()
    try:
        return rules[name]
    except KeyError:
        raise UnknownRuleError(name, list(rules)) from None


def rule_defaults(rule: Rule) -> dict[str, Any]:
    """The defaults its parameter schema declares."""
    props = rule.params_schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if isinstance(v, Mapping) and "default" in v}
