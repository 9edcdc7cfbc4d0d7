"""Turning ``trialflow record`` options into a record in the case-file form (parsing only); which options
apply to a kind, and which it needs, is the kind's declaration (:mod:`trialflow.rules.kinds`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from trialflow.rules.kinds import KINDS

_DATE_PATTERN = KINDS["adverse_event"].schema["properties"]["resolved"]["pattern"]

__all__ = ["build_record", "record_fields"]

def _bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"--{option.replace('_', '-')}")


def _target(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "nodal"):
        raise _bad("target", f"expected ID:ORGAN:MM or ID:ORGAN:MM:nodal, got {spec!r}")
    try:
        mm = float(parts[2])
    except ValueError:
        raise _bad("target", f"diameter must be a number of mm, got {parts[2]!r} in {spec!r}") from None
    return {"id": parts[0], "organ": parts[1], "diameter_mm": mm, **({"nodal": True} if len(parts) == 4 else {})}


def _non_target(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) != 3:
        raise _bad("non_target", f"expected ID:ORGAN:STATUS, got {spec!r}")
    return {"id": parts[0], "organ": parts[1], "status": parts[2]}


def build_record(kind: str, date: dt.date | None, opts: dict[str, Any]) -> dict[str, Any]:
    """The record dict for ``kind``; options that do not belong to it are a usage error."""
    declared = KINDS.get(kind)
    if declared is None:
        raise typer.BadParameter(f"unknown kind {kind!r} (one of: {', '.join(KINDS)})", param_hint="KIND")
    given = {k for k, v in opts.items() if v not in (None, False, [])}
    stray = given - declared.options
    if stray:
        names = ", ".join(f"--{s.replace('_', '-')}" for s in sorted(stray))
        raise typer.BadParameter(f"{names} does not apply to {kind}", param_hint="KIND")
    needed = [o for o in declared.required_options if opts.get(o) in (None, [])]
    if needed:
        names = " and ".join(f"--{n.replace('_', '-')}" for n in needed)
        raise typer.BadParameter(f"{kind} needs {names}", param_hint="KIND")
    return record_fields(kind, date, opts)


def record_fields(kind: str, date: dt.date | None, opts: dict[str, Any]) -> dict[str, Any]:
    """The record dict from the options of ``kind`` (a known kind, none stray), without :func:`build_record`'s
    usage check: an option not given is left out, for the engine to name what is missing in its own words
    (the web's forms, whose users see fields, not flags).

    Each option fills the field its kind declares (``option_fields``) and is read as that field's schema
    types it: a flag is true or left out, a date is checked, a list is the repeated option (or a comma list),
    written empty when its default is; the two lesion lists have the syntax of their own below."""
    declared = KINDS[kind]
    props = declared.schema["properties"]
    rec: dict[str, Any] = {"kind": kind, "date": date.isoformat() if date else None}
    for option, name in declared.option_fields.items():
        given = opts.get(option)
        schema = props.get(name)
        if schema is None:  # another kind's record beside this one (tg's --tgab): checked here, made by the caller
            allowed = _COMPANIONS[option]
            if given is not None and given not in allowed:
                raise _bad(option, f"expected {' or '.join(allowed)}, got {given!r}")
            continue
        value = _read(option, schema, given, required=name in declared.schema["required"])
        if value is None and "default" in schema and schema["default"] in ([], ""):
            value = [] if schema["default"] == [] else ""
        rec[name] = value
    return {k: v for k, v in rec.items() if v is not None or k in ("date",)}


#: the records an option makes beside its kind's, and the values it takes
_COMPANIONS = {"tgab": ("negative", "positive")}
#: options with a syntax of their own: one item of the list they fill
_ITEMS = {"target": _target, "non_target": _non_target}


def _read(option: str, schema: dict[str, Any], given: Any, *, required: bool) -> Any:
    """One option's value as its field (None: leave the field out)."""
    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", ())}
    if schema.get("type") == "boolean":
        return True if given else None
    if schema.get("type") == "array":
        if isinstance(given, str):  # a comma list (--modalities planar,spect)
            return [m.strip() for m in given.split(",") if m.strip()] if given else None
        if not given:
            return None
        item = _ITEMS.get(option)
        return [item(t) for t in given] if item is not None else list(given)
    if given is None:
        return None
    if types >= {"number", "string"}:  # a number, or a '<LoQ' text
        raw = str(given).strip()
        if raw.startswith("<"):
            return raw
        try:
            return float(raw)
        except ValueError:
            raise _bad(option, f"expected a number or '<LoQ', got {raw!r}") from None
    if schema.get("pattern") == _DATE_PATTERN:
        if not given:
            return None
        try:
            return dt.date.fromisoformat(given.strip()).isoformat()
        except ValueError:
            raise _bad(option, f"expected a date as YYYY-MM-DD, got {given!r}") from None
    if "enum" in schema and not given and not required:  # an optional choice left empty is not given
        return None
    return given
