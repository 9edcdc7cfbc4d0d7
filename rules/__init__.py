"""Response-criteria rules, found through the ``trialflow.rules`` entry-point group."""

from ._base import Rule, RuleResult
from ._batch import BATCH_KINDS, CaseArrays, KindArrays
from ._registry import (
    ENTRY_POINT_GROUP,
    RuleLoadError,
    UnknownRuleError,
    available_rules,
    get_rule,
    rule_defaults,
)
from .observations import (
    AdverseEvent,
    AvidLesion,
    Case,
    CtAssessment,
    DoseChange,
    Lesion,
    NonTargetLesion,
    Observation,
    RaiScan,
    TgAbResult,
    TgSample,
)

__all__ = [
    "BATCH_KINDS",
    "ENTRY_POINT_GROUP",
    "AdverseEvent",
    "AvidLesion",
    "Case",
    "CaseArrays",
    "CtAssessment",
    "DoseChange",
    "KindArrays",
    "Lesion",
    "NonTargetLesion",
    "Observation",
    "RaiScan",
    "Rule",
    "RuleLoadError",
    "RuleResult",
    "TgAbResult",
    "TgSample",
    "UnknownRuleError",
    "available_rules",
    "get_rule",
    "rule_defaults",
]
