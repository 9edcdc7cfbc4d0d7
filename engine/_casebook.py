"""Case-book lock: a data manager freezes a patient's clinical data (and unlocks it), both as events.

While locked, only the unlocking and data queries may be appended; every clinical write is refused
by the store (:meth:`Transaction.authorize_events`), whichever command or face attempts it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._base import Refused, today
from ._identity import Actor, Login
from ._state import CASEBOOK_LOCKED as LOCKED
from ._state import CASEBOOK_UNLOCKED as UNLOCKED
from ._state import Event
from ._store import NewEvent, Store, Transaction

__all__ = ["LOCKED", "UNLOCKED", "lock", "lock_of", "unlock"]


def lock_of(events: Iterable[Event]) -> Event | None:
    """The lock event in force (the last lock not followed by an unlock), or None."""
    current: Event | None = None
    for e in events:
        if e.kind == LOCKED:
            current = e
        elif e.kind == UNLOCKED:
            current = None
    return current


def _change(store: Store, patient: str, reason: str, user: str | Actor | Login, locking: bool) -> Event:
    if not reason.strip():
        raise Refused(f"{'locking' if locking else 'unlocking'} a case book needs a reason (--reason)")

    def work(tx: Transaction) -> Event:
        state = tx.state(patient)
        if state is None:
            raise Refused(f"unknown patient {patient!r}: see trialflow status for the enrolled patients")
        held = lock_of(state.events)
        if locking and held is not None:
            raise Refused(f"{patient}: the case book is already locked (by {held.user}: {held.reason})")
        if not locking and held is None:
            raise Refused(f"{patient}: the case book is not locked")
        from ._projection import projection
        from ._workflow import protocol_of

        kind = LOCKED if locking else UNLOCKED
        return tx.append(patient, state, [NewEvent(kind, today(), {"previous": held.id if held else None}, reason)],
                         projection(protocol_of(store, state)))[0]

    return store.write(user, work)


def lock(store: Store, patient: str, reason: str, user: str | Actor | Login) -> Event:
    """Lock ``patient``'s case book (data manager): no clinical write until it is unlocked."""
    return _change(store, patient, reason, user, True)


def unlock(store: Store, patient: str, reason: str, user: str | Actor | Login) -> Event:
    """Unlock ``patient``'s case book (data manager), with the reason (e.g. a query that needs a correction)."""
    return _change(store, patient, reason, user, False)
