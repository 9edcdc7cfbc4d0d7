"""Record kinds, each declared once: what a coordinator can record, and everything that depends on the kind.

A :class:`RecordKind` names its record class (``from_dict`` / ``to_dict``), the JSON Schema of one record in
the case-file form, the ``trialflow record`` options that apply to it (and those it needs), the columns of the
laboratory CSV it is read from, which of its fields a correction may change, the one-line summary the history
shows, whether case files carry it and how the simulator synthesises it. The case-file schema
(:mod:`trialflow.rules.casefile`), the record classes' lookup (``engine/_records.py``), the CLI's record
options (``cli/_record_options.py``), the CSV import's columns (``engine/_imports.py``), the correction
policy (``engine/_workflow.py`` ``CORRECTABLE``), the history (``engine/_queries.py``) and the simulator's
case files (``engine/simulation/_records.py``) read it here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from trialflow.documents._frozen import frozen

from ._treatments import RaiTherapy, SorafenibDispense
from .observations import AdverseEvent, CtAssessment, DoseChange, RaiScan, TgAbResult, TgSample

__all__ = [
    "KINDS",
    "RecordKind",
    "case_file_kinds",
    "csv_columns",
    "kind",
    "load_record",
    "read_record",
    "record_summary",
]


@frozen
class RecordKind:
    """One kind of record and everything that depends on it (see the module docstring)."""

    name: str
    record: type[Any]
    schema: Mapping[str, Any]
    options: frozenset[str]  # the `trialflow record` options that apply
    required_options: tuple[str, ...]  # ... and those it cannot do without
    correctable: frozenset[str]  # the fields a correction may change (the date always may)
    summary: Callable[[Mapping[str, Any]], str]  # the history's one line, from the stored dict
    csv_columns: tuple[str, ...] = ()  # the laboratory CSV's columns it is read from (none: not in the CSV)
    case_file: bool = True  # case files (and so the simulator's --cases) carry it
    #: the field each option fills (an option named as its field is not listed; one that is no field of
    #: this kind, like tg's --tgab, makes a record of its own beside it)
    option_fields: Mapping[str, str] = field(default_factory=dict)
    #: how the simulator synthesises it ('module:function', resolved by the simulator when it first needs
    #: it: the rules never import the simulator); None: the simulator makes none
    synthesis: str | None = None
    #: the compiled schema check and the exception it raises, once compiled (see :meth:`problem`)
    _check: list[tuple[Callable[[Any], Any], type[Exception]]] = field(default_factory=list, repr=False,
                                                                       compare=False)
    #: what :func:`read_record` needs of the schema, read once: the required fields and the integer ones
    _required: frozenset[str] = field(init=False, repr=False, compare=False)
    _integers: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        props = self.schema.get("properties", {})
        object.__setattr__(self, "_required", frozenset(self.schema.get("required", ())))
        object.__setattr__(self, "_integers", tuple(k for k, spec in props.items() if spec.get("type") == "integer"))

    @property
    def simulated(self) -> bool:
        """Whether the simulator synthesises records of this kind."""
        return self.synthesis is not None

    def problem(self, record: Mapping[str, Any]) -> str | None:
        """What is wrong with ``record`` by this kind's schema, as one line (None: nothing). The schema is
        compiled once (fastjsonschema: a few microseconds a record, so a bulk import can afford it); a
        record it refuses is described by jsonschema, in the words the case-file errors use."""
        if not self._check:
            import fastjsonschema

            self._check.append((fastjsonschema.compile(dict(self.schema), use_default=False),
                                fastjsonschema.JsonSchemaValueException))
        check, refused = self._check[0]
        try:
            check(record)
        except refused:
            return _in_words(self.schema, record)
        return None


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


_SCHEMAS: dict[str, dict[str, Any]] = {
    "tg": _record(
        "tg",
        "Serum thyroglobulin.",
        [],
        {
            "value": {
                "description": "Tg in `unit`; a string '<0.2' is a result below the LoQ 0.2.",
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": r"^\s*<\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$",
                     # (an annotation: what a validation error says is expected, instead of the pattern)
                     "x-expected": "a number, or '<LoQ' for a result below the limit of quantification (e.g. '<0.2')"},
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
            "reason": {"type": "string", "default": ""},
        },
    ),
    "rai_therapy": _record(
        "rai_therapy",
        "A therapeutic 131I administration.",
        ["activity_mbq"],
        {"activity_mbq": {"type": "number", "exclusiveMinimum": 0, "description": "Activity administered (MBq)."}},
    ),
    "dispense": _record(
        "dispense",
        "Sorafenib tablets handed out: a daily dose for a number of days.",
        ["dose_mg_per_day"],
        {
            "dose_mg_per_day": {"type": "number", "exclusiveMinimum": 0},
            "days_supply": {"type": "integer", "minimum": 1, "maximum": 365, "default": 28},
        },
    ),
}


def _in_words(schema: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A record's first schema violation as the field's sentence: ``grade must be <= 5, got 6``,
    ``term is missing``, ``target[0].diameter_mm must be >= 0, got -3``."""
    import re

    from trialflow.documents import first_problem, json_path

    found = first_problem(schema, record)
    if found is None:
        return "does not match its schema"
    path, message, keyword = found
    if keyword == "required" and "'" in message:
        path = [*path, message.split("'")[1]]
    where = re.sub(r"\[\d+\]$", "", json_path(path).removeprefix("$").removeprefix("."))
    if keyword == "required":
        return f"{where} is missing"
    if message.startswith("expected "):
        wanted = message.removeprefix("expected ").removeprefix("a value ")
        wanted = re.sub(r"^one of ('[^']*'), ('[^']*'), got", r"\1 or \2, got", wanted)  # of two: 'a' or 'b'
        return f"{where} must be {wanted}"
    return f"{where}: {message}" if where and keyword != "additionalProperties" else message


def _tg(p: Mapping[str, Any]) -> str:
    v = f"<{p.get('loq')}" if p.get("below_loq") else p.get("value")
    return f"tg {v} ug/L" + (" (stimulated)" if p.get("stimulated") else "")


def _ct(p: Mapping[str, Any]) -> str:
    if p.get("not_evaluated"):
        return "ct not evaluated"
    total = sum((t.get("diameter_mm") or 0) for t in p.get("target", []))
    return f"ct {len(p.get('target', []))} targets, {total:g} mm; new lesions {len(p.get('new_lesions', []))}"


def _adverse_event(p: Mapping[str, Any]) -> str:
    extra = [f"resolved {p['resolved']}" if p.get("resolved") else "", "SAE" if p.get("serious") else "",
             str(p.get("relatedness", "")).replace("_", " "),
             f"action {str(p['action']).replace('_', ' ')}" if p.get("action") else ""]
    more = "; ".join(x for x in extra if x)
    return f"adverse event {p['term']} grade {p['grade']}" + (f" ({more})" if more else "")


def _kind(name: str, record: type[Any], options: str, required: str, correctable: str,
          summary: Callable[[Mapping[str, Any]], str], **more: Any) -> RecordKind:
    """A kind; ``options`` are the option names, ``OPTION:FIELD`` for one that fills a field of another name."""
    fields = dict([*o.split(":"), o][:2] for o in options.split())
    return RecordKind(name, record, _SCHEMAS[name], frozenset(fields), tuple(required.split()),
                      frozenset(correctable.split()), summary, option_fields=fields, **more)


_SIM = "trialflow.engine.simulation._records:synthesise_"  # the simulator's synthesisers

#: every record kind, in the order messages list them
KINDS: Mapping[str, RecordKind] = {k.name: k for k in (
    _kind("tg", TgSample, "value unit loq stimulated tgab", "value", "value unit loq below_loq stimulated", _tg,
          csv_columns=("value", "unit", "loq", "below_loq", "stimulated"), synthesis=_SIM + "tg"),
    _kind("tgab", TgAbResult, "result", "result", "result", lambda p: f"tgab {p['result']}",
          csv_columns=("result",), synthesis=_SIM + "tgab"),
    _kind("ct", CtAssessment,
          "target non_target new_lesion:new_lesions slice_thickness:slice_thickness_mm not_evaluated", "",
          "target non_target new_lesions slice_thickness_mm not_evaluated", _ct, synthesis=_SIM + "ct"),
    _kind("rai_scan", RaiScan, "modalities avid:avid_lesions", "modalities", "modalities avid_lesions",
          lambda p: f"rai_scan {'/'.join(p.get('modalities', []))}: {len(p.get('avid_lesions', []))} avid lesions",
          synthesis=_SIM + "rai_scan"),
    _kind("adverse_event", AdverseEvent, "term grade resolved serious relatedness action", "term grade",
          "term grade", _adverse_event),
    _kind("dose_change", DoseChange, "dose:dose_mg_per_day reason", "dose", "dose_mg_per_day reason",
          lambda p: f"dose {p['dose_mg_per_day']:g} mg/day" + (f" ({p['reason']})" if p.get("reason") else ""),
          synthesis=_SIM + "dose_change"),
    _kind("rai_therapy", RaiTherapy, "activity:activity_mbq", "activity", "activity_mbq",
          lambda p: f"131I {p['activity_mbq']:g} MBq administered", case_file=False,
          synthesis=_SIM + "rai_therapy"),
    _kind("dispense", SorafenibDispense, "dose:dose_mg_per_day days:days_supply", "dose",
          "dose_mg_per_day days_supply",
          lambda p: f"dispensed {p['dose_mg_per_day']:g} mg/day for {p['days_supply']} days", case_file=False),
)}


def kind(name: str) -> RecordKind | None:
    """The kind called ``name`` (None: no such kind)."""
    return KINDS.get(name)


def case_file_kinds() -> dict[str, Mapping[str, Any]]:
    """The schema of each kind a case file may hold, by kind."""
    return {k.name: k.schema for k in KINDS.values() if k.case_file}


def csv_columns() -> tuple[str, ...]:
    """The laboratory CSV's columns: patient, kind and date, then every CSV kind's own."""
    own = dict.fromkeys(c for k in KINDS.values() for c in k.csv_columns)
    return ("patient", "kind", "date", *own)


def _as_text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def read_record(d: Mapping[str, Any]) -> Any:
    """The record a dict from outside stands for (a command, a form, an import): checked against its kind's
    schema, then built by its class, which checks only what the schema cannot say (a '<LoQ' that disagrees
    with the LoQ, a resolution before the onset, a non-finite number, a date that does not exist).
    ``ValueError`` with one line otherwise. Dates may be given as ``datetime.date``, and an optional field
    as None."""
    name = d.get("kind")
    declared = KINDS.get(name) if isinstance(name, str) else None
    if declared is None:
        raise ValueError(f"unknown kind {name!r} (known: {', '.join(KINDS)})")
    if "date" not in d:
        raise ValueError("date is missing")
    # an optional field given as None is a field not given (as the record classes always read it)
    required, integers = declared._required, declared._integers
    record = {k: _as_text(v) for k, v in d.items() if v is not None or k in required or k == "value"}
    problem = declared.problem(record)
    if problem is not None:
        raise ValueError(problem)
    for key in integers:
        # JSON Schema counts 3.0 as an integer; a CTCAE grade (or a number of days) is written as a whole number
        if isinstance(record.get(key), float):
            raise ValueError(f"{key} must be a whole number, got {record[key]!r}")
    return declared.record.from_dict(record)


def load_record(d: Mapping[str, Any]) -> Any:
    """A stored record, built by its class without the schema check (it was checked when it was written)."""
    declared = KINDS.get(d["kind"])
    if declared is None:
        raise ValueError(f"unknown kind {d['kind']!r} (known: {', '.join(KINDS)})")
    return declared.record.from_dict(d)


def record_summary(p: Mapping[str, Any]) -> str:
    """The history's one line for a stored record (its kind's ``summary``; the kind alone if unknown)."""
    k = KINDS.get(p["kind"])
    return k.summary(p) if k is not None else str(p["kind"])
