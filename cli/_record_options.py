"""Turning ``trialflow record`` options into a record in the case-file form (parsing only); which options
apply to a kind, and which it needs, is the kind's declaration (:mod:`trialflow.rules.kinds`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from trialflow.rules.kinds import KINDS

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
    (the web's forms, whose users see fields, not flags)."""
    rec: dict[str, Any] = {"kind": kind, "date": date.isoformat() if date else None}
    o = opts
    if kind == "tg":
        raw = (o["value"] or "").strip()
        if raw.startswith("<"):
            rec["value"] = raw
        elif o["value"] is not None:  # not given: the engine says the value is missing
            try:
                rec["value"] = float(raw)
            except ValueError:
                raise _bad("value", f"expected a number or '<LoQ', got {raw!r}") from None
        for k in ("unit", "loq"):
            if o[k] is not None:
                rec[k] = o[k]
        if o["stimulated"]:
            rec["stimulated"] = True
        if o.get("tgab") is not None and o["tgab"] not in ("negative", "positive"):
            raise _bad("tgab", f"expected negative or positive, got {o['tgab']!r}")
    elif kind == "tgab":
        rec["result"] = o["result"]
    elif kind == "ct":
        rec["target"] = [_target(t) for t in o["target"] or []]
        rec["non_target"] = [_non_target(t) for t in o["non_target"] or []]
        rec["new_lesions"] = list(o["new_lesion"] or [])
        if o["slice_thickness"] is not None:
            rec["slice_thickness_mm"] = o["slice_thickness"]
        if o["not_evaluated"]:
            rec["not_evaluated"] = True
    elif kind == "rai_scan":
        if o["modalities"]:
            rec["modalities"] = [m.strip() for m in o["modalities"].split(",") if m.strip()]
        rec["avid_lesions"] = list(o["avid"] or [])
    elif kind == "adverse_event":
        rec.update(term=o["term"], grade=o["grade"])
        if o.get("resolved"):
            try:
                rec["resolved"] = dt.date.fromisoformat(o["resolved"].strip()).isoformat()
            except ValueError:
                raise _bad("resolved", f"expected a date as YYYY-MM-DD, got {o['resolved']!r}") from None
        if o.get("serious"):
            rec["serious"] = True
        for k in ("relatedness", "action"):
            if o.get(k):
                rec[k] = o[k]
    elif kind == "dose_change":
        rec.update(dose_mg_per_day=o["dose"], reason=o["reason"] or "")
    elif kind == "dispense":
        rec["dose_mg_per_day"] = o["dose"]
        if o["days"] is not None:
            rec["days_supply"] = o["days"]
    elif kind == "rai_therapy":
        rec["activity_mbq"] = o["activity"]
    return {k: v for k, v in rec.items() if v is not None or k in ("date",)}
