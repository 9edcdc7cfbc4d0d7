"""Record kinds are declared once (trialflow.rules.kinds): the case-file schema, the record classes, the CLI's
record options, the laboratory CSV's columns, the correction policy, the history's summary and the
simulator's synthesis all read that one declaration, and each declaration is true of its kind."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from test_exchange_forms import SAMPLES

from trialflow.cli._record_options import build_record
from trialflow.engine._imports import CSV_COLUMNS
from trialflow.engine._queries import _record_summary
from trialflow.engine._records import RECORD_TYPES, record_from_dict
from trialflow.engine._workflow import CORRECTABLE
from trialflow.rules.casefile import CASE_SCHEMA
from trialflow.rules.kinds import KINDS, csv_columns


def test_every_reader_of_the_kinds_reads_the_one_declaration() -> None:
    assert list(RECORD_TYPES) == list(KINDS) and all(RECORD_TYPES[k] is KINDS[k].record for k in KINDS)
    assert {k: d.correctable for k, d in KINDS.items()} == CORRECTABLE
    assert set(CASE_SCHEMA["$defs"]) == {k for k, d in KINDS.items() if d.case_file}
    assert all(CASE_SCHEMA["$defs"][k] is KINDS[k].schema for k in CASE_SCHEMA["$defs"])
    assert csv_columns() == CSV_COLUMNS and {"value", "result"} <= set(CSV_COLUMNS)


def test_each_kinds_schema_accepts_its_own_records_and_its_fields_are_its_schemas() -> None:
    for name, declared in KINDS.items():
        Draft202012Validator.check_schema(declared.schema)
        stored = record_from_dict(SAMPLES[name]).to_dict()
        assert not list(Draft202012Validator(declared.schema).iter_errors(stored)), name
        fields = set(declared.schema["properties"])
        assert declared.correctable <= fields - {"kind", "date"}, name
        assert set(declared.csv_columns) <= fields, name
        assert _record_summary(stored).split()[0] in (name, "adverse", "dose", "dispensed", "131I"), name


def test_the_record_command_has_every_declared_option_and_the_builder_refuses_the_others() -> None:
    from trialflow.cli import _workflow_cmd

    source = inspect.getsource(_workflow_cmd)
    every = set().union(*(k.options for k in KINDS.values()))
    for option in every:
        assert f"        {option}: Annotated[" in source, option  # a parameter of `trialflow record`
    opts = dict.fromkeys(every)
    for name, declared in KINDS.items():
        needed = {o: "1" for o in declared.required_options}
        for stray in sorted(every - declared.options):
            try:
                build_record(name, None, {**opts, **needed, stray: "x"})
            except Exception as err:  # typer.BadParameter
                assert "does not apply" in str(err), (name, stray)
            else:
                raise AssertionError(f"--{stray} accepted for {name}")


def test_the_simulator_synthesises_exactly_the_kinds_declared_simulated() -> None:
    from trialflow.engine.simulation import parse_scenario, simulate
    from trialflow.engine.simulation._records import patient_pathway

    scenario = parse_scenario('study_start: "2001-01-01"\nrai_reinduction_probability: 0.5\n'
                              "toxicity: {dose_reduction_per_month: 0.3, stop_per_month: 0.0}\n", "s.yaml")
    sample = simulate(300, seed=3, scenario=scenario).sample
    assert sample is not None
    made = {r["kind"] for i in range(sample.size) for r in patient_pathway(sample, i).records}
    assert made == {k for k, d in KINDS.items() if d.simulated}


def test_each_simulated_kind_names_its_synthesiser_and_the_simulator_calls_that() -> None:
    import importlib

    from trialflow.engine.simulation import _records

    for name, declared in KINDS.items():
        if declared.synthesis is None:
            continue
        module, _, function = declared.synthesis.partition(":")
        made = getattr(importlib.import_module(module), function)
        assert callable(made), name
        assert _records._synthesiser(declared.synthesis) is made, name


@pytest.mark.parametrize(("record", "message"), [
    ({"kind": "adverse_event", "date": "2026-04-02", "term": "Fatigue", "grade": 6}, "grade must be <= 5, got 6"),
    ({"kind": "adverse_event", "date": "2026-04-02", "term": "Fatigue", "grade": True},
     "grade must be a whole number, got True"),
    ({"kind": "adverse_event", "date": "2026-04-02", "term": "Fatigue", "grade": 3.0},
     "grade must be a whole number, got 3.0"),  # JSON Schema counts 3.0 as an integer
    ({"kind": "dispense", "date": "2026-04-02", "dose_mg_per_day": 800, "days_supply": 28.0},
     "days_supply must be a whole number, got 28.0"),
    ({"kind": "tgab", "date": "2026-04-02", "result": "maybe"}, "result must be 'positive' or 'negative', got 'maybe'"),
    ({"kind": "tg", "date": "2026-04-02", "value": -1}, "value must be > 0, got -1"),
    ({"kind": "tg", "date": "2026-04-02", "value": 5, "stimulated": "no"}, "stimulated must be true or false"),
    ({"kind": "ct", "date": "2026-04-02", "target": [{"id": "T1", "diameter_mm": -3}]},
     "target[0].diameter_mm must be >= 0, got -3"),
    ({"kind": "rai_scan", "date": "2026-04-02", "modalities": ["pet"]},
     "modalities must be 'planar' or 'spect', got 'pet'"),
    ({"kind": "dispense", "date": "2026-04-02", "dose_mg_per_day": 800, "days_supply": 400},
     "days_supply must be <= 365, got 400"),
    ({"kind": "tg", "date": "2026-04-02", "value": 5, "colour": "red"}, "unknown key 'colour'"),
    ({"kind": "adverse_event", "date": "2026-04-02", "grade": 2}, "term is missing"),
])
def test_a_record_from_outside_is_refused_by_its_kinds_schema_in_the_case_files_words(
        record: dict[str, Any], message: str) -> None:
    """The schema is the one statement of a field's type, range and choices: the record classes no longer
    repeat it by hand, so a record command, a form, the CSV and the ODM import refuse what a case file does."""
    with pytest.raises(ValueError, match=re.escape(message)):
        record_from_dict(record)


@pytest.mark.parametrize(("record", "message"), [
    ({"kind": "tg", "date": "2026-04-02", "value": float("nan")}, "value must be a finite number"),
    ({"kind": "tg", "date": "2026-04-02", "value": "<0.2", "loq": 0.5}, "disagrees with loq"),
    ({"kind": "adverse_event", "date": "2026-04-02", "term": "Fatigue", "grade": 2, "resolved": "2026-03-01"},
     "is before the onset"),
    ({"kind": "tg", "date": "2026-02-30", "value": 5}, "date must be an ISO date"),
])
def test_what_a_schema_cannot_say_is_the_record_classes_own_check(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        record_from_dict(record)


def test_the_laboratory_csv_reads_each_kinds_declared_columns_as_their_schema_types_them(tmp_path: Any) -> None:
    from trialflow.engine._imports import _cell_type, read_import

    tg = KINDS["tg"].schema["properties"]
    assert [_cell_type(tg[c]) for c in KINDS["tg"].csv_columns] == [
        "number or text", "text", "number", "flag", "flag"]
    f = tmp_path / "lab.csv"
    f.write_text("patient;kind;date;value;unit;loq;below_loq;stimulated;result\n"
                 "P-001;tg;2026-02-09;12,5;ug/L;0,2;;yes;\n"
                 "P-001;tg;2026-02-09;<0,2;;;;;\n"
                 "P-001;tgab;2026-02-09;;;;;;negative\n", encoding="utf-8")
    got = [rec for _, rec in read_import(f).items]
    assert got == [
        {"kind": "tg", "date": "2026-02-09", "value": 12.5, "unit": "ug/L", "loq": 0.2, "stimulated": True},
        {"kind": "tg", "date": "2026-02-09", "value": "<0.2"},
        {"kind": "tgab", "date": "2026-02-09", "result": "negative"},
    ]
