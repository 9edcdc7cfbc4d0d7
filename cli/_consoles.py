"""The rich consoles the commands print through (``_output.console``, ``_output.err_console``).

Every string is text: markup off, control characters escaped (lines kept), no emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from ._output import escape_controls

__all__ = ["console", "err_console"]


class _TextConsole(Console):
    """A console for which every string is text: markup off, control characters escaped (lines kept)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(escape_controls(text, keep_newlines=True), **kwargs)


# emoji=False: rich would turn ":smile:" in a key, path or file name into 😄; output must be verbatim
console = _TextConsole(highlight=False, soft_wrap=True, emoji=False, markup=False)
err_console = _TextConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)
