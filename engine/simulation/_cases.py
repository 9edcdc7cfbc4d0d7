"""Simulated patients written out as case files (the import format) plus one JSON Lines summary, so that anyone
can import them into a store and check that the engine agrees with the simulator.

Each case file ``<patient>.json`` holds the patient's enrolment date, day 0 and every record up to the
decision (or up to the withdrawal, for a patient who left before it): what the decision judged. The summary
``patients.jsonl`` has one object per patient: ``patient``, ``enrolled``, ``day0``, ``branch`` (null: no
decision), ``phase`` (where the pathway ends), ``outcomes`` (each criterion's outcome at the decision),
``favourable``, ``decision_date`` and ``withdrawn`` (``{date, reason}`` when the patient left the study
early, before or after the decision).

Round trip, as a user does it::

    trialflow enroll ID --date ENROLLED --eligibility all-met.yaml
    trialflow start ID --date DAY0
    trialflow import ID.json
    trialflow withdraw ID --date DATE --reason REASON     # only when branch is null: withdrawn before it
    trialflow evaluate ID                                 # the simulator's outcomes and branch
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._generate import Cohort
from ._records import PatientPathway, patient_pathway
from ._targets import targets_problem

__all__ = ["CASES_SUMMARY", "CasesWritten", "case_file", "cases_problem", "summary_line", "write_cases"]

CASES_SUMMARY = "patients.jsonl"
_CASE_FILE = re.compile(r"SIM-[0-9]+\.json")  # the simulated patients' case files (``SIM-00001.json``)


@dataclass(frozen=True, slots=True)
class CasesWritten:
    """What ``simulate --cases DIR`` wrote."""

    directory: str
    patients: int
    summary: str


def _until(p: PatientPathway) -> dt.date:
    """The last day whose records the decision could judge (or that the patient was on study for)."""
    if p.decision_date is not None:
        return p.decision_date
    if p.withdrawal is not None:
        return p.withdrawal[0]
    return p.end_date


def case_file(p: PatientPathway) -> dict[str, Any]:
    """The case file of one simulated patient (the import format, with ``enrolled`` beside ``day0``)."""
    out: dict[str, Any] = {"patient": p.patient, "enrolled": p.enrolled.isoformat()}
    if p.day0 is not None:
        out["day0"] = p.day0.isoformat()
    out["observations"] = p.records_until(_until(p)) if p.day0 is not None else []
    return out


def summary_line(p: PatientPathway) -> dict[str, Any]:
    """The JSON Lines object of one simulated patient."""
    return {
        "patient": p.patient,
        "enrolled": p.enrolled.isoformat(),
        "day0": p.day0.isoformat() if p.day0 else None,
        "branch": p.branch,
        "phase": p.end_state,
        "outcomes": p.outcomes,
        "favourable": p.favourable if p.branch is not None else None,
        "decision_date": p.decision_date.isoformat() if p.decision_date else None,
        "withdrawn": {"date": p.withdrawal[0].isoformat(), "reason": p.withdrawal[1]} if p.withdrawal else None,
    }


def _earlier(directory: Path) -> list[str]:
    """The names of the case files an earlier ``--cases`` run left in ``directory`` (the summary first)."""
    if not directory.is_dir():
        return [CASES_SUMMARY]
    found = sorted(p.name for p in directory.iterdir() if _CASE_FILE.fullmatch(p.name))
    return [CASES_SUMMARY, *found]


def cases_problem(directory: str | Path, *, force: bool = False) -> str | None:
    """Why the case files cannot be written into ``directory`` (None: they can). The rule of ``--plots``
    (:func:`._targets.targets_problem`): the case files of an earlier run there (its ``patients.jsonl``,
    its ``SIM-*.json``) are replaced only with ``force``, a symbolic link is never written through, and a
    path that is not a folder is refused."""
    return targets_problem(directory, _earlier(Path(directory)), "the case files", force=force)


def write_cases(sample: Cohort, directory: str | Path, start: dt.date | None = None,
                limit: int | None = None, *, force: bool = False) -> CasesWritten:
    """Write the first ``limit`` (default: all) patients of ``sample`` into ``directory`` (created).

    The case files of an earlier run in ``directory`` are refused (``FileExistsError``, see
    :func:`cases_problem`) or, with ``force``, removed first: the folder then holds this run's files only,
    not a mix of two runs. Each file is created anew, so a symbolic link is never written through."""
    out = Path(directory)
    problem = cases_problem(out, force=force)
    if problem:
        raise FileExistsError(problem)
    out.mkdir(parents=True, exist_ok=True)
    for name in _earlier(out):  # (only with force: else the check above refused them)
        (out / name).unlink(missing_ok=True)
    n = sample.size if limit is None else min(limit, sample.size)
    summary = out / CASES_SUMMARY
    with summary.open("x", encoding="utf-8") as lines:
        for i in range(n):
            p = patient_pathway(sample, i, start)
            with (out / f"{p.patient}.json").open("x", encoding="utf-8") as f:
                f.write(json.dumps(case_file(p), indent=1) + "\n")
            lines.write(json.dumps(summary_line(p), sort_keys=True) + "\n")
    return CasesWritten(str(out), n, str(summary))
