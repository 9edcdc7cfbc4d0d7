"""The benchmark's full SimPy model (benchmarks/bench_simulate.py ``simpy_full_model``) is a comparator only
if it simulates what ``trialflow simulate`` simulates: its schedule is the bundled protocol's, and its
figures agree with trialflow's within sampling error (and the agreement check rejects figures that do not).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from trialflow.engine.simulation import simulate
from trialflow.engine.simulation._pathways import pathway_of
from trialflow.protocol import load_bundled_protocol

pytest.importorskip("simpy")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_simulate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_simulate", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_simulate"] = mod
    spec.loader.exec_module(mod)
    return mod


def _visits(phase, columns):
    return tuple(
        (v.id, v.day, v.before, v.after, columns[v.assessments[0] if v.assessments else f"{v.treatment}_doses"])
        for v in phase.visits
    )


def test_the_full_model_books_the_protocols_schedule(bench):
    pw = pathway_of(load_bundled_protocol())
    columns = {k: i for i, k in enumerate(bench.WORKLOAD_COLUMNS)}
    screening, six_months = pw.before_decision
    assert _visits(screening, columns) == bench.SCREENING
    assert (six_months.length_days, _visits(six_months, columns)) == bench.SORAFENIB_6M
    branches = {b.id: b for b in pw.branches}
    assert set(branches) == {*bench.BRANCH_PHASES, "no_response"}
    assert branches["no_response"].phases == () and branches["no_response"].end_state == "off_study"
    for bid, (length, visits) in bench.BRANCH_PHASES.items():
        (phase,) = branches[bid].phases
        assert (phase.length_days, _visits(phase, columns), branches[bid].end_state) == (
            length,
            visits,
            "end_of_study",
        )
        assert (phase.treatment, phase.dose_mg_per_day) == ("sorafenib", bench.DOSE_LEVELS_MG[0])
    assert pw.dose_levels["sorafenib"] == bench.DOSE_LEVELS_MG
    decision = pw.protocol.decision
    evidence = {c.rule: (c.evidence.from_day, c.evidence.to_day) for c in decision.criteria}
    assert evidence == {"rai_uptake": bench.RAI_DAYS, "tg_slope": bench.TG_DAYS, "recist": bench.CT_DAYS}
    params = {c.rule: c.params for c in decision.criteria}
    assert (params["tg_slope"]["alpha"], params["tg_slope"]["min_values"]) == (bench.ALPHA, bench.MIN_TG_VALUES)
    assert (params["recist"]["pr_threshold_pct"], params["recist"]["pd_threshold_pct"]) == (
        bench.PR_PCT,
        bench.PD_PCT,
    )
    assert params["recist"]["version"] == "1.0"  # no absolute PD increase, CR when every target is gone


@pytest.fixture(scope="module")
def both(bench):
    runs = 1000  # 30,000 pathways: a few seconds of SimPy
    tf = simulate(bench.PER_RUN, 2026, runs=runs).to_dict()
    full = bench.simpy_full_model(runs * bench.PER_RUN, 2026)
    return tf, full


def test_the_full_model_agrees_with_trialflow(bench, both):
    tf, full = both
    assert full["pathways"] == tf["pathways"] == 30000
    assert full["primary_endpoint"]["started"] == tf["primary_endpoint"]["started"] == 30000
    got = bench.agreement(tf, full)
    assert set(got["p"]) == {"branches", "end states", "withdrawals", "rai_uptake", "tg_slope", "recist"}
    for what, p in got["p"].items():
        assert p > 0.001, (what, p, got)
    assert abs(got["endpoint"][2]) < 3, got
    for column, (a, b, z) in got["per_pathway"].items():
        assert abs(z) < 3, (column, a, b, z)
    assert got["per_pathway"]["visits"][1] > 12  # the screening, six-month and branch visits of a pathway
    months_tf, months_full = got["months"]
    assert abs(months_tf - months_full) <= 6


def test_the_agreement_check_rejects_a_different_model(bench, both):
    tf, full = both
    wrong = {**full, "per_branch": dict(full["per_branch"])}
    moved = wrong["per_branch"]["favourable_without_uptake"] // 10  # a tenth of the favourable sent off study
    wrong["per_branch"]["favourable_without_uptake"] -= moved
    wrong["per_branch"]["no_response"] += moved
    assert bench.agreement(tf, wrong)["p"]["branches"] < 1e-6
    fewer = {
        **full,
        "per_run_total": {
            **full["per_run_total"],
            "tg": [full["per_run_total"]["tg"][0] * 0.97, full["per_run_total"]["tg"][1]],
        },
    }
    assert bench.agreement(tf, fewer)["per_pathway"]["tg"][2] > 4
