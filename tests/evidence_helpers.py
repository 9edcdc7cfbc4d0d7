"""Fixture patients for the evidence-selection reference tests (issue 9), on the bundled protocol.

Dates as in workflow_helpers: day 0 (first Sorafenib dose) 2026-01-12; "d+N" is N days after it; the
6-month CT and scintigraphy window is d175-d196; the decision is previewed on d203 (2026-08-03).
Targets are two lung metastases (RECIST 1.0, the bundled protocol's version) and one bone non-target.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from workflow_helpers import DAY0, ELIGIBLE, USER, new_db_url, new_store, tg

from trialflow.cli import app
from trialflow.engine import DecisionPreview, Store, enroll, evaluate, record_many, start

DECISION_DAY = DAY0 + dt.timedelta(days=203)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def lungs(on: int, sizes: Sequence[float], *, non_target: str = "present") -> dict[str, Any]:
    """A CT on study day ``on`` with lung targets T1, T2, ... of ``sizes`` mm and the bone non-target N1."""
    return {
        "kind": "ct",
        "date": day(on).isoformat(),
        "slice_thickness_mm": 5,
        "target": [{"id": f"T{i + 1}", "organ": "lung", "diameter_mm": s} for i, s in enumerate(sizes)],
        "non_target": [{"id": "N1", "organ": "bone", "status": non_target}],
        "new_lesions": [],
    }


def scan(on: int, avid: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "kind": "rai_scan",
        "date": day(on).isoformat(),
        "modalities": ["planar", "spect"],
        "avid_lesions": [{"id": a, "modality": "spect"} for a in avid],
    }


def tg_draws(
    values: Sequence[float], *, late_days: int = 0, on_time_week0: bool = True, tgab: str = "negative"
) -> list[dict[str, Any]]:
    """Tg with its TgAb at weeks 0, 4, ... 28, each drawn ``late_days`` after its target day."""
    out: list[dict[str, Any]] = []
    for i, v in enumerate(values):
        n = 28 * i + (0 if i == 0 and on_time_week0 else late_days)
        out += [tg(day(n), v), {"kind": "tgab", "date": day(n).isoformat(), "result": tgab}]
    return out


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store with the bundled protocol (the readings here do not depend on the backend)."""
    url = next(new_db_url("sqlite", tmp_path))
    s = new_store(url)
    yield s
    s.close()


def patient(store: Store, pid: str, records: Sequence[dict[str, Any]], *, enrolled: dt.date | None = None) -> None:
    """Enrolled 14 days before day 0 (or on ``enrolled``), started on day 0, then ``records``."""
    when = enrolled or day(-14)
    enroll(store, pid, when, ELIGIBLE, USER)
    before = [r for r in records if dt.date.fromisoformat(r["date"]) <= DAY0]
    after = [r for r in records if dt.date.fromisoformat(r["date"]) > DAY0]
    baseline = [r for r in before if r["kind"] in ("ct", "rai_scan")]
    if baseline:
        record_many(store, [(pid, r) for r in baseline], USER)
    start(store, pid, DAY0, USER)
    rest = [r for r in before if r not in baseline] + after
    if rest:
        record_many(store, [(pid, r) for r in rest], USER)


def decision(store: Store, pid: str) -> DecisionPreview:
    return evaluate(store, pid, as_of=DECISION_DAY)


def rules_eval(tmp_path: Path, rule: str, pid: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``trialflow rules eval RULE --input CASE --json`` on a case file holding exactly ``records``."""
    import json

    case = tmp_path / f"{pid}-{rule}.yaml"
    case.write_text(
        yaml.safe_dump({"patient": pid, "day0": DAY0.isoformat(), "observations": list(records)}), encoding="utf-8"
    )
    r = CliRunner().invoke(
        app, ["rules", "eval", rule, "--input", str(case), "--as-of", DECISION_DAY.isoformat(), "--json"]
    )
    assert r.exit_code == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out
