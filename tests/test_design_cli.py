"""``trialflow design`` and designs inside the simulator: futility stops in the pathways, simulated
operating characteristics beside the exact binomial answer."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from trialflow.cli._app import app
from trialflow.engine.design import exact_characteristics, two_stage_designs
from trialflow.engine.simulation import SimulationError, load_scenario, simulate
from trialflow.engine.simulation._operating import course_rates, operating_point, tilted
from trialflow.protocol import load_bundled_protocol

runner = CliRunner()


def test_design_prints_simon_and_ahern_designs_with_exact_characteristics():
    r = runner.invoke(app, ["design", "--p0", "0.1", "--p1", "0.3", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    kinds = {d["kind"]: d for d in data["designs"]}
    assert (kinds["simon_optimal"]["r1"], kinds["simon_optimal"]["n1"]) == (1, 10)
    assert (kinds["simon_optimal"]["r"], kinds["simon_optimal"]["n"]) == (5, 29)
    assert (kinds["simon_minimax"]["n1"], kinds["simon_minimax"]["n"]) == (15, 25)
    assert (kinds["single_stage"]["n"], kinds["single_stage"]["r"]) == (25, 5)
    at = {oc["rate"]: oc for oc in data["exact"]["simon_optimal"]}
    assert at[0.1]["p_success"] <= 0.05 and at[0.3]["p_success"] >= 0.8
    assert at[0.1]["expected_n"] == pytest.approx(15.01, abs=0.01)
    text = runner.invoke(app, ["design", "--p0", "0.1", "--p1", "0.3", "--rates", "0.2"])
    assert text.exit_code == 0
    assert "Simon optimal" in text.output and "stop <=1/10" in text.output and "0.2" in text.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--p0", "0.3", "--p1", "0.1"], "must exceed --p0"),
        (["--p0", "0.1", "--p1", "0.3", "--rates", "0.2,x"], "expected rates"),
        (["--p0", "0.1", "--p1", "0.3", "--alpha", "0.7"], "alpha"),
    ],
)
def test_design_refuses_bad_questions_as_usage_errors(args, says):
    r = runner.invoke(app, ["design", *args])
    assert r.exit_code == 2
    assert says in r.output


def test_futility_stop_leaves_later_patients_unenrolled_in_the_pathways():
    optimal, _ = two_stage_designs(0.6, 0.8, 0.05, 0.2)
    r = simulate(optimal.n, seed=5, runs=600, design=optimal)
    d = r.design
    assert d is not None and 0 < d.p_early_stop < 1
    # every stopped run enrolled n1 patients, every other n: the enrolled patients are exactly those
    enrolled = sum(r.per_end_state.values())
    stopped = round(d.p_early_stop * d.runs)
    assert enrolled == stopped * optimal.n1 + (d.runs - stopped) * optimal.n
    assert d.expected_n == pytest.approx(enrolled / d.runs)
    with pytest.raises(SimulationError, match="43 patients"):
        simulate(30, seed=5, design=optimal)


def test_simulated_operating_characteristics_match_the_exact_binomial_answer():
    """Patients are independent, so a design's simulated P(success), P(stop) and E[N] are binomial
    sums at the favourable rate the simulation reached: they must agree within Monte-Carlo error."""
    sc = load_scenario()
    cr = course_rates(sc, load_bundled_protocol(), seed=3)
    optimal, minimax = two_stage_designs(0.5, 0.7, 0.05, 0.2)
    for design, rate in ((optimal, 0.5), (minimax, 0.7)):
        op = operating_point(design, rate, sc, cr, runs=1500, seed=11)
        s, e = op.simulated, op.exact
        assert abs(s.rate - rate) < 0.03  # the tilted courses reach the rate asked
        for sim, ex in ((s.p_success, e.p_success), (s.p_early_stop, e.p_early_stop)):
            assert abs(sim - ex) <= 4 * math.sqrt(ex * (1 - ex) / s.runs) + 1e-9
        assert abs(s.expected_n - e.expected_n) <= 4 * (design.n - design.n1) * 0.5 / math.sqrt(s.runs)
        (again,) = exact_characteristics(design, [s.rate])
        assert again == e


def test_a_rate_the_courses_cannot_reach_is_refused():
    sc = load_scenario()
    cr = course_rates(sc, load_bundled_protocol(), seed=3)
    lo, _ = cr.reachable
    with pytest.raises(SimulationError, match="outside what this scenario"):
        tilted(sc, cr, lo / 2)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--protocol", "nope.yaml"], "'--protocol'"),
        (["--scenario", "leiden-2012"], "'--scenario'"),
        (["--cluster", "local:2"], "'--cluster'"),
        (["--seed", "1989"], "'--seed'"),  # given, even at its default
        (["--protocol", "nope.yaml", "--cluster", "foo"], "'--cluster'"),  # a bad cluster is a bad cluster
    ],
)
def test_options_of_the_simulation_alone_are_refused_without_simulate(args, named):
    """They were silently ignored (a protocol file that does not exist, exit 0)."""
    r = runner.invoke(app, ["design", "--p0", "0.2", "--p1", "0.4", *args])
    assert r.exit_code == 2, r.output
    said = " ".join(r.stderr.replace("│", " ").split())
    assert named in said and ("--simulate RUNS" in said or "expected local:N" in said)
    assert "Traceback" not in r.output and r.stdout == ""


def test_simulate_checks_the_cluster_protocol_and_scenario_before_any_work(tmp_path):
    """A bad --cluster was refused only once the simulation had started; simulate refuses it up front, exit 2."""
    base = ["design", "--p0", "0.2", "--p1", "0.4", "--simulate", "100"]
    r = runner.invoke(app, [*base, "--cluster", "foo"])
    assert r.exit_code == 2 and "expected local:N" in r.stderr
    assert "estimating" not in r.stderr and "simulating" not in r.stderr
    r = runner.invoke(app, [*base, "--protocol", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 1 and "nope.yaml:1:1: $: no such file" in r.stderr  # as simulate says it
    assert "estimating" not in r.stderr and r.stdout == ""
    bad = tmp_path / "s.yaml"
    bad.write_text("tgab_positive_probability: 1.5\n")
    r = runner.invoke(app, [*base, "--scenario", str(bad)])
    assert r.exit_code == 1 and "s.yaml:1:28: $.tgab_positive_probability" in r.stderr
    assert "estimating" not in r.stderr and "Traceback" not in r.output
