"""A patient's state as a fold over its events.

Nothing here touches the database: the store hands over the events, this module answers what they
mean. Two clocks are kept apart: ``known_at`` drops events *recorded* after a moment (the store as
it stood), ``as_of`` drops observations *effective* after a clinical date.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

if TYPE_CHECKING:
    from ._records import Record

__all__ = ["EVENT_COLUMNS", "EVENT_ID_KEYS", "PAYLOAD_VERSIONS", "DamagedEvent", "Event", "NotEnrolled", "PatientState",
           "PhaseStint", "RecordedValue", "events_from_tuples", "fold", "map_event_ids", "stamp", "upcast"]

# Event kinds
ENROLLED = "enrolled"
PHASE_CHANGED = "phase_changed"
OBSERVATION = "observation"
CORRECTION = "correction"
DECISION = "decision"
WITHDRAWN = "withdrawn"
MIGRATED = "migrated"
DEVIATION = "deviation"  # a protocol deviation recorded for a visit (missed, out of window, not done, other)
VISIT_SKIPPED = "visit_skipped"  # a visit deliberately not done, with the reason
SCREEN_FAILED = "screen_failed"  # a screening patient found not to qualify after enrolment
REVERSAL = "reversal"  # undoes a mistaken completion or withdrawal; points at the event it reverses
# Team events (issue 13): signatures, data queries, case-book lock; they do not change the clinical state
SIGNATURE = "signature"
QUERY_OPENED, QUERY_ANSWERED, QUERY_CLOSED = "query_opened", "query_answered", "query_closed"
CASEBOOK_LOCKED, CASEBOOK_UNLOCKED = "casebook_locked", "casebook_unlocked"
#: a screening patient's answers to eligibility criteria it was not asked at enrolment (a version it moves to adds
#: them), or answers given again; the state's answers are the enrolment's with these over them
ELIGIBILITY_ANSWERED = "eligibility_answered"
EVENT_KINDS = (ENROLLED, PHASE_CHANGED, OBSERVATION, CORRECTION, DECISION, WITHDRAWN, MIGRATED, SIGNATURE,
               QUERY_OPENED, QUERY_ANSWERED, QUERY_CLOSED, CASEBOOK_LOCKED, CASEBOOK_UNLOCKED, DEVIATION,
               VISIT_SKIPPED, SCREEN_FAILED, REVERSAL, ELIGIBILITY_ANSWERED)
#: the payload keys, per event kind, whose values (an int or a list of ints, at any depth) are ids of other events
#: of the same patient: a copy of a history into another store (the ODM import) maps them to the ids there, and a
#: signature binds them by the events' places in the history (:func:`map_event_ids` reads them).
EVENT_ID_KEYS: dict[str, frozenset[str]] = {
    DECISION: frozenset({"event_id", "event_ids"}),  # the evidence names the records it used
    CORRECTION: frozenset({"root"}),  # the observation the correction chain starts from
    REVERSAL: frozenset({"reverses"}),
    QUERY_OPENED: frozenset({"event"}),  # the recorded event questioned
    QUERY_ANSWERED: frozenset({"query"}), QUERY_CLOSED: frozenset({"query"}),  # the query_opened event
    CASEBOOK_LOCKED: frozenset({"previous"}), CASEBOOK_UNLOCKED: frozenset({"previous"}),
}


def map_event_ids(kind: str, value: Any, ids: Mapping[int, Any], key: str = "") -> Any:
    """A ``kind`` event's payload ``value`` with every event id in it (under a key of ``EVENT_ID_KEYS[kind]``)
    replaced through ``ids`` (an id ``ids`` does not hold stays as it is)."""
    keys = EVENT_ID_KEYS.get(kind)
    if not keys:
        return value
    if isinstance(value, Mapping):
        return {k: map_event_ids(kind, v, ids, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_event_ids(kind, v, ids, key) for v in value]
    if key in keys and isinstance(value, int) and not isinstance(value, bool):
        return ids.get(value, value)
    return value


# -- payload versions -----------------------------------------------------------------------------
# Every stored payload carries its version under VERSION_KEY (absent: version 1, as written before
# payloads were versioned). Reading an event upcasts its payload step by step to the current version,
# so code only ever sees current payloads and an old store opens under new code. Writing stamps the
# current version. A payload change is a new version here plus its upcaster, never an edit in place.
VERSION_KEY = "_v"
PAYLOAD_VERSIONS: dict[str, int] = {kind: 1 for kind in EVENT_KINDS} | {PHASE_CHANGED: 2, SIGNATURE: 2}


def _phase_changed_v1_to_v2(p: dict[str, Any]) -> dict[str, Any]:
    """v2 says which phase change set day 0 (v1: the one fired by the then hard-coded 'start_treatment')."""
    return {**p, "day0": p.get("trigger") == "start_treatment"}


def _signature_v1_to_v2(p: dict[str, Any]) -> dict[str, Any]:
    """v2 says what the signature binds its evidence by: v1 bound the store's event ids ("event_id"), v2 binds the
    events' places in the patient's history ("seq"), which a copy into another store keeps (engine/_signature)."""
    return {"binds": "event_id", **p}


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (PHASE_CHANGED, 1): _phase_changed_v1_to_v2,
    (SIGNATURE, 1): _signature_v1_to_v2,
}


def upcast(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payload of any version as the current version's payload (without the version key)."""
    return _upcast_own(kind, dict(payload))


def _upcast_own(kind: str, p: dict[str, Any]) -> dict[str, Any]:
    """:func:`upcast` of a payload dict nobody else holds (one just decoded): changed in place."""
    version = p.pop(VERSION_KEY, 1)
    current = PAYLOAD_VERSIONS.get(kind, 1)
    if not isinstance(version, int) or version > current:
        raise ValueError(f"a {kind} event payload of version {version!r} is newer than this trialflow "
                         f"(it reads up to version {current}): upgrade trialflow to open this store")
    while version < current:
        p = UPCASTERS[(kind, version)](p)
        version += 1
    return p


def stamp(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as it is stored: with the current version of its kind."""
    return {**payload, VERSION_KEY: PAYLOAD_VERSIONS.get(kind, 1)}


@frozen
class Event:
    """One appended fact about a patient (a row of the ``event`` table, payload decoded)."""

    id: int
    patient: str
    seq: int
    kind: str
    effective_date: dt.date
    recorded_at: dt.datetime
    user: str
    reason: str | None
    payload: Mapping[str, Any]
    corrects: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(row.id, row.patient_id, row.seq, row.kind, row.effective_date, row.recorded_at, row.user,
                   row.reason, _upcast_own(row.kind, json.loads(row.payload)), row.corrects_id)


#: the columns :func:`events_from_tuples` reads, in its order
EVENT_COLUMNS = ("id", "patient_id", "seq", "kind", "effective_date", "recorded_at", "user", "reason", "payload",
                 "corrects_id")


def events_from_tuples(rows: Sequence[Sequence[Any]]) -> list[Event]:
    """Events from rows of :data:`EVENT_COLUMNS` (and any columns after them), as :meth:`Event.from_row` reads
    each: the payloads decoded by one ``json.loads`` of them all (a bulk read holds 10^5 of them). Every stored
    payload is one JSON object; where a text is not (a damaged store), or the joined texts do not decode to one
    object per row, each is decoded on its own, so the error names the event whose payload it is."""
    texts = [r[8] for r in rows]
    payloads: Any = None
    if all(isinstance(t, str) and t[:1] == "{" and t[-1:] == "}" for t in texts):
        try:
            payloads = json.loads("[" + ",".join(texts) + "]")
        except ValueError:
            payloads = None
    if payloads is None or len(payloads) != len(rows) or not all(type(p) is dict for p in payloads):
        payloads = [_payload_of(r[0], t) for r, t in zip(rows, texts, strict=True)]
    return [Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _upcast_own(r[3], p), r[9])
            for r, p in zip(rows, payloads, strict=True)]


def _payload_of(event_id: int, text: Any) -> dict[str, Any]:
    """One stored payload decoded; ``ValueError`` naming the event if it is not a JSON object."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError) as err:
        raise ValueError(f"event {event_id}: its stored payload is not JSON ({err})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"event {event_id}: its stored payload is not a JSON object")
    return payload


@frozen
class PhaseStint:
    """A stay in one phase: entered on a date by a trigger; ``left`` None while the patient is in it.
    ``day0``: the move into it was the protocol's day-0 event (the first dose)."""

    phase: str
    entered: dt.date
    trigger: str | None
    left: dt.date | None = None
    day0: bool = False


class RecordedValue:
    """An observation or treatment record as it currently stands, with the event that holds it.

    ``kind`` and ``date`` are read from the record's stored payload; the record itself (``record``) is built
    from the payload when something first reads it, once: placing a patient's visits, keying the days an
    import brings and most of a projection need only the kinds and dates, and a fold of a store's histories
    built every record of every patient (a CT assessment with its lesions the dearest). Given a built record
    instead, it keeps that one. Immutable; equal when the event, the record and the rest are equal."""

    __slots__ = ("_source", "corrected", "date", "event_id", "kind", "recorded_at", "user")
    event_id: int
    kind: str
    date: dt.date
    recorded_at: dt.datetime
    user: str
    corrected: bool  # True when this value replaced an earlier one
    _source: Any  # the Record once built; before that, the stored payload (a Mapping)

    def __init__(self, event_id: int, record: Record | Mapping[str, Any], recorded_at: dt.datetime, user: str,
                 corrected: bool = False) -> None:
        put = object.__setattr__
        if isinstance(record, Mapping):  # a stored payload: its kind and date as the record's class reads them
            put(self, "kind", record["kind"])
            put(self, "date", dt.date.fromisoformat(str(record["date"]).strip()))
        else:
            put(self, "kind", record.kind)
            put(self, "date", record.date)
        put(self, "_source", record)
        put(self, "event_id", event_id)
        put(self, "recorded_at", recorded_at)
        put(self, "user", user)
        put(self, "corrected", corrected)

    @property
    def record(self) -> Record:
        source = self._source
        if isinstance(source, Mapping):
            source = _stored_record(source)
            object.__setattr__(self, "_source", source)
        return source

    def _key(self) -> tuple[Any, ...]:
        return (self.event_id, self.record, self.recorded_at, self.user, self.corrected)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RecordedValue:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.event_id, self.kind, self.date, self.recorded_at, self.user, self.corrected))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"RecordedValue is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"RecordedValue is immutable: cannot delete {name!r}")

    def __repr__(self) -> str:  # (the record as built, else its payload: a repr builds nothing)
        return (f"RecordedValue(event_id={self.event_id!r}, record={self._source!r}, recorded_at={self.recorded_at!r}, "
                f"user={self.user!r}, corrected={self.corrected!r})")

    def __reduce__(self) -> tuple[Any, ...]:  # (as it stands: built or not)
        return (RecordedValue, (self.event_id, self._source, self.recorded_at, self.user, self.corrected))


@frozen
class PatientState:
    """Everything the engine needs to know about one patient at a moment."""

    patient: str
    protocol_hash: str
    enrolled_on: dt.date
    eligibility: Mapping[str, str]
    eligible: bool
    stints: tuple[PhaseStint, ...]
    records: tuple[RecordedValue, ...]
    decisions: tuple[Event, ...]
    withdrawal: Event | None
    last_seq: int
    events: tuple[Event, ...] = field(repr=False)
    deviations: tuple[Event, ...] = ()
    skips: tuple[Event, ...] = ()
    screen_failure: Event | None = None

    @property
    def enrolled_unmet(self) -> tuple[str, ...]:
        """The eligibility criteria found not met at enrolment."""
        return tuple(self.events[0].payload.get("unmet", ())) if self.events else ()

    @property
    def screen_failed(self) -> bool:
        """Not eligible at enrolment, or found not to qualify during screening."""
        return not self.eligible or self.screen_failure is not None

    @property
    def phase(self) -> str:
        return self.stints[-1].phase

    @property
    def phase_entered(self) -> dt.date:
        return self.stints[-1].entered

    def entered(self, phase: str) -> dt.date | None:
        """The date the patient (last) entered ``phase``, if ever."""
        for s in reversed(self.stints):
            if s.phase == phase:
                return s.entered
        return None

    @property
    def day0(self) -> dt.date | None:
        """Study day 0: the date of the phase change that recorded the protocol's day-0 event."""
        for s in self.stints:
            if s.day0:
                return s.entered
        return None

    def dose_mg_per_day(self, start_dose: float | None) -> float | None:
        """The current daily dose: the start dose, then the last dose change recorded."""
        dose = start_dose
        for r in sorted(self.of_kind("dose_change"), key=lambda r: r.date):
            dose = r.dose_mg_per_day
        return dose

    def of_kind(self, kind: str) -> list[Any]:
        return sorted((r.record for r in self.records if r.kind == kind), key=lambda r: r.date)

    def until(self, as_of: dt.date) -> PatientState:
        """The same patient seen on clinical date ``as_of``: later observations and phase changes left out."""
        stints = [s for s in self.stints if s.entered <= as_of]
        stints = [*stints[:-1], PhaseStint(stints[-1].phase, stints[-1].entered, stints[-1].trigger,
                                           day0=stints[-1].day0)] if stints \
            else list(self.stints[:1])
        return PatientState(
            self.patient, self.protocol_hash, self.enrolled_on, self.eligibility, self.eligible, tuple(stints),
            tuple(r for r in self.records if r.date <= as_of),
            tuple(d for d in self.decisions if d.effective_date <= as_of),
            self.withdrawal if self.withdrawal and self.withdrawal.effective_date <= as_of else None,
            self.last_seq, self.events,
            tuple(d for d in self.deviations if d.effective_date <= as_of),
            tuple(d for d in self.skips if d.effective_date <= as_of),
            self.screen_failure if self.screen_failure and self.screen_failure.effective_date <= as_of else None,
        )


def extend(state: PatientState, events: Sequence[Event], records: Sequence[Any] | None = None) -> PatientState:
    """``fold([*state.events, *events])`` without reading the earlier events again: the new events are folded
    onto what ``state`` holds (:func:`_fold_event`, the step :func:`fold` takes for each event), unless one of
    them is a reversal or a correction (which take back an earlier event, so the whole history is folded
    again) or does not come after ``state``. ``records``: the events' records as already built (what their
    payloads hold), so they are not built again."""

    if any(e.seq <= state.last_seq for e in events) or any(e.kind in (REVERSAL, CORRECTION) for e in events):
        # folded again, each earlier observation's record taken as already built (its payload reads the same)
        known = {v.event_id: v._source for v in state.records if not v.corrected}  # (as built, or not yet)
        if records is not None:
            known.update((e.id, r) for e, r in zip(events, records, strict=True) if e.kind == OBSERVATION)
        return fold([*state.events, *events], built=known)
    if not events:
        return state
    # the values by their original observation event, as fold keeps them (a corrected value's own event is
    # the correction, whose payload names that original)
    roots = {e.id: e.payload["root"] for e in state.events if e.kind == CORRECTION}
    values = {roots.get(v.event_id, v.event_id) if v.corrected else v.event_id: v for v in state.records}
    acc = _Folding(state.protocol_hash, list(state.stints), values,
                   list(state.decisions), state.withdrawal, list(state.deviations), list(state.skips),
                   state.screen_failure)
    built_by_id = ({e.id: r for e, r in zip(events, records, strict=True) if e.kind == OBSERVATION}
                   if records is not None else None)
    ordered = sorted(events, key=lambda e: e.seq)
    for e in ordered:
        _fold_event(acc, e, built_by_id)
    return acc.state(state.patient, state.enrolled_on, state.eligibility, state.eligible, (*state.events, *ordered))


@dataclass(slots=True)
class _Folding:
    """What :func:`fold` accumulates over a patient's events (after the enrolment)."""

    protocol_hash: str
    stints: list[PhaseStint]
    values: dict[int, RecordedValue]  # by observation event (the original's, for a corrected value)
    decisions: list[Event]
    withdrawal: Event | None
    deviations: list[Event]
    skips: list[Event]
    screen_failure: Event | None
    answers: dict[str, str] | None = None  # eligibility answers given after the enrolment, over its own

    def state(self, patient: str, enrolled_on: dt.date, eligibility: Mapping[str, str], eligible: bool,
              events: tuple[Event, ...]) -> PatientState:
        return PatientState(
            patient=patient, protocol_hash=self.protocol_hash, enrolled_on=enrolled_on,
            eligibility={**eligibility, **self.answers} if self.answers else eligibility,
            eligible=eligible, stints=tuple(self.stints),
            records=tuple(sorted(self.values.values(), key=lambda v: (v.date, v.event_id))),
            decisions=tuple(self.decisions), withdrawal=self.withdrawal, last_seq=events[-1].seq, events=events,
            deviations=tuple(self.deviations), skips=tuple(self.skips), screen_failure=self.screen_failure,
        )


_STORED_RECORD: Callable[[Mapping[str, Any]], Record] | None = None


def _stored_record(payload: Mapping[str, Any]) -> Record:
    """``engine._records.stored_record``, imported on the first record a fold builds (the record kinds are
    trialflow.rules: a command that folds no record does not load them), then kept (a fold of 10^5
    observations paid an import statement for each)."""
    global _STORED_RECORD
    if _STORED_RECORD is None:
        from ._records import stored_record

        _STORED_RECORD = stored_record
    return _STORED_RECORD(payload)


def _fold_event(acc: _Folding, e: Event, built: Mapping[int, Any] | None) -> None:
    """One event (after the enrolment, not reversed) folded into ``acc``."""
    if e.kind == PHASE_CHANGED:
        stints = acc.stints
        last = stints[-1]
        stints[-1] = PhaseStint(last.phase, last.entered, last.trigger, e.effective_date, last.day0)
        stints.append(PhaseStint(e.payload["to"], e.effective_date, e.payload.get("trigger"),
                                 day0=bool(e.payload.get("day0"))))
    elif e.kind == OBSERVATION:
        rec = built.get(e.id) if built is not None else None
        acc.values[e.id] = RecordedValue(e.id, rec if rec is not None else e.payload, e.recorded_at, e.user)
    elif e.kind == CORRECTION:
        root = e.payload["root"]  # the original observation event this correction chain replaces
        if e.payload.get("retracted"):
            acc.values.pop(root, None)
        else:
            acc.values[root] = RecordedValue(e.id, e.payload["record"], e.recorded_at, e.user,
                                             corrected=True)
    elif e.kind == DECISION:
        acc.decisions.append(e)
    elif e.kind == WITHDRAWN:
        acc.withdrawal = e
    elif e.kind == MIGRATED:
        acc.protocol_hash = e.payload["to_hash"]
    elif e.kind == ELIGIBILITY_ANSWERED:
        acc.answers = {**(acc.answers or {}), **e.payload["answers"]}
    elif e.kind == DEVIATION:
        acc.deviations.append(e)
    elif e.kind == VISIT_SKIPPED:
        acc.skips.append(e)
    elif e.kind == SCREEN_FAILED:
        acc.screen_failure = e


class NotEnrolled(LookupError):
    """The events hold no enrolment (known at the time asked): the patient is not in the study then.

    Its own class, so a reader that answers "not enrolled" for it does not also swallow a ``KeyError`` (another
    ``LookupError``) that a damaged stored payload raises while folding."""


class DamagedEvent(ValueError):
    """An event's payload lacks what its kind always holds, or holds it in another form: a stored one was changed
    outside trialflow (``trialflow verify`` finds it), or one to be appended was built wrongly. ``event`` names it."""

    def __init__(self, event: Event, problem: str):
        self.event, self.problem = event, problem
        super().__init__(f"patient {event.patient}: event #{event.seq} (event {event.id}, {event.kind}): its payload "
                         f"{problem}; a stored event that reads so was changed outside trialflow "
                         "(trialflow verify checks the store)")


def fold(events: Iterable[Event], *, known_at: dt.datetime | None = None,
         built: Mapping[int, Any] | None = None) -> PatientState:
    """The state the events describe; events recorded after ``known_at`` are ignored. ``built``: records of
    observation events (by event id) as already built from their payloads, so they are not built again."""
    evs = sorted((e for e in events if known_at is None or e.recorded_at <= known_at), key=lambda e: e.seq)
    if not evs or evs[0].kind != ENROLLED:
        raise NotEnrolled("no enrolment event" + (" known at that time" if known_at else ""))
    first = e = evs[0]
    try:
        acc = _Folding(first.payload["protocol_hash"], [PhaseStint(first.payload["phase"], first.effective_date, None)],
                       {}, [], None, [], [], None)
        # a reversal takes the events it reverses out of the state (they stay in the log and in history)
        reversed_ids = {i for e in evs if e.kind == REVERSAL for i in e.payload.get("reverses", [])}
        for e in evs[1:]:
            if e.id not in reversed_ids:
                _fold_event(acc, e, built)
    except KeyError as err:  # (not a LookupError to its callers: they read NotEnrolled as "not in the study")
        raise DamagedEvent(e, f"lacks {err.args[0]!r}") from None
    except (AttributeError, TypeError, ValueError) as err:  # a value of another type than its kind writes (null)
        raise DamagedEvent(e, f"cannot be read ({err})") from None
    return acc.state(first.patient, first.effective_date, first.payload.get("eligibility", {}),
                     bool(first.payload.get("eligible", True)), tuple(evs))
