"""The coordinator's commands as library functions: enrol, start, record, correct, decide, withdraw.

Each command reads the patient's state inside one transaction, refuses with :class:`Refused` (and
writes nothing) when the protocol or the data do not allow it, and otherwise appends events and
refreshes the patient's projection. The CLI calls exactly these functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen
from trialflow.protocol import Protocol, load_bundled_protocol, load_protocol, suggest
from trialflow.rules.kinds import KINDS

from ._base import EARLIEST_DATE, Problem, Refused, date_problem, latest_date, located, today
from ._base import Problem as Refusal  # (import_file's own scope names the documents' Problem "Problem")
from ._checks import admissible, conflict, eligibility_answers, implausible, implausible_fields
from ._db import StoreError
from ._decision import evaluate_decision
from ._identity import Actor, Login, PermissionDenied, authorize, identify, resolve_site, verify_signer
from ._projection import projection, rebuild_projections
from ._pseudonym import pseudonym_problem
from ._readings import leads_to_decision
from ._records import Record, SorafenibDispense, record_from_dict, stored_record
from ._schedule import schedule
from ._signature import (
    SIGNATURE,
    decision_digest,
    decision_hash,
    meaning,
    places,
    signature_payload,
    signed_records,
)
from ._state import (
    CORRECTION,
    DECISION,
    ENROLLED,
    OBSERVATION,
    PHASE_CHANGED,
    Event,
    PatientState,
    RecordedValue,
    fold,
)
from ._store import NewEvent, RegisteredVersion, Store, Transaction, dedup_key

if TYPE_CHECKING:
    from ._machine import Move

#: who acts: a free-text name (a store without users), credentials to check, or an authenticated actor
Who = str | Actor | Login

__all__ = [
    "Enrolment",
    "Written",
    "complete_phase",
    "correct",
    "decide",
    "enroll",
    "import_file",
    "init_store",
    "record",
    "record_many",
    "start",
    "withdraw",
]


@frozen
class Written:
    """What a command appended (empty ``events`` when it found nothing new to record)."""

    patient: str
    events: tuple[Event, ...]
    phase: str
    message: str
    warnings: tuple[str, ...] = ()


@frozen
class Enrolment:
    patient: str
    eligible: bool
    unmet: tuple[str, ...]
    phase: str
    protocol_version: str
    events: tuple[Event, ...]
    site: str | None = None


# -- helpers --------------------------------------------------------------------------------------
def protocol_of(store: Store, state: PatientState) -> Protocol:
    return store.protocol(state.protocol_hash)[0]


def _check_date(when: dt.date, what: str = "date") -> None:
    problem = date_problem(when, what)
    if problem and when < EARLIEST_DATE:
        raise Refused(problem)
    if when > today():
        raise Refused(f"{what} {when} is in the future (today is {today()})")


def _state(tx: Transaction, patient: str) -> PatientState:
    state = tx.state(patient)
    if state is None:
        raise Refused(f"unknown patient {patient!r}: enrol them first (trialflow enroll)")
    return state


def _move(state: PatientState, protocol: Protocol, trigger: str, when: dt.date, reason: str | None = None,
          move: Move | None = None, **details: Any) -> Move:
    """Fire ``trigger`` on the protocol's machine: its guards refuse (every reason kept) or its effects
    produce the events to append (``move`` continues a chain of moves, e.g. into the decision then a branch).
    The machine (the transitions library) is imported here: recording an observation moves no phase."""
    from ._machine import Move, TransitionRefused, machine_for

    if move is None:
        move = Move(state, protocol, when, reason, details)
    else:
        move.reason, move.details = reason, {**move.details, **details}
    try:
        return machine_for(protocol).move(move, trigger)
    except TransitionRefused as err:
        raise Refused(*(err.reasons or (str(err),))) from None


# -- store set-up ---------------------------------------------------------------------------------
def init_store(db: str | None, protocol_file: str | Path | None, user: Who) -> tuple[Store, RegisteredVersion]:
    """Create the store (if needed) and register the protocol (the bundled one by default).

    On an existing store nothing is registered: without ``protocol_file`` the answer is the newest
    registered version; with it, the file must be a version the store already holds (a new version is
    registered by ``trialflow protocol amend``). Only an outdated schema is upgraded.
    """
    name = user.name if isinstance(user, Actor | Login) else user
    proto = load_bundled_protocol() if protocol_file is None else load_protocol(protocol_file)
    text = Path(proto.source_file).read_text(encoding="utf-8")
    store = Store.open(db, create=True)
    try:
        versions = store.versions()
        if not versions:
            version = store.register_protocol(proto, text, name, "initial protocol")
        elif protocol_file is None:
            version = versions[-1]
        else:
            same = [v for v in versions if v.content_hash == proto.content_hash]
            if not same:
                raise Refused(f"the store already runs {versions[-1].study_id} v{versions[-1].version}; "
                              f"{protocol_file} is not one of its versions: register it with `trialflow protocol "
                              "amend`")
            version = same[0]
        rebuild_projections(store, only_missing=True)
    except StoreError as err:
        store.close()
        raise Refused(str(err)) from None
    except Refused:
        store.close()
        raise
    return store, version


# -- enrolment ------------------------------------------------------------------------------------
def enroll(store: Store, patient: str, when: dt.date, answers: Mapping[str, Any], user: Who,
           site: str | None = None) -> Enrolment:
    """Screen a patient at ``site``: eligible patients enter the first phase; others are recorded as screen failures.

    ``site`` may be left out when the store has one site (or none), or the user works at one.
    """
    problem = pseudonym_problem(patient)
    if problem:
        raise Refused(problem)
    if patient.upper().startswith("DEMO-") and store.info("demo") is None:
        raise Refused(f"study id {patient!r}: ids starting with DEMO- belong to the demo store; use another "
                      "pseudonym, such as P-001")
    _check_date(when, "enrolment date")
    protocol, version = store.protocol()
    norm, problems, unmet = eligibility_answers(protocol, answers)
    if problems:
        raise Refused(*problems)
    eligible = not unmet
    initial = protocol.initial_phase.id
    first = NewEvent(ENROLLED, when, {"protocol_hash": protocol.content_hash, "protocol_version": protocol.version,
                                      "phase": initial, "eligibility": norm, "eligible": eligible,
                                      "unmet": unmet})

    def work(tx: Transaction) -> tuple[list[Event], str | None]:
        # (not tx.session: in a bulk transaction its first use opens a savepoint, and enrolling adds no row on it)
        where = resolve_site(tx.actor, site, tx.site_codes())
        authorize(tx.actor, "enroll", where, patient=patient)
        if tx.state(patient) is not None:
            raise Refused(f"patient {patient} is already enrolled (see trialflow history {patient})")
        new = [first]
        if not eligible:
            state0 = fold([Event(0, patient, 1, ENROLLED, when, dt.datetime.now(dt.UTC), tx.user, None,
                                 first.payload)])
            new += _move(state0, protocol, protocol.triggers.screen_fail, when,
                         "eligibility not met: " + ", ".join(unmet)).events
        return tx.create(patient, version.id, when, new, projection(protocol, version.id), site=where), where

    events, where = store.write(user, work)
    return Enrolment(patient, eligible, tuple(unmet), fold(events).phase, protocol.version, tuple(events), where)


# -- phase changes --------------------------------------------------------------------------------
def start(store: Store, patient: str, when: dt.date, user: Who, dispense_days: int | None = 28) -> Written:
    """Day 0: the first dose; the treatment phase's schedule is anchored here.

    The first supply of the phase's treatment is dispensed the same day (``dispense_days`` days of it;
    None: not recorded here, e.g. when the pharmacy records it).
    """
    _check_date(when, "start date")
    if dispense_days is not None and not 1 <= dispense_days <= 365:
        raise Refused(f"--dispense-days must be a whole number of days 1-365, got {dispense_days}")

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        warnings = []
        # advice for the person starting the patient (left out where nobody reads it: Transaction.quiet)
        open_baseline = [] if tx.quiet else [v.visit for v in schedule(protocol, state, when)
                                             if v.phase == state.phase and v.status not in ("done", "skipped")]
        if open_baseline:
            warnings.append(f"baseline not complete: {', '.join(open_baseline)}")
        move = _move(state, protocol, protocol.triggers.start_treatment, when)
        new = list(move.events)
        dest = protocol.phase(move.phase)
        dispensed = ""
        if dispense_days is not None and dest.treatment is not None and dest.treatment.dose_mg_per_day:
            rec = SorafenibDispense(when, float(dest.treatment.dose_mg_per_day), dispense_days)
            new.append(NewEvent(OBSERVATION, when, rec.to_dict(), dedup=dedup_key(patient, rec.to_dict())))
            dispensed = f"; dispensed {rec.dose_mg_per_day:g} mg/day for {dispense_days} days"
        events = tx.append(patient, state, new, projection(protocol))
        return Written(patient, tuple(events), move.phase, f"{patient}: day 0 is {when}; phase "
                       f"{move.phase}{dispensed}", tuple(warnings))

    return store.write(user, work)


def planned_end(protocol: Protocol, state: PatientState) -> dt.date | None:
    """The day the patient's current phase has run its planned course (None: the phase has no duration)."""
    from ._schedule import phase_anchor

    phase = protocol.phase(state.phase)
    if not phase.duration_days:
        return None
    anchor = phase_anchor(phase, state, state.phase_entered) or state.phase_entered
    return anchor + dt.timedelta(days=phase.duration_days)


def complete_phase(store: Store, patient: str, when: dt.date, user: Who, *, early: bool = False,
                   reason: str | None = None) -> Written:
    """End a treatment phase that has run its course (e.g. continued Sorafenib → end of study).

    Before the phase's planned end it is refused unless ``early`` is given with a reason; a mistaken
    completion is undone with :func:`trialflow.engine.reverse`.
    """
    _check_date(when)
    if early and not (reason and reason.strip()):
        raise Refused("an early completion needs a reason (--reason)")

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        phase = protocol.phase(state.phase)
        if leads_to_decision(protocol, phase.id):  # the one reading the machine's guard and the simulator use
            raise Refused(f"{patient}: {phase.id} ends with the decision: use trialflow decide {patient}")
        end = planned_end(protocol, state)
        if end is not None and state.phase_entered <= when < end and not early:
            raise Refused(f"{patient}: {phase.id} runs {phase.duration_days} days, to {end}; {when} is "
                          f"{(end - when).days} days early",
                          f"to end it early on purpose: trialflow complete {patient} --date {when} --early "
                          "--reason TEXT (or trialflow withdraw)")
        move = _move(state, protocol, protocol.triggers.complete, when, reason.strip() if reason else None)
        new = list(move.events)
        if end is not None and when < end:  # the early completion says so in its payload
            new = [dataclasses.replace(e, payload={**e.payload, "early": True}) if e.kind == PHASE_CHANGED else e
                   for e in new]
        events = tx.append(patient, state, new, projection(protocol))
        return Written(patient, tuple(events), move.phase, f"{patient}: {phase.id} complete; now in {move.phase}")

    return store.write(user, work)


def withdraw(store: Store, patient: str, when: dt.date, reason: str, user: Who, note: str | None = None) -> Written:
    """Early termination with one of the protocol's reasons."""
    _check_date(when)

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        text = reason + (f": {note}" if note else "")
        from ._machine import WITHDRAW

        move = _move(state, protocol, WITHDRAW, when, text, withdrawal_reason=reason, note=note)
        events = tx.append(patient, state, move.events, projection(protocol))
        return Written(patient, tuple(events), move.phase, f"{patient}: withdrawn ({reason}) on {when}")

    return store.write(user, work)


# -- observations ---------------------------------------------------------------------------------
def _parse(patient: str, data: Mapping[str, Any], latest: dt.date | None = None) -> Record:
    try:
        rec = record_from_dict(data)
    except (ValueError, TypeError, OverflowError) as err:
        raise Refused(f"{patient}: {data.get('kind', 'record')}: {err}") from None
    return _dated(patient, rec, latest)


def _dated(patient: str, rec: Record, latest: dt.date | None = None) -> Record:
    """``rec`` if its date can be one of this study's (:func:`date_problem`), else :class:`Refused`.
    ``latest``: :func:`latest_date`, read once by a caller dating many records."""
    problem = date_problem(rec.date, f"{rec.kind} date", latest)
    if problem:
        raise Refused(f"{patient}: {problem}")
    return rec


def record_many(store: Store, items: Sequence[tuple[str, Mapping[str, Any] | Record]], user: Who,
                day0: Mapping[str, dt.date] | None = None,
                enrolled: Mapping[str, dt.date] | None = None, confirm_unusual: str | None = None) -> list[Written]:
    """Record observations for one or more patients in ONE transaction; any refusal writes nothing.

    Records already stored (same patient, kind, date and values) are skipped and reported. A value
    outside a plausible range the protocol declares is refused unless ``confirm_unusual`` gives the
    reason it is right; that reason is stored with the record.

    An item is a record in the case-file form (checked against its kind's schema), or a record its class
    built (from values the caller made itself, as the demo does: the case-file schema is not checked);
    either is then dated and checked against the patient's state alike.
    """
    if confirm_unusual is not None and not confirm_unusual.strip():
        raise Refused("--confirm-unusual needs the reason the value is right")
    latest = latest_date()
    parsed = [(p, _parse(p, d, latest) if isinstance(d, Mapping) else _dated(p, d, latest)) for p, d in items]
    return store.write(user, lambda tx: record_in(store, tx, parsed, day0, enrolled, confirm_unusual))


def record_in(store: Store, tx: Transaction, parsed: Sequence[tuple[str, Record]],
              day0: Mapping[str, dt.date] | None = None,
              enrolled: Mapping[str, dt.date] | None = None, confirm_unusual: str | None = None, *,
              advise: bool | None = None,
              how_to_confirm: str = "record it with --confirm-unusual REASON",
              reasons: Sequence[str | None] | None = None, confirmed: Collection[int] = (),
              protocols: dict[str, Protocol] | None = None) -> list[Written]:
    """:func:`record_many`'s work inside a transaction the caller holds (an import that also restores).
    ``advise``: name the visits the new records leave incomplete (default: for at most 20 records). A problem
    of one record names it (:func:`~trialflow.engine._base.located`: its index in ``parsed`` and the field);
    ``how_to_confirm``: the advice an unusual value's refusal ends with; ``reasons``: each record's reason as
    its source gave it (an ODM file's ReasonForChange), stored with it before an unusual value's confirmation;
    ``confirmed``: the records whose unusual values their reason already confirms (a trialflow export's note),
    recorded without ``confirm_unusual``; ``protocols``: the protocol models by content hash, as far as the
    caller resolved them (filled here)."""
    patients = list(dict.fromkeys(p for p, _ in parsed))
    advise = len(parsed) <= 20 if advise is None else advise
    problems: list[str] = []
    plan: list[tuple[str, PatientState, Protocol, list[NewEvent], list[int], int, int]] = []
    protocols = {} if protocols is None else protocols  # resolved once per content hash, not once per patient
    on = today()  # (read once: admissible compares every record's date with it)
    payloads = [r.to_dict() for _, r in parsed]
    keys = {i: dedup_key(p, payloads[i]) for i, (p, _) in enumerate(parsed)}
    by_patient: dict[str, list[int]] = {}
    for i, (p, _) in enumerate(parsed):  # grouped once: scanning every item per patient was quadratic
        by_patient.setdefault(p, []).append(i)
    for patient in patients:
        state = tx.state(patient)
        if state is None:
            problems.append(f"unknown patient {patient!r}: enrol them first")
            continue
        protocol = protocols.get(state.protocol_hash) or protocols.setdefault(state.protocol_hash,
                                                                               protocol_of(store, state))
        if day0 and patient in day0 and state.day0 != day0[patient]:
            problems.append(f"{patient}: the file says day 0 is {day0[patient]}, the store says "
                            f"{state.day0 or 'not started'}")
        if enrolled and patient in enrolled and state.enrolled_on != enrolled[patient]:
            problems.append(f"{patient}: the file says enrolled on {enrolled[patient]}, the store says "
                            f"{state.enrolled_on}")
        new: list[NewEvent] = []
        taken: list[int] = []  # the item each new event records
        dup = superseded = 0
        seen: set[str] = set()
        # the values of each (kind, day), stored then added by this batch (so a file cannot contradict itself):
        # a record is compared with its own day's, not with the patient's whole history
        # (only the days and kinds this batch brings are looked up: the rest of the history is not gathered)
        days = {(parsed[i][1].kind, parsed[i][1].date) for i in by_patient[patient]}
        same_day: dict[tuple[str, dt.date], list[RecordedValue]] = {}
        for v in state.records:
            if (v.kind, v.date) in days:
                same_day.setdefault((v.kind, v.date), []).append(v)
        # only the stored records of a day and kind this batch brings can share an identity with its rows
        history = _recorded(patient, state, tx.record_keys, days)
        # the patient's visits, placed once for all its records dated before day 0 (admissible's window check)
        visits = cache(partial(schedule, protocol, state, dt.date.max))
        for i in by_patient[patient]:
            rec = parsed[i][1]
            if keys[i] in seen or keys[i] in history.in_force:
                dup += 1  # the value in force, corrections included: nothing new
                continue
            earlier = history.originals.get(keys[i], [])
            if any(root not in history.retracted for root in earlier):
                superseded += 1  # recorded, then corrected to another value: the correction stands
                continue
            bad = admissible(protocol, state, rec, on=on, visits=visits)
            why = f"{patient}: {bad}" if bad else conflict(same_day.get((rec.kind, rec.date), ()), rec, patient)
            if why:
                problems.append(located(why, i, "date"))
                continue
            unusual = implausible_fields(protocol, rec, payloads[i])
            if unusual and confirm_unusual is None and i not in confirmed:
                problems += [located(Problem(f"{patient}: {u}", f"; if it is right, {how_to_confirm}",
                                             unusual=True), i, field) for field, u in unusual]
                continue
            seen.add(keys[i])
            same_day.setdefault((rec.kind, rec.date), []).append(RecordedValue(-1 - i, rec, tx.now, tx.user))
            note = (f"unusual value confirmed: {confirm_unusual.strip()}"
                    if unusual and confirm_unusual and i not in confirmed else None)
            given = reasons[i] if reasons is not None else None
            note = f"{given}; {note}" if given and note else (given or note)
            # recorded again after a retraction: a new fact, with its own identity
            key = keys[i] if not earlier else dedup_key(patient, {**payloads[i], "recorded_again": len(earlier)})
            new.append(NewEvent(OBSERVATION, rec.date, payloads[i], note, dedup=key, record=rec))
            taken.append(i)
        plan.append((patient, state, protocol, new, taken, dup, superseded))
    if problems:
        raise Refused(*problems)
    out = []
    projections = {h: projection(p) for h, p in protocols.items()}
    for patient, state, protocol, new, taken, dup, superseded in plan:
        events = tx.append(patient, state, new, projections[protocol.content_hash]) if new else []
        tx.record_keys.update((e.id, keys[i]) for e, i in zip(events, taken, strict=True))
        msg = (f"{patient}: {len(new)} recorded" + (f", {dup} already recorded (skipped)" if dup else "")
               + (f", {superseded} superseded by a correction (skipped)" if superseded else ""))
        out.append(Written(patient, tuple(events), state.phase, msg,
                           _incomplete_visits(protocol, state, events) if advise and not tx.quiet else ()))
    return out



def _incomplete_visits(protocol: Protocol, state: PatientState, events: Sequence[Event]) -> tuple[str, ...]:
    """Visits the new records count for that still lack a record kind (a Tg without its TgAb)."""
    from ._schedule import kind_label, schedule

    if not events:
        return ()
    after = fold([*state.events, *events])
    ids = {e.id for e in events}
    notes = []
    for v in schedule(protocol, after, dt.date.max):
        if v.missing and any(r.event in ids for r in v.records):
            day = next(r.date for r in v.records if r.event in ids)
            how = " or ".join(f"trialflow record {state.patient} {k} --date {day} ..." for k in v.missing)
            notes.append(f"{v.visit} ({v.name}) is not complete: {', '.join(kind_label(k) for k in v.missing)} "
                         f"missing ({how})")
    return tuple(notes)


@frozen
class _Recorded:
    """A patient's observations by identity: what is in force, and what each original became."""

    in_force: frozenset[str]  # identities (dedup keys) of the values in force, corrections applied
    originals: dict[str, list[int]]  # identity of an original observation -> its event ids
    retracted: frozenset[int]  # original observation events that a correction retracted


def _recorded(patient: str, state: PatientState, memo: dict[int, str],
              days: Collection[tuple[str, dt.date]] | None = None) -> _Recorded:
    """``memo``: the identity of the record each event holds, by event id (the transaction's
    :attr:`~Transaction.record_keys`), filled here and by the appends, so a patient recorded for again in the
    same transaction is not keyed again.

    ``days``: the (kind, date) pairs the caller looks identities up for; records of any other kind or day are
    left out (not keyed). An identity hashes the record's ``to_dict()``, which holds its kind and date, so two
    records of different kinds or days never share one: the lookups of those pairs answer as without ``days``,
    and a patient's whole history is not keyed for an import that brings two values (keying every stored
    record of every patient named was a sixth of an import into a store of 10^5 patients)."""
    def key_of(event_id: int, rec: Record) -> str:
        if event_id not in memo:
            memo[event_id] = dedup_key(patient, rec.to_dict())
        return memo[event_id]

    def wanted(kind: str, date: dt.date) -> bool:
        return days is None or (kind, date) in days

    # each value in force keyed once; an uncorrected original is its own value in force (same record, same key)
    corrected_of = {v.event_id: v.corrected for v in state.records}
    keys = {v.event_id: key_of(v.event_id, v.record) for v in state.records if wanted(v.kind, v.date)}
    originals: dict[str, list[int]] = {}
    retracted: set[int] = set()
    for e in state.events:
        if e.kind == OBSERVATION:
            if corrected_of.get(e.id, True):  # corrected or retracted: the original's own record
                rec = stored_record(e.payload)
                if wanted(rec.kind, rec.date):
                    originals.setdefault(key_of(e.id, rec), []).append(e.id)
            elif e.id in keys:
                originals.setdefault(keys[e.id], []).append(e.id)
        elif e.kind == CORRECTION and e.payload.get("retracted"):
            retracted.add(e.payload["root"])
    in_force = frozenset(keys.values())
    return _Recorded(in_force, originals, frozenset(retracted))


def record(store: Store, patient: str, data: Mapping[str, Any], user: Who,
           confirm_unusual: str | None = None) -> Written:
    """Record one observation or treatment record (``data`` in the case-file record form)."""
    return record_many(store, [(patient, data)], user, confirm_unusual=confirm_unusual)[0]


#: what a correction may change, per kind (the date always; lists of lesions only through the library):
#: each kind's declaration (trialflow.rules.kinds)
CORRECTABLE: dict[str, frozenset[str]] = {k.name: k.correctable for k in KINDS.values()}


def correct(store: Store, patient: str, event_id: int, changes: Mapping[str, Any] | None, reason: str,
            user: Who, confirm_unusual: str | None = None) -> Written:
    """Correct fields of an earlier observation (``changes``), or retract it (``changes`` None).

    The correction is a new event pointing at the one it corrects; the original stays in history. The
    corrected record is checked as a new one is: a value outside a plausible range the protocol declares is
    refused unless ``confirm_unusual`` gives the reason it is right, which is stored with the correction.
    """
    if not reason.strip():
        raise Refused("a correction needs a reason")
    if confirm_unusual is not None and not confirm_unusual.strip():
        raise Refused("--confirm-unusual needs the reason the value is right")

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        target = next((e for e in state.events if e.id == event_id), None)
        if target is None or target.kind not in (OBSERVATION, CORRECTION):
            raise Refused(f"{patient} has no observation event {event_id} (see trialflow history {patient})")
        root = target.id if target.kind == OBSERVATION else target.payload["root"]
        later = [e for e in state.events if e.kind == CORRECTION and e.payload["root"] == root and e.seq > target.seq]
        if later:
            raise Refused(f"event {event_id} was already corrected by event {later[-1].id}; correct that one")
        if target.kind == CORRECTION and target.payload.get("retracted"):
            raise Refused(f"event {event_id} retracted the observation; record it anew instead")
        old = dict(target.payload if target.kind == OBSERVATION else target.payload["record"])
        protocol = protocol_of(store, state)
        payload: dict[str, Any] = {"root": root}
        unusual: list[str] = []  # the corrected values outside the protocol's plausible ranges
        if changes is None:
            payload["retracted"] = True
            when = dt.date.fromisoformat(old["date"])
        else:
            if changes.get("kind", old["kind"]) != old["kind"]:
                raise Refused(f"event {event_id} is a {old['kind']} observation; a correction keeps the kind "
                              f"(got {changes['kind']}): retract it and record the right one")
            allowed = CORRECTABLE.get(old["kind"], frozenset()) | {"date"}
            stray = sorted(k for k, v in changes.items() if k not in allowed and old.get(k) != v)
            if stray:
                raise Refused(f"event {event_id} is a {old['kind']} observation: {', '.join(stray)} does not apply "
                              f"(it has {', '.join(sorted(allowed))})")
            merged = {**old, **changes}
            if "value" in changes and old["kind"] == "tg":
                merged.pop("below_loq", None)  # a new value replaces a '<LoQ' result
            new_rec = _parse(patient, merged)
            if new_rec.to_dict() == stored_record(old).to_dict():
                raise Refused(f"the correction changes nothing in event {event_id}")
            chain = {root} | {e.id for e in state.events if e.kind == CORRECTION and e.payload["root"] == root}
            others = [r for r in state.records if r.event_id not in chain]
            bad = admissible(protocol, state, new_rec)
            why = f"{patient}: {bad}" if bad else conflict(others, new_rec, patient)
            if why:
                raise Refused(why)
            unusual = implausible(protocol, new_rec)
            if unusual and confirm_unusual is None:
                raise Refused(*[Problem(f"{patient}: {u}", "; if it is right, correct it with --confirm-unusual "
                                        "REASON", unusual=True) for u in unusual])
            payload["record"] = new_rec.to_dict()
            when = new_rec.date
        why_stored = reason
        if unusual and confirm_unusual is not None:
            why_stored += f"; unusual value confirmed: {confirm_unusual.strip()}"
        events = tx.append(patient, state, [NewEvent(CORRECTION, when, payload, why_stored, corrects=event_id)],
                           projection(protocol))
        verb = "retracted" if changes is None else "corrected"
        return Written(patient, tuple(events), state.phase, f"{patient}: event {event_id} {verb} by event "
                       f"{events[0].id}")

    return store.write(user, work)


# -- the decision ---------------------------------------------------------------------------------
def decide(store: Store, patient: str, when: dt.date, user: Who, override: str | None = None,
           reason: str | None = None, *, signature: str | Callable[[], str] | None = None,
           reviewed: str | None = None) -> Written:
    """Record the investigator's decision with every criterion's evidence and move the patient.

    In a store with users the decision is signed: ``signature`` is the investigator's password,
    re-entered at the moment of signing (checked again here, 21 CFR 11.200), and the signature event
    binds the decision's content and evidence. ``reviewed`` (optional) is the
    :func:`decision_digest` of the preview the investigator saw: a decision that would now rest on
    anything else (changed evidence, another patient) is refused.
    """
    _check_date(when, "decision date")
    if override is not None and not (reason and reason.strip()):
        raise Refused(Problem("an override needs a reason", " (--reason)"))
    actor = identify(store, user)
    if actor.authenticated:
        authorize(actor, "decide")
        authorize(actor, "sign")
        if signature is None:
            raise Refused(f"{patient}: the decision must be signed: re-enter your password to sign it")
        actor = verify_signer(store, actor, signature() if callable(signature) else signature)

    def work(tx: Transaction) -> Written:
        state = _state(tx, patient)
        protocol = protocol_of(store, state)
        dec = protocol.decision
        if not leads_to_decision(protocol, state.phase):
            done = state.decisions
            extra = f" (decided on {done[-1].effective_date} by {done[-1].user})" if done else ""
            raise Refused(f"{patient} is in phase {state.phase!r}: no decision is pending{extra}")
        if when < state.phase_entered:
            raise Refused(f"{patient}: {when} is before the patient entered {state.phase} ({state.phase_entered})")
        preview = evaluate_decision(protocol, state.until(when), when)
        if not preview.ready:  # an override changes the branch, never the timing
            raise Refused(f"{patient}: the decision is not ready on {when}; it waits for:", *preview.missing,
                          f"to end treatment early, use trialflow withdraw {patient}")
        if reviewed is not None and reviewed != decision_digest(patient, preview):
            raise Refused(f"{patient}: the decision you reviewed is not this one (its evidence changed, or it belongs "
                          "to another patient or date): review it again before signing")
        targets = {b.to: b for b in dec.branches}
        if override is not None and override not in targets:
            raise Refused(f"override phase {override!r} is not a branch of decision {dec.id}"
                          f"{suggest(override, list(targets))} (branches lead to: {', '.join(targets)})")
        # an override changes the branch, never the timing: the branch's guard refuses while it is not ready
        branch = targets[override] if override is not None else next(
            (b for b in dec.branches if b.id == preview.recommended_branch), dec.branches[-1])
        payload = {
            "decision": dec.id, "criteria": preview.criteria, "outcomes": preview.outcomes,
            "favourable": preview.favourable, "favourable_criteria": list(preview.favourable_criteria),
            "ready": preview.ready, "missing": list(preview.missing),
            "recommended_branch": preview.recommended_branch, "recommended_phase": preview.recommended_phase,
            "branch": branch.id, "to": branch.to, "override": override is not None and branch.id !=
            preview.recommended_branch, "flags": list(preview.flags),
        }
        from ._machine import branch_trigger, machine_for

        move = None
        if state.phase != dec.phase:  # into the decision phase on the way (the treatment phase completes)
            into = machine_for(protocol).path_to(state.phase, dec.phase)
            assert into is not None  # decision_applies: a transition leads there
            move = _move(state, protocol, into, when, None, deciding=True)
        move = _move(state, protocol, branch_trigger(branch.id), when, reason, move, preview=preview,
                     decision_payload=payload)
        new = move.events  # [into the decision phase,] the decision, the branch's phase change
        if tx.actor.authenticated:  # the signature follows the decision it signs
            at = next(i for i, e in enumerate(new) if e.kind == DECISION)
            seq = state.last_seq + at + 1
            signer = tx.actor
            new.insert(at + 1, NewEvent(SIGNATURE, when, signature_payload(
                decision_seq=seq, decision_sha=decision_hash(patient, seq, when, payload, reason, places(state.events)),
                records=signed_records(protocol, state, when), signer_id=signer.user_id or 0, signer=signer.name,
                full_name=signer.full_name or signer.name, signed_at=tx.now,
                meaning_text=meaning(branch.to, bool(payload["override"]), preview.recommended_phase))))
        events = tx.append(patient, state, new, projection(protocol))
        how = "override" if payload["override"] else "as recommended"
        return Written(patient, tuple(events), branch.to, f"{patient}: decision {dec.id} → {branch.to} ({how})",
                       preview.flags)

    return store.write(actor, work)


def import_file(store: Store, path: str | Path, user: Who, confirm_unusual: str | None = None) -> list[Written]:
    """Import a case file or a laboratory CSV in ONE bulk transaction; re-importing records nothing new.

    The rows are parsed and validated first (every problem named with its line and column); then the
    patients' events are read with one chunked query, each protocol version resolved once, and every new
    event written with one executemany, the projections set-wise (:class:`BulkTransaction`). A file of more
    than one chunk of patients has its chunks read, checked and projected by forked workers while this process
    writes the ones before, where the machine has a second processor (``engine/_forked.py``: the same answers,
    the same one transaction). A row the patient's state refuses (a date outside the
    study, a second value for a day, a value outside the protocol's plausible ranges) is named by its line
    and column too. ``confirm_unusual``: the reason the
    file's values outside a plausible range are right (stored with each of them), as ``record`` takes it."""
    from sqlalchemy import text

    from trialflow.protocol import DocumentError, Problem

    from ._bulk import BulkTransaction, Flush
    from ._collector import no_cyclic_collection
    from ._db import read_session, reopened
    from ._forked import HandBack, can_fork, pipelined, worker_count
    from ._imports import read_import

    batch = read_import(path, collect=True)
    problems = list(batch.problems)
    patients = list(dict.fromkeys(p for p, _ in batch.items))
    if batch.where:  # a CSV: a patient the store does not know is a problem at its place in the file
        known = store.existing(patients)
        problems += [Problem(batch.file, line, col, "$.patient", f"unknown patient {p!r}: enrol them first")
                     for (p, _), (line, col) in zip(batch.items, batch.where, strict=True) if p not in known]
    if problems:
        raise DocumentError(sorted(problems, key=lambda q: (q.line, q.column)))
    if not batch.items:
        raise Refused(f"{path}: no observations to import")
    if confirm_unusual is not None and not confirm_unusual.strip():
        raise Refused("--confirm-unusual needs the reason the value is right")
    parsed = ([(p, _dated(p, r)) for (p, _), r in zip(batch.items, batch.records, strict=True)] if batch.records
              else [(p, _parse(p, d)) for p, d in batch.items])

    by_patient: dict[str, list[tuple[int, tuple[str, Record]]]] = {}
    for at, item in enumerate(parsed):
        by_patient.setdefault(item[0], []).append((at, item))
    first_seen = {p: i for i, p in enumerate(patients)}
    # Chunks are cut from the patients in id order, so two importers whose files name the same patients in
    # different orders take the patients' rows in the same order and queue instead of deadlocking; within a
    # chunk the rows keep their order in the file, and the answer lists the patients as the file names them.
    in_id_order = sorted(patients)

    def work(tx: BulkTransaction) -> list[Written]:
        # IMPORT_CHUNK patients at a time (read, checked, appended, written), in the one transaction: memory
        # holds one chunk's histories, not every patient's; after a refusal the rest is checked, not written
        out: list[Written] = []
        problems: list[Any] = []  # the engine's sentences, and a CSV's as Problems at their line and column
        denied: list[tuple[int, PermissionDenied]] = []  # the patients this user may not record for, by line
        chunks = [in_id_order[first:first + IMPORT_CHUNK] for first in range(0, len(in_id_order), IMPORT_CHUNK)]
        advise = len(parsed) <= 20
        models: dict[str, Protocol] = {}  # the protocol models by content hash, for every chunk

        def rows_of(chunk: list[str]) -> list[tuple[int, tuple[str, Record]]]:
            return sorted((x for p in chunk for x in by_patient[p]), key=lambda x: x[0])

        def record(chunk: list[str], rows: list[tuple[int, tuple[str, Record]]]) -> list[Written]:
            return record_in(store, tx, [item for _, item in rows], batch.day0, batch.enrolled, confirm_unusual,
                             advise=advise, how_to_confirm="import the file with --confirm-unusual REASON",
                             protocols=models)

        def serial(i: int) -> None:
            nonlocal denied
            chunk = chunks[i]
            tx.preload(chunk)
            rows = rows_of(chunk)
            if batch.where:  # a CSV: every patient the user may not record for, named at its first row
                denied += _denied(tx, chunk)
                if denied:
                    tx.forget(chunk)
                    return
            try:
                written = record(chunk, rows)
            except PermissionDenied:
                raise  # not a problem of the file's rows: the whole import is refused as it was, with its role
            except Refused as err:
                problems.extend(_at_row(p, rows) for p in err.problems)
            else:
                if not problems:
                    out.extend(written)
                    tx.flush()
            tx.forget(chunk)

        def ticket(i: int) -> list[int] | None:  # (the parent) the ids chunk i may take; None: from here on, serial
            if problems or denied:
                return None  # after a refusal the rest is only checked: here, as it is
            return tx.reserve_ids(sum(len(by_patient[p]) for p in chunks[i]))  # (one event a row at most)

        @contextmanager
        def worker() -> Iterator[Callable[[int, list[int]], tuple[list[Written], Flush]]]:
            # (a forked worker) its own connection; the chunk's patients read, checked and projected as serial()
            # would, or handed back to the parent (which then names the refusal, as serial() does)
            engine = reopened(store.engine)
            pg = engine.dialect.name == "postgresql"

            def work_on(i: int, ids: list[int]) -> tuple[list[Written], Flush]:
                chunk = chunks[i]
                with read_session(engine) as s:
                    if pg:
                        s.execute(text("SET jit = off"))  # (as the bulk transaction's own reads: engine/_bulk.py)
                    tx.session = s
                    tx.use_ids(ids)
                    try:
                        tx.preload(chunk)
                        tx.preload_visit_ids(chunk)
                        if batch.where and _denied(tx, chunk):
                            raise HandBack(chunk[0])
                        written = record(chunk, rows_of(chunk))
                        return written, tx.prepare()
                    finally:
                        tx.forget(chunk)
                        tx.use_ids([])  # (nothing more without the parent's ids)

            try:
                yield work_on
            finally:
                engine.dispose()

        def apply(i: int, result: tuple[list[Written], Flush]) -> None:
            if problems or denied:  # a chunk before it was refused meanwhile: this one is only checked
                serial(i)
                return
            written, flush = result
            out.extend(written)
            tx.apply(flush)
            tx.forget(chunks[i])

        if len(chunks) > 1 and can_fork() and _readable_beside_a_writer(tx):
            for v in store.versions():  # resolved before the workers fork: each is a copy of this process
                with suppress(StoreError):  # (a version that does not load: a chunk that needs it is the parent's,
                    models.setdefault(v.content_hash, store.protocol(v.content_hash)[0])  # refused as serial)
            pipelined(range(len(chunks)), worker, ticket, apply, serial, workers=worker_count())
        else:
            for i in range(len(chunks)):
                serial(i)
        if denied:  # not a problem of the rows' values: the whole import is refused with the role, as it was
            denied.sort(key=lambda d: d[0])
            refusal = PermissionDenied(denied[0][1].problems[0], denied[0][1].action, denied[0][1].needs)
            refusal.problems = tuple(p for _, d in denied for p in d.problems)
            raise refusal
        if problems:
            # a CSV's rows in the file's order, each named by its line and column ("lab.csv:4:3: $.date: ..."),
            # each still the engine's problem (an unusual value stays one, its advice the terminal's)
            at_rows = sorted((p for p in problems if isinstance(p, tuple)), key=lambda q: q[0])
            raise Refused(*(p for _, p in at_rows), *(p for p in problems if not isinstance(p, tuple)))
        return sorted(out, key=lambda w: first_seen[w.patient])

    def _denied(tx: BulkTransaction, chunk: list[str]) -> list[tuple[int, PermissionDenied]]:
        """The refusals of recording for the chunk's patients, each at (the line of) the patient's first row."""
        out = []
        for patient in chunk:
            try:
                tx.authorize_events(patient, tx.state(patient), [OBSERVATION])
            except PermissionDenied as err:
                line, column = batch.where[by_patient[patient][0][0]]
                where = Problem(batch.file, line, column, "$.patient", "; ".join(err.problems))
                out.append((line, PermissionDenied(str(where), err.action, err.needs)))
            except Refused:
                pass  # (a locked case book and the like: record_in names it with the rows' other problems)
        return out

    def _at_row(p: str, rows: list[tuple[int, tuple[str, Record]]]) -> Any:
        """A problem of the chunk's ``rows`` as ((line, column), the problem said at that place of the file) for a
        CSV; else as is."""
        item, field = getattr(p, "item", None), getattr(p, "field", None)
        if item is None or not batch.where:
            return p
        line, column = batch.where[rows[item][0]]
        name = (field or "").split("[", 1)[0]
        column, path = (batch.columns[name], f"$.{name}") if name in batch.columns else (column, "$.patient")
        problem = p if isinstance(p, Refusal) else Refusal(p)
        return (line, column), problem.at(f"{batch.file}:{line}:{column}: {path}")

    with no_cyclic_collection():  # it holds a chunk's histories (engine/_collector.py)
        return store.write_bulk(user, work)


def _readable_beside_a_writer(tx: Any) -> bool:
    """Whether other connections can read the store while ``tx`` writes: PostgreSQL, or an SQLite file in WAL mode
    (a store trialflow created; in SQLite's older journal modes a writer's spilled pages lock readers out, and an
    in-memory database is this connection's own)."""
    conn = tx.session.connection()
    if conn.dialect.name != "sqlite":
        return True
    return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() == "wal"


#: patients an import reads, checks and writes at a time (all in its one transaction)
IMPORT_CHUNK = 1000
