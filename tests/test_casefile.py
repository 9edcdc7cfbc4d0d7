"""Case files: YAML and JSON, units, LoQ forms, located errors, round trip through to_dict/from_dict."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from trialflow.documents import DocumentError
from trialflow.rules.casefile import CASE_SCHEMA, load_case, parse_case_text
from trialflow.rules.observations import Case, TgSample

CASES = Path(__file__).parent / "cases"

GOOD = """\
patient: P-001
day0: 2026-01-12
observations:
  - {kind: tg, date: 2026-01-12, value: 12.5, unit: ug/L, loq: 0.2}
  - {kind: tg, date: 2026-02-09, value: "<0.2"}
  - {kind: tg, date: 2026-03-09, below_loq: true, loq: 0.1, unit: ng/mL}
  - {kind: tg, date: 2026-03-10, value: 40, stimulated: true}
  - {kind: tgab, date: 2026-01-12, result: negative}
  - {kind: ct, date: 2026-01-08, slice_thickness_mm: 5,
     target: [{id: T1, organ: lung, diameter_mm: 22},
              {id: T2, organ: lymph_node, nodal: true, diameter_mm: 18},
              {id: T3, organ: liver, fragments_mm: [5, 4]}, {id: T4, organ: liver, too_small: true}],
     non_target: [{id: N1, organ: bone, status: present}], new_lesions: []}
  - {kind: rai_scan, date: 2026-01-05, modalities: [planar, spect],
     avid_lesions: [thyroid bed, {id: L1, modality: spect}]}
  - {kind: adverse_event, date: 2026-02-01, term: hand-foot skin reaction, grade: 2}
  - {kind: dose_change, date: 2026-02-02, dose_mg_per_day: 600, reason: hand-foot skin reaction}
"""


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(CASE_SCHEMA)


def test_parse_good_case() -> None:
    case = parse_case_text(GOOD, "p1.yaml")
    assert (case.patient, case.day0) == ("P-001", dt.date(2026, 1, 12))
    tg = case.of_kind("tg")
    assert tg[0] == TgSample(dt.date(2026, 1, 12), 12.5, 0.2)
    assert (tg[1].value, tg[1].loq, tg[1].below_loq) == (None, 0.2, True)
    assert (tg[2].loq, tg[2].below_loq, tg[3].stimulated) == (0.1, True, True)
    ct = case.of_kind("ct")[0]
    assert ct.target[2].fragments_mm == (5.0, 4.0) and ct.target[3].too_small and ct.slice_thickness_mm == 5
    assert [a.modality for a in case.of_kind("rai_scan")[0].avid_lesions] == [None, "spect"]
    assert case.of_kind("dose_change")[0].dose_mg_per_day == 600


def test_round_trip_through_dicts_and_json() -> None:
    case = parse_case_text(GOOD)
    again = Case.from_dict(json.loads(json.dumps(case.to_dict())))
    assert again == case


def test_json_case_file(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text(json.dumps(parse_case_text(GOOD).to_dict()))
    assert load_case(p) == parse_case_text(GOOD)


def test_example_case_files_load() -> None:
    for f in sorted(CASES.glob("*.yaml")):
        assert load_case(f).patient.startswith("P-")


def _problems(text: str) -> list[str]:
    with pytest.raises(DocumentError) as err:
        parse_case_text(text, "bad.yaml")
    return [str(p) for p in err.value.problems]


def test_other_unit_is_a_clear_error_naming_the_field() -> None:
    out = _problems("patient: P-9\nobservations:\n  - {kind: tg, date: 2026-01-12, value: 3, unit: pmol/L}\n")
    assert len(out) == 1
    assert out[0].startswith("bad.yaml:3:") and "$.observations[0].unit" in out[0] and "pmol/L" in out[0]


def test_errors_are_located_and_all_reported() -> None:
    text = (
        "patient: P-9\nday0: 2026-01-12\nobservations:\n"
        "  - {kind: tg, date: 2026-01-12, value: -3}\n"
        "  - {kind: ct, date: 2026-01-08, target: [{id: T1, organ: lung, diameter: 22}]}\n"
        "  - {kind: tgab, date: 2026-01-12, result: postive}\n"
        "  - {kind: scan, date: 2026-01-12}\n"
    )
    out = _problems(text)
    assert any(o.startswith("bad.yaml:4:") and "$.observations[0].value" in o for o in out)
    assert any(
        o.startswith("bad.yaml:5:") and "unknown key 'diameter'; did you mean 'diameter_mm'?" in o
        for o in out
    )
    assert any(o.startswith("bad.yaml:6:") and "did you mean 'positive'?" in o for o in out)
    assert any(o.startswith("bad.yaml:7:") and "'scan'" in o for o in out)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("{kind: tg, date: 2026-02-30, value: 3}", "ISO date"),
        ("{kind: tg, date: 2026-01-12}", "value is missing"),
        ("{kind: tg, date: 2026-01-12, below_loq: true}", "needs the LoQ"),
        ("{kind: tg, date: 2026-01-12, value: '<0.2', loq: 0.5}", "disagrees"),
        ("{kind: tg, date: 2026-01-12, value: 'low'}", "$.observations[0].value"),
    ],
)
def test_tg_value_forms(record: str, message: str) -> None:
    out = _problems(f"patient: P-9\nobservations:\n  - {record}\n")
    assert any(message in o for o in out), out


def test_duplicate_lesion_ids_and_scans() -> None:
    text = (
        "patient: P-9\nobservations:\n"
        "  - {kind: ct, date: 2026-01-08, target: [{id: T1, diameter_mm: 20}, {id: T1, diameter_mm: 12}]}\n"
        "  - {kind: ct, date: 2026-01-08}\n"
    )
    out = _problems(text)
    assert any("appears twice" in o for o in out) and any("a second ct on 2026-01-08" in o for o in out)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        load_case(tmp_path / "nope.yaml")
    assert "YAML syntax error" in _problems("patient: [P-9\n")[0]
    assert "missing required field 'observations'" in _problems("patient: P-9\n")[0]
