"""trialflow's simulator vs the same pathway model written in SimPy, measured in the same run.

The SimPy model is the usual patient-pathway style: one process per patient, scalar draws from the
bundled default scenario (Python's ``random``), the bundled protocol's schedule written out by hand, and
the three criteria computed per patient in plain Python at the decision. Per patient it does what
trialflow's simulator does:

- enrolment by a Poisson process (``accrual_per_month``); the latent course, Tg slope, growth of the
  target sum, TgAb, re-induction, new-lesion time and the target lesions drawn from the scenario;
- screening: the baseline scan and CT at day 14 from enrolment with whole-day jitter (normal,
  ``jitter_sd_days``, rounded, kept in the -14/+14 window), never missed; day 0 is the later of the two
  plus ``start_delay_days``;
- withdrawal (death, toxicity stop, dropout: the first of three exponential times) counted from day 0;
- Tg at weeks 0, 4, ..., 28 (jittered in the protocol's windows, not before day 0 since the treatment
  phase starts then), the 6-month scan and CT at day 182 (-7/+14); every one of these treatment-phase
  visits is missed with ``missed_probability``, a follow-up CT is unreadable with
  ``ct_not_evaluable_probability``;
- the decision on the engine's readiness date, the day every criterion visit is done or its window has
  closed (a missed visit: the day after its window ends), plus ``decision_delay_days``. A patient whose
  withdrawal falls on or before a visit or the decision day counts as ``no_decision``;
- the criteria as the rules define them: OLS slope of ln Tg over weeks with a two-sided t-test at 0.05
  (at least 4 values, TgAb positive not evaluable, values under the LoQ at half the LoQ, all of them
  under it: stable); RECIST 1.0 on the sum of target diameters in tenths of a mm (lesions under 3 mm
  gone; PD +20 % or a new lesion, PR -30 %); re-induced uptake when the 6-month scan is done. A
  favourable response is any of the three; first matching branch wins.

Branch counts are compared with a chi-square test.

Each measurement runs in its own subprocess, so the peak RSS printed is that model's alone (``ru_maxrss``
read inside the child; "after imports" is the child's RSS before it simulates). The SimPy model stops at
the decision and keeps no workload, so it does less than trialflow's simulator (which also walks the
branches, splits doses per month and keeps the month table): the ratio is, if anything, in SimPy's favour.

    python benchmarks/bench_simulate.py [--sizes 10000 100000 1000000] [--simpy-max 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from collections.abc import Generator

import numpy as np
import simpy
from scipy.special import stdtr
from scipy.stats import chi2_contingency

from trialflow.engine.simulation import load_scenario, simulate

MONTH = 365.25 / 12
BRANCHES = ("rai_reinduced", "favourable_without_uptake", "no_response", "no_decision")
TG_VISITS = ((0, 7, 0), *((7 * w, 3, 3) for w in range(4, 29, 4)))  # (day, window before, after)


def simpy_model(n: int, seed: int) -> dict[str, int]:
    sc = load_scenario()
    rnd = random.Random(seed)
    env = simpy.Environment()
    counts = dict.fromkeys(BRANCHES, 0)
    courses = sc.courses
    cum = np.cumsum([c.probability for c in courses]).tolist()

    def visit(day: int, before: int, after: int) -> int:
        return day + max(-before, min(after, round(rnd.gauss(0, sc.jitter_sd_days))))

    def patient(env: simpy.Environment) -> Generator[simpy.events.Event, object, None]:
        u = rnd.random()
        co = courses[next(i for i, c in enumerate(cum) if u < c or i == len(cum) - 1)]
        slope = rnd.gauss(co.tg_slope_per_week, co.tg_slope_sd)
        growth = rnd.gauss(co.target_log_change_per_month, co.target_log_change_sd) / MONTH
        tgab = rnd.random() < sc.tgab_positive_probability
        reinduced = rnd.random() < sc.rai_reinduction_probability
        new_rate = co.new_lesions_per_month / MONTH
        t_new = rnd.expovariate(new_rate) if new_rate > 0 else math.inf
        rates = (sc.death_per_month, sc.toxicity_stop_per_month, sc.dropout_per_month)
        quit_at = min((rnd.expovariate(r / MONTH) if r > 0 else math.inf) for r in rates)  # days from day 0
        lo, hi = sc.target_lesions
        sizes = [
            max(10.0, round(sc.diameter_median_mm * math.exp(rnd.gauss(0, sc.diameter_log_sd)), 1))
            for _ in range(rnd.randint(lo, hi))
        ]
        baseline = max(visit(14, 14, 14), visit(14, 14, 14))
        yield env.timeout(baseline + rnd.randint(*sc.start_delay_days))
        day0 = env.now
        weeks, logs, below = [], [], []
        ready = 0  # the day every criterion visit is done or its window has closed
        tg0 = sc.tg_baseline_median * math.exp(sc.tg_baseline_log_sd * rnd.gauss(0, 1))
        for day, before, after in TG_VISITS:
            d = max(0, visit(day, before, after))  # not before day 0: the phase starts then
            if d >= quit_at:
                counts["no_decision"] += 1
                return
            if env.now < day0 + d:
                yield env.timeout(day0 + d - env.now)
            if rnd.random() < sc.missed_probability:
                ready = max(ready, day + after + 1)
                continue
            ready = max(ready, d)
            tg = round(tg0 * math.exp(slope * d / 7 + rnd.gauss(0, sc.tg_residual_sd)), 2)
            weeks.append(d / 7)
            below.append(tg < sc.tg_loq)
            logs.append(math.log(sc.tg_loq / 2 if tg < sc.tg_loq else tg))  # half the LoQ below it
        scan = visit(182, 7, 14) if rnd.random() >= sc.missed_probability else None
        ct = visit(182, 7, 14) if rnd.random() >= sc.missed_probability else None
        for done in (scan, ct):
            ready = max(ready, 182 + 14 + 1 if done is None else done)
        decision = ready + sc.decision_delay_days
        if decision >= quit_at:
            counts["no_decision"] += 1
            return
        yield env.timeout(day0 + decision - env.now)
        rai = "not_evaluable" if scan is None else ("reinduced" if reinduced else "not_reinduced")
        n_ = len(weeks)
        tg = "not_evaluable"
        if not tgab and n_ >= 4:
            mx, my = sum(weeks) / n_, sum(logs) / n_
            sxx = sum((x - mx) ** 2 for x in weeks)
            b = sum((x - mx) * (y - my) for x, y in zip(weeks, logs, strict=True)) / sxx
            sse = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(weeks, logs, strict=True))
            se = math.sqrt(sse / (n_ - 2) / sxx)
            if all(below):
                tg = "stable"  # undetectable throughout
            else:
                perfect = se <= 1e-12 * abs(b)
                sig = b != 0 if perfect else 2 * float(stdtr(n_ - 2, -abs(b / se))) < 0.05
                tg = "response" if sig and b < 0 else "progression" if sig else "stable"
        if ct is None or rnd.random() < sc.ct_not_evaluable_probability:
            recist = "NE"
        else:
            f = math.exp(growth * ct)
            base = sum(round(s * 10) for s in sizes)
            now = sum(round(s * f * 10) if s * f >= 3 else 0 for s in sizes)
            if t_new <= ct or (now > base and 100 * (now - base) >= 20 * base):
                recist = "PD"
            elif 100 * (base - now) >= 30 * base:
                recist = "PR"
            else:
                recist = "SD"
        fav = rai == "reinduced" or tg in ("response", "stable") or recist in ("CR", "PR", "SD")
        counts[
            "rai_reinduced" if rai == "reinduced" else "favourable_without_uptake" if fav else "no_response"
        ] += 1

    def accrual(env: simpy.Environment) -> Generator[simpy.events.Event, object, None]:
        for _ in range(n):
            env.process(patient(env))
            yield env.timeout(rnd.expovariate(sc.accrual_per_month / MONTH))

    env.process(accrual(env))
    env.run()
    return counts


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(model: str, n: int, seed: int, repeat: int) -> None:
    """Run one model ``repeat`` times in this process and print its best time and figures as JSON."""
    if model == "trialflow":
        simulate(1000, seed)  # warm up: imports, schema compilation
    base = _rss_mb()
    secs = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        if model == "trialflow":
            per_branch = simulate(n, seed).per_branch  # no result kept alive between repeats
            counts = [per_branch[b] for b in BRANCHES]
        else:
            sp = simpy_model(n, seed)
            counts = [sp[b] for b in BRANCHES]
        secs = min(secs, time.perf_counter() - t0)
    print(json.dumps({"seconds": secs, "rss_mb": _rss_mb(), "rss_after_imports_mb": base, "counts": counts}))


def _run(model: str, n: int, seed: int, repeat: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", model, str(n), "--seed", str(seed), "--repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--simpy-max", type=int, default=100_000, help="larger sizes are extrapolated linearly")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--repeat", type=int, default=3, help="best of this many runs per model and size (shared machines)"
    )
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.seed, args.repeat)
        return
    print(
        f"{'patients':>10} {'trialflow s':>12} {'RSS MB':>7} {'SimPy s':>10} {'RSS MB':>7} {'ratio':>7}  "
        "chi-square p (branch counts)"
    )
    last_rate = None
    rss_tf: list[tuple[int, float, float]] = []
    for n in args.sizes:
        tfr = _run("trialflow", n, args.seed, args.repeat)
        t_tf = float(tfr["seconds"])  # type: ignore[arg-type]
        tf = list(tfr["counts"])  # type: ignore[call-overload]
        rss_tf.append((n, float(tfr["rss_mb"]), float(tfr["rss_after_imports_mb"])))  # type: ignore[arg-type]
        if n <= args.simpy_max:
            spr = _run("simpy", n, args.seed, args.repeat)
            t_sp = float(spr["seconds"])  # type: ignore[arg-type]
            last_rate = t_sp / n
            sp = list(spr["counts"])  # type: ignore[call-overload]
            table = np.array([tf, sp])
            p = chi2_contingency(table[:, table.sum(axis=0) > 0])[1]
            sp_note = f"{t_sp:10.2f} {float(spr['rss_mb']):>7.0f}"  # type: ignore[arg-type]
            p_note = f"{p:.3f}  trialflow {tf} SimPy {sp}"
        else:
            assert last_rate is not None, "run a size <= --simpy-max first"
            t_sp = last_rate * n
            sp_note = f"{t_sp:9.0f}* {'':>7}"
            p_note = "(* SimPy extrapolated linearly from the largest size run)"
        print(f"{n:>10,} {t_tf:>12.2f} {rss_tf[-1][1]:>7.0f} {sp_note} {t_sp / t_tf:>6.0f}x  {p_note}")
    print(
        "trialflow peak RSS per run (MB, own subprocess; after imports in brackets): "
        + ", ".join(f"{n:,}: {peak:.0f} ({base:.0f})" for n, peak, base in rss_tf)
        + "; chunks of 16,384 patients, in 2 worker processes from 200,000 pathways."
        " Times: best of --repeat runs in one subprocess."
    )


if __name__ == "__main__":
    main()
