"""Data queries: a monitor or data manager questions one recorded event; the site answers; a data manager closes.

A query is an event stream in the patient's own events (``query_opened``, ``query_answered``,
``query_closed``); its id is the id of the event that opened it. The ``data_query`` table is a cache
of its current state, written in the same transaction, so lists and the worklist need no replay.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from trialflow.documents._frozen import frozen

from ._base import Problem, Refused, today
from ._db import read_session
from ._identity import SITE_ROLES, Actor, Login, authorize
from ._state import CASEBOOK_LOCKED, CASEBOOK_UNLOCKED, QUERY_ANSWERED, QUERY_CLOSED, QUERY_OPENED, Event
from ._store import NewEvent, Store, Transaction
from ._tables import DataQueryRow, PatientRow
from ._workitems import Action

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

__all__ = ["DataQuery", "answer_query", "cache_query", "close_query", "list_queries", "open_queries_on", "open_query",
           "query_actions"]

#: events that are the review's own (the queries, the case book's lock), not data the site recorded
QUERYABLE_NOT = frozenset({QUERY_OPENED, QUERY_ANSWERED, QUERY_CLOSED, CASEBOOK_LOCKED, CASEBOOK_UNLOCKED})
ANSWER_DAYS = 7  # an open query becomes overdue on the worklist after this many days


@frozen
class DataQuery:
    """One data query as it stands."""

    id: int
    patient: str
    site: str | None
    event: int
    status: str  # open, answered, closed
    text: str
    opened_by: str
    opened_at: dt.datetime
    assigned_to: str | None
    answer: str | None
    updated_at: dt.datetime


def _of(row: DataQueryRow | Row[Any], site: str | None) -> DataQuery:
    return DataQuery(row.id, row.patient_id, site, row.event_id, row.status, row.text, row.opened_by, row.opened_at,
                     row.assigned_to, row.answer, row.updated_at)


def _text(text: str, what: str) -> str:
    clean = text.strip()
    if not clean:
        raise Refused(Problem(f"{what} needs a text", " (--text)"))
    if len(clean) > 2000:
        raise Refused(f"{what}: the text is longer than 2000 characters")
    return clean


def _append(tx: Transaction, store: Store, patient: str, ev: NewEvent) -> Event:
    from ._projection import projection
    from ._workflow import protocol_of

    state = tx.state(patient)
    if state is None:
        raise Refused(f"unknown patient {patient!r}: see trialflow status for the enrolled patients")
    return tx.append(patient, state, [ev], projection(protocol_of(store, state)))[0]


def cache_query(tx: Transaction, e: Event) -> DataQueryRow:
    """The ``data_query`` row as query event ``e`` (opened, answered, closed) leaves it, written in ``tx``:
    the one reading of a query's events into its cached state (the commands here, the ODM import)."""
    p = e.payload
    if e.kind == QUERY_OPENED:
        row = DataQueryRow(id=e.id, patient_id=e.patient, event_id=int(p["event"]), status="open", text=p["text"],
                           opened_by=e.user, opened_at=e.recorded_at, assigned_to=p.get("assigned_to"),
                           updated_at=e.recorded_at)
    else:
        found = tx.session.get(DataQueryRow, int(p["query"]))
        if found is None:
            raise Refused(f"{e.patient}: event {e.id} ({e.kind}) is about query {p['query']}, which was never opened")
        row = found
        row.status = "answered" if e.kind == QUERY_ANSWERED else "closed"
        if e.kind == QUERY_ANSWERED:
            row.answer = p.get("text")
        row.updated_at = e.recorded_at
    tx.session.add(row)
    return row


def open_query(store: Store, patient: str, event_id: int, text: str, user: str | Actor | Login,
               assigned_to: str | None = None) -> DataQuery:
    """Question recorded event ``event_id`` of ``patient`` (monitor, data manager)."""
    body = _text(text, "a query")

    def work(tx: Transaction) -> DataQuery:
        state = tx.state(patient)
        if state is None:
            raise Refused(f"unknown patient {patient!r}: see trialflow status for the enrolled patients")
        tx.authorize("open_query", patient)
        target = next((e for e in state.events if e.id == event_id), None)
        if target is None:
            raise Refused(f"{patient} has no event {event_id} (see trialflow history {patient})")
        if target.kind in QUERYABLE_NOT:
            raise Refused(f"{patient}: event {event_id} is a {target.kind.replace('_', ' ')} event, part of the data "
                          "review, not recorded data: query the recorded event it is about "
                          f"(see trialflow history {patient})")
        ev = _append(tx, store, patient, NewEvent(QUERY_OPENED, today(), {"event": event_id, "text": body,
                                                                          "assigned_to": assigned_to}))
        return _of(cache_query(tx, ev), tx.site_of(patient))

    return store.write(user, work)


def _update(store: Store, query_id: int, user: str | Actor | Login, kind: str, text: str | None) -> DataQuery:
    def work(tx: Transaction) -> DataQuery:
        row = tx.session.get(DataQueryRow, query_id)
        if row is None:
            raise Refused(f"no data query {query_id} (see trialflow query list)")
        tx.authorize("read", row.patient_id)
        if row.status == "closed":
            raise Refused(f"query {query_id} is closed")
        if kind == QUERY_ANSWERED and row.status != "open":
            raise Refused(f"query {query_id} is already answered: a data manager closes it or opens a new one")
        payload = {"query": query_id, "text": text}
        ev = _append(tx, store, row.patient_id, NewEvent(kind, today(), payload))
        return _of(cache_query(tx, ev), tx.site_of(row.patient_id))

    return store.write(user, work)


def answer_query(store: Store, query_id: int, text: str, user: str | Actor | Login) -> DataQuery:
    """The site's answer (coordinator, investigator at the patient's site)."""
    return _update(store, query_id, user, QUERY_ANSWERED, _text(text, "an answer"))


def close_query(store: Store, query_id: int, user: str | Actor | Login, text: str | None = None) -> DataQuery:
    """Close a query (data manager), answered or not."""
    return _update(store, query_id, user, QUERY_CLOSED, text.strip() if text and text.strip() else None)


def _visible(actor: Actor, site: str | None) -> bool:
    return actor.role is None or actor.role not in SITE_ROLES or (site is not None and site in actor.sites)


def list_queries(store: Store, user: str | Actor | Login | None, *, open_only: bool = False, site: str | None = None,
                 assigned_to_me: bool = False, patient: str | None = None) -> list[DataQuery]:
    """Queries the actor may see (their sites for site staff), newest first.

    ``assigned_to_me``: for site staff, open queries assigned to them or to their site; for monitors
    and data managers, answered queries they opened (waiting for them to close).
    """
    from ._access import reader, site_code

    actor = reader(store, user)
    authorize(actor, "read")
    # Core rows (the worklist asks on every call): the first ORM query of a process costs some 10 ms more
    d, p = DataQueryRow.__table__, PatientRow.__table__  # type: ignore[attr-defined]
    q = select(d, p.c.site).join_from(d, p, p.c.id == d.c.patient_id)
    if open_only:
        q = q.where(d.c.status != "closed")
    if site is not None:  # the store's code, in any case; an unknown site is refused, as `visits --site` does
        q = q.where(p.c.site == site_code(store, actor, site))
    if patient is not None:
        q = q.where(d.c.patient_id == patient)
    with read_session(store.engine) as s:
        rows = s.execute(q.order_by(d.c.id.desc())).all()
    out = [_of(r, r.site) for r in rows if _visible(actor, r.site)]
    if assigned_to_me:
        if actor.role in SITE_ROLES or actor.role is None:
            out = [d for d in out if d.status == "open" and d.assigned_to in (None, actor.name)]
        else:
            out = [d for d in out if d.status == "answered" and d.opened_by == actor.name]
    return out


def open_queries_on(store: Store, patient: str) -> list[DataQuery]:
    """The open (unanswered) queries of one patient."""
    with read_session(store.engine) as s:
        d = DataQueryRow.__table__  # type: ignore[attr-defined]  # Core: no ORM query on a reading command's path
        rows = s.execute(select(d).where(d.c.patient_id == patient, d.c.status == "open")).all()
        return [_of(r, None) for r in rows]


def query_actions(store: Store, actor: Actor, as_of: dt.date, patient: str | None = None) -> list[Action]:
    """Worklist lines for queries: open ones for site staff (and stores without users), answered ones to close."""
    if actor.role in SITE_ROLES or actor.role is None:
        wanted, verb = "open", "answer"
    elif actor.role == "data_manager":
        wanted, verb = "answered", "close"
    else:
        return []
    out = []
    for d in list_queries(store, actor, open_only=True, patient=patient):
        opened = d.opened_at.date()
        if d.status != wanted or opened > as_of or (wanted == "open" and d.assigned_to not in (None, actor.name)
                                                    and actor.role is not None):
            continue
        due = opened + dt.timedelta(days=ANSWER_DAYS)
        detail = f"{verb} data query {d.id} on event {d.event}: {d.text}"
        out.append(Action(d.patient, f"{verb}_query", None, due, opened, None,
                          "overdue" if as_of > due else "due", f"query {d.id} opened by {d.opened_by} on {opened}",
                          detail if len(detail) <= 100 else detail[:99] + "…"))
    return out
