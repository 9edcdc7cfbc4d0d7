"""Virtual patients, generated a chunk at a time with numpy: latent course, visit dates, observations,
the decision through the rules, the branch taken, and the course after it.

Times are whole days since the scenario's ``study_start``. Every random draw is made for every patient
whatever the parameters, so two scenarios run with one seed share their random numbers (common random
numbers: changing one probability changes only the patients it must).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trialflow.engine._readings import route_batch

from ._kernels import kernels
from ._pathways import Pathway, PhasePlan, SimulationError, VisitPlan, choose_branches
from ._scenario import Scenario

__all__ = ["MONTH_DAYS", "Cohort", "Segment", "Streams", "dose_on", "head", "simulate_chunk", "subset"]

MONTH_DAYS = 365.25 / 12
F = NDArray[np.float64]
B = NDArray[np.bool_]
I = NDArray[np.int64]  # noqa: E741 - the usual name for an index array


class Streams:
    """The random numbers of a chunk made of whole blocks of patients, each block with its own stream.

    A draw of ``size`` (patients, ...) is each block's draw for its own patients, stacked, so a patient
    gets the same numbers whatever the chunk size: results depend on the seed, never on the chunking.
    """

    __slots__ = ("_gens", "_sizes")

    def __init__(self, gens: list[np.random.Generator], sizes: list[int]):
        self._gens, self._sizes = gens, sizes

    def _draw(self, name: str, args: tuple[Any, ...], size: int | tuple[int, ...], **kw: Any) -> Any:
        if len(self._gens) == 1:
            return getattr(self._gens[0], name)(*args, size, **kw)
        rest = () if isinstance(size, int) else tuple(size[1:])
        return np.concatenate(
            [getattr(g, name)(*args, (k, *rest), **kw) for g, k in zip(self._gens, self._sizes, strict=True)]
        )

    def random(self, size: int | tuple[int, ...]) -> F:
        return self._draw("random", (), size)

    def standard_normal(self, size: int | tuple[int, ...]) -> F:
        return self._draw("standard_normal", (), size)

    def exponential(self, scale: float, size: int) -> F:
        return self._draw("exponential", (scale,), size)

    def poisson(self, lam: float, size: int) -> I:
        return self._draw("poisson", (lam,), size)

    def integers(self, low: int, high: int, size: int) -> I:
        return self._draw("integers", (low, high), size)

    def bits32(self, size: int) -> NDArray[np.uint32]:
        """Uniform 32-bit words (the generator's raw output: the cheapest draw there is): each block's
        ``integers(0, 2**32, dtype=np.uint32)`` draw, word for word (see :func:`_words32`)."""
        if len(self._gens) == 1:
            return _words32(self._gens[0], size)
        return np.concatenate([_words32(g, k) for g, k in zip(self._gens, self._sizes, strict=True)])


def _words32(gen: np.random.Generator, k: int) -> NDArray[np.uint32]:
    """``gen.integers(0, 2**32, k, dtype=np.uint32)``, the same words and the generator left in the same
    state, from the bit generator's raw 64-bit outputs: numpy makes a full-range 32-bit word from the low
    half of an output and keeps the high half for the next word (``has_uint32``), so a whole run of
    words is the outputs' halves in memory order (little-endian), which ``random_raw`` gives at half the
    cost. A half kept over before the draw is its first word; one left over after it is kept likewise.
    Other bit generators than PCG64 (or a big-endian machine) draw as numpy does."""
    bg = gen.bit_generator
    if not isinstance(bg, np.random.PCG64) or sys.byteorder != "little":
        return gen.integers(0, 1 << 32, k, dtype=np.uint32)
    out = np.empty(k, np.uint32)
    state = bg.state
    start = 0
    if state["has_uint32"] and k:  # the half kept over is the first word
        out[0] = state["uinteger"]
        state["has_uint32"] = 0
        bg.state = state
        start = 1
    pairs = (k - start) // 2
    out[start : start + 2 * pairs] = bg.random_raw(pairs).view(np.uint32)
    if (k - start) % 2:  # the last word: the low half of one more output, its high half kept over
        word = int(bg.random_raw())
        out[-1] = word & 0xFFFFFFFF
        state = bg.state
        state["has_uint32"], state["uinteger"] = 1, word >> 32
        bg.state = state
    return out


@dataclass(slots=True)
class Segment:
    """Days on a phase treatment at one daily dose: [start, stop) per patient (empty if stop <= start).

    The arrays are shared, not copied, and read-only (a write raises): ``start`` of a phase's first
    segment is the cohort's ``phase_entry`` array of the phase and ``stop`` of its last is its
    ``phase_exit`` array (before the decision); ``dose_mg_per_day`` is one read-only broadcast view of
    the dose (``level``) when every patient has the same. Copy one before changing it."""

    treatment: str
    start: F
    stop: F
    dose_mg_per_day: F
    level: float | None = None  # the dose of every patient, when it is one


@dataclass(slots=True)
class Cohort:
    """One chunk of simulated patients; every array has one entry (row) per patient."""

    pathway: Pathway
    scenario: Scenario
    run: I
    enrol: F
    day0: F
    screen_failed: B
    course: I
    tg0: F
    tg_slope: F
    tgab_positive: B
    reinduced: B
    new_avid_lesions: I
    diameter0: F  # P x L, nan where the patient has fewer lesions
    growth_per_day: F
    new_lesion_day: F  # days after day 0 (inf: never)
    has_non_target: B
    withdraw_day: F  # absolute (inf: never)
    withdraw_reason: I  # 0 death, 1 toxicity, 2 dropout
    reduction_days: F  # P x R absolute days of the dose reductions
    visit_day: dict[str, F] = field(default_factory=dict)  # nan: not done
    tg_noise: dict[str, F] = field(default_factory=dict)
    ct_ne: dict[str, B] = field(default_factory=dict)
    decision_day: F = field(default_factory=lambda: np.zeros(0))
    decided: B = field(default_factory=lambda: np.zeros(0, bool))
    codes: dict[str, NDArray[np.int8]] = field(default_factory=dict)  # criterion → outcome code
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # criterion → label of each code
    favourable: B = field(default_factory=lambda: np.zeros(0, bool))
    branch: I = field(default_factory=lambda: np.zeros(0, np.int64))
    end_state: I = field(default_factory=lambda: np.zeros(0, np.int64))
    end_day: F = field(default_factory=lambda: np.zeros(0))
    phase_entry: dict[str, F] = field(default_factory=dict)  # nan: never entered
    phase_exit: dict[str, F] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    _before: tuple[VisitPlan, ...] = ()
    _entries: dict[str, F] = field(default_factory=dict)  # day each phase before the decision is entered
    memo: dict[str, Any] = field(default_factory=dict)  # per-visit arrays computed once (see _records.py)

    @property
    def size(self) -> int:
        return int(self.enrol.shape[0])

    @property
    def outcomes(self) -> dict[str, NDArray[np.str_]]:
        """Each criterion's outcome label per patient ('' where the patient was not decided)."""
        return {
            k: np.where(self.decided, np.asarray(self.labels[k])[v], "") for k, v in self.codes.items()
        }

    # -- the records the criteria read (before the decision, dated on or before it) ------------------
    def _visits_with(self, kind: str) -> list[VisitPlan]:
        return [v for v in self._before if kind in v.kinds or kind in v.defining]

    def kind_days(self, kind: str) -> F:
        """P x V: the dates of the ``kind`` records of the visits before the decision (nan: none)."""
        vs = self._visits_with(kind)
        if not vs:
            return np.full((self.size, 1), np.nan)
        return np.stack([self.visit_day[v.id] for v in vs], axis=1)

    def tg_values(self) -> F:
        vs = self._visits_with("tg")
        if not vs:
            return np.full((self.size, 1), np.nan)
        return np.stack([self.tg_value(v.id) for v in vs], axis=1)

    def tg_value(self, visit: str) -> F:
        """Serum Tg (ug/L, 2 decimals as a laboratory reports it) at the visit's date."""
        d = self.visit_day[visit]
        with np.errstate(invalid="ignore", over="ignore"):
            v = self.tg0 * np.exp(self.tg_slope * (d - self.day0) / 7.0 + self.tg_noise[visit])
        return np.maximum(np.round(v, 2), 0.01)

    def ct_not_evaluable_matrix(self) -> B:
        vs = self._visits_with("ct")
        if not vs:
            return np.zeros((self.size, 1), bool)
        return np.stack([self.ct_ne[v.id] for v in vs], axis=1)

    def lesion_tenths(self, day: F) -> I:
        """P x L target-lesion diameters in tenths of a mm on ``day`` (0: gone or no such lesion)."""
        return lesion_tenths_float(self.diameter0, self.growth_per_day, self.day0, day).astype(np.int64)


def lesion_tenths_float(diameter0: F, growth_per_day: F, day0: F, day: F) -> F:
    """P x L target-lesion diameters in tenths of a mm on ``day`` (0: gone or no such lesion), as whole
    numbers in floats, from each patient's diameters on ``day0`` (P x L, nan: no such lesion) and log growth
    per day (:meth:`Cohort.lesion_tenths` without the conversion to integers: exactly the same values)."""
    t = np.maximum(np.nan_to_num(day - day0, nan=0.0), 0.0)
    with np.errstate(over="ignore"):
        d = diameter0 * np.exp(np.minimum(growth_per_day * t, 50.0))[:, None]
    gone = ~(d >= 3.0)  # < 3 mm: gone from the CT (nan: no such lesion)
    np.minimum(d, 1000.0, out=d)
    np.putmask(d, gone, 0.0)  # (faster than copyto with where=)
    d *= 10
    return np.rint(d, out=d)


def _exp_days(u: F, per_month: float | NDArray[np.float64]) -> F:
    """Exponential waiting times in days from uniforms ``u`` (inf when the rate is 0)."""
    rate = np.asarray(per_month, dtype=np.float64) / MONTH_DAYS
    if rate.ndim == 0:  # one rate for all: the same numbers without the masks
        if rate > 0:
            days = np.log1p(-u)
            np.negative(days, out=days)
            days /= rate
            return days
        return np.full(u.shape, np.inf)
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, -np.log1p(-u) / np.where(rate > 0, rate, 1.0), np.inf)


# a jitter is looked up from the top 12 bits of a 32-bit word (refined when ambiguous): a table of 4,096
# entries (8 KB) is built in a fraction of a millisecond and stays in the L1 cache; a cut splits at most
# one of its blocks, so with a window of w days at most w / 4,096 of the words need the search
_BUCKET_BITS = 12
_HARD = np.iinfo(np.int16).min


@lru_cache(maxsize=64)
def _jitter_table(sd: float, before: int, after: int) -> tuple[NDArray[np.int16], NDArray[np.uint64], int]:
    """The whole-day jitter ``clip(rint(sd * Z), -before, after)`` (Z standard normal) by inverse CDF
    from a uniform 32-bit word u: jitter = -before + #{k : u >= cut[k]}, where cut[k] = 2^32 P(jitter <= k).

    The table gives the answer for each block of 2^(32 - _BUCKET_BITS) words that no cut splits; the few
    split blocks (marked ``_HARD``) are answered by a search of the cuts, so the table's size never changes
    an answer. Probabilities are exact to 2^-32."""
    ks = range(-before, after)
    if sd > 0:
        cdf = [0.5 * math.erfc(-(k + 0.5) / sd / math.sqrt(2.0)) for k in ks]
    else:
        cdf = [1.0 if k + 0.5 > 0 else 0.0 for k in ks]
    cuts = np.array([min(round(f * 2.0**32), 1 << 32) for f in cdf], dtype=np.uint64)
    # cuts at or below block b's first word: those with ceil(cut / 2^16) <= b; at or below its last word:
    # those with floor(cut / 2^16) <= b (running counts over the 2^16 blocks, no search per block)
    shift, blocks = np.uint64(32 - _BUCKET_BITS), 1 << _BUCKET_BITS
    last = np.uint64((1 << (32 - _BUCKET_BITS)) - 1)
    below_start = np.cumsum(np.bincount(((cuts + last) >> shift).astype(np.intp), minlength=blocks + 1))[:blocks]
    below_end = np.cumsum(np.bincount((cuts >> shift).astype(np.intp), minlength=blocks + 1))[:blocks]
    table = np.where(below_start == below_end, below_start - before, _HARD).astype(np.int16)
    return table, cuts, before


_NO_TABLE = np.zeros(1, np.int16)
_NO_CUTS = np.zeros(1, np.uint64)
_NO_BITS = np.zeros(0, np.uint32)
_NO_UNIFORMS = np.zeros(0)


def _anchor(v: VisitPlan, enrol: F, day0: F, entry: F) -> F:
    return enrol if v.anchor == "enrolment" else day0 if v.anchor == "day0" else entry


def _latent(pw: Pathway, sc: Scenario, rng: Streams, run: I, enrol: F) -> Cohort:
    n = enrol.shape[0]
    probs = np.array([c.probability for c in sc.courses])
    course = np.minimum(np.searchsorted(np.cumsum(probs), rng.random(n), side="right"), len(probs) - 1)
    pick = lambda attr: np.take(np.array([getattr(c, attr) for c in sc.courses]), course)  # noqa: E731
    z = rng.standard_normal((n, 4))
    lmin, lmax = sc.target_lesions
    nles: I = np.asarray(rng.integers(lmin, lmax + 1, n), dtype=np.int64)
    d0 = np.maximum(sc.diameter_median_mm * np.exp(sc.diameter_log_sd * rng.standard_normal((n, lmax))), 10.0)
    d0 = np.where(np.arange(lmax)[None, :] < nles[:, None], np.round(d0, 1), np.nan)
    u = rng.random((n, 8))
    death = _exp_days(u[:, 0], sc.death_per_month)
    toxicity = _exp_days(u[:, 1], sc.toxicity_stop_per_month)
    dropout = _exp_days(u[:, 2], sc.dropout_per_month)
    withdraw = np.minimum(np.minimum(death, toxicity), dropout)
    # the first cause to happen (as argmin: the first of equal times)
    reason = np.where(death == withdraw, 0, np.where(toxicity == withdraw, 1, 2)).astype(np.int64)
    levels = max((len(v) for v in pw.dose_levels.values()), default=1)
    gaps = _exp_days(rng.random((n, max(levels - 1, 1))), sc.dose_reduction_per_month)
    return Cohort(
        pathway=pw,
        scenario=sc,
        run=run,
        enrol=enrol,
        day0=np.zeros(n),
        screen_failed=(u[:, 3] < sc.screen_failure_probability) if pw.screen_fail_dest else np.zeros(n, bool),
        course=course.astype(np.int64),
        tg0=sc.tg_baseline_median * np.exp(sc.tg_baseline_log_sd * z[:, 0]),
        tg_slope=pick("tg_slope_per_week") + pick("tg_slope_sd") * z[:, 1],
        tgab_positive=u[:, 4] < sc.tgab_positive_probability,
        reinduced=u[:, 5] < sc.rai_reinduction_probability,
        new_avid_lesions=np.asarray(1 + rng.poisson(sc.extra_new_avid_lesions_mean, n), dtype=np.int64),
        diameter0=d0,
        growth_per_day=(pick("target_log_change_per_month") + pick("target_log_change_sd") * z[:, 2])
        / MONTH_DAYS,
        new_lesion_day=_exp_days(u[:, 6], pick("new_lesions_per_month")),
        has_non_target=u[:, 7] < sc.non_target_probability,
        withdraw_day=withdraw,  # relative to day 0 until the timeline is known
        withdraw_reason=reason,
        reduction_days=np.cumsum(gaps, axis=1),  # relative to day 0 likewise
    )


def _visits(
    c: Cohort, phase: PhasePlan, rng: Streams, entry: F, stop: F, among: B, first: bool = False
) -> F:
    """Place the phase's visits; those not done (missed, after ``stop``, not ``among``) are nan.
    Answers the latest visit day per patient (nan: none)."""
    sc, n = c.scenario, c.size
    place = kernels().place_visit
    latest = np.full(n, np.nan)
    # a phase few patients enter (a rare branch): its visits are placed for those patients only (the
    # same arithmetic per patient; everyone else's visit is not done, nan, as ``among`` would make it)
    rows = np.flatnonzero(among) if 4 * np.count_nonzero(among) < n else None

    def only(a: NDArray[Any]) -> NDArray[Any]:
        """Per-patient array ``a`` (one entry per patient of the cohort) for the patients placed."""
        return a if rows is None else a.take(rows)

    placed = n if rows is None else rows.size
    placed_latest = latest if rows is None else np.full(placed, np.nan)
    placed_among, placed_entry, placed_stop = only(among), only(entry), only(stop)
    for v in phase.visits:
        # only the draws the visit can use (which depends on the protocol, never on the scenario's values,
        # so two scenarios still share their random numbers)
        jittered = bool(v.before or v.after)
        if jittered:
            if max(v.before, v.after) >= -_HARD:
                raise SimulationError(f"visit {v.id!r}: a window of {max(v.before, v.after)} days is too wide")
            table, cuts, before = _jitter_table(float(sc.jitter_sd_days), v.before, v.after)
            u = rng.bits32(n)
        else:
            table, cuts, before, u = _NO_TABLE, _NO_CUTS, 0, _NO_BITS
        can_miss = not first and bool(v.assessments)
        miss = rng.random(n) if can_miss else _NO_UNIFORMS
        if "tg" in v.kinds:
            noise = rng.standard_normal(n)
            noise *= sc.tg_residual_sd  # (in place: the same products, no second array)
            c.tg_noise[v.id] = noise
        else:
            c.tg_noise[v.id] = np.zeros(n)
        c.ct_ne[v.id] = (
            rng.random(n) < sc.ct_not_evaluable_probability
            if "ct" in v.kinds and not first
            else np.zeros(n, bool)
        )
        day = np.empty(placed)
        place(
            only(_anchor(v, c.enrol, c.day0, entry)),
            v.day,
            placed_entry,
            placed_stop,
            placed_among,
            only(u) if jittered else u,  # (u and miss: empty when not drawn)
            32 - _BUCKET_BITS,
            table,
            cuts,
            before,
            _HARD,
            jittered,
            only(miss) if can_miss else miss,
            float(sc.missed_probability),
            can_miss,
            day,
            placed_latest,
        )
        if rows is not None:
            everyone = np.full(n, np.nan)
            everyone[rows] = day
            day = everyone
        c.visit_day[v.id] = day
    if rows is not None:
        latest[rows] = placed_latest
    return latest


def criterion_windows(
    before: tuple[VisitPlan, ...], enrol: F, day0: F, entries: Mapping[str, F], visit_ids: tuple[str, ...]
) -> list[tuple[F, F, VisitPlan]]:
    """(first day, last day, visit) of each of a criterion's visits, per patient (engine/_readings.py),
    among the visits ``before`` the decision, given each patient's enrolment, day 0 and phase entries."""
    by_id = {v.id: v for v in before}
    out = []
    for vid in visit_ids:
        v = by_id.get(vid)
        if v is None:
            raise SimulationError(f"criterion visit {vid!r} is not in a phase before the decision")
        target = _anchor(v, enrol, day0, entries[v.phase]) + v.day
        out.append((target - v.before, target + v.after, v))
    return out


def _ready_day(c: Cohort, entries: dict[str, F], exits: dict[str, F]) -> F:
    """The day every criterion visit is done or its window has closed: the engine's readiness and
    completion readings (engine/_readings.py) over the cohort."""
    from trialflow.engine._readings import completion_batch, ready_batch

    pw = c.pathway
    wanted = sorted({vid for vids in pw.criteria_visits.values() for vid in vids})
    sources = pw.completion_sources
    visits = []
    for lo, hi, v in criterion_windows(c._before, c.enrol, c.day0, entries, tuple(wanted)):
        days = {kind: [c.visit_day[w] for w in ws] for kind, ws in sources[v.id].items()}
        last = np.fmin(hi, exits[v.phase]) if v.phase in exits else hi  # done no later than leaving the phase
        visits.append((completion_batch(v.defining, days, lo, last), hi))
    return ready_batch(visits)


def simulate_chunk(pw: Pathway, sc: Scenario, rng: Streams, run: I, enrol: F) -> Cohort:
    """Simulate the patients enrolled on ``enrol`` (days since study start) through the protocol."""
    c = _latent(pw, sc, rng, run, enrol)
    n = c.size
    before = pw.before_decision
    c._before = pw.visits_before_decision
    ok = ~c.screen_failed
    never = np.full(n, np.inf)
    entries: dict[str, F] = {before[0].id: enrol}
    last = _visits(c, before[0], rng, enrol, never, ok, first=True)
    lo, hi = sc.start_delay_days
    c.day0 = enrol + np.maximum(np.nan_to_num(last - enrol, nan=0.0), 0.0) + rng.integers(lo, hi + 1, n)
    c.withdraw_day = np.where(ok, c.day0 + np.ceil(c.withdraw_day), np.inf)
    c.reduction_days = c.day0[:, None] + np.ceil(c.reduction_days)
    entry = c.day0
    left: dict[str, F] = {before[0].id: c.day0}  # the phases left before the decision, and when
    for k, phase in enumerate(before[1:]):
        entries[phase.id] = entry
        _visits(c, phase, rng, entry, c.withdraw_day, ok)
        entry = entry + phase.length_days
        if k + 2 < len(before):
            left[phase.id] = entry
    c._entries = entries
    ready = _ready_day(c, entries, left)
    c.decision_day = ready + sc.decision_delay_days
    c.decided = ok & (c.decision_day < c.withdraw_day)
    c.decision_day = np.where(c.decided, c.decision_day, np.nan)
    for v in c._before[len(before[0].visits) :]:  # nothing of a phase the patient has left is done
        d = c.visit_day[v.id]
        c.visit_day[v.id] = np.where(c.decided & (d > c.decision_day), np.nan, d)

    from ._evaluate import criteria_inputs, evaluate_criteria

    # the criteria are read at the decision: a patient who never reaches it has no outcome (every use of
    # the codes masks them by ``decided``), so only the decided patients are evaluated, and the others
    # get code 0, never read. (Before the phases' entries, exits and doses are laid out.)
    idx = np.flatnonzero(c.decided)
    got = evaluate_criteria(criteria_inputs(c, None if idx.size == n else idx))
    if idx.size == n:
        c.codes = {k: v[0] for k, v in got.items()}
    else:
        c.codes = {}
        for cid, (codes, _) in got.items():
            c.codes[cid] = np.zeros(n, np.int8)
            c.codes[cid][idx] = codes
    c.labels = {k: v[1] for k, v in got.items()}

    for p in before:
        c.phase_entry[p.id] = np.where(ok, entries[p.id], np.nan)
    exits = [*(entries[p.id] for p in before[2:]), np.where(c.decided, c.decision_day, c.withdraw_day)]
    for p, ex in zip(before[1:], exits, strict=True):
        c.phase_exit[p.id] = np.where(ok, np.minimum(ex, c.withdraw_day), np.nan)
        _dose(c, p, c.phase_entry[p.id], c.phase_exit[p.id])
    c.phase_exit[before[0].id] = np.where(ok, c.day0, np.nan)

    fav, branch = choose_branches(pw.protocol, c.codes, c.labels)
    c.favourable = fav & c.decided
    c.branch = np.where(c.decided, branch, -1)
    states = {s: i for i, s in enumerate(pw.end_states)}
    c.end_state = np.where(
        c.screen_failed, states.get(pw.screen_fail_dest or "", 0), states[pw.withdraw_dest]
    )
    c.end_day = np.where(c.screen_failed, enrol, c.withdraw_day)
    # where each branch's route ends, per patient: the engine's reading of the phase graph (route_batch)
    phases = pw.protocol.phases
    entered = np.array([[p.id for p in phases].index(b.to) for b in pw.protocol.decision.branches])
    route_end = route_batch(pw.protocol, np.where(c.branch >= 0, entered[np.maximum(c.branch, 0)], -1))
    state_of_phase = np.array([states.get(p.id, -1) for p in phases] + [-1])
    for bi, b in enumerate(pw.branches):
        among = c.branch == bi
        entry = c.decision_day
        alive = among.copy()
        for phase in b.phases:
            stop = c.withdraw_day if phase.id in pw.withdraw_from else never
            latest = _visits(c, phase, rng, entry, stop, alive)
            ex = np.fmax(entry + phase.length_days, latest)
            quits = alive & (stop < ex)
            ex = np.where(quits, stop, ex)
            c.phase_entry[phase.id] = np.where(alive, entry, c.phase_entry.get(phase.id, np.nan))
            c.phase_exit[phase.id] = np.where(alive, ex, c.phase_exit.get(phase.id, np.nan))
            _dose(c, phase, np.where(alive, entry, np.nan), np.where(alive, ex, np.nan))
            c.end_day = np.where(quits, stop, c.end_day)
            alive &= ~quits
            entry = ex
        c.end_state = np.where(alive, state_of_phase[route_end], c.end_state)
        c.end_day = np.where(alive, entry, c.end_day)
    return c


def _dose(c: Cohort, phase: PhasePlan, start: F, stop: F) -> None:
    """Days on the phase's treatment, split at the dose reductions (800 → 600 → 400 → 200 mg/day)."""
    if phase.treatment is None or not phase.dose_mg_per_day:
        return
    levels = c.pathway.dose_levels.get(phase.treatment) or (phase.dose_mg_per_day,)
    first = levels.index(phase.dose_mg_per_day) if phase.dose_mg_per_day in levels else len(levels) - 1
    cuts = c.reduction_days  # P x R: segment j runs from cut j - 1 (none: the start) to cut j (none: the stop)
    for j in range(cuts.shape[1] + 1):
        level = (
            levels[min(first + j, len(levels) - 1)]
            if phase.dose_mg_per_day in levels
            else phase.dose_mg_per_day
        )
        a = start if j == 0 else np.maximum(start, cuts[:, j - 1])  # nan (not in the phase) stays nan: empty
        b = stop if j == cuts.shape[1] else np.minimum(stop, cuts[:, j])
        every = np.broadcast_to(np.float64(level), (c.size,))  # one dose for all: a read-only view
        a.flags.writeable = b.flags.writeable = False  # (shared with phase_entry / phase_exit: see Segment)
        c.segments.append(Segment(phase.treatment, a, b, every, float(level)))


def dose_on(c: Cohort, treatment: str, start_dose: float, day: F) -> F:
    """The daily dose on ``day`` given the reductions so far (for the records and the swimmer plot)."""
    levels = c.pathway.dose_levels.get(treatment) or (start_dose,)
    if start_dose not in levels:
        return np.full(c.size, start_dose)
    k = (c.reduction_days <= day[:, None]).sum(axis=1)
    idx = np.minimum(levels.index(start_dose) + k, len(levels) - 1)
    return np.asarray(levels, dtype=np.float64)[idx]


def subset(c: Cohort, idx: I) -> Cohort:
    """The patients ``idx`` of ``c`` (in that order): every per-patient array taken at ``idx``."""
    out: dict[str, Any] = {}
    n = c.size

    def take(a: NDArray[Any]) -> NDArray[Any]:
        return np.take(a, idx, axis=0)  # (np.take: some twice as fast as a[idx])

    for name in Cohort.__dataclass_fields__:
        v = getattr(c, name)
        if isinstance(v, np.ndarray):
            v = take(v) if v.shape[:1] == (n,) else v  # (one not made yet is empty)
        elif isinstance(v, dict):
            v = {key: take(a) if isinstance(a, np.ndarray) else a for key, a in v.items()}
        elif isinstance(v, list):
            v = [Segment(s.treatment, take(s.start), take(s.stop), take(s.dose_mg_per_day), s.level) for s in v]
        out[name] = v
    return Cohort(**out)


def head(c: Cohort, k: int) -> Cohort:
    """The first ``k`` patients of ``c`` (for plots and per-patient records)."""
    out: dict[str, Any] = {}
    for name in Cohort.__dataclass_fields__:
        v = getattr(c, name)
        if isinstance(v, np.ndarray):
            v = v[:k]
        elif name == "memo":
            v = {}
        elif isinstance(v, dict):
            v = {key: a[:k] if isinstance(a, np.ndarray) else a for key, a in v.items()}
        elif isinstance(v, list):
            v = [Segment(s.treatment, s.start[:k], s.stop[:k], s.dose_mg_per_day[:k]) for s in v]
        out[name] = v
    return Cohort(**out)
