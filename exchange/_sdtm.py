"""``trialflow export sdtm-design``: the SDTM trial design domains TA, TE, TV, TI and TS from the protocol.

Variable names and meanings follow the SDTM Implementation Guide (SDTMIG v3.4, section 7 "Trial
Design Model Datasets"):

* TE, Trial Elements: one row per planned element (a protocol phase that is not terminal), ETCD,
  ELEMENT, TESTRL (start rule), TEENRL (end rule), TEDUR (planned duration, ISO 8601);
* TA, Trial Arms: one row per element of each planned path. The study is single-arm until the
  decision; SDTMIG models the decision's branches as arms (ARMCD per branch) that share the elements
  before the branch, with TABRANCH on the element at whose end the branch is taken;
* TV, Trial Visits: one row per planned visit: VISITNUM, VISIT, VISITDY (planned study day in SDTM's
  counting, where day 1 is the first dose and there is no day 0: trialflow's day d >= 0 is VISITDY
  d + 1), ARMCD for a visit of one arm only, and TVSTRL / TVENRL, the visit window as rules
  ("<anchor> + N days");
* TI, Trial Inclusion/Exclusion Criteria: IETESTCD, IETEST, IECAT, TIVERS;
* TS, Trial Summary: TSSEQ, TSPARMCD, TSPARM, TSVAL for what the protocol states.

Written as CDISC Dataset-JSON 1.1 (odmlib's ``dataset_json_1_1`` model) or CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialflow.protocol import Phase, Protocol

from ._output import output_folder, private_file

__all__ = ["DOMAINS", "SdtmDesign", "design_domains", "export_sdtm_design", "visit_numbers", "write_dataset"]

#: domain → (label, [(variable, label, Dataset-JSON data type)])
DOMAINS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "TA": ("Trial Arms", [
        ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
        ("ARMCD", "Planned Arm Code", "string"), ("ARM", "Description of Planned Arm", "string"),
        ("TAETORD", "Planned Order of Element within Arm", "integer"), ("ETCD", "Element Code", "string"),
        ("ELEMENT", "Description of Element", "string"), ("TABRANCH", "Branch", "string"),
        ("TATRANS", "Transition Rule", "string"), ("EPOCH", "Epoch", "string"),
    ]),
    "TE": ("Trial Elements", [
        ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
        ("ETCD", "Element Code", "string"), ("ELEMENT", "Description of Element", "string"),
        ("TESTRL", "Rule for Start of Element", "string"), ("TEENRL", "Rule for End of Element", "string"),
        ("TEDUR", "Planned Duration of Element", "string"),
    ]),
    "TV": ("Trial Visits", [
        ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
        ("VISITNUM", "Visit Number", "integer"), ("VISIT", "Visit Name", "string"),
        ("VISITDY", "Planned Study Day of Visit", "integer"), ("ARMCD", "Planned Arm Code", "string"),
        ("ARM", "Description of Planned Arm", "string"), ("TVSTRL", "Visit Start Rule", "string"),
        ("TVENRL", "Visit End Rule", "string"),
    ]),
    "TI": ("Trial Inclusion/Exclusion Criteria", [
        ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
        ("IETESTCD", "Incl/Excl Criterion Short Name", "string"), ("IETEST", "Inclusion/Exclusion Criterion",
                                                                   "string"),
        ("IECAT", "Inclusion/Exclusion Category", "string"), ("TIVERS", "Protocol Criteria Versions", "string"),
    ]),
    "TS": ("Trial Summary", [
        ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
        ("TSSEQ", "Sequence Number", "integer"), ("TSPARMCD", "Trial Summary Parameter Short Name", "string"),
        ("TSPARM", "Trial Summary Parameter", "string"), ("TSVAL", "Parameter Value", "string"),
    ]),
}


@dataclass(frozen=True, slots=True)
class SdtmDesign:
    """What was written: one file per domain."""

    study: str
    version: str
    format: str
    files: dict[str, str]
    rows: dict[str, int]


def _code(text: str, taken: set[str], width: int = 8) -> str:
    """An SDTM short code: upper case letters and digits, at most ``width`` long, unique."""
    base = re.sub(r"[^A-Z0-9]", "", text.upper())[:width] or "X"
    code, n = base, 1
    while code in taken:
        n += 1
        code = base[: width - len(str(n))] + str(n)
    taken.add(code)
    return code


def _anchor_text(protocol: Protocol, phase: Phase) -> str:
    if phase.anchor == "day0":
        return f"First {protocol.treatment(phase.treatment.id).name if phase.treatment else 'study'} dose (day 0)"
    if phase.anchor == "enrolment":
        return "Enrolment"
    return f"Start of element {phase.name}"


def _offset(anchor: str, days: int) -> str:
    return f"{anchor} {'+' if days >= 0 else '-'} {abs(days)} days"


def _epoch(protocol: Protocol, phase: Phase, after_decision: bool) -> str:
    if phase.kind == "screening":
        return "SCREENING"
    return "CONTINUATION TREATMENT" if after_decision else "TREATMENT"


def _path_before_decision(protocol: Protocol) -> list[Phase]:
    """The phases every patient passes through, from the first one to the decision (not terminal ones)."""
    path = [protocol.initial_phase]
    while path[-1].id != protocol.decision.phase and len(path) <= len(protocol.phases):
        nxt = next((t.dest for t in protocol.transitions if t.source == path[-1].id
                    and not protocol.phase(t.dest).terminal), None)
        if nxt is None:
            break
        path.append(protocol.phase(nxt))
    return [p for p in path if p.kind != "decision"]


def design_domains(protocol: Protocol) -> dict[str, list[dict[str, Any]]]:
    """The five domains as rows of SDTM variable → value (None = null)."""
    study = protocol.study.id
    dec = protocol.decision
    common = _path_before_decision(protocol)
    elements = [p for p in protocol.phases if not p.terminal and p.kind != "decision"]
    taken: set[str] = set()
    etcd = {p.id: _code(p.id, taken) for p in elements}

    te = []
    for p in elements:
        start = ("Informed consent and enrolment" if p.kind == "screening" else
                 f"{_anchor_text(protocol, p)}" if p.anchor == "day0" else
                 f"Decision {dec.id}: " + "; ".join(f"branch {b.id}" for b in dec.branches if b.to == p.id))
        end = (f"{p.duration_days} days after the start of the element" if p.duration_days else
               "First dose of study treatment" if p.kind == "screening" else "End of the element")
        if any(p.id == t.source and t.dest == dec.phase for t in protocol.transitions):
            end += f", then decision {dec.id}"
        te.append({"STUDYID": study, "DOMAIN": "TE", "ETCD": etcd[p.id], "ELEMENT": p.name, "TESTRL": start,
                   "TEENRL": end, "TEDUR": f"P{p.duration_days}D" if p.duration_days else None})

    ta = []
    arm_taken: set[str] = set()
    arms: dict[str, tuple[str, str]] = {}  # branch id → (ARMCD, ARM)
    for b in dec.branches:
        then = protocol.phase(b.to)
        arm_name = " then ".join([*(p.name for p in common), then.name])
        armcd = _code(b.id, arm_taken)
        arms[b.id] = (armcd, arm_name)
        path = [*common, *([then] if not then.terminal else [])]
        for order, p in enumerate(path, start=1):
            branch = (f"Decision {dec.id}: {b.description or b.id}" if p is common[-1] else None)
            ta.append({"STUDYID": study, "DOMAIN": "TA", "ARMCD": armcd, "ARM": arm_name, "TAETORD": order,
                       "ETCD": etcd[p.id], "ELEMENT": p.name, "TABRANCH": branch,
                       "TATRANS": (f"Early termination ({', '.join(protocol.early_termination.reason_ids)}) "
                                   f"ends the study" if p.id in protocol.early_termination.from_phases else None),
                       "EPOCH": _epoch(protocol, p, p not in common)})

    tv = []
    numbers = visit_numbers(protocol)
    for p, v in [(phase, v) for phase in protocol.phases for v in phase.visits]:
        n = numbers[v.id][0]
        arms_of = [arms[b.id] for b in dec.branches if b.to == p.id]
        anchor = _anchor_text(protocol, p)
        tv.append({"STUDYID": study, "DOMAIN": "TV", "VISITNUM": n, "VISIT": v.name,
                   "VISITDY": (v.day + 1 if v.day >= 0 else v.day) if p.anchor == "day0" else None,
                   "ARMCD": arms_of[0][0] if len(arms_of) == 1 else None,
                   "ARM": arms_of[0][1] if len(arms_of) == 1 else None,
                   "TVSTRL": _offset(anchor, v.first_day), "TVENRL": _offset(anchor, v.last_day)})

    ti = []
    ie_taken: set[str] = set()
    for cat, criteria in (("INCLUSION", protocol.eligibility.inclusion), ("EXCLUSION", protocol.eligibility.exclusion)):
        for c in criteria:
            ti.append({"STUDYID": study, "DOMAIN": "TI", "IETESTCD": _code(c.id, ie_taken),
                       "IETEST": c.question[:200], "IECAT": cat, "TIVERS": protocol.version})

    first = protocol.treatment(common[-1].treatment.id) if common and common[-1].treatment else None
    ts_values: list[tuple[str, str, str | None]] = [
        ("TITLE", "Trial Title", protocol.study.title),
        ("OBJPRIM", "Trial Primary Objective", protocol.study.objective),
        ("STYPE", "Study Type", "INTERVENTIONAL"),
        ("INTMODEL", "Intervention Model", "SINGLE GROUP" if len(common) else None),
        ("TBLIND", "Trial Blinding Schema", "OPEN" if protocol.study.design and "open" in
         protocol.study.design.lower() else None),
        ("RANDOM", "Trial is Randomized", "N"),
        ("PLANSUB", "Planned Number of Subjects", str(protocol.study.enrolment_target)),
        ("NARMS", "Planned Number of Arms", str(len(arms))),
        ("TRT", "Investigational Therapy or Treatment", first.name if first else None),
        ("DOSE", "Dose per Administration", None if first is None or first.dose_mg_per_day is None
         else f"{first.dose_mg_per_day:g} mg/day ({first.regimen})" if first.regimen else f"{first.dose_mg_per_day:g}"),
        ("TDIGRP", "Diagnosis Group", "Radioiodine-refractory differentiated thyroid carcinoma"
         if "thyroid" in protocol.study.title.lower() else None),
        ("OUTMSPRI", "Primary Outcome Measure", dec.favourable_description),
        ("PROTVERS", "Protocol Version", protocol.version),
    ]
    ts = [{"STUDYID": study, "DOMAIN": "TS", "TSSEQ": 1, "TSPARMCD": code, "TSPARM": label, "TSVAL": value}
          for code, label, value in ts_values if value]
    return {"TA": ta, "TE": te, "TV": tv, "TI": ti, "TS": ts}


def visit_numbers(protocol: Protocol) -> dict[str, tuple[int, str]]:
    """Visit id → (VISITNUM, VISIT): the planned visits numbered in protocol order, as TV numbers them."""
    visits = [v for p in protocol.phases for v in p.visits]
    return {v.id: (n, v.name) for n, v in enumerate(visits, start=1)}


def write_dataset(folder: Path, domain: str, rows: Sequence[dict[str, Any]], protocol: Protocol, fmt: str,
                  spec: tuple[str, list[tuple[str, str, str]]] | None = None, *, private: bool = False) -> Path:
    """One domain's rows as ``<domain>.json`` (Dataset-JSON 1.1) or ``.csv`` in ``folder``; ``spec`` is the
    domain's label and variables (default: the trial design's ``DOMAINS``). ``private``: the file holds
    patient data, so only its owner may read it (mode 0600)."""
    label, variables = spec or DOMAINS[domain]
    path = folder / f"{domain.lower()}.{fmt}"
    if private:
        private_file(path)
    if fmt == "json":
        _write_json(path, domain, label, variables, rows, protocol)
    else:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=[v for v, _, _ in variables])
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return path


#: what a spreadsheet reads as the start of a formula (OWASP, CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (a free-text reason '=HYPERLINK(...)') gets a
    leading single quote, as OWASP's CSV-injection guidance says, so it opens as the text it is; numbers are
    left alone (-3 is a number, not a formula)."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def _write_json(path: Path, domain: str, label: str, variables: list[tuple[str, str, str]],
                rows: Sequence[dict[str, Any]], protocol: Protocol) -> None:
    from odmlib.dataset_json_1_1 import Column, DatasetJSON

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    ds = DatasetJSON(datasetJSONVersion="1.1.0", datasetJSONCreationDateTime=now, fileOID=f"trialflow.{domain}",
                     originator="trialflow", studyOID=f"ST.{protocol.study.id}",
                     metaDataVersionOID=f"MDV.{protocol.study.id}.v{protocol.version}", itemGroupOID=f"IG.{domain}",
                     records=len(rows), name=domain, label=label)
    for var, var_label, dtype in variables:
        ds.add_column(Column(itemOID=f"IT.{domain}.{var}", name=var, label=var_label, dataType=dtype))
    ds.rows = [[row.get(var) for var, _, _ in variables] for row in rows]
    ds.write_json(str(path))


def export_sdtm_design(protocol: Protocol, out: str | Path, fmt: str = "json") -> SdtmDesign:
    """Write ta/te/tv/ti/ts as Dataset-JSON (``fmt`` json) or CSV into the folder ``out``."""
    folder = output_folder(out)
    domains = design_domains(protocol)
    files = {}
    for domain, rows in domains.items():
        files[domain] = str(write_dataset(folder, domain, rows, protocol, fmt))
    return SdtmDesign(protocol.study.id, protocol.version, fmt, files, {d: len(r) for d, r in domains.items()})
