"""Reading import files: a case file (YAML/JSON, one patient) or a CSV of laboratory results.

Every problem in a file is reported at once with its position, before anything is written.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialflow.protocol import DocumentError, Problem
from trialflow.rules.kinds import KINDS, csv_columns

__all__ = ["CSV_COLUMNS", "ImportBatch", "read_import"]

CSV_COLUMNS = csv_columns()  # patient, kind, date and the CSV kinds' own (trialflow.rules.kinds)
_REQUIRED = ("patient", "date")
_BOOL = {"": False, "0": False, "false": False, "no": False, "n": False,
         "1": True, "true": True, "yes": True, "y": True}


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Records to import, in file order, with each patient's day 0 where the file states it.

    ``where`` holds, per item, the line and column naming its patient (so a store-side problem such as
    an unknown patient is reported at its place in the file, beside the file's own problems);
    ``problems`` the file's own problems when read with ``collect=True``; ``records``, for a CSV, each item's
    record as reading it built and checked it (so the import need not build it again).
    """

    file: str
    items: tuple[tuple[str, dict[str, Any]], ...]
    day0: dict[str, dt.date]
    enrolled: dict[str, dt.date] = dataclasses.field(default_factory=dict)
    where: tuple[tuple[int, int], ...] = ()
    problems: tuple[Problem, ...] = ()
    records: tuple[Any, ...] = ()
    columns: dict[str, int] = dataclasses.field(default_factory=dict)  # a CSV's column of each field, from 1


def _read_case(path: Path) -> ImportBatch:
    from trialflow.protocol import load_document
    from trialflow.rules.casefile import parse_case

    document = load_document(path)
    case = parse_case(document)
    items = tuple((case.patient, o.to_dict()) for o in case.observations)
    enrolled = document.data.get("enrolled")
    return ImportBatch(str(path), items, {case.patient: case.day0} if case.day0 else {},
                       {case.patient: dt.date.fromisoformat(str(enrolled))} if enrolled else {})


def _number(text: str, field: str, where: tuple[int, int], file: str, problems: list[Problem],
            decimal_comma: bool = False) -> float | None:
    try:
        return float(text.replace(",", ".") if decimal_comma else text)
    except ValueError:
        problems.append(Problem(file, where[0], where[1], f"$.{field}", f"expected a number, got {text!r}"))
        return None


def _cell_type(prop: Mapping[str, Any]) -> str:
    """How a CSV cell of a field is read, from the field's schema: a flag (yes/no), a number, a number or a
    text (Tg's '<0.2'), or a text."""
    types = {prop.get("type"), *(branch.get("type") for branch in prop.get("anyOf", ()))}
    if "boolean" in types:
        return "flag"
    if types & {"number", "integer"}:
        return "number or text" if "string" in types else "number"
    return "text"


def _delimiter(first_line: str) -> str:
    """',' as the columns say; ';' for a file saved by Excel with European settings (decimal commas)."""
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _read_csv(path: Path, collect: bool = False) -> ImportBatch:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DocumentError([Problem(file, 1, 1, "$", f"cannot read: {err}")]) from None
    lines = text.splitlines()
    sep = _delimiter(lines[0] if lines else "")
    comma = sep == ";"  # with ';' between fields, a ',' in a number is its decimal sign
    reader = csv.reader(lines, delimiter=sep)
    header = [h.strip().lower() for h in next(reader, [])]
    problems: list[Problem] = []
    unknown = [h for h in header if h not in CSV_COLUMNS]
    for h in unknown:
        problems.append(Problem(file, 1, header.index(h) + 1, "$.header",
                                f"unknown column {h!r} (columns: {', '.join(CSV_COLUMNS)})"))
    for h in _REQUIRED:
        if h not in header:
            problems.append(Problem(file, 1, 1, "$.header", f"missing column {h!r}"))
    if problems:
        raise DocumentError(problems)
    from ._records import record_from_dict

    col = {h: i + 1 for i, h in enumerate(header)}
    # how each kind's own cells are read, worked out once per kind (not once per row)
    cell_types = {k.name: [(f, _cell_type(k.schema["properties"][f])) for f in k.csv_columns] for k in KINDS.values()}
    items: list[tuple[str, dict[str, Any]]] = []
    where: list[tuple[int, int]] = []
    records: list[Any] = []
    for lineno, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(Problem(file, lineno, 1, f"$.row[{lineno}]",
                                    f"expected {len(header)} fields, got {len(row)}"))
            continue
        row_problems = len(problems)
        cells = {h: c.strip() for h, c in zip(header, row, strict=True)}
        kind = cells.get("kind") or "tg"
        rec: dict[str, Any] = {"kind": kind, "date": cells["date"]}
        try:
            dt.date.fromisoformat(cells["date"])
        except ValueError:
            problems.append(Problem(file, lineno, col["date"], "$.date",
                                    f"expected a date as YYYY-MM-DD, got {cells['date']!r}"))
        declared = KINDS.get(kind)
        if declared is None or not declared.csv_columns:
            lab = " and ".join(k.name for k in KINDS.values() if k.csv_columns)
            problems.append(Problem(file, lineno, col.get("kind", 1), "$.kind",
                                    f"a laboratory CSV holds {lab} results, got {kind!r}"))
            continue
        for field, how in cell_types[kind]:  # the kind's own columns, read as its schema types them
            cell = cells.get(field, "")
            if how == "flag":
                value = _BOOL.get(cell.lower())
                if value is None:
                    problems.append(Problem(file, lineno, col[field], f"$.{field}", f"expected yes/no, got {cell!r}"))
                elif value:
                    rec[field] = True
            elif not cell:
                continue
            elif how == "text":
                rec[field] = cell
            elif how == "number or text" and cell.startswith("<"):  # '<0,2' has a decimal comma too
                rec[field] = cell.replace(",", ".") if comma else cell
            else:
                rec[field] = _number(cell, field, (lineno, col[field]), file, problems, comma)
        if len(problems) > row_problems:
            continue  # the row's own problems are reported; do not repeat them as a record error
        try:
            record = record_from_dict(rec)
        except ValueError as err:
            # the record's sentences begin with the field they are about ("unit 'mg/dL' is not accepted",
            # "result is missing"): the cell of that column where the file has one, else the row
            field = str(err).split(" ", 1)[0]
            where_ = (col[field], f"$.{field}") if field in col else (1, f"$.row[{lineno}]")
            problems.append(Problem(file, lineno, where_[0], where_[1], str(err)))
            continue
        if not cells["patient"]:
            problems.append(Problem(file, lineno, col["patient"], "$.patient", "patient is empty"))
            continue
        items.append((cells["patient"], rec))
        records.append(record)
        where.append((lineno, col["patient"]))
    if problems and not collect:
        raise DocumentError(problems)
    return ImportBatch(file, tuple(items), {}, where=tuple(where), problems=tuple(problems), records=tuple(records),
                       columns=col)


CASE_SUFFIXES = (".yaml", ".yml", ".json")


def _looks_like_csv(p: Path) -> bool:
    """A file whose first line is a header naming the CSV's patient and date columns."""
    try:
        with p.open(encoding="utf-8-sig", errors="replace") as f:
            first = f.readline()
    except OSError:
        return False
    cells = {c.strip().lower() for c in first.split(_delimiter(first))}
    return {"patient", "date"} <= cells


def read_import(path: str | Path, *, collect: bool = False) -> ImportBatch:
    """Read a case file (.yaml/.yml/.json) or a laboratory CSV (.csv, or any other name whose first line
    is the CSV header, such as a laboratory's ``.txt`` export). ``collect``: return a CSV's row problems
    in the batch instead of raising, so the caller can report them with its own."""
    p = Path(path)
    if not p.exists():
        raise DocumentError([Problem(str(p), 1, 1, "$", "no such file")])
    if p.suffix.lower() == ".csv" or (p.suffix.lower() not in CASE_SUFFIXES and _looks_like_csv(p)):
        return _read_csv(p, collect)
    return _read_case(p)
