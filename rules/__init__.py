"""Response-criteria rules, found through the ``trialflow.rules`` entry-point group."""

from ._base import Rule, RuleResult
from ._registry import (
    ENTRY_POINT_GROUP,
    RuleLoadError,
    UnknownRuleError,
    available_rules,
    get_rule,
    rule_defaults,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Rule",
    "RuleLoadError",
    "RuleResult",
    "UnknownRuleError",
    "available_rules",
    "get_rule",
    "rule_defaults",
]
