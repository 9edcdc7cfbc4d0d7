"""Validations remembered across processes: what passed once, with the same checking code, passes again.

Validating the bundled protocol, the default scenario and the rules' parameters needs jsonschema,
whose import alone costs a short command (``trialflow simulate``) some 70 ms of its start-up. A check
that passed is remembered by a fingerprint: the SHA-256 of what it read (the canonical JSON of the
data, the kind of check) and of the code that checks it (the content of every file of trialflow's
documents, protocol, rules and simulation packages, trialflow's and jsonschema's versions, the rule
plug-ins registered and their files' contents). Contents, not sizes and modification times: a file
edited within the clock's resolution, or restored with its old time stamp, still changes the
fingerprint. A changed document, schema, rule or checker gives another fingerprint, so it is
validated again; only a pass is remembered, never a failure.

The fingerprints live in ``$TRIALFLOW_CACHE_DIR/validated`` (default ``$XDG_CACHE_HOME/trialflow``,
else ``~/.cache/trialflow``), one per line. Anyone who can write that file could make trialflow
trust invalid data, as anyone who can write trialflow's own files could; an unreadable or unwritable
cache only means validating every time. ``TRIALFLOW_CACHE_DIR=off`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["cache_file", "fingerprint", "remember", "trusted"]

_FOLDERS = ("documents", "protocol", "rules", "engine/simulation")  # the checking code's packages
_MAX_LINES = 512  # a cache past this is started again (old code's fingerprints are never asked for)


def cache_file() -> Path | None:
    """Where passed validations are remembered, or None when the cache is off."""
    where = os.environ.get("TRIALFLOW_CACHE_DIR")
    if where == "off":
        return None
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "trialflow")
    return Path(where) / "validated"


def _stat_line(path: str) -> str:
    """``path`` and the SHA-256 of its content (about 0.5 MB in all: a millisecond or two a process)."""
    try:
        with open(path, "rb") as source:
            digest = hashlib.sha256(source.read()).hexdigest()
    except OSError:
        return f"{path} -"
    return f"{path} {digest}"


def _module_file(module: str) -> str:
    """The file of ``module`` (``a.b.c``), found without importing any of it (only ``a`` is looked up)."""
    import importlib.util

    top, _, rest = module.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return "-"
    if spec is None:
        return "-"
    if not rest:
        return spec.origin or "-"
    for folder in spec.submodule_search_locations or []:
        base = os.path.join(folder, *rest.split("."))
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.exists(candidate):
                return candidate
    return "-"


def _version(dist: Any) -> str:
    """The version of the distribution ``dist`` (an ``importlib.metadata.Distribution``), as ``dist.version``
    reads it, from the header of its metadata only: ``dist.version`` parses the whole file as e-mail, a
    package's long description (trialflow's is its README) and all, several milliseconds a call."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.partition("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "version":
            return value.strip()
    return str(dist.version)  # (no header line: let importlib.metadata say)


@cache
def _code() -> str:
    """The fingerprint of the checking code: trialflow's files, versions, the rule plug-ins."""
    from importlib.metadata import PackageNotFoundError, distribution, entry_points

    lines = []
    for name in ("trialflow", "jsonschema"):
        try:
            lines.append(f"{name} {_version(distribution(name))}")
        except PackageNotFoundError:
            lines.append(f"{name} -")
    root = Path(__file__).resolve().parent.parent  # trialflow's folders sit side by side, installed or not
    for folder in _FOLDERS:
        try:
            entries = sorted(os.scandir(root / folder), key=lambda e: e.name)
        except OSError:
            entries = []
        lines.append(f"{folder}: {len(entries)}")
        for entry in entries:
            if entry.is_file() and entry.name.endswith((".py", ".json", ".yaml")):
                lines.append(_stat_line(entry.path))
    for ep in sorted(entry_points(group="trialflow.rules"), key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        where = _module_file(ep.value.partition(":")[0].strip())
        lines.append(f"plugin {ep.name}={ep.value} {_version(dist) if dist else '-'} {_stat_line(where)}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def fingerprint(check: str, data: Any) -> str:
    """The fingerprint of the check ``check`` (a name) of ``data`` (JSON-able) by the current code."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{_code()}\n{check}\n{canonical}".encode()).hexdigest()


_known: set[str] | None = None


def _load() -> set[str]:
    global _known
    if _known is None:
        path = cache_file()
        try:
            _known = set(path.read_text(encoding="ascii").split()) if path is not None else set()
        except (OSError, UnicodeDecodeError):
            _known = set()
    return _known


def trusted(check: str, data: Any) -> bool:
    """Whether the check ``check`` of ``data`` passed before, with the same code."""
    return fingerprint(check, data) in _load()


def remember(check: str, data: Any) -> None:
    """Record that the check ``check`` of ``data`` passed (best effort: a cache that cannot be written
    is left alone)."""
    known = _load()
    key = fingerprint(check, data)
    if key in known:
        return
    known.add(key)
    path = cache_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "w" if len(known) > _MAX_LINES else "a"
        if mode == "w":
            known.intersection_update({key})
        with open(path, mode, encoding="ascii") as out:  # one short line: appends do not interleave
            out.write(key + "\n")
    except OSError:
        pass
