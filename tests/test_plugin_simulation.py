"""Plug-in rules are simulated through the batch adapter the rule provides (``evaluate_cases``): the example
plug-in's batch outcome equals its one-patient ``evaluate`` on every simulated patient, and a plug-in
without an adapter is refused before anything runs, saying what to add."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from parity_helpers import AMENDMENTS, MISSABLE_SCENARIO, example_plugin

from trialflow.engine.simulation import SimulationError, parse_scenario, simulate
from trialflow.engine.simulation._evaluate import (
    CriteriaInputs,
    Judged,
    _case_arrays,
    _CloseGaps,
    _date_order,
    _kind_fields,
    _Sort,
    criteria_inputs,
)
from trialflow.protocol import Criterion, load_bundled_protocol, parse_protocol
from trialflow.rules import get_rule

PLUGIN = next(a for a in AMENDMENTS if a.plugin)


def test_the_example_plugins_batch_adapter_equals_its_evaluate() -> None:
    with example_plugin():
        proto = parse_protocol(PLUGIN.text(), "plugin.yaml")
        scenario = parse_scenario(PLUGIN.scenario + "tg: {loq_ug_per_l: 5.0}\n", "s.yaml")  # many '<LoQ' results
        sample = simulate(600, seed=5, protocol=proto, scenario=scenario).sample
        assert sample is not None
        criterion = proto.decision.criterion("tg_doubling")
        rule = get_rule("tg_doubling_time")
        cases = _case_arrays(Judged(criteria_inputs(sample), criterion), tuple(rule.observation_kinds))
        got = rule.evaluate_cases(cases, criterion.params)  # type: ignore[attr-defined]
        assert got.shape == (600,)
        below = 0
        for i in range(600):
            case = cases.case(i, dt.date(2001, 1, 1) + dt.timedelta(days=int(sample.day0[i])), f"SIM-{i}")
            below += sum(1 for o in case.observations if o.kind == "tg" and o.below_loq)
            assert rule.outcomes[int(got[i])] == rule.evaluate(case, criterion.params).outcome, i
        assert below > 0 and set(np.unique(got).tolist()) == {0, 1, 2}  # every outcome, '<LoQ' values among them


def test_a_plugin_rule_without_a_batch_adapter_is_refused_with_what_to_add(monkeypatch: pytest.MonkeyPatch) -> None:
    with example_plugin():
        rule = get_rule("tg_doubling_time")
        monkeypatch.delattr(type(rule), "evaluate_cases")
        proto = parse_protocol(PLUGIN.text(), "plugin.yaml")
        with pytest.raises(SimulationError, match=r"criterion 'tg_doubling': rule 'tg_doubling_time' has no batch "
                                                  r"adapter.*evaluate_cases\(cases, params\)"):
            simulate(10, seed=1, protocol=proto)


def test_the_tg_slope_rules_batch_case_reader_equals_its_evaluate() -> None:
    """The built-in Tg slope rule owns its case reader in both forms: the simulator calls evaluate_cases."""
    from trialflow.protocol import load_bundled_protocol
    from trialflow.rules import tg_slope

    proto = load_bundled_protocol()
    scenario = parse_scenario(PLUGIN.scenario + "tg: {loq_ug_per_l: 3.0}\ntgab_positive_probability: 0.3\n", "s.yaml")
    sample = simulate(600, seed=8, protocol=proto, scenario=scenario).sample
    assert sample is not None
    criterion = proto.decision.criterion("tg_slope")
    cases = _case_arrays(Judged(criteria_inputs(sample), criterion), ("tg", "tgab"))
    got = tg_slope.evaluate_cases(cases, criterion.params)
    for i in range(600):
        case = cases.case(i, dt.date(2001, 1, 1) + dt.timedelta(days=int(sample.day0[i])))
        assert tg_slope.CODE_LABELS[int(got[i])] == tg_slope.RULE.evaluate(case, criterion.params).outcome, i
    assert set(np.unique(got).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("criterion_id", ["recist", "rai_uptake"])
def test_the_recist_and_rai_rules_batch_case_readers_equal_their_evaluate(criterion_id: str) -> None:
    """RECIST and RaI uptake own their case readers too (``read_series`` / ``read_scans`` choose the
    records in both forms): on simulated patients with missed and unreadable CTs, the batch outcome equals
    the one-patient ``evaluate`` of the same records."""
    from trialflow.protocol import load_bundled_protocol

    proto = load_bundled_protocol()
    scenario = parse_scenario(MISSABLE_SCENARIO.replace("0.15", "0.4") +
                              "tumour: {non_target_probability: 0.5}\n", "s.yaml")
    sample = simulate(600, seed=11, protocol=proto, scenario=scenario).sample
    assert sample is not None
    criterion = next(c for c in proto.decision.criteria if c.rule == criterion_id)
    rule = get_rule(criterion.rule)
    cases = _case_arrays(Judged(criteria_inputs(sample), criterion), tuple(rule.observation_kinds))
    got = rule.evaluate_cases(cases, criterion.params)  # type: ignore[attr-defined]
    labels = rule.case_labels  # type: ignore[attr-defined]
    for i in range(600):
        case = cases.case(i, dt.date(2001, 1, 1) + dt.timedelta(days=int(sample.day0[i])))
        assert labels[int(got[i])] == rule.evaluate(case, criterion.params).outcome, i
    assert len(set(np.unique(got).tolist())) >= 3


def _assert_each_patient_in_date_order(inputs: CriteriaInputs, criterion: Criterion) -> None:
    """Per patient, the Tg records a rule's batch reader gets are the judged ones in date order, the slots
    without one last, each value moved with its date: as a stable sort of that patient's dates alone
    (missing ones as +inf) orders them."""
    judged = Judged(inputs, criterion)
    rel = judged.study_days("tg")  # visits x patients, in visit order: nan where no judged record
    value = _kind_fields(inputs, "tg", inputs.visits_with("tg"), rel)["value"]
    got = _case_arrays(judged, ("tg", "tgab")).of_kind("tg")
    present = ~np.isnan(rel)
    for i in range(inputs.size):
        order = np.argsort(np.where(present[:, i], rel[:, i], np.inf), kind="stable")
        np.testing.assert_array_equal(got.days[i], rel[order, i])
        np.testing.assert_array_equal(got.fields["value"][i], value[order, i])


def test_a_rule_reads_each_patients_records_in_date_order_missing_ones_last() -> None:
    """What a rule's batch reader gets (``CaseArrays``): per patient its judged records in date order, the
    slots without one last, every field moved with its record's date. Two cohorts, one per way of
    ordering: patients with missed visits (gaps) and without them side by side, all in date order (the
    gaps are closed without a sort); and the same with one patient's week-4 and week-8 samples swapped
    (out of date order: sorted)."""
    proto = load_bundled_protocol()
    sample = simulate(600, seed=3, protocol=proto, scenario=parse_scenario(MISSABLE_SCENARIO, "s.yaml")).sample
    assert sample is not None
    criterion = proto.decision.criterion("tg_slope")
    inputs = criteria_inputs(sample)
    rel = Judged(inputs, criterion).study_days("tg")
    present = ~np.isnan(rel)
    gap = (present[1:] & ~present[:-1]).any(axis=0)
    assert 0 < gap.sum() < 600  # both kinds of patient
    assert isinstance(_date_order(rel), _CloseGaps)  # in date order, with gaps: the gaps closed
    _assert_each_patient_in_date_order(inputs, criterion)

    w4, w8 = (ids := [v.id for v in inputs.visits_with("tg")]).index("tg_w4"), ids.index("tg_w8")
    i = int(np.flatnonzero(present[w4] & present[w8] & gap)[0])  # a patient with a gap elsewhere too
    days = dict(inputs.visit_day)
    days["tg_w4"], days["tg_w8"] = days["tg_w4"].copy(), days["tg_w8"].copy()
    days["tg_w4"][i], days["tg_w8"][i] = inputs.visit_day["tg_w8"][i], inputs.visit_day["tg_w4"][i]
    swapped = dataclasses.replace(inputs, visit_day=days)
    rel = Judged(swapped, criterion).study_days("tg")
    assert np.count_nonzero(np.diff(rel, axis=0) < 0) == 1  # patient i's week 8 before its week 4, no other
    assert isinstance(_date_order(rel), _Sort)  # out of date order: sorted
    _assert_each_patient_in_date_order(swapped, criterion)
