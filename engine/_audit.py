"""The audit trail across the store: who did what, when, from where; and its verification.

It merges the patients' events (each with the authenticated user id, or a free-text legacy name)
with the store-level actions (sites, users, passwords, protocol versions, failed logins).
:func:`verify_store` checks that every signature still matches the decision and evidence it signed
and that every decision by an authenticated user is signed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from trialflow.documents._frozen import frozen

from ._access import reader
from ._db import read_session
from ._identity import Actor, Login, authorize
from ._signature import verify_signatures
from ._state import DECISION, SIGNATURE, Event
from ._store import Store
from ._tables import AuditRow, EventRow, LoginFailureRow, UserRow

__all__ = ["AuditEntry", "VerifyReport", "audit_trail", "verify_store"]


@frozen
class AuditEntry:
    """One line of the audit trail."""

    at: dt.datetime
    user: str
    user_id: int | None  # None: a free-text name (a store without users, or an event from before users)
    legacy: bool  # the name was not authenticated
    action: str
    patient: str | None
    event: int | None
    target: str
    context: dict[str, Any]


@frozen
class VerifyReport:
    """What ``audit --verify`` found: empty ``problems`` means intact."""

    patients: int
    events: int
    signatures: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def audit_trail(store: Store, who: str | Actor | Login | None, *, user: str | None = None,
                since: dt.date | None = None, patient: str | None = None) -> list[AuditEntry]:
    """Every recorded action, oldest first (data managers, monitors, admins; anyone in a store without users)."""
    actor = reader(store, who)
    authorize(actor, "audit")
    start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) if since else None
    out: list[AuditEntry] = []
    t = EventRow.__table__.c  # type: ignore[attr-defined]
    ev = select(t.id, t.patient_id, t.kind, t.recorded_at, t.user, t.user_id, t.context, t.effective_date)
    if patient is not None:
        ev = ev.where(t.patient_id == patient)
    with read_session(store.engine) as s:
        for r in s.execute(ev):
            out.append(AuditEntry(_aware(r.recorded_at), r.user, r.user_id, r.user_id is None, r.kind, r.patient_id,
                                  r.id, f"{r.patient_id} (effective {r.effective_date})", _json(r.context)))
        if patient is None:
            for a in s.execute(select(AuditRow)).scalars():
                out.append(AuditEntry(_aware(a.at), a.user, a.user_id, a.user_id is None, a.kind, None, None,
                                      a.target, {**_json(a.context), **_json(a.detail)}))
            for f in s.execute(select(LoginFailureRow)).scalars():
                out.append(AuditEntry(_aware(f.at), f.name, None, True, "login_failed", None, None, f.name,
                                      _json(f.context)))
    if user is not None:
        out = [e for e in out if e.user == user.strip().lower() or e.user == user]
    if start is not None:
        out = [e for e in out if e.at >= start]
    return sorted(out, key=lambda e: (e.at, e.event or 0))


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text}
    return value if isinstance(value, dict) else {"value": value}


def verify_store(store: Store, who: str | Actor | Login | None) -> VerifyReport:
    """Check every patient's signatures (and the event hash chain, where the store keeps one)."""
    actor = reader(store, who)
    authorize(actor, "audit")
    problems: list[str] = []
    with read_session(store.engine) as s:
        signers = {r.id for r in s.execute(select(UserRow)).scalars()}
        rows = s.execute(select(EventRow).order_by(col(EventRow.patient_id), col(EventRow.seq))).scalars().all()
        by_patient: dict[str, list[tuple[Event, int | None]]] = {}
        for r in rows:
            by_patient.setdefault(r.patient_id, []).append((Event.from_row(r), r.user_id))
    n_sig = 0
    for _pid, items in by_patient.items():
        events = [e for e, _ in items]
        problems += verify_signatures(events)
        signed = {int(e.payload.get("decision_seq", -1)) for e in events if e.kind == SIGNATURE}
        n_sig += sum(e.kind == SIGNATURE for e in events)
        for e, uid in items:
            if e.kind == DECISION and uid is not None and e.seq not in signed:
                problems.append(f"{e.patient}: decision event {e.id} by authenticated user {e.user} has no signature")
            # a signature signed here names one of this store's users; one copied from another store (the ODM
            # import: no user id here) names its signer as the signing store knew them, by login and full name
            if e.kind == SIGNATURE and uid is not None and int(e.payload.get("signer_id", -1)) not in signers:
                problems.append(f"{e.patient}: signature event {e.id} names no known user")
    problems += _chain_problems(store, actor)
    return VerifyReport(len(by_patient), len(rows), n_sig, tuple(problems))


def _chain_problems(store: Store, actor: Actor) -> list[str]:
    """The per-patient hash chain's verdict (edits, insertions and deletions made outside trialflow) and the
    registered protocol versions' (a stored text changed after its registration)."""
    from ._chain import verify_chains

    report = verify_chains(store, actor)
    return [str(p) for p in report.problems] + list(report.protocol_problems)
