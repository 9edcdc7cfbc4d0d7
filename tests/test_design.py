"""Designs for the primary endpoint: Simon's two-stage and A'Hern's single-stage designs against the
published tables, exact operating characteristics against statsmodels/scipy and hand-derived sums."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from trialflow.engine.design import (
    DesignError,
    SingleStageDesign,
    TwoStageDesign,
    binomial_pmf,
    exact_characteristics,
    single_stage_design,
    two_stage_designs,
)

# Simon R. Optimal two-stage designs for phase II clinical trials. Control Clin Trials 1989;10:1-10,
# Table 1 (alpha = 0.05, beta = 0.20) and Table 2 (alpha = 0.05, beta = 0.10):
# (p0, p1, alpha, beta) -> optimal (r1, n1, r, n, E[N | p0], PET(p0)), minimax (the same)
SIMON_1989 = [
    ((0.05, 0.25, 0.05, 0.20), (0, 9, 2, 17, 12.0, 0.63), (0, 12, 2, 16, 13.8, 0.54)),
    ((0.10, 0.30, 0.05, 0.20), (1, 10, 5, 29, 15.0, 0.74), (1, 15, 5, 25, 19.5, 0.55)),
    ((0.20, 0.40, 0.05, 0.20), (3, 13, 12, 43, 20.6, 0.75), (4, 18, 10, 33, 22.3, 0.72)),
    ((0.30, 0.50, 0.05, 0.20), (5, 15, 18, 46, 23.6, 0.72), (6, 19, 16, 39, 25.7, 0.67)),
    ((0.50, 0.70, 0.05, 0.20), (8, 15, 26, 43, 23.5, 0.70), (12, 23, 23, 37, 27.7, 0.66)),
    ((0.05, 0.25, 0.05, 0.10), (0, 9, 3, 30, 16.8, 0.63), (0, 15, 3, 25, 20.4, 0.46)),
    ((0.10, 0.30, 0.05, 0.10), (2, 18, 6, 35, 22.5, 0.73), (2, 22, 6, 33, 26.2, 0.62)),
    ((0.20, 0.40, 0.05, 0.10), (4, 19, 15, 54, 30.4, 0.67), (5, 24, 13, 45, 31.2, 0.66)),
    ((0.30, 0.50, 0.05, 0.10), (8, 24, 24, 63, 34.7, 0.73), (7, 24, 21, 53, 36.6, 0.56)),
]


@pytest.mark.parametrize(("question", "optimal", "minimax"), SIMON_1989)
def test_simon_1989_tables_1_and_2(question, optimal, minimax):
    got = two_stage_designs(*question)
    for design, want in zip(got, (optimal, minimax), strict=True):
        r1, n1, r, n, en0, pet0 = want
        assert (design.r1, design.n1, design.r, design.n) == (r1, n1, r, n)
        assert round(design.expected_n0, 1) == en0
        assert round(design.pet0, 2) == pet0
        alpha, beta = question[2], question[3]
        assert design.alpha <= alpha
        assert design.power >= 1 - beta


# A'Hern RPA. Sample size tables for exact single-stage phase II designs. Stat Med 2001;20:859-866,
# Table (alpha = 0.05, beta = 0.20): (p0, p1) -> n, and r = the fewest favourable responses that declare
# success (A'Hern's r; the design's cut-off here is r - 1: success when more than r - 1 respond).
AHERN_2001 = [
    ((0.10, 0.30), 25, 6),
    ((0.20, 0.40), 35, 12),
    ((0.30, 0.50), 39, 17),
]


@pytest.mark.parametrize(("rates", "n", "r"), AHERN_2001)
def test_ahern_2001_single_stage_table(rates, n, r):
    d = single_stage_design(*rates, 0.05, 0.20)
    assert (d.n, d.r + 1) == (n, r)
    assert d.alpha == pytest.approx(binom.sf(r - 1, n, rates[0]), abs=1e-12)
    assert d.power == pytest.approx(binom.sf(r - 1, n, rates[1]), abs=1e-12)
    # the smallest such n: one patient fewer admits no cut-off
    for cut in range(n):
        assert binom.sf(cut, n - 1, rates[0]) > 0.05 or binom.sf(cut, n - 1, rates[1]) < 0.80


@given(st.integers(0, 60), st.floats(0.0, 1.0, allow_subnormal=False))
@settings(max_examples=60, deadline=None)
def test_binomial_pmf_against_the_formula(n, p):
    """C(n, k) p^k (1 - p)^(n - k), in Python's exact integers and floats."""
    want = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    assert binomial_pmf(n, p) == pytest.approx(want, rel=1e-9, abs=1e-300)


def test_two_stage_characteristics_by_hand():
    """Simon's optimal 1/10, 5/29: P(success | p) = sum over x1 > 1 of b(x1; 10, p) P(X2 > 5 - x1; 19, p)."""
    d = TwoStageDesign("optimal", 1, 10, 5, 29, 0.1, 0.3, 0, 0, 0, 0)
    for p in (0.05, 0.1, 0.2, 0.3, 0.5):
        want = sum(binom.pmf(x1, 10, p) * binom.sf(5 - x1, 19, p) for x1 in range(2, 11))
        pet = binom.cdf(1, 10, p)
        (oc,) = exact_characteristics(d, [p])
        assert oc.p_success == pytest.approx(want, abs=1e-12)
        assert oc.p_early_stop == pytest.approx(pet, abs=1e-12)
        assert oc.expected_n == pytest.approx(10 + (1 - pet) * 19, abs=1e-10)


def test_single_stage_characteristics_are_the_binomial_tail():
    d = SingleStageDesign(25, 5, 0.1, 0.3, 0, 0)
    (oc,) = exact_characteristics(d, [0.3])
    assert oc.p_success == pytest.approx(binom.sf(5, 25, 0.3), abs=1e-12)
    assert (oc.p_early_stop, oc.expected_n) == (0.0, 25.0)


@given(st.floats(0.02, 0.5), st.floats(0.2, 0.35))
@settings(max_examples=5, deadline=None)
def test_the_designs_found_meet_their_error_rates(p0, gap):
    p1 = min(p0 + gap, 0.95)
    optimal, minimax = two_stage_designs(p0, p1, 0.05, 0.2)
    single = single_stage_design(p0, p1, 0.05, 0.2)
    for d in (optimal, minimax, single):
        at0, at1 = exact_characteristics(d, [p0, p1])
        assert at0.p_success <= 0.05 + 1e-12
        assert at1.p_success >= 0.8 - 1e-12
    assert minimax.n <= optimal.n
    assert optimal.expected_n0 <= minimax.expected_n0 + 1e-9
    assert math.isfinite(optimal.expected_n0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.3, 0.1, 0.05, 0.2), "p0 < p1"),
        ((0.1, 0.3, 0.0, 0.2), "alpha"),
        ((0.1, 0.3, 0.05, 0.7), "beta"),
    ],
)
def test_impossible_questions_say_what_to_change(args, message):
    with pytest.raises(DesignError, match=message):
        two_stage_designs(*args)


def test_a_search_too_large_is_refused_with_what_to_change():
    with pytest.raises(DesignError, match="n_max"):
        two_stage_designs(0.01, 0.02, 0.05, 0.2)
