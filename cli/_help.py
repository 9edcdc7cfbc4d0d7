"""Help texts for people: domain metavariables instead of Python types.

Typer prints an option's Python type (``<str>``, ``<bool>``, ``<list[str]>``) where the option has no
metavariable, and an argument's type beside its name. Every trialflow option names its value with a
domain metavariable (``ID``, ``DATE``, ``FILE``, ``MG_PER_DAY``); flags take no value and show none.
"""

from __future__ import annotations

from typing import Any

from typer import core

__all__ = ["install"]


def _option_type(self: Any, ctx: Any) -> str | None:
    if getattr(self, "is_flag", False) or getattr(self, "is_bool_flag", False):
        return None  # a flag takes no value
    if self.metavar is not None:
        return str(self.metavar)
    return str(self.name or "").upper() or None


def _argument_type(self: Any, ctx: Any) -> str | None:
    return None  # the argument's name is already its metavariable (ID, FILE, KIND)


def install() -> None:
    """Make typer's rich help print metavariables, not Python types (idempotent)."""
    core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]
