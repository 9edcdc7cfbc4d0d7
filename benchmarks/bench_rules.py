"""Batch Tg slope and RECIST for 100,000 patients vs a per-patient loop, measured in the same run.

Baseline: ``scipy.stats.linregress`` once per patient (the obvious loop), timed on a subset and
extrapolated linearly to the full cohort; also the rules' own single-patient ``evaluate`` loop.

    python benchmarks/bench_rules.py [--patients 100000] [--subset 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from trialflow.rules import recist, tg_slope
from trialflow.rules.observations import Case, CtAssessment, Lesion, TgSample


def _cohort(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tg at weeks 0..28 every 4 weeks (+/- 3 days), slopes -0.05 / 0 / +0.02 per week, residual SD 0.08."""
    days = np.arange(0, 197, 28)[None, :] + rng.integers(-3, 4, size=(n, 8))
    days[:, 0] = 0
    slope = rng.choice([-0.05, 0.0, 0.02], size=(n, 1))
    tg = np.exp(np.log(rng.uniform(1, 100, (n, 1))) + slope * days / 7 + rng.normal(0, 0.08, (n, 8)))
    return days / 7.0, tg, rng.random(n) < 0.25


def _time(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--subset", type=int, default=2_000)
    args = ap.parse_args()
    n, sub = args.patients, args.subset
    rng = np.random.default_rng(2026)
    weeks, tg, tgab = _cohort(rng, n)
    tg_slope.evaluate_batch(weeks[:10], tg[:10], tgab[:10])  # warm up (imports scipy.special)

    t_batch = _time(lambda: tg_slope.evaluate_batch(weeks, tg, tgab))
    from scipy.stats import linregress

    logtg = np.log(tg)
    t_lin = _time(lambda: [linregress(weeks[i], logtg[i]) for i in range(sub)], repeat=1) * n / sub
    d0 = dt.date(2026, 1, 12)
    cases = [
        Case(
            f"P-{i:06d}",
            d0,
            tuple(
                TgSample(d0 + dt.timedelta(days=round(w * 7)), float(v))
                for w, v in zip(weeks[i], tg[i], strict=True)
            ),
        )
        for i in range(sub)
    ]
    t_single = _time(lambda: [tg_slope.RULE.evaluate(c, {}) for c in cases], repeat=1) * n / sub

    # RECIST: baseline + 4 follow-ups (weeks 8, 16, 24, 28)
    base = rng.uniform(20, 150, n)
    factors = np.cumprod(rng.choice([0.7, 0.85, 1.0, 1.1, 1.3], size=(n, 4)), axis=1)
    sums = np.round(np.column_stack([base, base[:, None] * factors]), 1)
    new = rng.random((n, 4)) < 0.03
    ntpd = rng.random((n, 4)) < 0.02
    cr = np.zeros((n, 4), dtype=bool)
    days = np.array([56, 112, 168, 196])
    params = {"version": "1.1"}
    recist.evaluate_batch(sums[:10], new[:10], ntpd[:10], cr[:10], params, days=days)
    t_recist = _time(lambda: recist.evaluate_batch(sums, new, ntpd, cr, params, days=days))
    rcases = []
    for i in range(sub):
        obs = [CtAssessment(d0 - dt.timedelta(days=5), (Lesion("T1", "lung", float(sums[i, 0])),))]
        obs += [
            CtAssessment(
                d0 + dt.timedelta(days=int(days[k])),
                (Lesion("T1", "lung", float(sums[i, k + 1])),),
                new_lesions=("L",) if new[i, k] else (),
            )
            for k in range(4)
        ]
        rcases.append(Case(f"P-{i:06d}", d0, tuple(obs)))
    t_rsingle = _time(lambda: [recist.RULE.evaluate(c, params) for c in rcases], repeat=1) * n / sub

    print(f"cohort: {n:,} patients; per-patient loops timed on {sub:,} patients and extrapolated linearly")
    print("Tg slope (8 samples per patient)")
    print(f"  batch evaluate_batch              {t_batch * 1e3:9.1f} ms  {n / t_batch:13,.0f} patients/s")
    print(
        f"  loop of scipy.stats.linregress    {t_lin * 1e3:9.1f} ms  {n / t_lin:13,.0f} patients/s"
        f"  (batch is {t_lin / t_batch:,.0f}x faster)"
    )
    print(
        f"  loop of RULE.evaluate (full rule) {t_single * 1e3:9.1f} ms  {n / t_single:13,.0f} patients/s"
        f"  (batch is {t_single / t_batch:,.0f}x faster)"
    )
    print("RECIST 1.1 (baseline + 4 follow-ups)")
    print(f"  batch evaluate_batch              {t_recist * 1e3:9.1f} ms  {n / t_recist:13,.0f} patients/s")
    print(
        f"  loop of RULE.evaluate             {t_rsingle * 1e3:9.1f} ms  {n / t_rsingle:13,.0f} patients/s"
        f"  (batch is {t_rsingle / t_recist:,.0f}x faster)"
    )


if __name__ == "__main__":
    main()
