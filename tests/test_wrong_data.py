"""Ways to store wrong data (issue 10, items 2, 3, 6, 7, 15), on SQLite and PostgreSQL where stored.

The patient is DOMAIN.md's responder (Tg 120 → 27 ug/L over weeks 0-28); the wrong data are what a
coordinator really does: re-import a lab file after a correction, re-record a value retracted by mistake,
type 1e308 or nan, or give a date of birth as the study id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from typer.testing import CliRunner
from workflow_helpers import DAY0, TG_RESPONSE, USER, enrol_started, tg, tg_series

from trialflow.cli import app
from trialflow.engine import Refused, Store, correct, record, record_many
from trialflow.engine._pseudonym import pseudonym_problem

runner = CliRunner()


def _tg_values(store: Store, patient: str = "P-001") -> list[float]:
    state = store.state(patient)
    assert state is not None
    return [r.value for r in state.of_kind("tg")]


def _tg_event(store: Store, when: dt.date, patient: str = "P-001") -> int:
    return next(e.id for e in store.events(patient) if e.kind == "observation" and e.payload["kind"] == "tg"
                and e.effective_date == when)


def test_a_corrected_value_recorded_or_imported_again_is_not_stored_twice(store: Store) -> None:
    enrol_started(store, "P-001")
    record_many(store, [("P-001", r) for r in tg_series(DAY0, TG_RESPONSE)], USER)
    week4 = DAY0 + dt.timedelta(weeks=4)
    correct(store, "P-001", _tg_event(store, week4), {"value": 96}, "lab re-issued the report", USER)
    assert len(_tg_values(store)) == 8
    again = record(store, "P-001", tg(week4, 96), USER)  # the corrected value, as the re-issued lab file has it
    assert again.events == () and "already recorded" in again.message
    stale = record_many(store, [("P-001", r) for r in tg_series(DAY0, TG_RESPONSE)], USER)  # the old file again
    assert stale[0].events == () and "superseded by a correction" in stale[0].message
    assert len(_tg_values(store)) == 8 and 96 in _tg_values(store) and 95 not in _tg_values(store)


def test_a_value_corrected_to_another_day_is_known_on_both_days(store: Store) -> None:
    # a record's identity holds its day: the original's stays on its own day (superseded there), the
    # corrected value is in force on the day it was moved to (already recorded there), other days are new
    enrol_started(store, "P-001")
    week4, week5 = DAY0 + dt.timedelta(weeks=4), DAY0 + dt.timedelta(weeks=5)
    record(store, "P-001", tg(week4, 95), USER)
    correct(store, "P-001", _tg_event(store, week4), {"date": week5.isoformat()}, "drawn a week later", USER)
    again = record_many(store, [("P-001", tg(week4, 95)), ("P-001", tg(week5, 95))], USER)
    assert again[0].events == ()
    assert "1 already recorded (skipped)" in again[0].message and "1 superseded by a correction" in again[0].message
    assert len(record(store, "P-001", tg(week4 + dt.timedelta(days=1), 95), USER).events) == 1
    assert _tg_values(store) == [95, 95]


def test_a_retracted_value_can_be_recorded_again(store: Store) -> None:
    enrol_started(store, "P-001")
    record_many(store, [("P-001", r) for r in tg_series(DAY0, TG_RESPONSE)], USER)
    week8 = DAY0 + dt.timedelta(weeks=8)
    correct(store, "P-001", _tg_event(store, week8), None, "entered for the wrong patient", USER)
    assert 70 not in _tg_values(store)
    again = record(store, "P-001", tg(week8, 70), USER)  # it was the right patient after all
    assert len(again.events) == 1 and "1 recorded" in again.message
    assert sorted(_tg_values(store)) == sorted(TG_RESPONSE)
    # retracted and re-recorded once more: still a legitimate act each time
    correct(store, "P-001", again.events[0].id, None, "retracted again", USER)
    assert len(record(store, "P-001", tg(week8, 70), USER).events) == 1
    assert record(store, "P-001", tg(week8, 70), USER).events == ()  # but not twice while in force


@pytest.mark.parametrize("data, field", [
    ({"kind": "rai_therapy", "activity_mbq": float("nan")}, "activity_mbq"),
    ({"kind": "rai_therapy", "activity_mbq": float("inf")}, "activity_mbq"),
    ({"kind": "rai_therapy", "activity_mbq": 1e308}, "activity_mbq"),
    ({"kind": "tg", "value": 1e308, "unit": "ug/L"}, "value"),
    ({"kind": "tg", "value": float("nan"), "unit": "ug/L"}, "value"),
    ({"kind": "dispense", "dose_mg_per_day": float("inf"), "days_supply": 28}, "dose_mg_per_day"),
    ({"kind": "dose_change", "dose_mg_per_day": 1e308, "reason": "typo"}, "dose_mg_per_day"),
    ({"kind": "ct", "slice_thickness_mm": 5, "target": [{"id": "T1", "organ": "lung", "diameter_mm": 1e308}],
      "non_target": [], "new_lesions": []}, "diameter_mm"),
])
def test_numbers_are_finite_and_in_their_declared_range(store: Store, data: dict[str, Any], field: str) -> None:
    enrol_started(store, "P-001")
    before = len(store.events("P-001"))
    with pytest.raises(Refused) as err:
        record(store, "P-001", {**data, "date": (DAY0 + dt.timedelta(days=20)).isoformat()}, USER)
    assert field in str(err.value)
    assert len(store.events("P-001")) == before


@pytest.mark.parametrize("pid", ["120385", "P-120385", "031285", "851203", "12-03-85"])
def test_a_date_of_birth_without_separators_is_not_a_pseudonym(pid: str) -> None:
    assert pseudonym_problem(pid) is not None and "date of birth" in (pseudonym_problem(pid) or "")


@pytest.mark.parametrize("pid", ["P-001", "LEI-017", "S2-0042", "P-999999"])
def test_ordinary_pseudonyms_still_pass(pid: str) -> None:
    assert pseudonym_problem(pid) is None


def _cli(*args: Any, code: int) -> Any:
    r = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.stdout + r.stderr and r.exit_code == code, r.stdout + r.stderr
    return r


@pytest.mark.parametrize("args", [
    ["next", "--as-of", "9999-12-31"],
    ["status", "--as-of", "9999-12-31"],
    ["status", "--as-of", "1900-01-01"],
    ["enroll", "P-002", "--date", "0001-01-01", "--eligibility", "ELIG"],
    ["start", "P-001", "--date", "0001-01-01"],
    ["record", "P-001", "tg", "--date", "0001-01-01", "--value", "5"],
])
def test_dates_outside_1990_to_ten_years_ahead_are_refused_clearly(db_url: str, tmp_path: Any,
                                                                   args: list[str]) -> None:
    import yaml
    from workflow_helpers import ELIGIBLE

    elig = tmp_path / "elig.yaml"
    elig.write_text(yaml.safe_dump(ELIGIBLE), encoding="utf-8")
    _cli("init", "--db", db_url, code=0)
    r = _cli(*[str(elig) if a == "ELIG" else a for a in args], "--db", db_url, code=2)
    assert "between 1990-01-01 and" in " ".join(r.stderr.replace("│", " ").split())  # rich boxes usage errors


def test_the_library_refuses_implausible_dates_too(store: Store) -> None:
    from workflow_helpers import ELIGIBLE

    from trialflow.engine import enroll

    with pytest.raises(Refused, match="between 1990-01-01 and"):
        enroll(store, "P-003", dt.date(1, 1, 1), ELIGIBLE, USER)
    enrol_started(store, "P-001")
    with pytest.raises(Refused, match="between 1990-01-01 and"):
        record(store, "P-001", tg(dt.date(1985, 1, 1), 5), USER)


def test_a_preview_before_enrolment_is_refused_as_the_visit_ledger_refuses_it(store: Store) -> None:
    from trialflow.engine import evaluate, visits

    enrol_started(store, "P-001")
    before = DAY0 - dt.timedelta(days=400)
    with pytest.raises(Refused, match=r"P-001 was enrolled on \d{4}-\d\d-\d\d, after " + before.isoformat()):
        evaluate(store, "P-001", as_of=before)
    with pytest.raises(Refused, match="after " + before.isoformat()):
        visits(store, "P-001", as_of=before)
    assert evaluate(store, "P-001", as_of=DAY0).as_of == DAY0  # from enrolment on, a preview as before


def test_an_eligibility_file_is_refused_at_the_line_of_the_answer(db_url: str, tmp_path: Any) -> None:
    import yaml
    from workflow_helpers import ELIGIBLE

    runner = CliRunner()
    assert runner.invoke(app, ["init", "--db", db_url]).exit_code == 0
    answers = {**ELIGIBLE, "adult": "maybe", "adulte": "yes"}
    f = tmp_path / "eligibility.yaml"
    f.write_text(yaml.safe_dump(answers, sort_keys=False), encoding="utf-8")
    lines = f.read_text(encoding="utf-8").splitlines()
    at = {k: n for n, line in enumerate(lines, start=1) for k in answers if line.startswith(f"{k}:")}
    r = runner.invoke(app, ["enroll", "P-001", "--date", "2026-01-05", "--eligibility", str(f), "--db", db_url])
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert f"refused: {f}:{at['adult']}:8: $.adult: eligibility criterion 'adult': expected yes or no, got 'maybe'" \
        in r.stderr
    assert f"refused: {f}:{at['adulte']}:" in r.stderr and "did you mean 'adult'?" in r.stderr
    f.write_text("- adult\n- yes\n", encoding="utf-8")
    r = runner.invoke(app, ["enroll", "P-001", "--date", "2026-01-05", "--eligibility", str(f), "--db", db_url])
    assert r.exit_code == 1 and f"{f}:1:1: $: expected a mapping of criterion id to yes/no" in r.stderr
    assert runner.invoke(app, ["status", "--db", db_url, "--json"]).stdout.strip() == "[]"  # nothing enrolled
