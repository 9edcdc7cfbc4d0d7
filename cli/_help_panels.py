"""``--help`` drawn as typer draws it (usage, help text, Arguments / Options / Commands panels), with less.

typer's renderer (``typer.rich_utils``) imports rich's Markdown (markdown-it), Syntax (pygments) and
Traceback (rich.pretty, attrs) for markup modes and tracebacks trialflow's help never uses: that import
alone doubled the cost of ``trialflow --help`` over ``import typer`` (issue 12, Speed). This module draws
the same panels in typer's "rich" markup mode from rich's console, panel and table alone, with typer's
styles, symbols and environment settings (``TERMINAL_WIDTH``, ``FORCE_COLOR``), so the text printed is
the text typer printed (a test compares the two for every command).
"""

from __future__ import annotations

import inspect
import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rich.align import Align
from rich.columns import Columns
from rich.console import Console, RenderableType, group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["print_help"]

# typer.rich_utils' styles and strings
_THEME = {"option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
          "negative_switch": "bold red", "types": "bold yellow", "types_sep": "dim", "usage": "yellow"}
_REQUIRED_SHORT, _REQUIRED_LONG = "*", "[required]"


class _OptionHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 (rich's own class attribute)
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeOptionHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


_highlighter = _OptionHighlighter()
_negative = _NegativeOptionHighlighter()
_types = _TypesHighlighter()


def _console() -> Console:
    """typer's help console: its theme and highlighter, ``TERMINAL_WIDTH`` and ``FORCE_COLOR`` honoured."""
    width = os.getenv("TERMINAL_WIDTH")
    force = True if os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS") else None
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(theme=Theme(_THEME), highlighter=_highlighter, color_system="auto", force_terminal=force,
                   width=int(width) if width else None)


def _rich_text(text: str, style: str = "") -> Text:
    text = inspect.cleandoc(text)
    if "\033[" in text:
        return _highlighter(Text.from_ansi(text, style=style))
    return _highlighter(Text.from_markup(text, style=style))


@group()
def _help_text(obj: Any) -> Iterable[Text]:
    if obj.deprecated:
        yield Text("(deprecated) ", style="red")
    first, *rest = inspect.cleandoc(obj.help or "").partition("\f")[0].split("\n\n")
    if not first.startswith("\b"):
        first = first.replace("\n", " ")
    yield _rich_text(first.strip())
    if rest:
        yield Text("")
        yield _rich_text("\n\n".join(rest), style="dim")


def _parameter_help(param: Any, ctx: Any) -> Columns:
    items: list[Text] = []
    envvar = getattr(param, "envvar", None)
    if envvar is None and getattr(param, "allow_from_autoenv", None) and \
            getattr(ctx, "auto_envvar_prefix", None) is not None and param.name:
        envvar = f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    var_str = "" if envvar is None else envvar if isinstance(envvar, str) else ", ".join(str(d) for d in envvar)
    if help_value := getattr(param, "help", None):
        paragraphs = [p.replace("\n", " ").strip() if not p.startswith("\b") else "{}\n".format(p.strip("\b\n"))
                      for p in help_value.split("\n\n")]
        items.append(_rich_text("\n".join(paragraphs).strip()))
    if envvar and getattr(param, "show_envvar", None):
        items.append(Text(f"[env var: {var_str}]", style="dim yellow"))
    if isinstance(param, TyperOption | TyperArgument):
        default_value = param._extract_default_help_str(ctx=ctx)
        show_default_is_str = isinstance(param.show_default, str)
        if show_default_is_str or (default_value is not None and (param.show_default or ctx.show_default)):
            default_str = param._get_default_string(ctx=ctx, show_default_is_str=show_default_is_str,
                                                    default_value=default_value)
            if default_str:
                items.append(Text(f"[default: {default_str}]", style="dim"))
    if param.required:
        items.append(Text(_REQUIRED_LONG, style="dim red"))
    return Columns(items)


def _params_panel(name: str, params: list[Any], ctx: Any, console: Console) -> None:
    rows: list[list[RenderableType]] = []
    required: list[str | Text] = []
    for param in params:
        long: list[str] = []
        short: list[str] = []
        second_long: list[str] = []
        second_short: list[str] = []
        display_name: str | None = None
        if isinstance(param, TyperArgument):
            display_name = param.display_name_raw
            if param.metavar is None and param.nargs != 1:
                display_name += "..."
        for opt in param.opts:
            (long if "--" in opt else short).append(opt if "--" in opt or not display_name else display_name)
        for opt in param.secondary_opts:
            (second_long if "--" in opt else second_short).append(
                opt if "--" in opt or not display_name else display_name)
        types = Text(style="bold yellow", overflow="fold")
        if (type_str := param.display_type_rich(ctx=ctx)) is not None:
            types.append(type_str)
        if range_str := param._get_number_range_help_str():
            types.append(f" [{range_str}]")
        required.append(Text(_REQUIRED_SHORT, style="red") if param.required else "")
        rows.append([_highlighter(",".join(long)), _highlighter(",".join(short)), _negative(",".join(second_long)),
                     _negative(",".join(second_short)), _types(types), _parameter_help(param, ctx)])
    if not rows:
        return
    table = Table(highlight=True, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                  border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    for mark, row in zip(required, rows, strict=True):
        table.add_row(*([mark, *row] if any(required) else row))
    console.print(Panel(table, border_style="dim", title=name, title_align="left"))


def _command_help(help_text: str) -> Text:
    first = inspect.cleandoc(help_text).split("\n\n")[0]
    if first.startswith("\b"):
        first = first.replace("\b\n", "")
    return _rich_text(first.strip())


def _commands_panel(name: str, commands: list[Any], console: Console, width: int) -> None:
    table = Table(highlight=False, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                  border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True, width=width)
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    rows: list[list[RenderableType | None]] = []
    deprecated: list[Text | None] = []
    for command in commands:
        text = Text(command.name or "", style="dim" if command.deprecated else "")
        deprecated.append(Text("(deprecated) ", style="red") if command.deprecated else None)
        rows.append([text, _command_help(command.short_help or command.help or "")])
    for row, mark in zip(rows, deprecated, strict=True):
        table.add_row(*([*row, mark] if any(deprecated) else row))
    if table.row_count:
        console.print(Panel(table, border_style="dim", title=name, title_align="left"))


def print_help(obj: Any, ctx: Any) -> None:
    """Print the help of the command or group ``obj`` as typer's rich help does (markup mode "rich")."""
    console = _console()
    console.print(Padding(_highlighter(obj.get_usage(ctx)), 1), style="bold")
    if obj.help:
        console.print(Padding(Align(_help_text(obj), pad=False), (0, 1, 1, 1)))
    arguments: defaultdict[str, list[Any]] = defaultdict(list, {"Arguments": []})
    options: defaultdict[str, list[Any]] = defaultdict(list, {"Options": []})
    for param in obj.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, TyperArgument):
            arguments[getattr(param, "rich_help_panel", None) or "Arguments"].append(param)
        elif isinstance(param, TyperOption):
            options[getattr(param, "rich_help_panel", None) or "Options"].append(param)
    for panels in (arguments, options):
        for name, params in panels.items():
            _params_panel(name, params, ctx, console)
    if isinstance(obj, TyperGroup):
        commands: defaultdict[str, list[Any]] = defaultdict(list, {"Commands": []})
        for name in obj.list_commands(ctx):
            command = obj.get_command(ctx, name)
            if command and not command.hidden:
                commands[getattr(command, "rich_help_panel", None) or "Commands"].append(command)
        width = max((len(c.name or "") for cs in commands.values() for c in cs), default=0)
        for name, listed in commands.items():
            _commands_panel(name, listed, console, width)
    if obj.epilog:
        console.print(Padding(Align(_rich_text("\n\n".join(obj.epilog.split("\n\n"))), pad=False), 1))
