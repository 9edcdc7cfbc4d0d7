"""Bulk writes: many patients' appends in one transaction, written set-wise at its end.

A :class:`BulkTransaction` is a :class:`Transaction` (the same ``state`` / ``append`` / ``create`` the
workflow functions call) that reads each patient's events once (one chunked query for all the patients
an import names, or on first use), keeps what the work appends in memory, and at the end writes every
new event with one driver ``executemany`` (COPY on PostgreSQL, ``engine/_driver_rows.py``), the patient
projections with one guarded ``executemany`` and the work items set-wise, all in the caller's one transaction.

The one-patient path's guarantees hold: every event is authorised as in :meth:`Transaction.append`
(the same ``authorize_events``); each patient's events are chained to its previous one
(``engine/_chain.py``); and a concurrent writer that changed one of the patients first makes the
attempt fail, either on the ``(patient, seq)`` unique index or on the projection's ``last_seq`` guard,
so :meth:`Store.write_bulk` runs the whole work again on fresh state: nothing lost, nothing doubled.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlmodel import Session

from ._chain import event_hash
from ._driver_rows import insert_rows, select_rows
from ._identity import Actor
from ._state import EVENT_COLUMNS, OBSERVATION, Event, PatientState, events_from_tuples, extend, fold, stamp, upcast
from ._store import (
    PAYLOAD_JSON,
    ConcurrentUpdate,
    NewEvent,
    ProjectionUpdate,
    Transaction,
    _item_row,
    _visit_rows,
    folded,
    visit_row,
)
from ._tables import EventRow, PatientRow, VisitRow, WorkItemRow

__all__ = ["BulkTransaction", "Flush"]

T = TypeVar("T")
_EVENTS = EventRow.__table__  # type: ignore[attr-defined]
_PATIENTS = PatientRow.__table__  # type: ignore[attr-defined]
_ITEMS = WorkItemRow.__table__  # type: ignore[attr-defined]
_VISITS = VisitRow.__table__  # type: ignore[attr-defined]
#: ids per IN (...) list: SQLite and PostgreSQL cap the bound parameters of one statement (32,766 / 65,535)
CHUNK = 5000
_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Patient:
    """What the transaction knows of one patient: its events (stored and new), chain head and projection."""

    events: tuple[Event, ...]
    head: str  # hash of the last event ("" before the first)
    site: str | None
    base_seq: int  # last_seq as read (0 for a patient created here): the projection's guard
    created: dict[str, Any] | None = None  # the patient row to insert, for a patient created here
    state: PatientState | None = None  # fold of ``events``, kept once computed
    # (new last_seq, update) to write; the update is computed once, at flush, from the final state (a
    # patient appended to five times in one batch is projected once)
    projection: tuple[int, ProjectionUpdate | Callable[[PatientState], ProjectionUpdate]] | None = None


@dataclass(slots=True)
class Flush:
    """What one :meth:`BulkTransaction.flush` writes, as rows: worked out by :meth:`~BulkTransaction.prepare`
    (where the appends were made: this process, or a forked worker) and written by :meth:`~BulkTransaction.apply`."""

    created: list[dict[str, Any]]  # patient rows to insert
    events: list[dict[str, Any]]  # event rows, in (patient, seq) order
    patients: list[dict[str, Any]]  # the guarded update of each patient row (its last_seq as read: b_old)
    versions: list[dict[str, Any]]  # patients moved to another protocol version
    expected: dict[str, int]  # each patient's last_seq once written (the guard)
    items: dict[str, list[dict[str, Any]]]  # each patient's work item rows, in order
    visits_changed: list[tuple[int, dict[str, Any]]]  # visit rows updated where they stand (row id, values)
    visits_full: dict[str, list[dict[str, Any]]]  # each other patient's visit rows, compared whole
    written: set[str]  # the patients written (forgotten afterwards)
    visit_ids: dict[str, list[int]]  # the stored visit row ids visits_changed was worked out from, by patient


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i:i + CHUNK])


class BulkTransaction(Transaction):
    """Appends for many patients, kept in memory and written by :meth:`flush` (see the module docstring)."""

    def __init__(self, session: Session, actor: str | Actor):
        self._session = session
        self._savepoint: Any = None  # the savepoint of the command :meth:`isolated` runs, once it touches the session
        self._isolating = False
        super().__init__(session, actor)
        self._patients: dict[str, _Patient | None] = {}  # None: not in the store
        self._rows: list[dict[str, Any]] = []
        self._ids: list[int] = []
        self._reserved: list[int] | None = None  # ids the parent gave a forked worker (use_ids)
        self._visit_ids: dict[str, list[int]] = {}  # stored visit row ids by patient (preload_visit_ids)
        self._next_id: int | None = None
        self._journal: dict[str, Any] | None = None
        self._sites: list[str] | None = None
        self.protocols: dict[Any, Any] = {}  # Store.protocol / Store.info answers, read once per transaction
        if session.get_bind().dialect.name == "postgresql":
            # Its reads are index searches of a few thousand patients; on a store the server has not analysed
            # yet (a fresh load) their row estimates pass jit_above_cost, and compiling each query took longer
            # than running it (60 ms of JIT for a 7 ms search): no JIT in this transaction (SET LOCAL ends with it).
            session.execute(text("SET LOCAL jit = off"))

    @property
    def session(self) -> Session:
        """The transaction's session. Inside :meth:`isolated` the first use opens the savepoint a refusal rolls
        back: a command that writes only through :meth:`append` (most do) adds nothing to the session, so it
        needs none (the transaction's own reads and writes use the session without opening one)."""
        if self._isolating and self._savepoint is None:
            self._savepoint = self._session.begin_nested()
        return self._session

    @session.setter
    def session(self, session: Session) -> None:
        self._session = session

    # -- reading --------------------------------------------------------------------------------
    def preload(self, patients: Iterable[str]) -> None:
        """Read the patient rows and events of ``patients`` with one chunked query each (through the driver:
        an import reads 10^5 events)."""
        todo = [p for p in dict.fromkeys(patients) if p not in self._patients]
        for chunk in _chunks(todo):
            found = dict(select_rows(self._session, _PATIENTS, ("id", "site"), "id", chunk))
            rows = select_rows(self._session, _EVENTS, (*EVENT_COLUMNS, "hash"), "patient_id", chunk,
                               order_by=("patient_id", "seq"))
            events: dict[str, list[Event]] = {}
            heads: dict[str, str] = {}
            for r, e in zip(rows, events_from_tuples(rows), strict=True):
                events.setdefault(e.patient, []).append(e)
                heads[e.patient] = r[-1] or ""
            for pid in chunk:
                if pid not in found:
                    self._patients[pid] = None
                    continue
                evs = tuple(events.get(pid, ()))
                self._patients[pid] = _Patient(evs, heads.get(pid, ""), found[pid], evs[-1].seq if evs else 0)

    def _patient(self, patient: str) -> _Patient | None:
        if patient not in self._patients:
            self.preload([patient])
        return self._patients[patient]

    def known(self, patients: Iterable[str]) -> set[str]:
        """Those of ``patients`` the store (or this transaction) holds."""
        patients = list(patients)
        self.preload(patients)
        return {p for p in patients if self._patients[p] is not None}

    def events(self, patient: str) -> list[Event]:
        p = self._patient(patient)
        return list(p.events) if p is not None else []

    def state(self, patient: str) -> PatientState | None:
        p = self._patient(patient)
        if p is None or not p.events:
            return None
        if p.state is None:
            p = self._patients[patient] = dataclasses.replace(p, state=fold(p.events))
        return p.state

    def site_codes(self) -> list[str]:
        """The store's site codes, read once per transaction (sites are added by their own transaction)."""
        if self._sites is None:
            self._sites = super().site_codes()
        return list(self._sites)

    def site_of(self, patient: str) -> str | None:
        p = self._patient(patient)
        return p.site if p is not None else None

    def known_dedup(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        mine = {r["dedup_key"] for r in self._rows if r["dedup_key"] is not None}
        return super().known_dedup(keys) | (mine & set(keys))

    # -- appending (in memory) ------------------------------------------------------------------
    def isolated(self, work: Callable[[BulkTransaction], T], actor: Actor | None = None) -> T:
        """Run one command's ``work``; if it raises, forget what it appended (the others' appends stay).

        Its appends are buffered here; rows it adds on the session directly (a site an enrolment names for
        the first time, a data query's row) are inside a savepoint that a refusal rolls back."""
        saved_actor = self.actor
        if actor is not None:
            self.actor, self.user = actor, actor.name
        self._journal, mark = {}, len(self._rows)
        outer = self._isolating, self._savepoint
        self._isolating, self._savepoint = True, None
        try:
            done = work(self)
            if self._savepoint is not None:
                self._savepoint.commit()
            return done
        except BaseException:
            if self._savepoint is not None and self._savepoint.is_active:
                self._savepoint.rollback()
            for pid, before in self._journal.items():
                if before is _MISSING:
                    self._patients.pop(pid, None)
                else:
                    self._patients[pid] = before
            del self._rows[mark:]
            raise
        finally:
            self._journal = None
            self._isolating, self._savepoint = outer
            self.actor, self.user = saved_actor, saved_actor.name

    def _keep(self, patient: str) -> None:
        if self._journal is not None and patient not in self._journal:
            self._journal[patient] = self._patients.get(patient, _MISSING)

    def create(self, patient: str, version_id: int, enrolled_on: Any, new: list[NewEvent],
               project: Callable[[PatientState], ProjectionUpdate], site: str | None = None) -> list[Event]:
        if self._patient(patient) is not None:
            raise ConcurrentUpdate(patient)
        self._keep(patient)
        self._patients[patient] = _Patient((), "", site, 0, created=dict(
            id=patient, protocol_version_id=version_id, phase="", enrolled_on=enrolled_on,
            phase_entered_on=enrolled_on, site=site, last_seq=0, updated_at=self.now))
        return self.append(patient, None, new, project)

    def append(self, patient: str, state: PatientState | None, new: list[NewEvent],
               project: Callable[[PatientState], ProjectionUpdate]) -> list[Event]:
        self.authorize_events(patient, state, [e.kind for e in new])
        p = self._patient(patient)
        last_seq = state.last_seq if state is not None else 0
        if p is None or (p.events[-1].seq if p.events else 0) != last_seq:
            raise ConcurrentUpdate(patient)  # the caller decided on another state than this transaction holds
        self._keep(patient)
        prev = p.head
        context = self.actor.context_json()
        ids = self._take_ids(len(new))
        appended = []
        for i, e in enumerate(new, start=1):
            payload = PAYLOAD_JSON(stamp(e.kind, e.payload))
            seq, at, by = last_seq + i, e.recorded_at or self.now, e.user or self.user
            row: dict[str, Any] = dict(id=ids[i - 1], patient_id=patient, seq=seq, kind=e.kind,
                       effective_date=e.effective_date, recorded_at=at, user=by,
                       user_id=None if e.user else self.actor.user_id, context=context,
                       reason=e.reason, payload=payload, corrects_id=e.corrects, dedup_key=e.dedup)
            row["prev_hash"], row["hash"] = prev, event_hash(row, prev)  # row: every hashed column
            prev = row["hash"]
            self._rows.append(row)
            # a record's to_dict() holds JSON values only: the stored payload reads back as that dict
            decoded = dict(e.payload) if e.record is not None else upcast(e.kind, json.loads(payload))
            appended.append(Event(ids[i - 1], patient, seq, e.kind, e.effective_date, at, by, e.reason,
                                  decoded, e.corrects))
        events = (*p.events, *appended)
        records = [e.record for e in new] if all(e.record is not None for e in new) else None
        after = folded(lambda: extend(state, appended, records) if state is not None else fold(appended), appended)
        self._patients[patient] = dataclasses.replace(p, events=events, head=prev, state=after,
                                                      projection=(after.last_seq, project))
        return appended

    def project(self, patient: str, old_seq: int, new_seq: int, p: ProjectionUpdate) -> None:
        known = self._patient(patient)
        if known is None or known.base_seq != old_seq:
            raise ConcurrentUpdate(patient)
        self._keep(patient)
        self._patients[patient] = dataclasses.replace(known, projection=(new_seq, p))

    def _take_ids(self, n: int) -> list[int]:
        """Ids for ``n`` new events: from the sequence on PostgreSQL (safe beside concurrent writers), after
        the largest id on SQLite (a write transaction there holds the database's write lock); or from the ids
        :meth:`use_ids` gave, while they last."""
        if self._reserved is not None:
            if len(self._reserved) < n:  # (never from the store: another process may be taking these ids)
                raise RuntimeError(f"{n} event ids wanted, {len(self._reserved)} reserved for this work")
            taken, self._reserved = self._reserved[:n], self._reserved[n:]
            return taken
        if self._session.get_bind().dialect.name == "postgresql":
            if len(self._ids) < n:
                q = text("SELECT nextval(pg_get_serial_sequence('event', 'id')) FROM generate_series(1, :n)")
                self._ids += list(self._session.execute(q, {"n": max(n, 1000)}).scalars())
            taken, self._ids = self._ids[:n], self._ids[n:]
            return taken
        if self._next_id is None:
            self._next_id = int(self._session.execute(select(func.max(_EVENTS.c.id))).scalar_one() or 0) + 1
        start, self._next_id = self._next_id, self._next_id + n
        return list(range(start, start + n))

    # -- writing (set-wise) ---------------------------------------------------------------------
    def reserve_ids(self, n: int) -> list[int]:
        """``n`` event ids taken now for appends worked out elsewhere (:meth:`use_ids`): an import's chunk worked
        out by a forked worker, whose connection is not this transaction's (``engine/_forked.py``). Ids it leaves
        unused stay unused (a gap, as a PostgreSQL sequence leaves after a rollback)."""
        return self._take_ids(n)

    def use_ids(self, ids: list[int] | None) -> None:
        """Take the ids of this transaction's appends from ``ids`` (from :meth:`reserve_ids`) only, never from the
        store; ``None``: from the store again."""
        self._reserved = None if ids is None else list(ids)

    def flush(self) -> None:
        """Write everything appended so far: new patients, events, projections and work items. The patients
        written are then forgotten (read again, from this transaction, if they are named again), so a
        caller writing in chunks holds one chunk at a time."""
        self.preload_visit_ids(self._observed_only())
        self.apply(self.prepare())

    def prepare(self) -> Flush:
        """What :meth:`flush` writes, worked out without writing it (and without asking the database, given the
        patients' visit row ids: :meth:`preload_visit_ids`), so that a forked worker can work out a chunk's while
        the parent writes the one before (``engine/_forked.py``)."""
        created = sorted((p.created for p in self._patients.values() if p is not None and p.created is not None),
                         key=lambda r: r["id"])
        # in (patient, seq) order, so two bulk writers meeting on the same patients queue instead of deadlocking
        events = sorted(self._rows, key=lambda r: (r["patient_id"], r["seq"]))
        todo = sorted((pid, p) for pid, p in self._patients.items() if p is not None and p.projection is not None)
        updates: dict[str, ProjectionUpdate] = {}
        for pid, p in todo:
            assert p.projection is not None  # filtered above
            u = p.projection[1]
            state = self.state(pid)
            assert state is not None  # a patient with a projection to write has events
            updates[pid] = u if isinstance(u, ProjectionUpdate) else u(state)
        params, versions = [], []
        for pid, p in todo:
            assert p.projection is not None  # filtered above
            seq, u = p.projection[0], updates[pid]
            params.append({"b_id": pid, "b_old": p.base_seq, "v_phase": u.phase,
                           "v_phase_entered_on": u.phase_entered_on, "v_day0": u.day0,
                           "v_dose_mg_per_day": u.dose_mg_per_day, "v_next_due": u.next_due,
                           "v_valid_from": u.valid_from, "v_decision": u.decision, "v_report": u.report,
                           "v_last_seq": seq, "v_updated_at": self.now})
            if u.protocol_version_id is not None:
                versions.append({"b_id": pid, "v_version": u.protocol_version_id})
        expected = {pid: p.projection[0] for pid, p in todo if p.projection is not None}
        items = {pid: [_item_row(i) for i in u.items] for pid, u in updates.items()}
        changed, full = self._visit_plan(todo, updates)
        written = {pid for pid, p in self._patients.items()
                   if p is not None and (p.created is not None or p.projection is not None)}
        used = {pid: self._visit_ids[pid] for pid, _ in todo if pid not in full and pid in self._visit_ids}
        return Flush(created, events, params, versions, expected, items, changed, full, written, used)

    def apply(self, f: Flush) -> None:
        """Write what :meth:`prepare` worked out (here or in a forked worker), then forget the patients written."""
        if f.created:
            self.session.execute(insert(_PATIENTS), f.created)
        if f.events:
            insert_rows(self.session, _EVENTS, f.events)
        if f.patients:
            self._write_projections(f)
        self._rows = []  # every appended row is written (each belongs to a patient written here)
        self.forget(f.written)

    def forget(self, patients: Iterable[str]) -> None:
        """Drop what this transaction holds of ``patients``: their histories and any append not yet written."""
        gone = set(patients)
        self.record_keys.clear()  # (a cache: the patients still held are keyed again if recorded for)
        for pid in gone:
            self._patients.pop(pid, None)
            self._visit_ids.pop(pid, None)
        self._rows = [r for r in self._rows if r["patient_id"] not in gone]

    def _write_projections(self, f: Flush) -> None:
        stmt = (update(_PATIENTS).where(_PATIENTS.c.id == bindparam("b_id"), _PATIENTS.c.last_seq == bindparam("b_old"))
                .values({c: bindparam(f"v_{c}") for c in ("phase", "phase_entered_on", "day0", "dose_mg_per_day",
                                                           "next_due", "valid_from", "decision", "report",
                                                           "last_seq", "updated_at")}))
        self.session.connection().execute(stmt, f.patients)
        if f.versions:
            self.session.connection().execute(
                update(_PATIENTS).where(_PATIENTS.c.id == bindparam("b_id"))
                .values(protocol_version_id=bindparam("v_version")), f.versions)
        # The guard: every patient row still had the last_seq this transaction read (one read per chunk).
        ids = list(f.expected)
        for chunk in _chunks(ids):
            got = dict(self.session.execute(select(_PATIENTS.c.id, _PATIENTS.c.last_seq)
                                            .where(_PATIENTS.c.id.in_(chunk))).all())
            wrong = [pid for pid in chunk if got.get(pid) != f.expected[pid]]
            if wrong:
                raise ConcurrentUpdate(wrong[0])
        # (after the guard: the patient rows updated above are this transaction's until it ends, and every writer
        # of a patient's items and visits updates its row first, so the rows read below cannot change meanwhile)
        self._check_visit_ids(f.visit_ids)
        self._rewrite(_ITEMS, f.items)
        self._update_rows(_VISITS, f.visits_changed)
        self._rewrite(_VISITS, f.visits_full)

    def _check_visit_ids(self, used: dict[str, list[int]]) -> None:
        """The visit rows to update where they stand were chosen by their ids as read before the guard (by
        :meth:`preload_visit_ids`, here or in a forked worker). On PostgreSQL another writer may have written a
        patient's visit rows again since without a new event (``rebuild_projections`` keeps ``last_seq``): read
        again now, under the guard's row lock, any difference is a :class:`ConcurrentUpdate` (the work runs again
        on fresh state). SQLite: a write transaction holds the file's write lock from its start, so nobody did."""
        if not used or self.session.get_bind().dialect.name != "postgresql":
            return
        now: dict[str, list[int]] = {pid: [] for pid in used}
        for chunk in _chunks(list(used)):
            for pid, row_id in select_rows(self.session, _VISITS, ("patient_id", "id"), "patient_id", chunk,
                                           order_by=("patient_id", "id")):
                now[pid].append(row_id)
        for pid, ids in used.items():
            if now[pid] != ids:
                raise ConcurrentUpdate(pid)

    def _observed_only(self) -> list[str]:
        """The patients held whose appends here are all observations (an import's rows), not created here."""
        out = []
        for pid, p in self._patients.items():
            if p is None or p.created is not None or p.projection is None:
                continue
            new = [e for e in p.events if e.seq > p.base_seq]
            if new and all(e.kind == OBSERVATION for e in new):
                out.append(pid)
        return out

    def preload_visit_ids(self, patients: Iterable[str]) -> None:
        """Read the ids of the stored visit rows of ``patients`` (in their order), for :meth:`prepare`."""
        todo = [p for p in dict.fromkeys(patients) if p not in self._visit_ids]
        for chunk in _chunks(todo):
            for pid in chunk:
                self._visit_ids[pid] = []
            for pid, row_id in select_rows(self.session, _VISITS, ("patient_id", "id"), "patient_id", chunk,
                                           order_by=("patient_id", "id")):
                self._visit_ids[pid].append(row_id)

    def _visit_plan(self, todo: list[tuple[str, _Patient]], updates: dict[str, ProjectionUpdate]
                    ) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        """Each patient's visit rows as its projection places them: (the rows to update where they stand, the
        patients whose rows are compared whole). A patient this transaction gave observations
        only (an import's rows) keeps its phases, deviations and skips, so it keeps its visits, in the same order,
        and a visit can change only by taking one of the new records as the first of its kind in its window: such a
        visit's row is updated where it stands, the others are not read, compared or encoded (their stored rows are
        the placement of the state before, which the projection wrote with it: a change to the placement ships
        with a migration that has them rebuilt, see ``engine/_projection.py``). Any other patient, or one whose
        stored rows are not one per visit, has its rows compared as :meth:`_rewrite` does."""
        changed: list[tuple[int, dict[str, Any]]] = []
        full: dict[str, list[dict[str, Any]]] = {}
        for pid, p in todo:
            new = [e for e in p.events if e.seq > p.base_seq]
            row_ids = self._visit_ids.get(pid)
            visits = updates[pid].visits
            if p.created is not None or not new or any(e.kind != OBSERVATION for e in new) \
                    or row_ids is None or len(row_ids) != len(visits):
                full[pid] = _visit_rows(pid, updates[pid])
                continue
            ids = {e.id for e in new}
            changed += [(row_id, visit_row(v, by_clock)) for row_id, (v, by_clock) in zip(row_ids, visits, strict=True)
                        if any(r.event in ids for r in v.records)]
        return changed, full

    def _update_rows(self, table: Any, changed: list[tuple[int, dict[str, Any]]]) -> None:
        """Update the rows ``changed`` names (row id, every column's value but the id and patient) where they stand."""
        if changed:
            columns = [c.name for c in table.columns if c.name not in ("id", "patient_id")]
            self.session.connection().execute(
                update(table).where(table.c.id == bindparam("b_id")).values({c: bindparam(f"v_{c}") for c in columns}),
                [{"b_id": row_id, **{f"v_{c}": row[c] for c in columns}} for row_id, row in changed])

    def _rewrite(self, table: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Make each patient's rows of a projection cache (work items, visits) the ``rows`` given, in their order,
        writing only what differs: a row whose values changed is updated where it stands, a patient whose number
        of rows changed has them deleted and inserted again. (An import adds a record or two to a patient and
        changes one visit of its fourteen, if any: rewriting them all was most of what it wrote.) The rows keep
        their order of ids, which is the order readers list them in."""
        if not rows:
            return
        columns = [c.name for c in table.columns if c.name not in ("id", "patient_id")]  # every row gives each
        values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)  # (as a tuple)
        stored: dict[str, list[tuple[Any, ...]]] = {}
        for chunk in _chunks(list(rows)):
            for r in select_rows(self.session, table, ("patient_id", "id", *columns), "patient_id", chunk,
                                 order_by=("patient_id", "id")):
                stored.setdefault(r[0], []).append(r[1:])
        redo: list[str] = []
        changed: list[tuple[int, dict[str, Any]]] = []
        for pid, new in rows.items():
            old = stored.get(pid, [])
            if len(old) != len(new):
                redo.append(pid)
                continue
            changed += [(was[0], row) for was, row in zip(old, new, strict=True) if was[1:] != values_of(row)]
        self._update_rows(table, changed)
        gone = [pid for pid in redo if stored.get(pid)]
        for chunk in _chunks(gone):
            self.session.execute(delete(table).where(table.c.patient_id.in_(chunk)))
        insert_rows(self.session, table, [r for pid in redo for r in rows[pid]])
