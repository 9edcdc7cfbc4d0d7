"""The driver: replicate trials of N patients, simulated in chunks, folded into one result.

Chunks run in this process (side by side in threads) or, with ``cluster``, on a Dask distributed
cluster (``local:N`` starts a LocalCluster of N worker processes on this machine; ``tcp://HOST:PORT``
joins a running scheduler). Each block of patients has its own random stream, spawned from the seed
(``numpy.random.SeedSequence``), and a worker re-makes its chunk's streams from the seed alone, so a
cluster returns the in-process result bit for bit; workers send back only the chunk's counts and its
month table.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from trialflow.protocol import Protocol, load_bundled_protocol, load_protocol

from ._allocator import keep_freed_arrays
from ._evaluate import check_rules
from ._generate import MONTH_DAYS, Cohort, Streams, head, simulate_chunk, subset
from ._pathways import Pathway, SimulationError, pathway_of
from ._result import DesignRun, Endpoint, MonthTable, Replicates, SimulationResult
from ._scenario import Scenario, ScenarioError, load_scenario
from ._workload import WorkloadAccumulator

if TYPE_CHECKING:
    from trialflow.engine.design import SingleStageDesign, TwoStageDesign

    Design = SingleStageDesign | TwoStageDesign

__all__ = ["BLOCK", "CHUNK", "SAMPLE", "THREADS", "simulate", "withdrawal_reasons"]

BLOCK = 1 << 14  # patients per random stream: results depend on the seed, not on the chunk size
CHUNK = BLOCK  # patients per chunk: ~25 MB of arrays, its P x visits matrices near the L2 cache
THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
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
    stopped: I | None = None  # per run of the chunk (a design): stopped after the first stage
    success: I | None = None  # per run: the design declared success
    fav1: I | None = None  # per run: favourable among the first stage's patients


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything a chunk needs, whoever simulates it (sent once to each Dask worker)."""

    protocol: Protocol
    scenario: Scenario
    seed: int
    patients: int  # per run
    total: int
    chunk: int
    block: int
    design: Design | None = None

    @property
    def key(self) -> str:
        """What tells two plans apart on a worker (the protocol, the scenario, the sizes, the seed)."""
        scen = hashlib.sha256(repr(self.scenario).encode()).hexdigest()
        return f"{self.protocol.content_hash}:{scen}:{self.seed}:{self.patients}:{self.total}:{self.chunk}"

    @property
    def nchunks(self) -> int:
        return -(-self.total // self.chunk)


@dataclass(slots=True)
class _Context:
    """What simulating a chunk reads besides the plan (made once per process)."""

    pw: Pathway
    work: WorkloadAccumulator
    nbranches: int
    nstates: int


def _context(plan: _Plan) -> _Context:
    pw = pathway_of(plan.protocol)
    sc = plan.scenario
    return _Context(
        pw,
        WorkloadAccumulator(pw, sc.study_start, dict(sc.tablet_mg), plan.patients),
        len(plan.protocol.decision.branches),
        len(pw.end_states),
    )


_contexts: dict[str, _Context] = {}  # a worker's contexts, by plan key


def _worker_context(plan: _Plan) -> _Context:
    """A worker's context for a plan, made on its first chunk of the plan."""
    ctx = _contexts.get(plan.key)
    if ctx is None:
        keep_freed_arrays()  # a worker simulates many chunks (see _allocator.py)
        if len(_contexts) > 8:
            _contexts.clear()
        ctx = _contexts[plan.key] = _context(plan)
    return ctx


def _streams(plan: _Plan, first: int, n: int) -> Streams:
    """The random streams of patients ``first .. first+n-1`` (whole blocks): block b's stream is the
    seed's b-th spawned child, made directly (``SeedSequence(seed, spawn_key=(b,))``)."""
    b0 = first // plan.block
    sizes = [min(plan.block, first + n - b * plan.block) for b in range(b0, -(-(first + n) // plan.block))]
    gens = [
        np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(b0 + j,))) for j in range(len(sizes))
    ]
    return Streams(gens, sizes)


class Inputs(NamedTuple):
    """A chunk's patients, random streams and enrolment (what :func:`_chunk_inputs` answers).

    ``rng`` has already made the enrolment draws and moves on with every draw the chunk makes: the
    inputs can be simulated **once**; simulating them again would draw other numbers (a second run of a
    chunk makes its inputs again with :func:`_chunk_inputs`)."""

    first: int  # the chunk's first patient
    n: int  # its patients
    rng: Streams  # their streams, past the enrolment draws
    run: I  # each patient's run
    enrol: F  # each patient's enrolment day (days since study start)
    carry: float  # the enrolment day the chunk's last run reaches (the next chunk starts from it)


def _chunk_inputs(plan: _Plan, i: int, carry: float) -> Inputs:
    """Chunk ``i``'s patients, random streams and enrolment, given the enrolment day the chunk's first
    run has reached (``carry``); answers the day its last run reaches too."""
    first = i * plan.chunk
    n = min(plan.chunk, plan.total - first)
    rng = _streams(plan, first, n)
    run, enrol, carry = _enrolment(rng, first, n, plan.patients, plan.scenario.accrual_per_month, carry)
    return Inputs(first, n, rng, run, enrol, carry)


def _chunk_starts(plan: _Plan) -> Iterator[tuple[float, Inputs]]:
    """The enrolment day each chunk starts from (the previous chunk's last), in chunk order, with the
    chunk's inputs drawn from it (cheap: the enrolment draws only); a chunk simulated in this process
    goes on from these, so its enrolment is drawn once (each ``Inputs`` is simulated once: see there)."""
    carry = 0.0
    for i in range(plan.nchunks):
        inputs = _chunk_inputs(plan, i, carry)
        yield carry, inputs
        carry = inputs.carry


def _apply_design(plan: _Plan, c: Cohort, first: int) -> tuple[Cohort, I, I, I]:
    """A design's rule over each run of the chunk (runs are whole in a chunk, see ``_Plan.block``): the
    first stage's favourable responses, whether the run stops for futility, whether it declares success;
    and the chunk without the patients a stop leaves unenrolled."""
    d = plan.design
    assert d is not None
    run = c.run
    r0, nr = int(run[0]), int(run[-1]) - int(run[0]) + 1
    pos = (np.arange(first, first + c.size) % plan.patients).astype(np.int64)  # place in the run's order
    fav = c.favourable.astype(np.int64)  # intention to treat: no decision counts as not favourable
    n1 = getattr(d, "n1", d.n)
    fav1 = np.bincount(run - r0, weights=fav * (pos < n1), minlength=nr).astype(np.int64)
    r1 = getattr(d, "r1", None)
    stopped = (fav1 <= r1) if r1 is not None else np.zeros(nr, bool)
    enrolled = ~(stopped[run - r0] & (pos >= n1))
    total = np.bincount(run - r0, weights=fav * enrolled, minlength=nr).astype(np.int64)
    success = ~stopped & (total > d.r)
    kept = c if enrolled.all() else subset(c, np.flatnonzero(enrolled))
    return kept, fav1, stopped.astype(np.int64), success.astype(np.int64)


def _simulate_one(
    plan: _Plan, ctx: _Context, i: int, carry: float, keep_sample: bool, inputs: Inputs | None = None
) -> _Chunk:
    """Chunk ``i`` from the enrolment day ``carry`` (``inputs``: its inputs already drawn from it, with
    the streams where the enrolment left them, used up here)."""
    first, n, rng, run, enrol, _ = _chunk_inputs(plan, i, carry) if inputs is None else inputs
    c = simulate_chunk(ctx.pw, plan.scenario, rng, run, enrol)
    fav1 = stopped = success = None
    if plan.design is not None:
        c, fav1, stopped, success = _apply_design(plan, c, first)
        run = c.run
    r0, nr = int(run[0]), int(run[-1]) - int(run[0]) + 1
    quit_early = ~c.screen_failed & ~c.decided
    return _Chunk(
        stopped=stopped,
        success=success,
        fav1=fav1,
        sample=head(c, min(SAMPLE, plan.patients)) if keep_sample and first == 0 else None,
        r0=r0,
        branch=np.bincount(c.branch + 1, minlength=ctx.nbranches + 1),
        state=np.bincount(c.end_state, minlength=ctx.nstates),
        reason=np.bincount(c.withdraw_reason[quit_early], minlength=3),
        crit={cid: _count(codes[c.decided], c.labels[cid]) for cid, codes in c.codes.items()},
        fav=np.bincount(run - r0, weights=c.favourable, minlength=nr).astype(np.int64),
        dec=np.bincount(run - r0, weights=c.decided, minlength=nr).astype(np.int64),
        started=int(np.count_nonzero(~c.screen_failed)),
        work=ctx.work.table(c),
        last=first + n,
    )


def _remote_chunk(plan: _Plan, i: int, carry: float) -> _Chunk:
    """Chunk ``i`` on a Dask worker: its streams re-made from the seed, so the enrolment it redraws,
    and everything after, is what the in-process path computes; only counts and tables go back."""
    return _simulate_one(plan, _worker_context(plan), i, carry, keep_sample=False)


def _count(codes: NDArray[np.int8], labels: tuple[str, ...]) -> dict[str, int]:
    """Occurrences of each outcome (by its code), the outcomes that occur, in sorted order of the labels."""
    k = np.bincount(codes, minlength=len(labels)).tolist()
    return {lab: k[i] for i, lab in sorted(enumerate(labels), key=lambda t: t[1]) if k[i]}


class ScenarioReasonError(ScenarioError, SimulationError):
    """The scenario withdraws patients for a reason the protocol does not have: located in the scenario
    file, as its other problems are (a :class:`ScenarioError`), and still a :class:`SimulationError`."""


def withdrawal_reasons(pw: Pathway, sc: Scenario) -> tuple[str, str, str]:
    """The protocol's reasons for the simulated causes (death, toxicity, dropout), checked."""
    known = pw.protocol.early_termination.reason_ids
    want = (
        ("death", sc.death_per_month, ["death_per_month"], " (death_per_month is not 0)"),
        ("toxicity", sc.toxicity_stop_per_month, ["toxicity", "stop_per_month"], " (toxicity.stop_per_month is not 0)"),
        (sc.dropout_reason, sc.dropout_per_month, ["dropout_reason"], ""),
    )
    problems = [
        sc.problem(
            where,
            f"the scenario withdraws patients for {reason!r}{why}, which is not an early-termination reason of "
            f"the protocol ({', '.join(known)})",
        )
        for reason, rate, where, why in want
        if rate > 0 and reason not in known
    ]
    if problems:
        raise ScenarioReasonError(problems)
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
    """The trials' proportions at 2.5, 25, 50, 75 and 97.5 %. The spread is of proportions trials gave (a
    trial of 1 patient gives 0 or 1, never an interpolated 0.05): the lower percentiles the observed
    proportion at or below, the upper ones the observed proportion at or above (so 2.5-97.5 holds at least
    95 % of the trials); the median the usual one (the middle two's mean for an even number of trials)."""
    if p.size == 0:
        return {}
    lower = np.quantile(p, [0.025, 0.25], method="lower")
    upper = np.quantile(p, [0.75, 0.975], method="higher")
    values = (lower[0], lower[1], np.quantile(p, 0.5), upper[0], upper[1])
    return {f"p{q:g}": float(v) for q, v in zip((2.5, 25, 50, 75, 97.5), values, strict=True)}


def _cp_lower(k: NDArray[np.int64], n: NDArray[np.int64], level: float = 0.95) -> NDArray[np.float64]:
    """Exact (Clopper-Pearson) lower bounds, vectorised (engine.clopper_pearson for one)."""
    from scipy.special import betaincinv

    a = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lo = betaincinv(np.maximum(k, 1), np.maximum(n - k + 1, 1), a)
    return np.where((k == 0) | (n == 0), 0.0, lo)


def _check_cluster(cluster: Any) -> None:
    """Refuse a cluster that is not ``local:N``, ``tcp://HOST:PORT`` or a ``distributed.Client``, or Dask
    distributed not installed (before anything runs)."""
    try:
        from distributed import Client
    except ImportError:
        raise SimulationError(
            "running on a cluster needs Dask distributed: pip install 'trialflow[dask]'"
        ) from None
    if isinstance(cluster, Client):
        return
    if not isinstance(cluster, str):
        raise SimulationError(f"a cluster is 'local:N', 'tcp://HOST:PORT' or a distributed.Client, got {cluster!r}")
    if cluster.startswith("local:"):
        text = cluster.removeprefix("local:")
        if not text.isdigit() or not 1 <= int(text) <= 256:
            raise SimulationError(f"local:N needs a number of worker processes from 1 to 256, got {cluster!r}")
        return
    host, _, port = cluster.removeprefix("tcp://").rpartition(":")
    if not cluster.startswith("tcp://") or not host or not port.isdigit():
        raise SimulationError(f"a cluster is 'local:N' or 'tcp://HOST:PORT', got {cluster!r}")


def _client(cluster: Any) -> tuple[Any, Callable[[], None]]:
    """A Dask distributed client for ``cluster`` (``local:N``, ``tcp://HOST:PORT`` or a ``Client``)
    and how to let go of it."""
    _check_cluster(cluster)
    from distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        return cluster, lambda: None
    if cluster.startswith("local:"):
        lc = LocalCluster(
            n_workers=int(cluster.removeprefix("local:")),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=50,
        )
        client = Client(lc)

        def close_local() -> None:
            client.close()
            lc.close()

        return client, close_local
    try:
        client = Client(cluster, timeout="15s")
    except (OSError, TimeoutError) as err:
        raise SimulationError(f"cannot reach the Dask scheduler at {cluster}: {err}") from None
    return client, client.close


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
    cluster: Any = None,
    design: Design | None = None,
) -> SimulationResult:
    """Simulate ``runs`` replicate trials of ``patients`` patients each through the protocol.

    Results depend only on the seed: every block of :data:`BLOCK` patients has its own random stream,
    and chunks are folded in order, whatever ``chunk``, ``threads`` or ``cluster``. Without a cluster the
    chunks run in this process, ``threads`` (default :data:`THREADS`) side by side; with ``cluster``
    (``local:N``, ``tcp://HOST:PORT`` or a ``distributed.Client``) on its workers, chunk 0 (which keeps
    the per-patient sample) here.

    With a ``design`` (``trialflow.engine.design``) each run is one trial of it: ``patients`` must be the
    design's ``n``; a run whose first ``n1`` patients give at most ``r1`` favourable responses stops for
    futility and its later patients are never enrolled (they count nowhere: branches, endpoint,
    workload); ``result.design`` holds the simulated operating characteristics. Random streams then
    belong to blocks of whole runs (so a run's stopping rule is applied inside its chunk)."""
    if design is not None and patients != design.n:
        raise SimulationError(f"a trial of the design has {design.n} patients, not {patients}")
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
    check_rules([(c.id, c.rule) for c in proto.decision.criteria])
    total = patients * runs
    if chunk < 1 or chunk % BLOCK:
        raise SimulationError(f"the chunk size must be a positive multiple of {BLOCK} patients, got {chunk}")
    if cluster is not None:
        _check_cluster(cluster)  # a bad one is an error even when a single chunk needs no cluster
    block = BLOCK if design is None else patients * max(1, BLOCK // patients)  # whole runs per block
    plan = _Plan(proto, sc, seed, patients, total, block * (chunk // BLOCK), block, design)
    ctx = _context(plan)
    pw, work = ctx.pw, ctx.work
    reasons = withdrawal_reasons(pw, sc)
    nchunks = plan.nchunks
    if nchunks > 1:
        keep_freed_arrays()  # chunk after chunk of the same arrays: reuse the memory (see _allocator.py)
    branches = [b.id for b in proto.decision.branches]
    states = list(pw.end_states)
    branch_n = np.zeros(len(branches) + 1, np.int64)
    state_n = np.zeros(len(states), np.int64)
    reason_n = np.zeros(3, np.int64)
    crit: dict[str, dict[str, int]] = {c.id: {} for c in proto.decision.criteria}
    fav_run = np.zeros(runs, np.int64)
    dec_run = np.zeros(runs, np.int64)
    started = 0
    sample: Cohort | None = None
    stop_run = np.zeros(runs, np.int64)
    success_run = np.zeros(runs, np.int64)
    fav1_run = np.zeros(runs, np.int64)

    def fold(k: _Chunk) -> None:
        nonlocal branch_n, state_n, reason_n, started, sample
        sample = sample if k.sample is None else k.sample
        if k.stopped is not None and k.success is not None and k.fav1 is not None:
            stop_run[k.r0 : k.r0 + len(k.stopped)] = k.stopped
            success_run[k.r0 : k.r0 + len(k.success)] = k.success
            fav1_run[k.r0 : k.r0 + len(k.fav1)] = k.fav1
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

    starts = _chunk_starts(plan)
    if cluster is not None and nchunks > 1:
        # the workers simulate whole chunks and send back only their counts and month table; this
        # process draws the enrolment carries (cheap), simulates chunk 0 itself (the sample keeps its
        # pathway) and folds in chunk order, with at most 2 x workers chunks in flight
        client, close = _client(cluster)
        try:
            width = max(1, len(client.scheduler_info().get("workers", {})))
            remote_plan = client.scatter(plan, broadcast=True)
            pending: deque[Any] = deque()
            first_inputs = next(starts)[1]  # chunk 0 is simulated here
            nxt = 1

            def top_up() -> None:
                nonlocal nxt
                while len(pending) < 2 * width and nxt < nchunks:
                    pending.append(client.submit(_remote_chunk, remote_plan, nxt, next(starts)[0], pure=False))
                    nxt += 1

            top_up()
            fold(_simulate_one(plan, ctx, 0, 0.0, keep_sample=True, inputs=first_inputs))
            while pending:
                done = pending.popleft().result()
                top_up()
                fold(done)
        finally:
            close()
    else:
        workers = max(1, min(threads if threads is not None else THREADS, nchunks))
        if workers == 1:
            for i, (carry, inputs) in enumerate(starts):
                fold(_simulate_one(plan, ctx, i, carry, True, inputs))
        else:
            # numpy and the random generators release the GIL on whole arrays: chunks run side by side,
            # and are folded in chunk order, at most ``workers + 1`` of them in memory
            with ThreadPoolExecutor(workers) as tpool:
                tpending: deque[Future[_Chunk]] = deque()
                for i, (carry, inputs) in enumerate(starts):
                    tpending.append(tpool.submit(_simulate_one, plan, ctx, i, carry, True, inputs))
                    if len(tpending) > workers:
                        fold(tpending.popleft().result())
                while tpending:
                    fold(tpending.popleft().result())
    arm_n: dict[str, int] = {}
    for b, br in enumerate(proto.decision.branches):
        arm_n[br.to] = arm_n.get(br.to, 0) + int(branch_n[b + 1])
    favourable, evaluable = int(fav_run.sum()), int(dec_run.sum())
    from trialflow.engine.design import clopper_pearson

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
        design=None if design is None else _design_result(design, runs, stop_run, success_run, fav1_run),
    )


def _design_result(design: Design, runs: int, stopped: I, success: I, fav1: I) -> DesignRun:
    """The simulated operating characteristics of ``design`` over the runs, with exact 95 % intervals."""
    from trialflow.engine.design import clopper_pearson

    n1 = getattr(design, "n1", design.n)
    size = np.where(stopped > 0, n1, design.n)
    ks, kst = int(success.sum()), int(stopped.sum())
    k1 = int(fav1.sum())
    sd = float(size.std(ddof=1)) if runs > 1 else 0.0
    half = 1.959963984540054 * sd / np.sqrt(runs)
    en = float(size.mean())
    return DesignRun(
        design=design.to_dict(),
        runs=runs,
        p_success=ks / runs,
        p_success_ci95=clopper_pearson(ks, runs),
        p_early_stop=kst / runs,
        p_early_stop_ci95=clopper_pearson(kst, runs),
        expected_n=en,
        expected_n_ci95=(float(en - half), float(en + half)),
        rate=k1 / (runs * n1),
        rate_ci95=clopper_pearson(k1, runs * n1),
    )
