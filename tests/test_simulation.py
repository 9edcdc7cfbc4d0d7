"""The simulator against closed-form expectations, its determinism, scenario errors, amended protocols."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from trialflow.cli._app import app
from trialflow.engine.simulation import ScenarioError, SimulationError, load_scenario, parse_scenario, simulate
from trialflow.protocol import bundled_protocol_path

runner = CliRunner()

# No withdrawals, no missed visits, no unreadable CTs, no TgAb: every patient reaches the decision.
CLEAN = """
dropout_per_month: 0
death_per_month: 0
toxicity: {stop_per_month: 0, dose_reduction_per_month: 0}
visits: {missed_probability: 0, ct_not_evaluable_probability: 0, jitter_sd_days: 0}
tgab_positive_probability: 0
"""


def _within_binomial(k: int, n: int, p: float, z: float = 4.0) -> bool:
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def test_no_reinduction_means_nobody_in_the_rai_arm():
    r = simulate(20_000, seed=1, scenario=parse_scenario("rai_reinduction_probability: 0\n"))
    assert r.per_branch["rai_reinduced"] == 0
    assert r.per_arm["rai_plus_sorafenib"] == 0
    assert "reinduced" not in r.criteria["rai_uptake"]
    assert all(m.mean["rai_6000_doses"] == 0 for m in r.workload)


def test_reinduction_branch_frequency_matches_the_configured_probability():
    """Without dropout every patient is decided; re-induced = Bernoulli(p) (first branch wins)."""
    p, n = 0.3, 20_000
    r = simulate(n, seed=2, scenario=parse_scenario(CLEAN + f"rai_reinduction_probability: {p}\n"))
    assert r.per_branch["no_decision"] == 0
    assert _within_binomial(r.per_branch["rai_reinduced"], n, p)


def test_tgab_positive_frequency_gives_not_evaluable_tg():
    p, n = 0.25, 20_000
    r = simulate(
        n,
        seed=3,
        scenario=parse_scenario(
            CLEAN.replace("tgab_positive_probability: 0", f"tgab_positive_probability: {p}")
        ),
    )
    assert _within_binomial(r.criteria["tg_slope"]["not_evaluable"], n, p)


def test_no_noise_and_fixed_slopes_give_exact_tg_outcomes():
    """Residual SD 0 and slope SD 0: responders' slope -0.05 is a perfect fit (p = 0): response, etc."""
    courses = """
tg: {residual_sd: 0, baseline_log_sd: 0}
courses:
  responder: {probability: 0.3, tg_slope_sd: 0}
  stable: {probability: 0.5, tg_slope_sd: 0}
  progressor: {probability: 0.2, tg_slope_sd: 0}
"""
    r = simulate(5_000, seed=4, scenario=parse_scenario(CLEAN + courses))
    sample = r.sample
    assert sample is not None
    expected = np.array(["response", "stable", "progression"])[sample.course]
    assert (sample.outcomes["tg_slope"] == expected).all()
    counts = r.criteria["tg_slope"]
    assert counts["response"] + counts["stable"] + counts["progression"] == 5_000
    assert _within_binomial(counts["response"], 5_000, 0.3)


def test_death_hazard_alone_matches_the_exponential_survival_to_the_decision():
    """Death at 0.05/month, nothing else: P(alive at decision) = exp(-0.05 * months to decision)."""
    r = simulate(
        20_000, seed=5, scenario=parse_scenario(CLEAN.replace("death_per_month: 0", "death_per_month: 0.05"))
    )
    s = r.sample
    assert s is not None
    months = float(np.mean(s.decision_day[s.decided] - s.day0[s.decided])) / (365.25 / 12)
    assert _within_binomial(20_000 - r.per_branch["no_decision"], 20_000, math.exp(-0.05 * months), z=5)


def test_same_seed_same_json_and_another_seed_differs():
    a = runner.invoke(app, ["simulate", "--patients", "30", "--runs", "50", "--seed", "9", "--json"])
    b = runner.invoke(app, ["simulate", "--patients", "30", "--runs", "50", "--seed", "9", "--json"])
    c = runner.invoke(app, ["simulate", "--patients", "30", "--runs", "50", "--seed", "10", "--json"])
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout
    data = json.loads(a.stdout)
    assert data["pathways"] == 1500 and sum(data["per_end_state"].values()) == 1500


def test_power_against_a_null_rate_uses_the_exact_lower_bound():
    from trialflow.engine import clopper_pearson

    r = simulate(30, seed=11, runs=300, null_rate=0.3)
    counts = r.replicates.favourable_counts
    assert sum(counts.values()) == 300
    assert r.replicates.power is not None and 0.0 <= r.replicates.power <= 1.0
    lo, _ = clopper_pearson(18, 24)
    assert lo > 0.5  # sanity of the comparison the power counts


def test_scenario_errors_are_located(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("accrual_per_mont: 2\ncourses:\n  responder: {probability: 0.9}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    assert (
        f"{f}:1:1: $.accrual_per_mont: unknown key 'accrual_per_mont'; did you mean 'accrual_per_month'?"
        in str(err.value)
    )
    f.write_text("courses:\n  responder: {probability: 0.9}\n", encoding="utf-8")
    with pytest.raises(
        ScenarioError, match=r"bad.yaml:2:3: \$.courses: the course probabilities sum to 1.65"
    ):
        load_scenario(f)


def test_cli_bad_input_is_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("tgab_positive_probability: 1.5\n", encoding="utf-8")
    r = runner.invoke(app, ["simulate", "--patients", "10", "--seed", "1", "--scenario", str(bad)])
    assert r.exit_code == 1 and re.search(
        r"s.yaml:1:28: \$.tgab_positive_probability: expected a value <= 1", r.output
    )
    r = runner.invoke(app, ["simulate", "--patients", "-3", "--seed", "1"])
    assert r.exit_code == 2
    r = runner.invoke(
        app, ["simulate", "--patients", "5", "--seed", "1", "--scenario", str(tmp_path / "none.yaml")]
    )
    assert r.exit_code == 1 and "no such file" in r.output
    assert "Traceback" not in r.output


def test_an_amended_protocol_is_simulated_as_it_stands(tmp_path):
    """RECIST 1.1, and 131I only for re-induced patients without RECIST PD: the branches follow the YAML."""
    text = bundled_protocol_path().read_text(encoding="utf-8")
    text = text.replace('params: {version: "1.0"', 'params: {version: "1.1"')
    old = "when: {criterion: rai_uptake, in: [reinduced]}"
    assert old in text
    text = text.replace(
        old, "when: {all: [{criterion: rai_uptake, in: [reinduced]}, {criterion: recist, in: [CR, PR, SD]}]}"
    )
    f = tmp_path / "amended.yaml"
    f.write_text(text, encoding="utf-8")
    scenario = parse_scenario("rai_reinduction_probability: 0.5\n")
    r = simulate(5_000, seed=12, protocol=f, scenario=scenario)
    s = r.sample
    assert s is not None
    rai = s.branch == 0
    assert rai.any()
    assert (s.outcomes["rai_uptake"][rai] == "reinduced").all()
    assert not np.isin(s.outcomes["recist"][rai], ["PD", "NE"]).any()
    pd_reinduced = (s.outcomes["rai_uptake"] == "reinduced") & (s.outcomes["recist"] == "PD")
    assert pd_reinduced.any() and not (s.branch[pd_reinduced] == 0).any()
    bundled = simulate(5_000, seed=12, scenario=scenario)
    assert r.per_branch["rai_reinduced"] < bundled.per_branch["rai_reinduced"]


def test_chunk_size_and_threads_do_not_change_results():
    """Random streams belong to fixed blocks of patients, and chunks are folded in order."""
    from trialflow.engine.simulation._simulate import BLOCK

    n = 2 * BLOCK + 1234  # a partial last block
    a = simulate(n, seed=21, chunk=BLOCK, threads=1).to_dict()
    b = simulate(n, seed=21, chunk=2 * BLOCK, threads=2).to_dict()
    c = simulate(n, seed=21, chunk=4 * BLOCK, threads=2).to_dict()
    assert a == b == c
    d = simulate(40, seed=21, runs=1500, chunk=BLOCK, threads=2).to_dict()
    e = simulate(40, seed=21, runs=1500, chunk=3 * BLOCK, threads=1).to_dict()
    assert d == e


@pytest.mark.parametrize("kept_over", [0, 1, 3])  # words drawn before: an odd count keeps a half over
@pytest.mark.parametrize("size", [0, 1, 2, 7, 1 << 14, (1 << 14) + 1])
def test_the_32_bit_words_are_numpys_own_draws_and_leave_the_stream_where_numpy_does(kept_over, size):
    """The visits' jitter words come from the raw 64-bit outputs: they must be, word for word, numpy's
    ``integers(0, 2**32, dtype=np.uint32)``, and every later draw the same (half-outputs kept over too)."""
    from trialflow.engine.simulation._generate import Streams

    for seed in range(5):
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        for g in (ours, numpys):
            g.integers(0, 1 << 32, kept_over, dtype=np.uint32)
            g.integers(1, 4, 7)  # a bounded draw of small integers (32-bit words, rejection sampled)
        got = Streams([ours], [size]).bits32(size)
        want = numpys.integers(0, 1 << 32, size, dtype=np.uint32)
        assert got.dtype == np.uint32 and np.array_equal(got, want)
        after = [g.integers(0, 1 << 32, 3, dtype=np.uint32) for g in (ours, numpys)]
        assert np.array_equal(*after) and ours.random() == numpys.random()


def _jitter_pmf(sd: float, before: int, after: int) -> dict[int, float]:
    """P(offset = k) of a visit jittered by round(sd · Z) days and kept in its window [-before, +after]."""
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    return {k: (1.0 if k == after else phi((k + 0.5) / sd)) - (0.0 if k == -before else phi((k - 0.5) / sd))
            for k in range(-before, after + 1)}


def test_withdrawals_before_the_decision_match_the_hand_derived_expectation_of_the_default_scenario():
    """Hand-derived from the bundled protocol and default scenario (written out here, not read through the
    engine): withdrawal is one exponential time T at death + toxicity stop + dropout = 0.035/month; a
    treatment visit at its jittered day d is done with probability 0.96 if T > d; the decision is ready R
    days after day 0, R the latest of the 6-month phase's visits (its day if done, the day after its window
    closes if missed), and taken 7 days later. So P(withdrawn before it) = Σ_r P(R = r) (1 - exp(-λ (r + 7))),
    with P(R ≤ r) = Π_visits (0.96 P(d ≤ r) + 0.04 [window end + 1 ≤ r]): 0.208421. (Checked on 3 December
    2026 against an equal-scope SimPy model as well: both agree with it, benchmarks/bench_simulate.py.)"""
    lam, p_miss, delay = 0.035 / (365.25 / 12), 0.04, 7
    # sorafenib_6m (protocol/sorafenib_dtc.yaml): Tg weeks 0-28, the 6-month scan and CT, as (day, -, +)
    visits = [(0, 7, 0), *((7 * w, 3, 3) for w in range(4, 25, 4)), (182, 7, 14), (182, 7, 14), (196, 3, 3)]
    pmfs = [(day, after, _jitter_pmf(2.0, before, after)) for day, before, after in visits]

    def ready_by(r: int) -> float:
        return math.prod((1 - p_miss) * sum(p for k, p in pmf.items() if max(day + k, 0) <= r)
                         + p_miss * (day + after + 1 <= r) for day, after, pmf in pmfs)

    cdf = [ready_by(r) for r in range(260)]
    expected = sum((cdf[r] - (cdf[r - 1] if r else 0.0)) * (1 - math.exp(-lam * (r + delay))) for r in range(260))
    assert expected == pytest.approx(0.208421, abs=5e-7)
    r = simulate(100_000, seed=2026)
    withdrawn = sum(r.withdrawn_before_decision.values())
    assert withdrawn == r.per_branch["no_decision"]  # (the default scenario has no screen failures)
    assert _within_binomial(withdrawn, 100_000, expected, z=4)


def test_a_withdrawal_reason_the_protocol_lacks_is_located_in_the_scenario(tmp_path):
    """It was the one scenario error without FILE:LINE:COL ("cannot simulate: the scenario withdraws ...")."""
    bad = tmp_path / "s.yaml"
    bad.write_text("dropout_per_month: 0.1\ndropout_reason: bored\n", encoding="utf-8")
    says = (f"{bad}:2:17: $.dropout_reason: the scenario withdraws patients for 'bored', which is not an "
            "early-termination reason of the protocol (consent, toxicity, death, lost_to_follow_up, progression, "
            "investigator)")
    for extra in ([], ["--grid", "dropout_per_month=0.1,0.2"]):
        r = runner.invoke(app, ["simulate", "--patients", "5", "--seed", "1", "--scenario", str(bad), *extra])
        assert r.exit_code == 1, r.output
        assert r.stderr.strip() == says, extra
    r = runner.invoke(app, ["design", "--p0", "0.2", "--p1", "0.4", "--simulate", "100", "--scenario", str(bad)])
    assert r.exit_code == 1 and r.stderr.strip() == says  # before any simulation starts ("estimating ...")
    with pytest.raises(SimulationError, match="'bored'"):  # (still a SimulationError to the library's callers)
        simulate(5, seed=1, scenario=bad)
    # a reason the default scenario gives: located in the default scenario
    text = bundled_protocol_path().read_text(encoding="utf-8")
    consent = "    - {id: consent, description: Consent withdrawn}\n"
    assert consent in text
    proto = tmp_path / "no-consent.yaml"
    proto.write_text(text.replace(consent, ""), encoding="utf-8")
    r = runner.invoke(app, ["simulate", "--patients", "5", "--seed", "1", "--protocol", str(proto)])
    assert r.exit_code == 1 and re.fullmatch(
        r".*default_scenario\.yaml:\d+:\d+: \$\.dropout_reason: the scenario withdraws patients for 'consent'.*\n",
        r.stderr,
    ), r.stderr
    assert "Traceback" not in r.output


def test_nobody_evaluable_is_said_with_power_zero_in_text_and_json(tmp_path):
    """The endpoint and P(CI lower bound > p0) lines were silently missing when no one reached the decision:
    0 evaluable, no proportion, and P = 0 (a trial of no evaluable patient never succeeds), as --json says."""
    dead = tmp_path / "dead.yaml"
    dead.write_text("death_per_month: 50\n", encoding="utf-8")
    args = ["simulate", "--patients", "5", "--seed", "1", "--runs", "2", "--scenario", str(dead), "--null-rate", "0.3"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Primary endpoint: 0 evaluable (none of the 10 started reached the decision): no proportion" in r.stdout
    said = "Across 2 trials of 5: 0 evaluable in every trial, no proportion; P(CI lower bound > 0.3) = 0.000"
    assert said in r.stdout
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    ep, rep = data["primary_endpoint"], data["replicates"]
    assert (ep["evaluable"], ep["started"], ep["proportion"], ep["ci95"]) == (0, 10, None, None)
    assert (rep["evaluable_mean"], rep["proportion_mean"], rep["proportion_quantiles"]) == (0, None, {})
    assert rep["probability_ci_lower_bound_exceeds_null"] == 0.0


@pytest.mark.parametrize("patients", [1, 2])
def test_the_spread_of_trials_is_of_proportions_trials_gave(patients):
    """A trial of 1 patient gives 0 or 1: "95 % of trials in 0.050-1.000" was an interpolated percentile."""
    args = ["simulate", "--patients", str(patients), "--seed", "3", "--runs", "3", "--null-rate", "0.3"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    spread = re.search(r"95 % of trials in (\S+)-(\S+);", r.stdout)
    assert spread is not None, r.stdout
    possible = {0.0, 0.5, 1.0} if patients == 2 else {0.0, 1.0}
    assert {float(spread[1]), float(spread[2])} <= possible
    q = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["replicates"]["proportion_quantiles"]
    assert {q[k] for k in ("p2.5", "p25", "p75", "p97.5")} <= possible
    assert (q["p2.5"], q["p97.5"]) == (float(spread[1]), float(spread[2]))
    assert q["p2.5"] <= q["p25"] <= q["p50"] <= q["p75"] <= q["p97.5"]
