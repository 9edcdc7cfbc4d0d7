"""The event store: protocol versions, append-only events, and the patient projection.

Every write goes through :meth:`Store.change_patient`, one transaction that reads the patient's
events, lets the caller decide what to append, then appends and updates the projection with a
compare-and-set on ``last_seq``. A concurrent writer that got there first makes the guard fail; the
whole attempt is retried on fresh state, so nothing is lost, duplicated or applied twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from trialflow.documents._frozen import frozen

from ._base import Refused
from ._db import StoreError, database_url, make_engine, read_session, refresh_statistics, write_session
from ._identity import WHILE_LOCKED, Actor, Login, action_of, authorize, identify, refresh, site_codes
from ._json import json_encoder
from ._state import DamagedEvent, Event, NotEnrolled, PatientState, fold, stamp
from ._tables import EventRow, PatientRow, ProtocolVersionRow, StoreInfoRow, VisitRow, WorkItemRow
from ._workitems import WorkItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

    from trialflow.protocol import Protocol

    from ._bulk import BulkTransaction
    from ._schedule import ScheduledVisit

__all__ = ["ConcurrentUpdate", "NewEvent", "ProjectionUpdate", "RegisteredVersion", "Store", "Transaction", "dedup_key"]

T = TypeVar("T")
_EVENT_COLUMNS = tuple(c.name for c in EventRow.__table__.columns)  # type: ignore[attr-defined]
# the values a new event row takes for the columns it is not given (as ``EventRow(...)`` would)
_EVENT_DEFAULTS: dict[str, Any] = {c: EventRow._defaults.get(c) for c in _EVENT_COLUMNS}


class ConcurrentUpdate(Exception):
    """Another writer changed the patient first; the caller's attempt is retried."""


@frozen
class NewEvent:
    """An event to append (the store assigns id, seq and recorded_at)."""

    kind: str
    effective_date: dt.date
    payload: dict[str, Any]
    reason: str | None = None
    corrects: int | None = None
    dedup: str | None = None
    # an event restored from another system's audit trail (ODM import) keeps who recorded it and when
    recorded_at: dt.datetime | None = None
    user: str | None = None
    # an observation's record as parsed (its ``to_dict()`` is ``payload``): the bulk path folds it as it is
    # instead of building it again from the payload
    record: Any = None


@frozen
class ProjectionUpdate:
    """The patient row's cached summary after the new events."""

    phase: str
    phase_entered_on: dt.date
    day0: dt.date | None
    dose_mg_per_day: float | None
    items: tuple[WorkItem, ...]
    valid_from: dt.date
    protocol_version_id: int | None = None
    decision: str | None = None
    # the placed visits, each with whether its state follows the clock alone (engine._schedule.placed), in the
    # order their visit_state rows are written; encoded as rows (visit_row) only where a row is written
    visits: tuple[tuple[ScheduledVisit, bool], ...] = ()
    report: str | None = None  # the patient's line of the endpoint report (JSON, engine._endpoint.line_json)

    @property
    def next_due(self) -> dt.date | None:
        return min((i.opens for i in self.items), default=None)


@frozen
class RegisteredVersion:
    """A protocol version as the store knows it."""

    id: int
    study_id: str
    version: str
    content_hash: str
    registered_at: dt.datetime
    registered_by: str
    reason: str
    source_file: str
    patients: int = 0
    newly_registered: bool = False


def _item_row(i: WorkItem) -> dict[str, Any]:
    return {"patient_id": i.patient, "action": i.action, "visit": i.visit, "target_date": i.target_date,
            "window_start": i.window_start, "window_end": i.window_end, "opens": i.opens, "clock": i.clock,
            "reason": i.reason, "detail": i.detail, "waiting_detail": i.waiting_detail}


#: ``json.dumps(…, separators=(",", ":"))``, built once (a projection writes a row per visit)
_BODY_JSON = json_encoder(separators=(",", ":"))


def visit_row(v: ScheduledVisit, by_clock: bool) -> dict[str, Any]:
    """A placed visit as its ``visit_state`` row (without the patient)."""
    body = {"kinds": list(v.kinds), "records": [[r.kind, r.date.isoformat(), r.event] for r in v.records],
            "missing": list(v.missing), "skip_reason": v.skip_reason,
            "deviations": [[d.event, d.kind, d.date.isoformat(), d.reason] for d in v.deviations]}
    return {"visit": v.visit, "name": v.name, "phase": v.phase, "target_date": v.target_date,
            "window_start": v.window_start, "window_end": v.window_end, "status": v.status, "by_clock": by_clock,
            "done_on": v.done_on, "reason": v.reason, "body": _BODY_JSON(body)}


def _visit_rows(patient: str, p: ProjectionUpdate) -> list[dict[str, Any]]:
    return [{"patient_id": patient, **visit_row(v, by_clock)} for v, by_clock in p.visits]


#: ``json.dumps(…, sort_keys=True, separators=(",", ":"))``, built once (an import keys every record it reads)
_DEDUP_JSON = json_encoder(sort_keys=True, separators=(",", ":"))
#: ``json.dumps(…, sort_keys=True, ensure_ascii=False)``: an event's stored payload
PAYLOAD_JSON = json_encoder(sort_keys=True, ensure_ascii=False)


def dedup_key(patient: str, payload: dict[str, Any]) -> str:
    """Identity of an observation: the same patient, kind, date and values is the same fact."""
    return hashlib.sha256(_DEDUP_JSON({"patient": patient, **payload}).encode()).hexdigest()


@lru_cache(maxsize=64)
def _stored_model(content_hash: str, text: str, file: str) -> Protocol:
    """A registered version's model, once per process per (hash, text): validated at registration, so only
    its YAML is read again and its hash checked (no JSON Schema, no semantic checks). The protocol package
    (PyYAML, the model) is imported here, by the commands that rebuild a version, not by every command."""
    from trialflow.protocol import ProtocolError, StoredProtocolMismatch, rebuild_protocol

    try:
        return rebuild_protocol(text, file, content_hash)
    except StoredProtocolMismatch as err:
        raise StoreError(f"protocol version {content_hash[:12]} in this store is damaged: {err}") from None
    except ProtocolError as err:
        raise StoreError(f"protocol version {content_hash[:12]} in this store is damaged: its stored text is no "
                         f"longer readable YAML ({err.problems[0]})") from None


def _visit_status(as_of: dt.date) -> Any:
    """A ``visit_state`` row's status on ``as_of`` in SQL: the settled one, or the clock's (``_schedule.at_date``)."""
    v = VisitRow.__table__.c  # type: ignore[attr-defined]
    return case((~v.by_clock, v.status), (v.window_start > as_of, "upcoming"), (v.target_date >= as_of, "due"),
                (v.window_end >= as_of, "overdue"), else_="missed")


def _chunks(ids: Sequence[str] | None, size: int = 5000) -> list[list[str] | None]:
    """``ids`` in chunks a statement's bound parameters hold (SQLite and PostgreSQL cap them), or [None]: all."""
    if ids is None:
        return [None]
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + size] for i in range(0, len(unique), size)]


def folded(fold_them: Callable[[], PatientState], appended: Sequence[Event]) -> PatientState:
    """A state folded with events about to be appended; one of those that cannot be folded (its payload lacks what
    its kind holds: a caller's or an import file's mistake) is refused, so the transaction writes nothing."""
    try:
        return fold_them()
    except DamagedEvent as err:
        if err.event.id not in {e.id for e in appended}:
            raise
        raise Refused(f"{err.event.patient}: the {err.event.kind} to record {err.problem}: nothing was written") \
            from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """A trialflow store on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.retries = 0  # attempts of :meth:`write` run again after a concurrent change (for tests and tuning)
        self._batch: Any = None  # the BulkTransaction of an open :meth:`batch`, which every write joins

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, db: str | None = None, *, create: bool = False) -> Store:
        return cls(make_engine(database_url(db), create=create))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- protocol versions ----------------------------------------------------------------------
    def register_protocol(self, protocol: Protocol, yaml_text: str, user: str | Actor,
                          reason: str) -> RegisteredVersion:
        """Store a protocol version (idempotent by content hash); an authenticated ``user`` must be an admin;
        a version name is registered once per study (a unique index: concurrent amendments register one).

        ``protocol`` is the validated model of ``yaml_text``; the text must hash to it, since later loads
        trust the stored text by its hash and do not validate it again."""
        for _ in range(3):
            try:
                return self._register(protocol, yaml_text, user, reason)
            except IntegrityError:  # another writer registered this content or this name first: look again
                continue
        raise StoreError(f"could not register {protocol.study.id} v{protocol.version}: the store kept changing")

    def _register(self, protocol: Protocol, yaml_text: str, user: str | Actor, reason: str) -> RegisteredVersion:
        from trialflow.protocol import ProtocolError, StoredProtocolMismatch, rebuild_protocol

        from ._identity import audit

        try:  # the text itself, not the cache of stored texts (protocol/_stored.py): it is read from now on
            rebuild_protocol(yaml_text, protocol.source_file, protocol.content_hash, cached=False)
        except (StoredProtocolMismatch, ProtocolError):
            raise StoreError(f"{protocol.source_file}: the text given is not the text of the validated protocol "
                             "(its content hash differs); nothing was registered") from None
        actor = user if isinstance(user, Actor) else Actor(user)
        with write_session(self.engine) as s:
            actor = refresh(s, actor)
            authorize(actor, "register_protocol")
            existing = s.execute(select(ProtocolVersionRow).where(
                col(ProtocolVersionRow.content_hash) == protocol.content_hash)).first()
            if existing is not None:
                return self._version(existing[0])
            named = s.execute(select(ProtocolVersionRow).where(
                col(ProtocolVersionRow.study_id) == protocol.study.id,
                col(ProtocolVersionRow.version) == protocol.version)).scalars().first()
            if named is not None:
                raise StoreError(f"version {protocol.version!r} of {protocol.study.id} is already registered with "
                                 f"other content (sha256 {named.content_hash[:12]}): give {protocol.source_file} "
                                 "a new study.version")
            study = s.get(StoreInfoRow, "study_id")
            if study is None:
                s.add(StoreInfoRow(key="study_id", value=protocol.study.id))
            elif study.value != protocol.study.id:
                raise StoreError(f"this store runs study {study.value!r}; {protocol.source_file} is study "
                                 f"{protocol.study.id!r}")
            row = ProtocolVersionRow(
                study_id=protocol.study.id, version=protocol.version, content_hash=protocol.content_hash,
                yaml_text=yaml_text, source_file=protocol.source_file, registered_at=_now(),
                registered_by=actor.name, reason=reason,
            )
            s.add(row)
            s.flush()
            audit(s, actor, "protocol_registered", f"{protocol.study.id} v{protocol.version}",
                  {"content_hash": protocol.content_hash, "reason": reason})
            if self._batch is not None:  # the latest version is no longer the one a batch read
                self._batch.protocols.pop(None, None)
            return dataclasses.replace(self._version(row), newly_registered=True)

    def info(self, key: str) -> str | None:
        """A fact about the store itself (``store_info``), e.g. ``demo`` (read once in a batch)."""
        if self._batch is not None:
            memo = self._batch.protocols
            if ("info", key) not in memo:
                memo[("info", key)] = self._info(key)
            return memo[("info", key)]
        return self._info(key)

    def _info(self, key: str) -> str | None:
        with read_session(self.engine) as s:
            row = s.get(StoreInfoRow, key)
            return row.value if row is not None else None

    def set_info(self, key: str, value: str) -> None:
        with write_session(self.engine) as s:
            s.merge(StoreInfoRow(key=key, value=value))

    @staticmethod
    def _version(row: ProtocolVersionRow | Row[Any], patients: int = 0) -> RegisteredVersion:
        assert row.id is not None  # rows read back from the database always have an id
        return RegisteredVersion(row.id, row.study_id, row.version, row.content_hash, row.registered_at,
                                 row.registered_by, row.reason, row.source_file, patients)

    def versions(self) -> list[RegisteredVersion]:
        with read_session(self.engine) as s:
            counts: dict[int, int] = {
                vid: n for vid, n in s.execute(select(col(PatientRow.protocol_version_id), func.count())
                                               .group_by(col(PatientRow.protocol_version_id)))}
            rows = s.execute(select(ProtocolVersionRow).order_by(col(ProtocolVersionRow.id))).scalars().all()
            return [self._version(r, counts.get(r.id, 0)) for r in rows]

    def protocol(self, content_hash: str | None = None) -> tuple[Protocol, RegisteredVersion]:
        """A registered version (default: the latest) as a validated model (once per hash in a batch)."""
        if self._batch is not None:
            memo = self._batch.protocols
            if content_hash not in memo:
                memo[content_hash] = self._protocol(content_hash)
            return memo[content_hash]
        return self._protocol(content_hash)

    def _protocol(self, content_hash: str | None) -> tuple[Protocol, RegisteredVersion]:
        # a Core row: the first ORM query of a process costs some 10 ms more (compiling, configuring the mappers)
        t = ProtocolVersionRow.__table__  # type: ignore[attr-defined]
        with read_session(self.engine) as s:
            q = select(t)
            q = q.where(t.c.content_hash == content_hash) if content_hash else q.order_by(t.c.id.desc())
            row = s.execute(q.limit(1)).first()
            if row is None and content_hash:
                raise StoreError(f"the store has not registered the protocol version with sha256 {content_hash[:12]}: "
                                 "register it first (trialflow protocol amend FILE --apply)")
            if row is None:
                raise StoreError("the store has no protocol registered: run `trialflow init`")
            return _stored_model(row.content_hash, row.yaml_text, row.source_file), self._version(row)

    # -- reading patients -----------------------------------------------------------------------
    def patient_ids(self) -> list[str]:
        with read_session(self.engine) as s:
            return list(s.execute(select(col(PatientRow.id)).order_by(col(PatientRow.id))).scalars())

    def work_items(self, as_of: dt.date, horizon: int, patient: str | None = None) -> tuple[list[WorkItem], list[str]]:
        """Stored items that may show on ``as_of`` within ``horizon`` days, and the patients whose items do
        not hold on ``as_of`` (a clinical date before their latest record: the caller replays those)."""
        latest = as_of + dt.timedelta(days=horizon)
        w, p = WorkItemRow.__table__.c, PatientRow.__table__.c  # type: ignore[attr-defined]
        q = (select(w.patient_id, w.action, w.visit, w.target_date, w.window_start, w.window_end, w.opens, w.clock,
                    w.reason, w.detail, w.waiting_detail)
             .join_from(WorkItemRow.__table__, PatientRow.__table__, w.patient_id == p.id)  # type: ignore[attr-defined]
             .where(w.opens <= latest, p.valid_from <= as_of)
             .order_by(w.id))  # each patient's items in the order its projection wrote them
        stale_q = select(p.id).where((p.valid_from > as_of) | (p.valid_from.is_(None)))
        if patient is not None:
            q, stale_q = q.where(w.patient_id == patient), stale_q.where(p.id == patient)
        with read_session(self.engine) as s:
            items = [WorkItem(*row) for row in s.execute(q)]
            stale = list(s.execute(stale_q).scalars())
        return items, stale

    def projected(self, as_of: dt.date, patients: Sequence[str] | None = None, status: str | None = None, *,
                  visits: bool = True) -> tuple[dict[str, Any], dict[str, list[Any]], list[str]]:
        """The patient rows and stored visits that hold on ``as_of``, and the patients whose do not (a clinical
        date before their latest record, or a store whose projection was not rebuilt yet: the caller replays
        those). Rows by patient: id, phase, phase_entered_on, enrolled_on, day0, dose_mg_per_day, decision,
        content_hash; visits (in stored order; none read without ``visits``) only those in ``status`` on
        ``as_of``, when given."""
        p, v, pv = (PatientRow.__table__.c, VisitRow.__table__.c,  # type: ignore[attr-defined]
                    ProtocolVersionRow.__table__.c)  # type: ignore[attr-defined]
        pq = (select(p.id, p.phase, p.phase_entered_on, p.enrolled_on, p.day0, p.dose_mg_per_day, p.decision,
                     pv.content_hash)
              .join_from(PatientRow.__table__, ProtocolVersionRow.__table__,  # type: ignore[attr-defined]
                         p.protocol_version_id == pv.id)
              .where(p.valid_from <= as_of))
        vq = (select(v.patient_id, v.visit, v.name, v.phase, v.target_date, v.window_start, v.window_end, v.status,
                     v.by_clock, v.done_on, v.reason, v.body)
              .join_from(VisitRow.__table__, PatientRow.__table__, v.patient_id == p.id)  # type: ignore[attr-defined]
              .where(p.valid_from <= as_of).order_by(v.id))
        if status is not None:
            vq = vq.where(_visit_status(as_of) == status)
        stale_q = select(p.id).where((p.valid_from > as_of) | (p.valid_from.is_(None)))
        rows: dict[str, Any] = {}
        found: dict[str, list[Any]] = {}
        stale: list[str] = []
        with read_session(self.engine) as s:
            for chunk in _chunks(patients):
                q1, q2, q3 = (pq, vq, stale_q) if chunk is None else (
                    pq.where(p.id.in_(chunk)), vq.where(v.patient_id.in_(chunk)), stale_q.where(p.id.in_(chunk)))
                rows.update((r.id, r) for r in s.execute(q1))
                for r in s.execute(q2) if visits else ():
                    found.setdefault(r.patient_id, []).append(r)
                stale += s.execute(q3).scalars()
        return rows, found, stale

    def visit_counts(self, as_of: dt.date, patients: Sequence[str] | None = None) -> dict[str, tuple[int, ...]]:
        """For each patient whose stored visits hold on ``as_of``: how many are done, missed, skipped on that
        date, and missed with no deviation recorded (counted by the database, no visit read)."""
        p, v = PatientRow.__table__.c, VisitRow.__table__.c  # type: ignore[attr-defined]
        state = _visit_status(as_of)
        # a visit's body is JSON written with separators (",", ":"): no deviation reads '"deviations":[]'
        undeviated = v.body.contains('"deviations":[]', autoescape=True)
        counts = [func.sum(case((cond, 1), else_=0)) for cond in (
            state == "done", state == "missed", state == "skipped", (state == "missed") & undeviated)]
        q = (select(v.patient_id, *counts)
             .join_from(VisitRow.__table__, PatientRow.__table__, v.patient_id == p.id)  # type: ignore[attr-defined]
             .where(p.valid_from <= as_of).group_by(v.patient_id))
        out: dict[str, tuple[int, ...]] = {}
        with read_session(self.engine) as s:
            for chunk in _chunks(patients):
                for pid, *n in s.execute(q if chunk is None else q.where(v.patient_id.in_(chunk))):
                    out[pid] = tuple(int(x) for x in n)
        return out

    def report_rows(self, as_of: dt.date) -> tuple[list[tuple[str, str, str]], list[str]]:
        """(id, phase, stored report line) of every patient whose line holds on ``as_of``, in study-id order,
        and the patients whose line does not (a clinical date before their latest record, or no line stored
        yet: the caller folds those)."""
        p = PatientRow.__table__.c  # type: ignore[attr-defined]
        holds = (p.valid_from <= as_of) & p.report.is_not(None)
        with read_session(self.engine) as s:
            rows = [(r[0], r[1], r[2]) for r in s.execute(select(p.id, p.phase, p.report).where(holds))]
            stale = list(s.execute(select(p.id).where(~holds | p.valid_from.is_(None))).scalars())
        rows.sort()  # by id in Python's order (a PostgreSQL collation may order ids otherwise)
        return rows, stale

    def recorded_after(self, known_at: dt.datetime) -> set[str]:
        """The patients with an event recorded after ``known_at``: their state then may differ from the stored one."""
        e = EventRow.__table__.c  # type: ignore[attr-defined]
        with read_session(self.engine) as s:
            return set(s.execute(select(e.patient_id).where(e.recorded_at > known_at).distinct()).scalars())

    def sites_of(self, patients: Sequence[str] | None = None) -> dict[str, str | None]:
        """The site of each patient (None in a store without sites)."""
        q = select(col(PatientRow.id), col(PatientRow.site))
        if patients is not None:
            q = q.where(col(PatientRow.id).in_(list(patients)))
        with read_session(self.engine) as s:
            return dict(s.execute(q).all())

    def event_users(self, patient: str) -> dict[int, int | None]:
        """The authenticated user id of each of ``patient``'s events (None: a free-text name)."""
        e = EventRow.__table__  # type: ignore[attr-defined]  # Core: no ORM query on a reading command's path
        q = select(e.c.id, e.c.user_id).where(e.c.patient_id == patient)
        with read_session(self.engine) as s:
            return dict(s.execute(q).all())

    def existing(self, patients: Sequence[str]) -> set[str]:
        """Those of ``patients`` the store holds (one query per 5,000 ids)."""
        ids, found = list(dict.fromkeys(patients)), set[str]()
        with read_session(self.engine) as s:
            for i in range(0, len(ids), 5000):
                found.update(s.execute(select(col(PatientRow.id)).where(col(PatientRow.id).in_(ids[i:i + 5000])))
                             .scalars())
        return found

    def exists(self, patient: str) -> bool:
        p = PatientRow.__table__  # type: ignore[attr-defined]  # Core: no ORM query on a reading command's path
        with read_session(self.engine) as s:
            return s.execute(select(p.c.id).where(p.c.id == patient)).first() is not None

    def last_event_id(self) -> int:
        """The id of the newest event (0 for none). Not a cache key: on PostgreSQL ids are taken before the
        commit, so a long transaction can commit ids below those of a shorter one that committed first."""
        with read_session(self.engine) as s:
            return int(s.execute(select(func.max(col(EventRow.id)))).scalar_one() or 0)

    def write_mark(self) -> int:
        """A number every committed write raises, so readers can cache on it: the sum of the patients'
        ``last_seq``, which each append raises in its own transaction (events are never deleted). Unlike the
        newest id it moves when a transaction commits events numbered below those already committed."""
        with read_session(self.engine) as s:
            return int(s.execute(select(func.sum(col(PatientRow.last_seq)))).scalar_one() or 0)

    def events(self, patient: str) -> list[Event]:
        with read_session(self.engine) as s:
            return self._events(s, patient)

    @staticmethod
    def _events(s: Session, patient: str) -> list[Event]:
        # Core rows, flushed first as an ORM query would autoflush: a reading command's first ORM query
        # costs some 10 ms more (compiling it, configuring the mappers)
        s.flush()
        table = EventRow.__table__  # type: ignore[attr-defined]
        rows = s.execute(select(table).where(table.c.patient_id == patient).order_by(table.c.seq))
        return [Event.from_row(r) for r in rows]

    def events_of(self, patients: Sequence[str] | None = None, *,
                  records: Sequence[str] | None = None) -> dict[str, list[Event]]:
        """Events of many patients at once (one query), grouped by patient.

        ``records``: of the observation events, only those of these record kinds (every other event kind
        is read whole), so a reader that needs the phases and decisions but not the lab values leaves most
        of the table in the database."""
        out: dict[str, list[Event]] = {}
        # Plain Core rows, not ORM objects: building 48,000 SQLModel instances cost more than the query.
        table = EventRow.__table__  # type: ignore[attr-defined]
        q = select(table).order_by(table.c.patient_id, table.c.seq)
        if records is not None:
            # a payload is stored as json.dumps(..., sort_keys=True): its kind reads '"kind": "<kind>"'
            q = q.where(or_(table.c.kind != "observation",
                            *(table.c.payload.contains(f'"kind": "{k}"', autoescape=True) for k in records)))
        with read_session(self.engine) as s:
            if patients is None:
                batches: list[Any] = [q]
            else:
                # Chunked: SQLite and PostgreSQL cap the bound parameters of one statement (32,766 / 65,535).
                ids = list(patients)
                batches = [q.where(table.c.patient_id.in_(ids[i:i + 5000])) for i in range(0, len(ids), 5000)]
            for batch in batches:
                for r in s.execute(batch):
                    out.setdefault(r.patient_id, []).append(Event.from_row(r))
        return out

    def state(self, patient: str, *, known_at: dt.datetime | None = None) -> PatientState | None:
        evs = self.events(patient)
        if not evs:
            return None
        try:
            return fold(evs, known_at=known_at)
        except NotEnrolled:
            return None  # not yet enrolled at ``known_at``

    # -- writing --------------------------------------------------------------------------------
    def write(self, user: str | Actor | Login, work: Callable[[Transaction], T], *, attempts: int = 20) -> T:
        """Run ``work`` in one transaction: all its appends commit together or not at all.

        ``user`` is who acts: authenticated first when the store has users (see ``_identity``), and
        checked again inside the transaction (a user disabled meanwhile writes nothing). Every event
        appended is authorised there, for the patient's site, so no command can skip the check.

        ``work`` may raise to refuse (nothing is written). A concurrent writer that changed one of
        the same patients first makes the attempt fail its guard; ``work`` then runs again on fresh
        state, so it must only read and append through the :class:`Transaction` it is given.
        """
        if self._batch is not None:
            return self._batch.isolated(work, identify(self, user))
        return self._attempts(user, work, Transaction, attempts)

    def write_bulk(self, user: str | Actor | Login, work: Callable[[BulkTransaction], T], *,
                   attempts: int = 20) -> T:
        """:meth:`write` for many patients at once: ``work`` gets a :class:`BulkTransaction`, which reads
        each patient once and writes all appends set-wise at the end, in the same one transaction."""
        from ._bulk import BulkTransaction

        refresh_statistics(self.engine)  # (PostgreSQL, after a bulk load: its searches by patient use the indexes)
        return self._attempts(user, work, BulkTransaction, attempts)

    def _attempts(self, user: str | Actor | Login, work: Callable[[Any], T], kind: type[Transaction],
                  attempts: int) -> T:
        actor = identify(self, user)
        for attempt in range(attempts):
            try:
                with write_session(self.engine) as s:
                    tx = kind(s, refresh(s, actor))
                    if not hasattr(tx, "flush"):
                        return work(tx)
                    # a bulk write (an import) lands all over the tables' indexes, as a batch's does
                    with _larger_page_cache(s):
                        out = work(tx)
                        tx.flush()
                    return out
            except (ConcurrentUpdate, IntegrityError):
                pass
            except OperationalError as err:  # SQLite: lock wait expired; PostgreSQL: serialization, deadlock
                if not any(s in str(err) for s in ("locked", "could not serialize", "deadlock detected")):
                    raise
            self.retries += 1
            time.sleep(min(0.005 * 2**attempt, 0.2))
        raise StoreError("too many concurrent changes to the same patients; nothing was written, try again")

    @contextmanager
    def batch(self, user: str | Actor | Login) -> Iterator[BulkTransaction]:
        """Every :meth:`write` in the block joins ONE bulk transaction, written set-wise when the block ends
        (all or nothing). A write that refuses leaves no trace and the others stay; nothing is retried, so
        this is for a store nobody else writes to meanwhile (the demo cohort)."""
        from ._bulk import BulkTransaction

        actor = identify(self, user)
        refresh_statistics(self.engine)  # (each time a growing store has about doubled: see write_bulk)
        with write_session(self.engine) as s, _larger_page_cache(s):
            tx = BulkTransaction(s, refresh(s, actor))
            tx.quiet = True
            self._batch = tx
            try:
                yield tx
            finally:
                self._batch = None
            tx.flush()


#: SQLite's page cache (KiB) while a :meth:`Store.batch` writes: a batch's rows land all over the event table's
#: indexes (the dedup key's above all), and with SQLite's default of 2 MB most pages are read from the file
#: again at 10^4 patients (a store takes about 30 KB a patient)
BATCH_PAGE_CACHE_KIB = 131072


@contextmanager
def _larger_page_cache(session: Session) -> Iterator[None]:
    """On SQLite, the connection's page cache raised to :data:`BATCH_PAGE_CACHE_KIB` for the block, and set back
    to what it was when the block ends, also when it raises (the pooled connection keeps its page cache, and
    the next command on it would otherwise hold 128 MiB of pages). Set on the driver's connection, which
    answers whatever state the session's transaction is left in; on the way out of a failed block a
    connection that cannot answer any more (it is discarded) does not hide the block's own error."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None  # a live connection of the session's transaction
    before = int(driver.execute("PRAGMA cache_size").fetchone()[0])
    driver.execute(f"PRAGMA cache_size=-{BATCH_PAGE_CACHE_KIB}")
    try:
        yield
    except BaseException:
        with suppress(Exception):
            driver.execute(f"PRAGMA cache_size={before}")
        raise
    driver.execute(f"PRAGMA cache_size={before}")


class Transaction:
    """Reads and appends inside one database transaction (see :meth:`Store.write`)."""

    #: leave out the advice a person reads beside a write (a visit still lacking a record kind): set by
    #: :meth:`Store.batch`, whose writes nobody reads one by one
    quiet = False

    def __init__(self, session: Session, actor: str | Actor):
        self.session = session
        self.actor = actor if isinstance(actor, Actor) else Actor(actor)
        self.user = self.actor.name
        self.now = _now()
        #: the identity (:func:`dedup_key`) of the record each observation or correction event holds, by event
        #: id, as far as this transaction has worked it out (a patient recorded for twice is keyed once)
        self.record_keys: dict[int, str] = {}

    def events(self, patient: str) -> list[Event]:
        return Store._events(self.session, patient)

    def state(self, patient: str) -> PatientState | None:
        evs = self.events(patient)
        return fold(evs) if evs else None

    def known_dedup(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            q = select(col(EventRow.dedup_key)).where(col(EventRow.dedup_key).in_(keys[i:i + 500]))
            found.update(k for k in self.session.execute(q).scalars() if k is not None)
        return found

    def create(self, patient: str, version_id: int, enrolled_on: dt.date, new: list[NewEvent],
               project: Callable[[PatientState], ProjectionUpdate], site: str | None = None) -> list[Event]:
        """A new patient (at ``site``) with its first events; :class:`ConcurrentUpdate` if the id was just taken."""
        if self.session.get(PatientRow, patient) is not None:
            raise ConcurrentUpdate(patient)
        self.session.add(PatientRow(id=patient, protocol_version_id=version_id, phase="", enrolled_on=enrolled_on,
                                    phase_entered_on=enrolled_on, site=site, last_seq=0, updated_at=self.now))
        self.session.flush()
        return self.append(patient, None, new, project)

    def append(self, patient: str, state: PatientState | None, new: list[NewEvent],
               project: Callable[[PatientState], ProjectionUpdate]) -> list[Event]:
        """Append ``new`` after ``state`` (the state the caller decided on) and refresh the projection.

        Each event is authorised for the actor at the patient's site; a locked case book takes only
        its unlocking and data queries; a decision by an authenticated user must come signed.
        """
        from ._chain import event_hash  # (the hash chain's module: only where events are written)

        self.authorize_events(patient, state, [e.kind for e in new])
        last_seq = state.last_seq if state is not None else 0
        prev = self._head_hash(patient, last_seq)
        rows = []
        context = self.actor.context_json()
        # an event restored from another system keeps its author's name there (``user``, free text here) and
        # names who wrote it into this store, authenticated, in its context
        imported = PAYLOAD_JSON({**self.actor.context, "imported_by": self.user, "imported_by_id": self.actor.user_id})
        table = EventRow.__table__  # type: ignore[attr-defined]
        for i, e in enumerate(new, start=1):
            row = {**_EVENT_DEFAULTS, **dict(
                patient_id=patient, seq=last_seq + i, kind=e.kind, effective_date=e.effective_date,
                recorded_at=e.recorded_at or self.now, user=e.user or self.user,
                user_id=None if e.user else self.actor.user_id, context=imported if e.user else context,
                reason=e.reason, payload=PAYLOAD_JSON(stamp(e.kind, e.payload)),
                corrects_id=e.corrects, dedup_key=e.dedup)}
            row["prev_hash"], row["hash"] = prev, event_hash({c: row.get(c) for c in _EVENT_COLUMNS}, prev)
            prev = row["hash"]
            # a Core insert, in order, each taking its id: the ORM's unit of work (and the mappers it
            # configures first) cost a record some 15 ms for the same rows; the unique (patient, seq)
            # still refuses a concurrent writer's event (IntegrityError: the write is retried)
            del row["id"]
            inserted = self.session.execute(insert(table).values(**row))
            (row["id"],) = inserted.inserted_primary_key  # type: ignore[attr-defined]  # (a CursorResult)
            rows.append(types.SimpleNamespace(**row))
        appended = [Event.from_row(r) for r in rows]
        after = folded(lambda: fold([*(state.events if state is not None else ()), *appended]), appended)
        self.project(patient, last_seq, after.last_seq, project(after))
        return appended

    def site_codes(self) -> list[str]:
        """The store's site codes."""
        return site_codes(self.session)

    def site_of(self, patient: str) -> str | None:
        # a Core read, flushed first as session.get would see a pending row: the ORM's first use would
        # configure every mapper (~10 ms of a record)
        self.session.flush()
        table = PatientRow.__table__  # type: ignore[attr-defined]
        return self.session.execute(select(table.c.site).where(table.c.id == patient)).scalar()

    def authorize(self, action: str, patient: str | None = None) -> None:
        """:func:`authorize` for the acting user (at ``patient``'s site, when one is named)."""
        authorize(self.actor, action, self.site_of(patient) if patient else None, patient=patient)

    def authorize_events(self, patient: str, state: PatientState | None, kinds: Sequence[str]) -> None:
        from ._casebook import lock_of

        site = self.site_of(patient)
        for action in dict.fromkeys(action_of(k) for k in kinds):
            authorize(self.actor, action, site, patient=patient)
        lock = lock_of(state.events) if state is not None else None
        if lock is not None and any(k not in WHILE_LOCKED for k in kinds):
            raise Refused(f"{patient}: the case book is locked (since {lock.recorded_at:%Y-%m-%d %H:%M} UTC by "
                          f"{lock.user}: {lock.reason}); a data manager must unlock it first (trialflow unlock)")
        if self.actor.authenticated and "decision" in kinds and "signature" not in kinds:
            raise Refused(f"{patient}: a decision needs the investigator's electronic signature")

    def _head_hash(self, patient: str, last_seq: int) -> str:
        """The hash of the patient's event ``last_seq`` (the chain's end), or "" for a new patient."""
        if last_seq == 0:
            return ""
        e = EventRow.__table__.c  # type: ignore[attr-defined]  # (Core: see append)
        found = self.session.execute(select(e.hash).where(e.patient_id == patient, e.seq == last_seq)).scalar()
        return found or ""

    def project(self, patient: str, old_seq: int, new_seq: int, p: ProjectionUpdate) -> None:
        """Write the patient row and its work items; :class:`ConcurrentUpdate` if someone wrote first."""
        values: dict[str, Any] = dict(phase=p.phase, phase_entered_on=p.phase_entered_on, day0=p.day0,
                                      dose_mg_per_day=p.dose_mg_per_day, next_due=p.next_due,
                                      valid_from=p.valid_from, decision=p.decision, report=p.report,
                                      last_seq=new_seq, updated_at=self.now)
        if p.protocol_version_id is not None:
            values["protocol_version_id"] = p.protocol_version_id
        # Core statements on the tables (the ORM's would configure every mapper first: see append)
        patients, items, visits = (PatientRow.__table__, WorkItemRow.__table__,  # type: ignore[attr-defined]
                                   VisitRow.__table__)  # type: ignore[attr-defined]
        res = self.session.execute(update(patients).where(patients.c.id == patient)
                                   .where(patients.c.last_seq == old_seq).values(**values))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate(patient)
        self.session.execute(delete(items).where(items.c.patient_id == patient))
        if p.items:
            self.session.execute(insert(items), [_item_row(i) for i in p.items])
        self.session.execute(delete(visits).where(visits.c.patient_id == patient))
        if p.visits:
            self.session.execute(insert(visits), _visit_rows(patient, p))
