"""Case files: one patient's observations in YAML or JSON, the format coordinators import.

```yaml
patient: P-001
enrolled: 2025-12-29        # optional: the enrolment date (checked against the store on import)
day0: 2026-01-12            # first Sorafenib dose
observations:
  - {kind: tg, date: 2026-01-12, value: 12.5, unit: ug/L, loq: 0.2}   # or value: "<0.2", or below_loq: true
  - {kind: tgab, date: 2026-01-12, result: negative}
  - {kind: ct, date: 2026-01-08, slice_thickness_mm: 5,
     target: [{id: T1, organ: lung, diameter_mm: 22},
              {id: T2, organ: lymph_node, nodal: true, diameter_mm: 18}],
     non_target: [{id: N1, organ: bone, status: present}], new_lesions: []}
  - {kind: rai_scan, date: 2026-01-05, modalities: [planar, spect], avid_lesions: []}
```

Every problem is reported at once as ``FILE:LINE:COL: $.path: message``
(:class:`~trialflow.documents.DocumentError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialflow.documents import (
    Document,
    DocumentError,
    Problem,
    load_document,
    parse_document,
    schema_problems,
)

from .observations import Case, Observation, _date, observation_from_dict

__all__ = ["CASE_SCHEMA", "load_case", "parse_case"]

_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "ISO date, YYYY-MM-DD."}
_ID = {"type": "string", "minLength": 1}
_MM = {"type": "number", "minimum": 0}


def _record(kind: str, description: str, required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["kind", "date", *required],
        "additionalProperties": False,
        "properties": {"kind": {"const": kind}, "date": _DATE, **props},
    }


_DEFS: dict[str, dict[str, Any]] = {
    "tg": _record(
        "tg",
        "Serum thyroglobulin.",
        [],
        {
            "value": {
                "description": "Tg in `unit`; a string '<0.2' is a result below the LoQ 0.2.",
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": r"^\s*<\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$"},
                    {"type": "null"},
                ],
            },
            "unit": {
                "type": "string",
                "default": "ug/L",
                "description": "ug/L, µg/L or ng/mL (the same); convert any other unit before importing.",
            },
            "loq": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Limit of quantitation of the assay.",
            },
            "below_loq": {"type": "boolean", "default": False, "description": "The result is below the LoQ."},
            "stimulated": {
                "type": "boolean",
                "default": False,
                "description": "Drawn after rhTSH or thyroid-hormone withdrawal (excluded from the slope).",
            },
        },
    ),
    "tgab": _record(
        "tgab",
        "Anti-thyroglobulin antibodies.",
        ["result"],
        {
            "result": {"enum": ["positive", "negative"], "description": "Qualitative TgAb result."},
        },
    ),
    "ct": _record(
        "ct",
        "One CT assessment read for RECIST.",
        [],
        {
            "target": {
                "type": "array",
                "default": [],
                "description": "Target lesions.",
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _ID,
                        "organ": {"type": "string", "description": "Organ (all nodes are one organ in 1.1)."},
                        "diameter_mm": {
                            "anyOf": [_MM, {"type": "null"}],
                            "description": "Longest diameter (nodes: short axis); 0 = gone; null = not "
                            "measured.",
                        },
                        "nodal": {"type": "boolean", "default": False, "description": "A lymph node."},
                        "too_small": {
                            "type": "boolean",
                            "default": False,
                            "description": "Present but too small to measure (counted as too_small_mm).",
                        },
                        "fragments_mm": {
                            "type": "array",
                            "items": _MM,
                            "minItems": 1,
                            "description": "Diameters of the fragments of a split lesion (summed).",
                        },
                    },
                },
            },
            "non_target": {
                "type": "array",
                "default": [],
                "description": "Non-target lesions.",
                "items": {
                    "type": "object",
                    "required": ["id", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _ID,
                        "organ": {"type": "string"},
                        "status": {"enum": ["present", "absent", "unequivocal_progression", "not_evaluated"]},
                        "nodal": {"type": "boolean", "default": False},
                    },
                },
            },
            "new_lesions": {
                "type": "array",
                "items": _ID,
                "default": [],
                "description": "New lesions (ids or sites).",
            },
            "slice_thickness_mm": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "CT slice thickness.",
            },
            "not_evaluated": {
                "type": "boolean",
                "default": False,
                "description": "The assessment was due but could not be read (NE).",
            },
        },
    ),
    "rai_scan": _record(
        "rai_scan",
        "Diagnostic 131I scintigraphy.",
        [],
        {
            "modalities": {
                "type": "array",
                "items": {"enum": ["planar", "spect"]},
                "minItems": 1,
                "uniqueItems": True,
                "default": ["planar", "spect"],
                "description": "Modalities acquired.",
            },
            "avid_lesions": {
                "type": "array",
                "default": [],
                "description": "RaI-accumulating lesions (ids or sites).",
                "items": {
                    "anyOf": [
                        _ID,
                        {
                            "type": "object",
                            "required": ["id"],
                            "additionalProperties": False,
                            "properties": {"id": _ID, "modality": {"enum": ["planar", "spect"]}},
                        },
                    ]
                },
            },
        },
    ),
    "adverse_event": _record(
        "adverse_event",
        "Adverse event (CTCAE v5); its date is the onset.",
        ["term", "grade"],
        {
            "term": _ID,
            "grade": {"type": "integer", "minimum": 1, "maximum": 5},
            "resolved": {**_DATE, "description": "Date of resolution."},
            "serious": {"type": "boolean", "default": False, "description": "A serious adverse event (SAE)."},
            "relatedness": {"enum": ["not_related", "unlikely", "possible", "probable", "definite"],
                            "description": "Relatedness to the study drug."},
            "action": {"enum": ["none", "dose_reduced", "interrupted", "stopped"], "default": "none",
                       "description": "Action taken with the study drug."},
        },
    ),
    "dose_change": _record(
        "dose_change",
        "Change of the daily Sorafenib dose.",
        ["dose_mg_per_day"],
        {
            "dose_mg_per_day": {"type": "number", "minimum": 0},
            "reason": {"type": "string"},
        },
    ),
}

CASE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://trialflow.example/schemas/case.json",
    "title": "trialflow case file",
    "description": "One patient's observations, named by study ID only.",
    "type": "object",
    "required": ["patient", "observations"],
    "additionalProperties": False,
    "properties": {
        "patient": {"type": "string", "minLength": 1, "description": "Study ID (never a name)."},
        "enrolled": {**_DATE, "description": "Date of enrolment (as `trialflow enroll --date` recorded it)."},
        "day0": {"anyOf": [_DATE, {"type": "null"}], "description": "Date of the first Sorafenib dose."},
        "observations": {
            "type": "array",
            "description": "Observations in any order.",
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"enum": list(_DEFS)}},
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                        "then": {"$ref": f"#/$defs/{k}"},
                    }
                    for k in _DEFS
                ],
            },
        },
    },
    "$defs": _DEFS,
}


def _semantic(doc: Document) -> tuple[list[Observation], list[Problem]]:
    """Build the observations; dates, units and values the schema cannot judge become problems."""
    out: list[Observation] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    data = doc.data
    for date_key in ("enrolled", "day0"):
        if data.get(date_key) is not None:
            try:
                _date(data[date_key], date_key)
            except ValueError as err:
                problems.append(doc.problem([date_key], str(err)))
    for i, rec in enumerate(data["observations"]):
        if rec.get("kind") == "ct":  # located here, before the model refuses the whole CT for it
            ids = [(part, j, lesion.get("id")) for part in ("target", "non_target")
                   for j, lesion in enumerate(rec.get(part) or ())]
            repeated = [(part, j, lid) for n, (part, j, lid) in enumerate(ids) if lid in [x[2] for x in ids[:n]]]
            if repeated:
                problems += [doc.problem(["observations", i, part, j, "id"],
                                         f"lesion id {lid!r} appears twice in this assessment")
                             for part, j, lid in repeated]
                seen.setdefault(("ct", str(rec.get("date"))), i)
                continue
        try:
            obs = observation_from_dict(rec)
        except ValueError as err:
            msg = str(err)
            field = next((f for f in ("unit", "date", "value", "loq") if msg.startswith(f)), None)
            problems.append(
                doc.problem(["observations", i, *([field] if field and field in rec else [])], msg)
            )
            continue
        if obs.kind in ("ct", "rai_scan"):
            key = (obs.kind, obs.date.isoformat())
            if key in seen:
                problems.append(
                    doc.problem(
                        ["observations", i, "date"],
                        f"a second {obs.kind} on {key[1]} (first is $.observations[{seen[key]}]); "
                        "merge them into one record",
                    )
                )
            seen.setdefault(key, i)
        out.append(obs)
    return out, problems


def parse_case(document: Document) -> Case:
    """The :class:`Case` in a parsed document; :class:`DocumentError` listing every problem otherwise."""
    problems = schema_problems(document, CASE_SCHEMA)
    if problems:
        # Report the value problems of the records the schema let through too, so every error in the
        # file shows at once; a record with a schema problem is left to that problem.
        flagged = {p.path.split("]")[0] for p in problems if p.path.startswith("$.observations[")}
        data = document.data
        if isinstance(data, dict) and isinstance(data.get("observations"), list):
            try:
                _, more = _semantic(document)
            except (KeyError, TypeError, AttributeError, ValueError):  # shapes the schema already rejected
                more = []
            problems = sorted(set(problems) | {p for p in more if p.path.split("]")[0] not in flagged})
        raise DocumentError(problems)
    observations, problems = _semantic(document)
    if problems:
        raise DocumentError(problems)
    return Case.from_dict(
        {"patient": document.data["patient"], "day0": document.data.get("day0"), "observations": []}
    ).with_observations(observations)


def parse_case_text(text: str, file: str = "<case>") -> Case:
    """Parse case-file text (YAML or JSON)."""
    return parse_case(parse_document(text, file))


def load_case(path: str | Path) -> Case:
    """Read, validate and build the case file at ``path``."""
    return parse_case(load_document(path))
