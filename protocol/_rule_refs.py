"""What a criterion takes from its rule, read from the rule registry only when it is used.

A criterion's parameters are the rule's schema defaults overlaid with the protocol's, and a criterion
without ``evidence.kinds`` judges the rule's own observation kinds. Both come from the rule plug-in, and
loading the plug-ins (their modules, the JSON-Schema check of their parameters) is work a command that
only reads the schedule (``next``, ``status``, ``visits``) does not need. So a model rebuilt from the
store holds these two as references to the rule, resolved on first use; a protocol file being loaded
or validated has checked every rule already, so nothing is deferred there in effect. Each resolves once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, overload

__all__ = ["RuleKinds", "RuleParams"]


class RuleParams(Mapping[str, Any]):
    """Read-only parameters of a criterion: the rule's defaults overlaid with ``declared``."""

    __slots__ = ("_declared", "_resolved", "rule")

    def __init__(self, rule: str, declared: Mapping[str, Any]):
        self.rule = rule
        self._declared = dict(declared)
        self._resolved: Mapping[str, Any] | None = None

    def _data(self) -> Mapping[str, Any]:
        if self._resolved is None:
            from trialflow.rules import get_rule, rule_defaults

            self._resolved = MappingProxyType({**rule_defaults(get_rule(self.rule)), **self._declared})
        return self._resolved

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(dict(self._data()))

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (to simulation workers) as its declaration
        return (RuleParams, (self.rule, self._declared))


class RuleKinds(Sequence[str]):
    """The observation kinds a criterion judges when the protocol names none: the rule's own."""

    __slots__ = ("_resolved", "rule")

    def __init__(self, rule: str):
        self.rule = rule
        self._resolved: tuple[str, ...] | None = None

    def _data(self) -> tuple[str, ...]:
        if self._resolved is None:
            from trialflow.rules import get_rule

            self._resolved = tuple(get_rule(self.rule).observation_kinds)
        return self._resolved

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._data()[index]

    def __len__(self) -> int:
        return len(self._data())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RuleKinds | tuple):
            return self._data() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a tuple, so not hashable like one

    def __repr__(self) -> str:
        return repr(self._data())

    def __reduce__(self) -> tuple[Any, ...]:
        return (RuleKinds, (self.rule,))
