"""Simulator benchmark: trialflow vs plain SimPy models of the same pathways, as whole processes.

Every figure is the median of ``--repeat`` runs (``--big-repeat`` above 10^6 pathways), measured in the
same run as its baseline:

- **whole process** (what a statistician waits for): ``trialflow simulate --patients 30 --runs R --seed S
  --json`` as its own process, interpreter start, imports, simulation and the JSON printed (read by this
  script); wall-clock seconds and CPU seconds (user + system, from ``wait4``); the SimPy model likewise
  as its own process (``python bench_simulate.py --child simpy N``, ``--child simpy-full N``);
- **in process**: the same call timed inside one warm process (imports done, one small run first);
- **baseline**: ``python -c "import numpy, scipy.special, typer"``, the least any numpy CLI pays;
- **peak RSS** of the whole ``trialflow simulate`` process (``wait4``'s ``ru_maxrss``).

On a machine other jobs load, wall-clock seconds stretch with the load; CPU seconds much less, so the
table gives both, with the ratios of each, and the load average before and after. trialflow's modules
are compiled to bytecode first (as pip does when it installs them): with ``PYTHONDONTWRITEBYTECODE``
set, every process would otherwise compile them from source, which an installed trialflow never does.
One unmeasured ``trialflow simulate`` runs first, as a user's first one after installing: it validates
the bundled protocol and scenario and remembers the passes (``documents/_trusted.py``), as every later
process then finds them.

Two SimPy models, written for this benchmark, each run as its own process (``--child simpy N``,
``--child simpy-full N``):

- ``simpy_model`` walks the pathway to the decision with the default scenario's figures: baseline visits,
  start delay, the Tg visits with their windows and missed visits, the 6-month scan and CT, withdrawal by
  death, toxicity or dropout before the decision, and the decision on the day the engine's readiness rule
  gives; the criteria as the rules define them (OLS slope of ln Tg with a two-sided t-test at 0.05, at
  least 4 values, TgAb positive not evaluable, values under the LoQ at half the LoQ; RECIST 1.0 on the
  target sum in tenths of a mm; re-induced uptake). It stops at the decision and keeps no workload, so it
  does less than trialflow (branches after the decision, doses split per month, the month table), and
  simulates all its patients as one long trial.
- ``simpy_full_model`` simulates what ``trialflow simulate`` simulates, for equal work: replicate trials
  of 30 patients (a SimPy environment each), Poisson accrual from the study start, every visit of every
  phase (screening, the 6-month phase, the branch's phase after the decision) booked in its window and
  missed as the scenario says, the latent course (Tg trajectory with its noise, lesion growth and new
  lesions, RaI re-induction, TgAb), withdrawal by cause in every phase, the decision's three criteria read
  as the rules read them (with the protocol's evidence ranges and final visits), the branch and its phase,
  dose reductions 800 -> 600 -> 400 -> 200 mg, and the month table of assessments, 131I doses and
  tablets (mean and busiest trial per month); it answers trialflow's ``--json`` figures. Its agreement
  with trialflow's --json (every count table by chi-square, the endpoint and each workload column's total
  per trial by z) is printed under the table.

Branch counts of each model are compared with trialflow's by a chi-square test. Sizes above
``--simpy-max`` (``--simpy-full-max`` for the full model) are extrapolated from the largest one run (its
start-up plus its per-pathway time), marked ``*``.

    python benchmarks/bench_simulate.py [--sizes 10000 100000 1000000 10000000] [--repeat 3]
        [--big-repeat 1] [--simpy-max 100000] [--simpy-full-max 100000] [--extra ARG ...]

``--extra`` passes more options to ``trialflow simulate`` (e.g. ``--extra=--cluster --extra=local:2``).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

PER_RUN = 30  # patients per simulated trial, as the protocol plans
MONTH = 365.25 / 12
BRANCHES = ("rai_reinduced", "favourable_without_uptake", "no_response", "no_decision")
TG_VISITS = ((0, 7, 0), *((7 * w, 3, 3) for w in range(4, 29, 4)))  # (day, window before, after)


def simpy_model(n: int, seed: int) -> dict[str, int]:
    import numpy as np
    import simpy
    from scipy.special import stdtr

    from trialflow.engine.simulation import load_scenario

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
        counts["rai_reinduced" if rai == "reinduced" else "favourable_without_uptake" if fav else "no_response"] += 1

    def accrual(env: simpy.Environment) -> Generator[simpy.events.Event, object, None]:
        for _ in range(n):
            env.process(patient(env))
            yield env.timeout(rnd.expovariate(sc.accrual_per_month / MONTH))

    env.process(accrual(env))
    env.run()
    return counts


# The protocol's schedule (protocol/sorafenib_dtc.yaml) as the full model books it: each phase's length in
# days (the engine's length_days) and its visits (id, target day from the phase's anchor, window before,
# window after, workload column); screening never misses a visit, the treatment phases do (a visit with an
# assessment), and a treatment without an assessment (the 131I dose) is never missed.
# tests/test_bench_simulate.py holds these tables to the bundled protocol.
TG, SCAN, CT, DOSE, TABLETS = range(5)  # workload columns, in trialflow's order
WORKLOAD_COLUMNS = ("tg", "rai_scan", "ct", "rai_6000_doses", "sorafenib_tablets")
SCREENING = (("baseline_rai_scan", 14, 14, 14, SCAN), ("baseline_ct", 14, 14, 14, CT))
SORAFENIB_6M = (
    196,
    (
        ("tg_w0", 0, 7, 0, TG),
        *((f"tg_w{w}", 7 * w, 3, 3, TG) for w in range(4, 25, 4)),
        ("month6_rai_scan", 182, 7, 14, SCAN),
        ("month6_ct", 182, 7, 14, CT),
        ("tg_w28", 196, 3, 3, TG),
    ),
)
BRANCH_PHASES = {  # the phase each branch enters (its route then ends in end_of_study); no_response: off_study
    "rai_reinduced": (
        182,
        (
            ("rai_therapy", 14, 7, 14, DOSE),
            ("post_therapy_scan", 21, 2, 5, SCAN),
            ("rai_tg_m3", 91, 7, 7, TG),
            ("rai_ct_m6", 182, 7, 14, CT),
            ("rai_tg_m6", 182, 7, 14, TG),
        ),
    ),
    "favourable_without_uptake": (
        182,
        (
            ("cont_tg_m3", 91, 7, 7, TG),
            ("cont_ct_m3", 91, 7, 14, CT),
            ("cont_tg_m6", 182, 7, 14, TG),
            ("cont_ct_m6", 182, 7, 14, CT),
        ),
    ),
}
DOSE_LEVELS_MG = (800, 600, 400, 200)  # Sorafenib, reduced one level at each dose reduction
TABLET_MG = 200
# the criteria's evidence (the protocol's study_days) and the Tg slope's analysis window (weeks 0-28 +- 7 days)
RAI_DAYS, TG_DAYS, CT_DAYS = (-28, 196), (-7, 203), (-28, 196)
TG_WEEKS = ((0 * 7 - 7) / 7, (28 * 7 + 7) / 7)
ALPHA, MIN_TG_VALUES = 0.05, 4
PR_PCT, PD_PCT = 30, 20
TG_LABELS = ("not_evaluable", "response", "stable", "progression")
RAI_LABELS = ("not_evaluable", "not_reinduced", "reinduced")
RECIST_LABELS = ("CR", "NE", "PD", "PR", "SD")
END_STATES = ("off_study", "end_of_study", "withdrawn", "screen_failure")
ARMS = {
    "rai_reinduced": "rai_plus_sorafenib",
    "favourable_without_uptake": "continued_sorafenib",
    "no_response": "off_study",
}


def simpy_full_model(n: int, seed: int) -> dict[str, Any]:
    """What ``trialflow simulate --patients 30 --runs ceil(n / 30)`` simulates, as a SimPy model: one SimPy
    environment per replicate trial (each trial's study starts on the scenario's study_start), one process
    per patient, ``env.timeout`` from one booked visit to the next, Python's ``random`` for every draw.
    Answers trialflow's ``--json`` figures (counts, endpoint, replicates, the month table)."""
    import bisect
    import datetime as dt

    import numpy as np
    import simpy
    from scipy.special import stdtr, stdtrit

    from trialflow.engine.simulation import load_scenario

    sc = load_scenario()
    rnd = random.Random(seed)
    uniform, expo, randint = rnd.random, rnd.expovariate, rnd.randint
    nrng = np.random.default_rng(seed)
    runs = -(-n // PER_RUN)
    courses = sc.courses
    cum = list(itertools.accumulate(c.probability for c in courses))
    jsd, p_miss, p_ne = sc.jitter_sd_days, sc.missed_probability, sc.ct_not_evaluable_probability
    delay = sc.decision_delay_days
    loq, half_loq = sc.tg_loq, sc.tg_loq / 2
    ln_half_loq = math.log(half_loq)
    crit = [math.inf, math.inf, *(float(stdtrit(df, 1 - ALPHA / 2)) for df in range(2, 64))]
    # calendar months from the study start: month_start[m] = days from study_start to the start of month m
    s0 = sc.study_start
    month_start = []
    for m in range(2400):
        y, mo = divmod(s0.month - 1 + m, 12)
        month_start.append((dt.date(s0.year + y, mo + 1, 1) - s0).days)
    quit_rates = [r / MONTH for r in (sc.death_per_month, sc.toxicity_stop_per_month, sc.dropout_per_month)]
    reduce_rate = sc.dose_reduction_per_month / MONTH
    accrual_rate = sc.accrual_per_month / MONTH
    lmin, lmax = sc.target_lesions

    branch_n = dict.fromkeys((*BRANCHES[:3], "no_decision"), 0)
    state_n = dict.fromkeys(END_STATES, 0)
    reason_n = [0, 0, 0]  # death, toxicity, dropout, before the decision
    crit_n = {
        "rai_uptake": dict.fromkeys(RAI_LABELS, 0),
        "tg_slope": dict.fromkeys(TG_LABELS, 0),
        "recist": dict.fromkeys(RECIST_LABELS, 0),
    }
    started = 0
    visits_6m = SORAFENIB_6M[1]
    # a patient's standard normals at most: the course (3), the lesions, each visit's jitter, each Tg's noise
    per_patient = 3 + lmax + len(SCREENING) + 2 * len(visits_6m) + max(len(v) for _, v in BRANCH_PHASES.values())

    def book(
        visits: tuple[tuple[str, int, int, int, int], ...], entry: int, z: Callable[[], float]
    ) -> list[tuple[int, int, int]]:
        """(day, last day of the window, column) of each visit, in date order: the target plus a jitter of
        round(sd * Z) days (Z from ``z``), kept in the window and not before the phase is entered."""
        out = []
        for _, day, before, after, col in visits:
            j = round(jsd * z())
            d = entry + day + (-before if j < -before else after if j > after else j)
            out.append((d if d > entry else entry, entry + day + after, col))
        out.sort()
        return out

    # day (since the study start) -> calendar month, for the days a trial of 30 patients can reach
    day_month = [bisect.bisect_right(month_start, d) - 1 for d in range(month_start[120])]

    def add(work: list[list[float]], day: int, col: int) -> None:
        """One visit's assessment (or dose) in its calendar month."""
        m = day_month[day] if day < len(day_month) else bisect.bisect_right(month_start, day) - 1
        try:
            work[m][col] += 1.0
        except IndexError:
            work.extend([0.0, 0.0, 0.0, 0.0, 0.0] for _ in range(m + 1 - len(work)))
            work[m][col] += 1.0

    def tablets(work: list[list[float]], start: int, stop: int, cuts: list[int]) -> None:
        """Sorafenib tablets taken on days [start, stop), the dose reduced at each of ``cuts``, by month."""
        for level, mg in enumerate(DOSE_LEVELS_MG):
            a = start if level == 0 else max(start, cuts[level - 1])
            b = stop if level == len(cuts) else min(stop, cuts[level])
            if b <= a:
                continue
            rate = mg / TABLET_MG
            m = bisect.bisect_right(month_start, a) - 1
            while month_start[m] < b:
                while len(work) <= m:
                    work.append([0.0, 0.0, 0.0, 0.0, 0.0])
                lo, hi = month_start[m], month_start[m + 1]
                work[m][TABLETS] += rate * ((b if b < hi else hi) - (lo if lo > a else a))
                m += 1

    def tg_outcome(rels: list[int], logs: list[float], below: list[bool], tgab: bool) -> int:
        """The Tg slope rule (OLS of ln Tg on weeks, two-sided t-test): an index into TG_LABELS."""
        if tgab and rels:
            return 0
        k = len(rels)
        if k >= MIN_TG_VALUES and all(below):
            return 2  # undetectable throughout
        if k < MIN_TG_VALUES:
            return 0
        xs = [r / 7.0 for r in rels]
        mx, my = sum(xs) / k, sum(logs) / k
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 0:
            return 0
        b = sum((x - mx) * (y - my) for x, y in zip(xs, logs, strict=True)) / sxx
        sse = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, logs, strict=True))
        se = math.sqrt(sse / (k - 2) / sxx)
        if se <= 1e-12 * abs(b):
            sig = b != 0
        else:
            t, c = abs(b) / se, crit[k - 2]
            sig = t > c if abs(t - c) > 1e-6 * c else 2 * float(stdtr(k - 2, -t)) < ALPHA
        return (1 if b < 0 else 3) if sig else 2

    p_screen_fail, p_tgab, p_reinduced, p_non_target = (
        sc.screen_failure_probability,
        sc.tgab_positive_probability,
        sc.rai_reinduction_probability,
        sc.non_target_probability,
    )
    tg_median, tg_log_sd, tg_resid = sc.tg_baseline_median, sc.tg_baseline_log_sd, sc.tg_residual_sd
    d_median, d_log_sd = sc.diameter_median_mm, sc.diameter_log_sd
    delay_min, delay_max = sc.start_delay_days
    exp, log, ceil, inf = math.exp, math.log, math.ceil, math.inf
    last_course = len(courses) - 1

    def patient(
        env: simpy.Environment, work: list[list[float]], tally: list[int], normals: list[float]
    ) -> Generator[Any, Any, None]:
        nonlocal started
        z = iter(normals).__next__  # the patient's standard normal draws, one after the other
        now = env.now  # the process keeps its own clock: the day of its last event
        enrol = math.floor(now)
        if p_screen_fail and uniform() < p_screen_fail:
            state_n["screen_failure"] += 1
            return
        started += 1
        # the latent course
        co = courses[min(bisect.bisect_right(cum, uniform()), last_course)]
        tg0 = tg_median * exp(tg_log_sd * z())
        slope = co.tg_slope_per_week + co.tg_slope_sd * z()
        growth = (co.target_log_change_per_month + co.target_log_change_sd * z()) / MONTH
        tgab = uniform() < p_tgab
        reinduced = uniform() < p_reinduced  # with 1 + Poisson newly avid lesions: always >= 1
        new_rate = co.new_lesions_per_month / MONTH
        new_lesion = expo(new_rate) if new_rate > 0 else inf  # days after day 0
        non_target = uniform() < p_non_target
        sizes = [round(max(d_median * exp(d_log_sd * z()), 10.0), 1) for _ in range(randint(lmin, lmax))]
        quit_in = [expo(r) if r > 0 else inf for r in quit_rates]  # days after day 0, by cause
        gaps = list(itertools.accumulate(expo(reduce_rate) if reduce_rate > 0 else inf for _ in range(3)))

        # screening: the baseline scan and CT (never missed), then the first dose
        (d1, _, c1), (d2, _, c2) = book(SCREENING, enrol, z)
        for d, col in ((d1, c1), (d2, c2)):
            if d > now:
                yield env.timeout(d - now)
                now = d
            add(work, d, col)
        day0 = (d2 if d2 > enrol else enrol) + randint(delay_min, delay_max)
        yield env.timeout(day0 - now)
        now = day0
        first = min(quit_in)
        withdraw = day0 + ceil(first) if first < inf else inf
        cuts = [day0 + ceil(g) if g < inf else inf for g in gaps]
        scan0, ct0 = (d1 - day0, d2 - day0) if c1 == SCAN else (d2 - day0, d1 - day0)  # study days, <= 0

        # six months of Sorafenib: Tg every 4 weeks, the 6-month scan and CT
        ready = d2  # the baseline visits are done
        rels: list[int] = []
        logs: list[float] = []
        below: list[bool] = []
        scan6 = ct6 = None
        ct6_ne = False
        out = False
        for d, last, col in book(visits_6m, day0, z):
            if d >= withdraw:
                out = True
                break
            if uniform() < p_miss:
                if last >= ready:
                    ready = last + 1  # not done: ready once its window has closed
                continue
            if d > now:
                yield env.timeout(d - now)
                now = d
            add(work, d, col)
            if d > ready:
                ready = d
            rel = d - day0
            if col == TG:
                v = round(tg0 * exp(slope * rel / 7.0 + tg_resid * z()), 2)
                if TG_DAYS[0] <= rel <= TG_DAYS[1] and TG_WEEKS[0] <= rel / 7.0 <= TG_WEEKS[1]:
                    rels.append(rel)
                    if v < loq:
                        below.append(True)
                        logs.append(ln_half_loq)
                    else:
                        below.append(False)
                        logs.append(log(v))
            elif col == SCAN:
                scan6 = rel
            else:
                ct6, ct6_ne = rel, uniform() < p_ne
        decision = ready + delay
        if out or decision >= withdraw:
            yield env.timeout(withdraw - now)
            tablets(work, day0, withdraw, cuts)
            branch_n["no_decision"] += 1
            state_n["withdrawn"] += 1
            reason_n[quit_in.index(first)] += 1
            return
        yield env.timeout(decision - now)
        now = decision

        # the decision: the three criteria as the rules read the records
        if scan6 is None or not RAI_DAYS[0] <= scan0 <= 0 or not RAI_DAYS[0] <= scan6 <= RAI_DAYS[1]:
            rai = 0  # no baseline or no 6-month scan judged: not evaluable
        else:
            rai = 2 if reinduced else 1
        tg = tg_outcome(rels, logs, below, tgab)
        if ct6 is None or ct6_ne or not CT_DAYS[0] <= ct0 <= 0 or not CT_DAYS[0] <= ct6 <= CT_DAYS[1]:
            recist = "NE"
        else:
            f = exp(min(growth * ct6, 50.0))
            base_sum = sum(round(s * 10) for s in sizes)
            total = 0
            for s in sizes:
                if s * f >= 3.0:  # smaller: gone from the CT
                    total += round(min(s * f, 1000.0) * 10)
            if not total:
                target = "CR"
            elif total > base_sum and 100 * (total - base_sum) >= PD_PCT * base_sum:
                target = "PD"
            elif 100 * (base_sum - total) >= PR_PCT * base_sum:
                target = "PR"
            else:
                target = "SD"
            if new_lesion <= ct6 or target == "PD":
                recist = "PD"
            elif target == "CR":
                recist = "PR" if non_target else "CR"
            else:
                recist = target
        crit_n["rai_uptake"][RAI_LABELS[rai]] += 1
        crit_n["tg_slope"][TG_LABELS[tg]] += 1
        crit_n["recist"][recist] += 1
        fav = rai == 2 or tg == 1 or tg == 2 or recist == "PR" or recist == "SD" or recist == "CR"
        branch = "rai_reinduced" if rai == 2 else "favourable_without_uptake" if fav else "no_response"
        branch_n[branch] += 1
        tally[0] += fav
        tally[1] += 1
        if branch == "no_response":
            tablets(work, day0, decision, cuts)
            state_n["off_study"] += 1
            return

        # the branch's phase, entered on the decision day, then the end of the study
        length, visits = BRANCH_PHASES[branch]
        for d, _, col in book(visits, decision, z):
            if d >= withdraw:
                break
            if col != DOSE and uniform() < p_miss:
                continue
            if d > now:
                yield env.timeout(d - now)
                now = d
            add(work, d, col)
        end = decision + length if decision + length > now else now  # a late visit ends the phase later
        if withdraw < end:
            end = withdraw
            state_n["withdrawn"] += 1
        else:
            state_n["end_of_study"] += 1
        yield env.timeout(end - now)
        tablets(work, day0, end, cuts)

    def accrual(env: simpy.Environment, work: list[list[float]], tally: list[int]) -> Generator[Any, Any, None]:
        # every patient's standard normals (latent course, lesions, jitters, Tg noise), drawn for the trial at
        # once: numpy draws them in bulk several times faster than random.gauss one by one
        normals = nrng.standard_normal((PER_RUN, per_patient)).tolist()
        for i in range(PER_RUN):
            if i:
                yield env.timeout(expo(accrual_rate))
            env.process(patient(env, work, tally, normals[i]))

    total: list[list[float]] = []
    most: list[list[float]] = []
    fav_run, dec_run, run_totals = [], [], []
    for _ in range(runs):
        env = simpy.Environment()
        work: list[list[float]] = []
        tally = [0, 0]
        env.process(accrual(env, work, tally))
        env.run()
        while len(total) < len(work):
            total.append([0.0] * 5)
            most.append([0.0] * 5)
        for t, m, w in zip(total, most, work, strict=False):  # (up to this run's months)
            for k in range(5):
                t[k] += w[k]
                if w[k] > m[k]:
                    m[k] = w[k]
        fav_run.append(tally[0])
        dec_run.append(tally[1])
        sums = [sum(w[k] for w in work) for k in range(5)]
        run_totals.append([*sums, sums[TG] + sums[SCAN] + sums[CT] + sums[DOSE]])
    return _full_result(
        runs, branch_n, state_n, reason_n, crit_n, started, fav_run, dec_run, total, most, run_totals, sc.dropout_reason
    )


def _full_result(
    runs: int,
    branch_n: dict[str, int],
    state_n: dict[str, int],
    reason_n: list[int],
    crit_n: dict[str, dict[str, int]],
    started: int,
    fav_run: list[int],
    dec_run: list[int],
    total: list[list[float]],
    most: list[list[float]],
    run_totals: list[list[float]],
    dropout: str,
) -> dict[str, Any]:
    """The full model's figures, laid out as trialflow's ``--json`` (the keys the comparison reads)."""
    import numpy as np
    from scipy.special import betaincinv

    fav, dec = sum(fav_run), sum(dec_run)
    ok = [f / d for f, d in zip(fav_run, dec_run, strict=True) if d]
    lo = 0.0 if fav == 0 else float(betaincinv(fav, dec - fav + 1, 0.025))
    hi = 1.0 if fav == dec else float(betaincinv(fav + 1, dec - fav, 0.975))
    qs = (2.5, 25, 50, 75, 97.5)
    arms: dict[str, int] = {}
    for b in BRANCHES[:3]:
        arms[ARMS[b]] = arms.get(ARMS[b], 0) + branch_n[b]
    counts = np.array(run_totals)
    return {
        "pathways": runs * PER_RUN,
        "runs": runs,
        "per_branch": branch_n,
        "per_arm": arms,
        "per_end_state": state_n,
        "withdrawn_before_decision": {r: k for r, k in zip(("death", "toxicity", dropout), reason_n, strict=True) if k},
        "criteria": {c: {lab: k for lab, k in sorted(got.items()) if k} for c, got in crit_n.items()},
        "primary_endpoint": {
            "favourable": fav,
            "evaluable": dec,
            "started": started,
            "proportion": fav / dec if dec else None,
            "ci95": [lo, hi] if dec else None,
        },
        "replicates": {
            "runs": runs,
            "proportion_mean": statistics.fmean(ok) if ok else None,
            "proportion_sd": statistics.stdev(ok) if len(ok) > 1 else None,
            "proportion_quantiles": (  # observed proportions, as trialflow gives them (``_simulate._quantiles``)
                dict(
                    zip(
                        (f"p{q:g}" for q in qs),
                        [
                            *np.quantile(ok, [0.025, 0.25], method="lower").tolist(),
                            float(np.quantile(ok, 0.5)),
                            *np.quantile(ok, [0.75, 0.975], method="higher").tolist(),
                        ],
                        strict=True,
                    )
                )
                if ok
                else {}
            ),
            "evaluable_mean": statistics.fmean(dec_run),
            "favourable_count_distribution": {str(k): v for k, v in sorted(collections.Counter(fav_run).items())},
        },
        "workload_columns": list(WORKLOAD_COLUMNS),
        "workload_per_month": [
            {
                "mean": dict(zip(WORKLOAD_COLUMNS, (x / runs for x in t), strict=True)),
                "busiest_run": dict(zip(WORKLOAD_COLUMNS, m, strict=True)),
            }
            for t, m in zip(total, most, strict=True)
        ],
        # per replicate trial: the mean and SD of each column's total over the whole trial (for the checks)
        "per_run_total": {
            k: [float(counts[:, i].mean()), float(counts[:, i].std(ddof=1)) if runs > 1 else 0.0]
            for i, k in enumerate((*WORKLOAD_COLUMNS, "visits"))
        },
    }


def child(model: str, n: int, seed: int, repeat: int, extra: Sequence[str]) -> None:
    """Time one model inside this process (median of ``repeat``) and print its figures as JSON."""
    if model == "simpy":
        t0, c0 = time.perf_counter(), time.process_time()
        counts = simpy_model(n, seed)
        print(
            json.dumps(
                {
                    "seconds": time.perf_counter() - t0,
                    "cpu": time.process_time() - c0,
                    "counts": [counts[b] for b in BRANCHES],
                }
            )
        )
        return
    if model == "simpy-full":
        t0, c0 = time.perf_counter(), time.process_time()
        result = simpy_full_model(n, seed)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        counts = [result["per_branch"][b] for b in BRANCHES]
        print(json.dumps({"seconds": secs, "cpu": cpu, "counts": counts, "result": result}))
        return
    from trialflow.engine.simulation import simulate
    from trialflow.engine.simulation._simulate import THREADS

    options: dict[str, Any] = {}
    if "--cluster" in extra:
        options["cluster"] = extra[list(extra).index("--cluster") + 1]
    runs = -(-n // PER_RUN)
    simulate(PER_RUN, seed, runs=34, **options)  # warm: imports, schema compilation, kernels, workers
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        simulate(PER_RUN, seed, runs=runs, **options)  # no result kept alive between repeats
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(times), "threads": THREADS}))


def _whole(cmd: list[str]) -> tuple[float, float, float, bytes]:
    """(wall seconds, CPU seconds, peak RSS in MB, stdout) of ``cmd`` run as its own process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.decode(errors='replace')}")
    return secs, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def _median_whole(cmd: list[str], repeat: int) -> tuple[float, float, float, bytes]:
    """Medians of wall and CPU seconds, the largest peak RSS and the last stdout of ``repeat`` runs."""
    got = [_whole(cmd) for _ in range(repeat)]
    return (
        statistics.median(g[0] for g in got),
        statistics.median(g[1] for g in got),
        max(g[2] for g in got),
        got[-1][3],
    )


def _bytecode() -> None:
    """Compile trialflow's modules to bytecode (what ``pip install`` does), so that no measured process
    compiles them from source (see the module docstring)."""
    import compileall
    import importlib.util

    for pkg in ("documents", "protocol", "rules", "engine", "cli", "exchange", "web"):
        try:
            spec = importlib.util.find_spec(f"trialflow.{pkg}")
        except ModuleNotFoundError:
            continue
        for where in (spec.submodule_search_locations or []) if spec is not None else []:
            compileall.compile_dir(where, quiet=1)


def _child_cmd(model: str, n: int, seed: int, repeat: int, extra: Sequence[str]) -> list[str]:
    cmd = [sys.executable, __file__, "--child", model, str(n), "--seed", str(seed), "--repeat", str(repeat)]
    return cmd + [f"--extra={e}" for e in extra]


def _chi_square_p(a: Sequence[int], b: Sequence[int]) -> float:
    """p of the chi-square test that two sets of branch counts come from one distribution (in a child
    process, so that this one never imports scipy: see ``main``)."""
    return _chi_square_ps([(a, b)])[0]


def _chi_square_ps(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
    """:func:`_chi_square_p` of each pair of count vectors, in one child process."""
    code = (
        "import sys, json, numpy as np; from scipy.stats import chi2_contingency\n"
        "for a, b in json.loads(sys.argv[1]):\n"
        "    t = np.array([a, b]); print(chi2_contingency(t[:, t.sum(axis=0) > 0])[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps([[list(a), list(b)] for a, b in pairs])],
        check=True,
        capture_output=True,
        text=True,
    )
    return [float(x) for x in out.stdout.split()]


def _counts(a: dict[str, int], b: dict[str, int]) -> tuple[list[int], list[int]]:
    keys = sorted(set(a) | set(b))
    return [a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]


def _workload_totals(result: dict[str, Any]) -> dict[str, float]:
    """Each column's total over the month table of trialflow's --json, per replicate trial (the mean)."""
    out = dict.fromkeys(WORKLOAD_COLUMNS, 0.0)
    for m in result["workload_per_month"]:
        for k in out:
            out[k] += m["mean"][k]
    for period in result.get("workload_after_month_120", []):
        for k in out:
            out[k] += period["mean_per_month"][k] * period["months"]
    out["visits"] = out["tg"] + out["rai_scan"] + out["ct"] + out["rai_6000_doses"]
    return out


def agreement(tf: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """How the full SimPy model's figures agree with trialflow's --json: chi-square p of each count table
    (branches, end states, withdrawals before the decision, each criterion's outcomes), and z of the
    endpoint's proportion and of each workload column's total per trial (SD: the full model's, per trial)."""
    tables = {
        "branches": _counts(tf["per_branch"], full["per_branch"]),
        "end states": _counts(tf["per_end_state"], full["per_end_state"]),
        "withdrawals": _counts(tf["withdrawn_before_decision"], full["withdrawn_before_decision"]),
        **{c: _counts(tf["criteria"][c], full["criteria"][c]) for c in tf["criteria"]},
    }
    ps = dict(zip(tables, _chi_square_ps(list(tables.values())), strict=True))
    e1, e2 = tf["primary_endpoint"], full["primary_endpoint"]
    pooled = (e1["favourable"] + e2["favourable"]) / (e1["evaluable"] + e2["evaluable"])
    se = math.sqrt(pooled * (1 - pooled) * (1 / e1["evaluable"] + 1 / e2["evaluable"]))
    totals = _workload_totals(tf)
    runs_tf, runs_full = tf["runs"], full["runs"]
    work = {}
    for k, (mean, sd) in full["per_run_total"].items():
        if sd > 0:
            z = (totals[k] - mean) / (sd * math.sqrt(1 / runs_tf + 1 / runs_full))
        else:  # no spread in the model's column: only the very same total agrees
            z = 0.0 if totals[k] == mean else math.inf
        work[k] = (totals[k] / PER_RUN, mean / PER_RUN, z)  # per pathway
    return {
        "p": ps,
        "endpoint": (e1["proportion"], e2["proportion"], (e1["proportion"] - e2["proportion"]) / se),
        "per_pathway": work,
        "months": (len(tf["workload_per_month"]), len(full["workload_per_month"])),
    }


def _agreement_line(n: int, got: dict[str, Any]) -> str:
    ps = ", ".join(f"{k} {v:.2f}" for k, v in got["p"].items())
    e = got["endpoint"]
    w = got["per_pathway"]
    cols = "; ".join(f"{k} {a:.4g} vs {b:.4g} (z {z:+.2f})" for k, (a, b, z) in w.items())
    return (
        f"  {n:,} pathways, trialflow vs full SimPy model: chi-square p {ps}; favourable {e[0]:.4f} vs "
        f"{e[1]:.4f} (z {e[2]:+.2f}); per pathway {cols}; months {got['months'][0]} vs {got['months'][1]}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    ap.add_argument("--simpy-max", type=int, default=100_000, help="larger SimPy sizes are extrapolated")
    ap.add_argument(
        "--simpy-full-max", type=int, default=100_000, help="larger sizes of the full SimPy model are extrapolated"
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--repeat", type=int, default=3, help="median of this many runs of each measurement")
    ap.add_argument("--big-repeat", type=int, default=1, help="runs of each measurement above 10^6 pathways")
    ap.add_argument("--extra", action="append", default=[], help="an option passed to trialflow simulate")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.seed, args.repeat, args.extra)
        return
    # nothing heavy is imported here before the children run: a child's peak RSS counts the pages of this
    # process it was forked from (before it execs), so numpy here would add ~50 MB to every figure
    exe = shutil.which("trialflow", path=os.path.dirname(sys.executable)) or shutil.which("trialflow")
    if exe is None:
        raise SystemExit("the trialflow command is not installed (pip install -e .)")
    _bytecode()
    # one unmeasured process first, as a user's first simulate after installing trialflow: it validates the
    # bundled protocol, the default scenario and the rules' params and remembers the passes (see
    # documents/_trusted.py), so the measured processes run as every later one does
    subprocess.run([exe, "simulate", "--patients", "30", "--seed", "1", "--json"], check=True, capture_output=True)
    load0 = os.getloadavg()
    base_s, base_cpu, base_rss, _ = _median_whole(
        [sys.executable, "-c", "import numpy, scipy.special, typer"], args.repeat
    )
    print(
        f"{os.cpu_count()} CPUs, load average {load0[0]:.2f} at the start; trialflow simulate --patients {PER_RUN} "
        f"--runs R --seed {args.seed} --json {' '.join(args.extra)}".rstrip()
    )
    print(
        f'baseline `python -c "import numpy, scipy.special, typer"`: {base_s:.2f} s wall, {base_cpu:.2f} s CPU, '
        f"{base_rss:.0f} MB (median of {args.repeat})"
    )
    print(
        f"{'pathways':>11} {'wall s':>7} {'CPU s':>6} {'x base':>6} {'CPU x':>6} {'in-proc s':>9} {'RSS MB':>6} "
        f"{'JSON KB':>7} | {'SimPy wall s':>12} {'SimPy CPU s':>11} {'SimPy in s':>10} {'ratio':>6} {'CPU ratio':>9} "
        f"{'p':>4} | {'full wall s':>11} {'full CPU s':>10} {'full in s':>9} {'ratio':>6} {'CPU ratio':>9} {'p':>4} "
        f"| {'load':>5}"
    )
    # each SimPy model's start-up (wall, CPU) and its seconds per pathway (wall, CPU), from the largest size
    # it ran
    fits: dict[str, tuple[float, float, float, float]] = {}
    checks: list[str] = []
    for n in args.sizes:
        repeat = args.repeat if n <= 1_000_000 else args.big_repeat
        runs = -(-n // PER_RUN)
        cmd = [exe, "simulate", "--patients", str(PER_RUN), "--runs", str(runs), "--seed", str(args.seed), "--json"]
        secs, cpu, rss, out = _median_whole(cmd + list(args.extra), repeat)
        result = json.loads(out)
        tf = [result["per_branch"][b] for b in BRANCHES]
        warm = json.loads(
            subprocess.run(
                _child_cmd("trialflow", n, args.seed, repeat, args.extra),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.splitlines()[-1]
        )
        inproc, threads = warm["seconds"], warm["threads"]
        pathways = runs * PER_RUN
        notes = []
        for model, most in (("simpy", args.simpy_max), ("simpy-full", args.simpy_full_max)):
            if n <= most:
                sp_whole, sp_cpu, _, sp_out = _median_whole(_child_cmd(model, pathways, args.seed, 1, ()), repeat)
                sp = json.loads(sp_out.decode().splitlines()[-1])
                sp_in, sp_in_cpu = float(sp["seconds"]), float(sp["cpu"])
                fits[model] = (
                    max(sp_whole - sp_in, 0.0),
                    max(sp_cpu - sp_in_cpu, 0.0),
                    sp_in / pathways,
                    sp_in_cpu / pathways,
                )
                sp_note = f"{sp_whole:>11.2f} {sp_cpu:>10.2f} {sp_in:>9.2f}"
                p_note = f"{_chi_square_p(tf, sp['counts']):.2f}"
                if model == "simpy-full":
                    checks.append(_agreement_line(pathways, agreement(result, sp["result"])))
            else:
                fit = fits.get(model)
                if fit is None:
                    raise SystemExit(f"run a size <= the {model} model's maximum first")
                sp_in = fit[2] * pathways
                sp_whole, sp_cpu = fit[0] + sp_in, fit[1] + fit[3] * pathways
                sp_note = f"{sp_whole:>10.0f}* {sp_cpu:>9.0f}* {sp_in:>8.0f}*"
                p_note = "-"
            notes.append(f"{sp_note} {sp_whole / secs:>5.0f}x {sp_cpu / cpu:>8.0f}x {p_note:>4}")
        print(
            f"{pathways:>11,} {secs:>7.2f} {cpu:>6.2f} {secs / base_s:>6.2f} {cpu / base_cpu:>6.2f} {inproc:>9.2f} "
            f"{rss:>6.0f} {len(out) / 1024:>7.1f} | {notes[0]} | {notes[1]} | {os.getloadavg()[0]:>5.2f}",
            flush=True,
        )
    load1 = os.getloadavg()
    print(
        f"load average {load1[0]:.2f} at the end; trialflow ran {threads} thread(s) in process. x base: whole-process "
        "wall (CPU x: CPU) over the baseline's; SimPy: the model of the pathway to the decision (simpy_model); "
        "full: the model of everything trialflow simulates (simpy_full_model); ratio: the model's whole process "
        "over trialflow's whole process (wall; CPU ratio: CPU seconds); p: chi-square test of the branch counts "
        "against trialflow's; load: the 1-minute load average after the row; medians of "
        f"{args.repeat} runs ({args.big_repeat} above 10^6); * extrapolated from the largest size the model ran "
        "(its start-up + per-pathway time)."
    )
    for line in checks:
        print(line)


if __name__ == "__main__":
    main()
