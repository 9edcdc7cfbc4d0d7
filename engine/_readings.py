"""One reading of each protocol element that the engine, the amendment replay and the simulator all apply.

Each reading has a scalar form (one patient, calendar dates: what the schedule, the worklist and the
decision preview call) and a batch form (numpy arrays of day numbers with one entry per patient, nan for
"none": what the simulator calls), side by side, and the tests hold the two equal
(``tests/test_readings.py``). numpy is imported by the batch forms only, so the CLI's paths never load it.

- a visit's **window**: target = anchor + day, open from ``before`` days earlier to ``after`` days later;
- a visit's **completion**: done once every record kind it asks for (:func:`defining_kinds`: Tg with its
  TgAb, the treatment's record) has a record inside the window, no later than the day the patient left
  the phase; done on the latest of those first records;
- the decision's **readiness**: the day every criterion visit is done, or its window has closed;
- the criterion's **evidence**: the records it may judge are those its declared visits ask for, dated
  inside those visits' windows (a scan outside them is part of the record, not of the decision);
- the **branch**: the first branch whose condition holds, the default otherwise;
- the **phase graph**: where a trigger moves a patient (the protocol's transitions, from which the engine's
  machine is built), whether a phase ends with the decision, and the **route** a patient runs from a phase
  when each phase runs its course: into the decision phase from a phase that leads into it, otherwise by
  the protocol's ``complete`` move, until the decision phase or a terminal phase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from trialflow.protocol import Branch, Condition, Decision, Protocol, Visit

    F = NDArray[Any]

__all__ = [
    "Route",
    "choose_branch",
    "choose_branches",
    "completion",
    "completion_batch",
    "defining_kinds",
    "judged",
    "judged_batch",
    "leads_to_decision",
    "leads_to_decision_batch",
    "missing_kinds",
    "phase_after",
    "phase_after_batch",
    "ready_batch",
    "ready_date",
    "route",
    "route_batch",
    "visit_window",
    "visit_window_batch",
    "window_offsets",
]

_DAY = dt.timedelta(days=1)


# -- a visit's window -------------------------------------------------------------------------------
Offsets = tuple[dt.timedelta, dt.timedelta, dt.timedelta]


def window_offsets(visit: Visit) -> Offsets:
    """``visit``'s day from its phase anchor, and its window's days before and after that day, as time spans."""
    return (dt.timedelta(days=visit.day), dt.timedelta(days=visit.window.before),
            dt.timedelta(days=visit.window.after))


def visit_window(anchor: dt.date, visit: Visit, offsets: Offsets | None = None) -> tuple[dt.date, dt.date, dt.date]:
    """(target, first day, last day) of ``visit`` for a patient whose phase anchor is ``anchor``. ``offsets``: the
    visit's :func:`window_offsets`, where the caller keeps them (placement, for every visit of every patient)."""
    day, before, after = offsets if offsets is not None else window_offsets(visit)
    target = anchor + day
    return target, target - before, target + after


def visit_window_batch(anchor: F, visit: Visit) -> tuple[F, F, F]:
    """:func:`visit_window` over anchors given as day numbers."""
    target = anchor + visit.day
    return target, target - visit.window.before, target + visit.window.after


# -- a visit's completion ---------------------------------------------------------------------------
def defining_kinds(protocol: Protocol, visit: Visit) -> tuple[str, ...]:
    """The record kinds that mark the visit done: every kind of its assessments (Tg with its TgAb), and
    the record of its treatment action."""
    kinds = [k for a in visit.assessments for k in protocol.assessment(a).observation_kinds]
    if visit.treatment is not None:
        kinds.append("rai_therapy" if visit.treatment.activity_mbq else "dispense")
    return tuple(dict.fromkeys(kinds))


def completion(kinds: Sequence[str], dates: Mapping[str, Iterable[dt.date]], first: dt.date,
               last: dt.date) -> dt.date | None:
    """The day the visit is done (None: not done): every one of ``kinds`` has a record dated in
    [``first``, ``last``]; the day is the latest of each kind's first such record."""
    firsts = [min((d for d in dates.get(k, ()) if first <= d <= last), default=None) for k in kinds]
    if not firsts or any(d is None for d in firsts):
        return None
    return max(d for d in firsts if d is not None)


def missing_kinds(kinds: Sequence[str], dates: Mapping[str, Iterable[dt.date]], first: dt.date,
                  last: dt.date) -> tuple[str, ...]:
    """The ``kinds`` without a record dated in [``first``, ``last``] (what keeps :func:`completion` None):
    a visit that has its Tg but not its TgAb is missing ``("tgab",)``."""
    return tuple(k for k in kinds if not any(first <= d <= last for d in dates.get(k, ())))


def completion_batch(kinds: Sequence[str], days: Mapping[str, Sequence[F]], first: F, last: F) -> F:
    """:func:`completion` per patient: ``days[kind]`` are that kind's record days (one array per record
    slot, nan: none); answers the day done, nan where not done."""
    import numpy as np

    done = None  # the latest of the kinds' earliest days so far (inf: a kind without one)
    for k in kinds:
        earliest = None
        for d in days.get(k, ()):
            with np.errstate(invalid="ignore"):
                inside = d >= first
                inside &= d <= last
            day = np.where(inside, d, np.inf)  # (a masked fmin is several times slower than this)
            earliest = day if earliest is None else np.fmin(earliest, day, out=earliest)
        if earliest is None:
            earliest = np.full(first.shape, np.inf)
        done = earliest if done is None else np.maximum(done, earliest, out=done)
    if done is None:
        return np.full(first.shape, np.nan)
    return np.where(np.isfinite(done), done, np.nan)


# -- the decision's readiness -----------------------------------------------------------------------
def ready_date(visits: Iterable[tuple[dt.date | None, dt.date]]) -> dt.date:
    """The day the decision is ready, from each criterion visit's (day done or None, last day of window)."""
    return max(done if done is not None else end + _DAY for done, end in visits)


def ready_batch(visits: Iterable[tuple[F, F]]) -> F:
    """:func:`ready_date` per patient, from each criterion visit's (day done or nan, last day of window)."""
    import numpy as np

    ready: F | None = None
    for done, end in visits:
        day = np.where(np.isnan(done), end + 1, done)
        ready = day if ready is None else np.maximum(ready, day)
    if ready is None:
        raise ValueError("a decision needs at least one criterion visit")
    return ready


# -- the criterion's evidence -----------------------------------------------------------------------
def judged(kind: str, date: dt.date, windows: Iterable[tuple[dt.date, dt.date, Iterable[str]]]) -> bool:
    """Whether a record of ``kind`` on ``date`` is evidence for a criterion whose visits have these
    (first day, last day, record kinds) windows."""
    return any(first <= date <= last and kind in kinds for first, last, kinds in windows)


def judged_batch(kind: str, days: F, windows: Iterable[tuple[F, F, Iterable[str]]]) -> NDArray[Any]:
    """:func:`judged` per patient for records on ``days`` (nan: no record, never judged)."""
    import numpy as np

    out = np.zeros(days.shape, bool)
    with np.errstate(invalid="ignore"):
        for first, last, kinds in windows:
            if kind in kinds:
                out |= (days >= first) & (days <= last)
    return out


# -- the branch -------------------------------------------------------------------------------------
def choose_branch(decision: Decision, outcomes: Mapping[str, str]) -> Branch:
    """The first branch whose condition holds; the default branch otherwise."""
    return decision.choose(outcomes)


Codes = Mapping[str, "NDArray[Any]"]
Labels = Mapping[str, Sequence[str]]


def _member(codes: Codes, labels: Labels, criterion: str, outcomes: Iterable[str], n: int) -> NDArray[Any]:
    """Whether each patient's outcome of ``criterion`` is among ``outcomes``: a lookup by outcome code."""
    import numpy as np

    got = codes.get(criterion)
    if got is None:
        return np.zeros(n, bool)
    wanted = set(outcomes)
    return np.array([name in wanted for name in labels[criterion]], dtype=bool)[got]


def _holds(cond: Condition, codes: Codes, labels: Labels, fav: NDArray[Any]) -> NDArray[Any]:
    """:meth:`Condition.holds` over arrays of outcome codes (one entry per patient)."""
    import numpy as np

    if cond.kind == "criterion":
        return _member(codes, labels, cond.criterion or "", cond.outcomes, fav.shape[0])
    if cond.kind == "favourable":
        return fav.copy() if cond.favourable else ~fav
    parts = [_holds(c, codes, labels, fav) for c in cond.children]
    if cond.kind == "any":
        return np.logical_or.reduce(parts) if parts else np.zeros(fav.shape, bool)
    if cond.kind == "all":
        return np.logical_and.reduce(parts) if parts else np.ones(fav.shape, bool)
    return ~parts[0]


def choose_branches(decision: Decision, codes: Codes, labels: Labels) -> tuple[NDArray[Any], NDArray[Any]]:
    """(favourable, branch index) per patient: :func:`choose_branch` over arrays of outcome codes
    (``codes[criterion]`` holds each patient's outcome as an index into ``labels[criterion]``)."""
    import numpy as np

    n = len(next(iter(codes.values())))
    count = np.zeros(n, np.int64)
    for c in decision.criteria:
        count += _member(codes, labels, c.id, c.favourable, n)
    fav = count >= decision.min_criteria
    chosen = np.full(n, -1, np.int64)
    for i, b in enumerate(decision.branches):
        if b.default:
            hit = np.ones(n, bool)
        elif b.when is None:
            hit = np.zeros(n, bool)
        else:
            hit = _holds(b.when, codes, labels, fav)
        chosen[(chosen < 0) & hit] = i
    return fav, chosen


# -- the phase graph --------------------------------------------------------------------------------
# Phases are named by id in the scalar forms and by their index in ``protocol.phases`` in the batch forms
# (-1: none), one entry per patient.
def phase_after(protocol: Protocol, phase: str, trigger: str) -> str | None:
    """Where ``trigger`` moves a patient in ``phase`` (None: the protocol has no such move)."""
    t = protocol.transition(phase, trigger)
    return t.dest if t is not None else None


def _index(protocol: Protocol) -> dict[str, int]:
    return {p.id: i for i, p in enumerate(protocol.phases)}


def _by_phase(protocol: Protocol, phases: NDArray[Any], answer: Sequence[Any], fill: Any) -> NDArray[Any]:
    """A per-phase answer looked up per patient (``fill`` where the patient has no phase)."""
    import numpy as np

    table = np.array([*answer, fill])  # index -1 reads the fill
    return table[np.asarray(phases, dtype=np.int64)]


def phase_after_batch(protocol: Protocol, phases: NDArray[Any], trigger: str) -> NDArray[Any]:
    """:func:`phase_after` per patient."""
    at = _index(protocol)
    dests = [phase_after(protocol, p.id, trigger) for p in protocol.phases]
    return _by_phase(protocol, phases, [at[d] if d is not None else -1 for d in dests], -1)


def leads_to_decision(protocol: Protocol, phase: str) -> bool:
    """Whether a patient in ``phase`` waits for the decision: the decision phase itself, or a phase with a
    move into it (the investigator's decision ends it, not a coordinator's ``complete``)."""
    dec = protocol.decision.phase
    return phase == dec or any(t.source == phase and t.dest == dec for t in protocol.transitions)


def leads_to_decision_batch(protocol: Protocol, phases: NDArray[Any]) -> NDArray[Any]:
    """:func:`leads_to_decision` per patient."""
    return _by_phase(protocol, phases, [leads_to_decision(protocol, p.id) for p in protocol.phases], False)


Route = tuple[tuple[str, ...], str]


def route(protocol: Protocol, phase: str) -> Route:
    """(the phases run through, the phase the route ends in) from ``phase`` when each runs its course: a
    phase that leads to the decision ends the route in the decision phase; otherwise the ``complete``
    move is taken, until a terminal phase. A phase with no ``complete`` move (or one that comes round again)
    ends the route in itself: a patient stays there until withdrawn."""
    passed: list[str] = []
    here = phase
    dec = protocol.decision.phase
    while here != dec and not protocol.phase(here).terminal and here not in passed:
        passed.append(here)
        if leads_to_decision(protocol, here):
            return tuple(passed), dec
        nxt = phase_after(protocol, here, protocol.triggers.complete)
        if nxt is None:
            return tuple(passed[:-1]), here
        here = nxt
    return tuple(passed), here


def route_batch(protocol: Protocol, phases: NDArray[Any]) -> NDArray[Any]:
    """The phase each patient's :func:`route` ends in, per patient."""
    at = _index(protocol)
    return _by_phase(protocol, phases, [at[route(protocol, p.id)[1]] for p in protocol.phases], -1)
