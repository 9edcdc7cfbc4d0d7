"""The driver: replicate trials of N patients, simulated in chunks, folded into one result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Protocol, load_bundled_protocol, load_protocol

from ._evaluate import check_rules
from ._generate import MONTH_DAYS, Cohort, head, simulate_chunk
from ._pathways import Pathway, SimulationError, pathway_of
from ._result import Endpoint, MonthWorkload, Replicates, SimulationResult
from ._scenario import Scenario, load_scenario
from ._workload import WorkloadAccumulator

__all__ = ["CHUNK", "SAMPLE", "simulate", "withdrawal_reasons"]

CHUNK = 1 << 16  # patients per chunk: ~100 MB of arrays at most
SAMPLE = 2000  # patients of the first run kept whole, for plots and per-patient records

Progress = Callable[[int, int], None]


def withdrawal_reasons(pw: Pathway, sc: Scenario) -> tuple[str, str, str]:
    """The protocol's reasons for the simulated causes (death, toxicity, dropout), checked."""
    known = pw.protocol.early_termination.reason_ids
    want = (
        ("death", sc.death_per_month),
        ("toxicity", sc.toxicity_stop_per_month),
        (sc.dropout_reason, sc.dropout_per_month),
    )
    for reason, rate in want:
        if rate > 0 and reason not in known:
            raise SimulationError(
                f"the scenario withdraws patients for {reason!r}, which is not an early-termination "
                f"reason of the protocol ({', '.join(known)})"
            )
    return want[0][0], want[1][0], want[2][0]


def _enrolment(
    rng: np.random.Generator, first: int, n: int, per_run: int, rate: float, carry: float
) -> tuple[NDArray[np.int64], NDArray[np.float64], float]:
    """Days since study start at which patients ``first .. first+n-1`` enrol (a Poisson process per run)."""
    g = np.arange(first, first + n)
    run = g // per_run
    gap = rng.exponential(MONTH_DAYS / rate, n)
    starts = g % per_run == 0
    gap[starts] = 0.0
    cum = np.cumsum(gap)
    idx = np.where(starts, np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    base = np.where(idx >= 0, cum[np.maximum(idx, 0)], -carry)
    when = cum - base
    return run, np.floor(when), float(when[-1])


def _quantiles(p: NDArray[np.float64]) -> dict[str, float]:
    if p.size == 0:
        return {}
    qs = (2.5, 25, 50, 75, 97.5)
    return {f"p{q:g}": float(v) for q, v in zip(qs, np.quantile(p, [q / 100 for q in qs]), strict=True)}


def _cp_lower(k: NDArray[np.int64], n: NDArray[np.int64], level: float = 0.95) -> NDArray[np.float64]:
    """Exact (Clopper-Pearson) lower bounds, vectorised (engine.clopper_pearson for one)."""
    from scipy.special import betaincinv

    a = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lo = betaincinv(np.maximum(k, 1), np.maximum(n - k + 1, 1), a)
    return np.where((k == 0) | (n == 0), 0.0, lo)


def simulate(
    patients: int,
    seed: int,
    *,
    protocol: Protocol | str | Path | None = None,
    scenario: Scenario | str | Path | None = None,
    runs: int = 1,
    null_rate: float | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> SimulationResult:
    """Simulate ``runs`` replicate trials of ``patients`` patients each through the protocol."""
    if patients < 1 or runs < 1:
        raise SimulationError("patients and runs must be at least 1")
    if null_rate is not None and not 0 <= null_rate < 1:
        raise SimulationError(f"the null rate must be in [0, 1), got {null_rate}")
    proto = (
        protocol
        if isinstance(protocol, Protocol)
        else (load_bundled_protocol() if protocol is None else load_protocol(protocol))
    )
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    pw = pathway_of(proto)
    check_rules([(c.id, c.rule) for c in proto.decision.criteria])
    reasons = withdrawal_reasons(pw, sc)
    rng_root = np.random.SeedSequence(seed)
    total = patients * runs
    nchunks = -(-total // chunk)
    streams = rng_root.spawn(nchunks)
    branches = [b.id for b in proto.decision.branches]
    states = list(pw.end_states)
    branch_n = np.zeros(len(branches) + 1, np.int64)
    state_n = np.zeros(len(states), np.int64)
    arm_n: dict[str, int] = {}
    reason_n = np.zeros(3, np.int64)
    crit: dict[str, dict[str, int]] = {c.id: {} for c in proto.decision.criteria}
    fav_run = np.zeros(runs, np.int64)
    dec_run = np.zeros(runs, np.int64)
    started = 0
    work = WorkloadAccumulator(pw, sc.study_start, dict(sc.tablet_mg), patients)
    sample: Cohort | None = None
    carry = 0.0
    for i in range(nchunks):
        first = i * chunk
        n = min(chunk, total - first)
        rng = np.random.default_rng(streams[i])
        run, enrol, carry = _enrolment(rng, first, n, patients, sc.accrual_per_month, carry)
        c = simulate_chunk(pw, sc, rng, run, enrol)
        if sample is None:
            sample = head(c, min(SAMPLE, patients))
        branch_n += np.bincount(c.branch + 1, minlength=len(branches) + 1)
        state_n += np.bincount(c.end_state, minlength=len(states))
        for b, br in enumerate(proto.decision.branches):
            arm_n[br.to] = arm_n.get(br.to, 0) + int((c.branch == b).sum())
        quit_early = ~c.screen_failed & ~c.decided
        reason_n += np.bincount(c.withdraw_reason[quit_early], minlength=3)
        for cid, out in c.outcomes.items():
            labels, counts = np.unique(out[c.decided], return_counts=True)
            for lab, k in zip(labels.tolist(), counts.tolist(), strict=True):
                crit[cid][lab] = crit[cid].get(lab, 0) + k
        r0 = int(run[0])
        fav_run[r0 : r0 + int(run[-1]) - r0 + 1] += np.bincount(run - r0, weights=c.favourable).astype(
            np.int64
        )
        dec_run[r0 : r0 + int(run[-1]) - r0 + 1] += np.bincount(run - r0, weights=c.decided).astype(np.int64)
        started += int((~c.screen_failed).sum())
        work.add(c, first + n)
        if progress is not None:
            progress(first + n, total)
    favourable, evaluable = int(fav_run.sum()), int(dec_run.sum())
    from trialflow.engine._queries import clopper_pearson

    endpoint = Endpoint(
        favourable=favourable,
        evaluable=evaluable,
        started=started,
        proportion=favourable / evaluable if evaluable else None,
        ci95=clopper_pearson(favourable, evaluable) if evaluable else None,
        proportion_of_started=favourable / started if started else None,
        definition="favourable response (min criteria of the decision) among patients who reached the "
        "decision, "
        "as trialflow report counts it",
    )
    ok = dec_run > 0
    prop = fav_run[ok] / dec_run[ok]
    power = None
    if null_rate is not None:
        power = float((_cp_lower(fav_run, dec_run) > null_rate).mean())
    ks, kn = np.unique(fav_run, return_counts=True)
    reps = Replicates(
        runs=runs,
        patients=patients,
        null_rate=null_rate,
        proportion_mean=float(prop.mean()) if prop.size else None,
        proportion_sd=float(prop.std(ddof=1)) if prop.size > 1 else None,
        proportion_quantiles=_quantiles(prop),
        evaluable_mean=float(dec_run.mean()),
        power=power,
        favourable_counts={int(k): int(v) for k, v in zip(ks, kn, strict=True)},
    )
    mean, most = work.finish()
    month_names, mean_l, most_l = work.labels(len(mean)), mean.tolist(), most.tolist()
    months = tuple(
        MonthWorkload(
            month_names[m],
            dict(zip(work.keys, mean_l[m], strict=True)),
            dict(zip(work.keys, most_l[m], strict=True)),
        )
        for m in range(len(mean))
    )
    withdrawn: dict[str, int] = {}
    for r, k in zip(reasons, reason_n.tolist(), strict=True):
        if k:
            withdrawn[r] = withdrawn.get(r, 0) + k
    return SimulationResult(
        protocol={
            "id": proto.study.id,
            "version": proto.version,
            "file": proto.source_file,
            "content_hash": proto.content_hash,
        },
        scenario=sc.source_file,
        seed=seed,
        patients=patients,
        runs=runs,
        per_branch={
            **{b: int(k) for b, k in zip(branches, branch_n[1:], strict=True)},
            "no_decision": int(branch_n[0]),
        },
        per_arm=arm_n,
        per_end_state={s: int(k) for s, k in zip(states, state_n, strict=True)},
        withdrawn_before_decision=withdrawn,
        criteria=crit,
        endpoint=endpoint,
        replicates=reps,
        workload_columns=work.columns,
        workload=months,
        sample=sample,
    )
