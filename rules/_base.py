"""What a rule is: the contract every built-in and plug-in rule module fulfils."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .observations import Case

__all__ = ["Rule", "RuleResult"]


@runtime_checkable
class RuleResult(Protocol):
    """A frozen answer: the outcome in the domain's words, the evidence, one sentence quoting it."""

    rule: str
    outcome: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"rule", "outcome", "reason", ...evidence}``."""
        ...


@runtime_checkable
class Rule(Protocol):
    """A response criterion, evaluated as a pure function of observations and parameters.

    ``params_schema`` is a JSON Schema (draft 2020-12) object schema; each property carries a
    ``default`` and a ``description``. The protocol loader validates a protocol's parameters for the
    rule against it, so plug-in rules are checked exactly like the built-ins.

    ``observation_kinds`` are the record kinds ``evaluate`` reads (through ``case.of_kind``): a decision's
    signature binds the records of those kinds, and a decision that judged a criterion's selection of them
    reuses that answer as the rule's answer on all the patient's records when the selection left none out.
    """

    name: str
    version: str
    title: str
    observation_kinds: tuple[str, ...]
    outcomes: tuple[str, ...]
    params_schema: Mapping[str, Any]
    references: tuple[str, ...]

    def evaluate(self, case: Case, params: Mapping[str, Any], *, as_of: dt.date | None = None) -> RuleResult:
        """Evaluate one patient; observations dated after ``as_of`` are ignored."""
        ...
