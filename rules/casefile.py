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

from .kinds import case_file_kinds
from .observations import Case, Observation, _date, observation_from_dict

__all__ = ["CASE_SCHEMA", "load_case", "parse_case"]

_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "ISO date, YYYY-MM-DD."}
_DEFS = case_file_kinds()  # each record kind's schema, declared once in trialflow.rules.kinds

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
