"""The one rule for files the simulator writes into a person's folder (``--plots DIR``, ``--cases DIR``).

A file already there is replaced only with ``force``; a symbolic link in its place is never followed (with
``force`` the link itself is replaced, the file it points to is left alone); a path that is not a folder is
refused. The CLI asks :func:`targets_problem` before it simulates anything; the writers ask it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["targets_problem"]


def targets_problem(directory: str | Path, names: Iterable[str], what: str, *, force: bool = False) -> str | None:
    """Why ``what`` (e.g. "the figures") cannot be written as ``names`` into ``directory`` (None: they can)."""
    out = Path(directory)
    if out.exists() and not out.is_dir():
        return f"{out} is not a folder"
    for name in names:
        target = out / name
        if target.is_symlink():
            if not force:
                return (f"{target} is a symbolic link; {what} are never written through one "
                        "(--force replaces the link itself)")
        elif target.exists() and not force:
            return f"{target} already exists: choose another folder, or --force to replace {what}"
        elif target.exists() and not target.is_file():
            return f"{target} exists and is not a file"
    return None
