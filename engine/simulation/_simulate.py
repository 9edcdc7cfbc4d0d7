"""The driver: replicate trials of N patients, simulated in chunks, folded into one result."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Protocol, load_bundled_protocol, load_protocol

from ._evaluate import check_rules
from ._generate import MONTH_DAYS, Cohort, Streams, head, simulate_chunk
from ._pathways import Pathway, SimulationError, pathway_of
from ._result import Endpoint, MonthTable, Replicates, SimulationResult
from ._scenario import Scenario, load_scenario
from ._workload import WorkloadAccumulator

__all__ = ["BLOCK", "CHUNK", "PARALLEL_MIN", "PROCESSES", "SAMPLE", "THREADS", "simulate", "withdrawal_reasons"]

BLOCK = 1 << 14  # patients per random stream: results depend on the seed, not on the chunk size
CHUNK = BLOCK  # patients per chunk: ~25 MB of arrays, its P x visits matrices near the L2 cache
THREADS = min(2, os.cpu_count() or 1)  # chunks simulated side by side in-process (small runs)
PROCESSES = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
PARALLEL_MIN = 200_000  # pathways from which worker processes pay for their start-up
SAMPLE = 2000  # patients of the first run kept whole, for plots and per-patient records

Progress = Callable[[int, int], None]
F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - the usual name for an index array


@dataclass(slots=True)
class _Chunk:
    """What a chunk adds to the result: counts, per-run tallies, its workload table (and the sample)."""

    sample: Cohort | None
    r0: int
    branch: I
    state: I
    reason: I
    crit: dict[str, dict[str, int]]
    fav: I
    dec: I
    started: int
    work: tuple[int, int, F] | None
    last: int


def _count(codes: NDArray[np.int8], labels: tuple[str, ...]) -> dict[str, int]:
    """Occurrences of each outcome (by its code), the outcomes that occur, in sorted order of the labels."""
    k = np.bincount(codes, minlength=len(labels)).tolist()
    return {lab: k[i] for i, lab in sorted(enumerate(labels), key=lambda t: t[1]) if k[i]}


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
    rng: Streams, first: int, n: int, per_run: int, rate: float, carry: float
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


_job: Callable[[int, float], _Chunk] | None = None  # a worker process's chunk simulator (set on fork)


def _set_job(job: Callable[[int, float], _Chunk]) -> None:
    global _job
    _job = job


def _run_job(i: int, carry: float) -> _Chunk:
    assert _job is not None, "a worker process without its job"
    return _job(i, carry)


def _carries(
    chunk_args: Callable[[int, float], tuple[int, int, Streams, I, F, float]], nchunks: int
) -> Iterator[float]:
    """The enrolment day each chunk starts from (the previous chunk's last), in chunk order."""
    carry = 0.0
    for i in range(nchunks):
        yield carry
        carry = chunk_args(i, carry)[-1]


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
    threads: int | None = None,
    processes: int | None = None,
) -> SimulationResult:
    """Simulate ``runs`` replicate trials of ``patients`` patients each through the protocol.

    Results depend only on the seed: every block of :data:`BLOCK` patients has its own random stream,
    and chunks are folded in order, whatever ``chunk``, ``threads`` or ``processes``. Runs of at least
    :data:`PARALLEL_MIN` pathways use :data:`PROCESSES` worker processes (forked, Linux) unless
    ``processes`` says otherwise; smaller ones stay in this process (``threads`` side by side)."""
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
    total = patients * runs
    if chunk < 1 or chunk % BLOCK:
        raise SimulationError(f"the chunk size must be a positive multiple of {BLOCK} patients, got {chunk}")
    nchunks = -(-total // chunk)
    streams = np.random.SeedSequence(seed).spawn(-(-total // BLOCK))  # one stream per block of patients
    branches = [b.id for b in proto.decision.branches]
    states = list(pw.end_states)
    branch_n = np.zeros(len(branches) + 1, np.int64)
    state_n = np.zeros(len(states), np.int64)
    reason_n = np.zeros(3, np.int64)
    crit: dict[str, dict[str, int]] = {c.id: {} for c in proto.decision.criteria}
    fav_run = np.zeros(runs, np.int64)
    dec_run = np.zeros(runs, np.int64)
    started = 0
    work = WorkloadAccumulator(pw, sc.study_start, dict(sc.tablet_mg), patients)
    sample: Cohort | None = None

    def one(first: int, n: int, rng: Streams, run: I, enrol: F) -> _Chunk:
        c = simulate_chunk(pw, sc, rng, run, enrol)
        r0, nr = int(run[0]), int(run[-1]) - int(run[0]) + 1
        quit_early = ~c.screen_failed & ~c.decided
        return _Chunk(
            sample=head(c, min(SAMPLE, patients)) if first == 0 else None,
            r0=r0,
            branch=np.bincount(c.branch + 1, minlength=len(branches) + 1),
            state=np.bincount(c.end_state, minlength=len(states)),
            reason=np.bincount(c.withdraw_reason[quit_early], minlength=3),
            crit={cid: _count(codes[c.decided], c.labels[cid]) for cid, codes in c.codes.items()},
            fav=np.bincount(run - r0, weights=c.favourable, minlength=nr).astype(np.int64),
            dec=np.bincount(run - r0, weights=c.decided, minlength=nr).astype(np.int64),
            started=int(np.count_nonzero(~c.screen_failed)),
            work=work.table(c),
            last=first + n,
        )

    def fold(k: _Chunk) -> None:
        nonlocal branch_n, state_n, reason_n, started, sample
        sample = sample if k.sample is None else k.sample
        branch_n += k.branch
        state_n += k.state
        reason_n += k.reason
        for cid, got in k.crit.items():
            for lab, m in got.items():
                crit[cid][lab] = crit[cid].get(lab, 0) + m
        fav_run[k.r0 : k.r0 + len(k.fav)] += k.fav
        dec_run[k.r0 : k.r0 + len(k.dec)] += k.dec
        started += k.started
        work.fold(k.work, k.last)
        if progress is not None:
            progress(k.last, total)

    def chunk_args(i: int, carry: float) -> tuple[int, int, Streams, I, F, float]:
        """Chunk ``i``'s patients, random streams and enrolment, given the enrolment day the chunk's
        first run has reached (``carry``); answers the day its last run reaches."""
        first = i * chunk
        n = min(chunk, total - first)
        b0 = first // BLOCK
        sizes = [min(BLOCK, first + n - b * BLOCK) for b in range(b0, -(-(first + n) // BLOCK))]
        rng = Streams([np.random.default_rng(streams[b0 + j]) for j in range(len(sizes))], sizes)
        run, enrol, carry = _enrolment(rng, first, n, patients, sc.accrual_per_month, carry)
        return first, n, rng, run, enrol, carry

    def chunks() -> Iterator[tuple[int, int, Streams, I, F]]:
        """Enrolment is sequential (a Poisson process over the whole run): drawn here, in chunk order."""
        carry = 0.0
        for i in range(nchunks):
            first, n, rng, run, enrol, carry = chunk_args(i, carry)
            yield first, n, rng, run, enrol

    def job(i: int, carry: float) -> _Chunk:
        """Chunk ``i`` from scratch (in a worker process): its streams are re-made from the seed, so the
        enrolment it redraws, and everything after, is what the in-process path computes."""
        first, n, rng, run, enrol, _ = chunk_args(i, carry)
        return one(first, n, rng, run, enrol)

    procs = processes if processes is not None else (PROCESSES if total >= PARALLEL_MIN else 1)
    procs = max(1, min(procs, nchunks - 1))
    if procs > 1 and "fork" in mp.get_all_start_methods():
        # worker processes: each simulates whole chunks and sends back only their counts and month
        # table; the parent draws the enrolment carries (cheap), simulates chunk 0 itself (the sample
        # keeps its pathway), and folds in chunk order with at most 2 x procs chunks in flight
        starts: Iterator[float] = _carries(chunk_args, nchunks)
        ctx = mp.get_context("fork")
        with ProcessPoolExecutor(procs, mp_context=ctx, initializer=_set_job, initargs=(job,)) as pool:
            pending: deque[Future[_Chunk]] = deque()
            next(starts)  # chunk 0 is simulated here
            nxt = 1

            def top_up() -> None:
                nonlocal nxt
                while len(pending) < 2 * procs and nxt < nchunks:
                    pending.append(pool.submit(_run_job, nxt, next(starts)))
                    nxt += 1

            top_up()
            first0, n0, rng0, run0, enrol0, _ = chunk_args(0, 0.0)
            fold(one(first0, n0, rng0, run0, enrol0))
            while pending:
                done = pending.popleft().result()
                top_up()
                fold(done)
    else:
        workers = max(1, min(threads if threads is not None else THREADS, nchunks))
        if workers == 1:
            for args in chunks():
                fold(one(*args))
        else:
            # numpy and the random generators release the GIL on whole arrays: chunks run side by side,
            # and are folded in chunk order, at most ``workers + 1`` of them in memory
            with ThreadPoolExecutor(workers) as tpool:
                tpending: deque[Future[_Chunk]] = deque()
                for args in chunks():
                    tpending.append(tpool.submit(one, *args))
                    if len(tpending) > workers:
                        fold(tpending.popleft().result())
                while tpending:
                    fold(tpending.popleft().result())
    arm_n: dict[str, int] = {}
    for b, br in enumerate(proto.decision.branches):
        arm_n[br.to] = arm_n.get(br.to, 0) + int(branch_n[b + 1])
    favourable, evaluable = int(fav_run.sum()), int(dec_run.sum())
    from trialflow.engine import clopper_pearson

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
    months = MonthTable(work.months.start_month, work.keys, mean, most)
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
        criteria={cid: dict(sorted(got.items())) for cid, got in crit.items()},
        endpoint=endpoint,
        replicates=reps,
        workload_columns=work.columns,
        workload=months,
        sample=sample,
    )
