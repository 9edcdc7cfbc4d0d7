"""Help texts for people: domain metavariables instead of Python types.

Typer prints an option's Python type (``<str>``, ``<bool>``, ``<list[str]>``) where the option has no
metavariable, and an argument's type beside its name. Every trialflow option names its value with a
domain metavariable (``ID``, ``DATE``, ``FILE``, ``MG_PER_DAY``); flags take no value and show none.

The help itself is drawn by :mod:`._help_panels` (imported when help is printed): typer's panels,
without the import of ``typer.rich_utils`` and the Markdown, Syntax and Traceback renderers it loads.
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


# typer's own help (plain click help, markdown mode), kept for what :mod:`._help_panels` does not draw
_TYPER_FORMAT_HELP: dict[type, Any] = {core.TyperCommand: core.TyperCommand.format_help,
                                       core.TyperGroup: core.TyperGroup.format_help}


def _format_help(self: Any, ctx: Any, formatter: Any) -> None:
    if not core.HAS_RICH or getattr(self, "rich_markup_mode", None) != "rich":
        # plain click help (TYPER_USE_RICH=0) or markdown help: typer's own
        base = core.TyperGroup if isinstance(self, core.TyperGroup) else core.TyperCommand
        start = len(formatter.buffer)
        _TYPER_FORMAT_HELP[base](self, ctx, formatter)
        # a help text escapes a literal "[" from rich markup ("trialflow\\[dask]"); plain help shows the "["
        formatter.buffer[start:] = [part.replace("\\[", "[") for part in formatter.buffer[start:]]
        return None
    from ._help_panels import print_help

    print_help(self, ctx)


def install() -> None:
    """Make typer's rich help print metavariables, not Python types, drawn without ``typer.rich_utils``
    (idempotent)."""
    core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]
    # the parts of typer's parameters :mod:`._help_panels` reads (typer 0.2x); another typer draws its own help
    needs = ("display_name_raw", "_extract_default_help_str", "_get_default_string", "_get_number_range_help_str")
    if all(hasattr(core.TyperArgument, n) and hasattr(core.TyperOption, n) for n in needs[1:]) and \
            hasattr(core.TyperArgument, needs[0]):
        core.TyperCommand.format_help = _format_help  # type: ignore[method-assign]
        core.TyperGroup.format_help = _format_help  # type: ignore[method-assign]
