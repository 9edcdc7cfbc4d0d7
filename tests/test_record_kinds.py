"""Record kinds are declared once (trialflow.rules.kinds): the case-file schema, the record classes, the CLI's
record options, the laboratory CSV's columns, the correction policy, the history's summary and the
simulator's synthesis all read that one declaration, and each declaration is true of its kind."""

from __future__ import annotations

import inspect

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
