"""The per-patient hash chain of events: any edit, insertion or deletion made outside trialflow shows.

Each event row carries ``prev_hash`` (the hash of the patient's previous event, or the empty string for
the first) and ``hash`` = SHA-256 over its own stored columns and ``prev_hash``. :func:`verify_store`
recomputes every chain; ``trialflow verify`` prints what it finds (the team issue's ``audit --verify``
calls the same function).

What the chain guarantees: a direct SQL change to a past event (a value, a date, a user, a reason), a
deleted or inserted event, or a removed tail (checked against the patient row's ``last_seq``) is found
and named. What it cannot: someone who rewrites a whole chain with this algorithm, or removes a patient
entirely with its projection row. Against that, keep the ``head`` digest ``verify`` prints somewhere the
store's users cannot write (it changes with every event).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._json import json_encoder

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["ChainProblem", "ChainReport", "check_chains", "event_hash", "verify_store"]

#: columns the hash does not cover: the row id (assigned by the database) and the chain itself
_NOT_HASHED = frozenset({"id", "hash", "prev_hash"})
#: ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, built once (an import
#: hashes 10^5 events; ``json.dumps`` with options builds an encoder per call)
_ENCODE = json_encoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=1024)
def _moment(value: dt.datetime) -> str:
    """A datetime as hashed, once per distinct moment (every event of one import has the same ``recorded_at``).
    Equal datetimes (the same instant in two time zones) hash alike either way: both are hashed in UTC."""
    if value.tzinfo is not None:  # stored naive (UTC) on both backends; hash what is stored
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _moment(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def event_hash(columns: Mapping[Any, Any], prev_hash: str) -> str:
    """The hash of one event row from its stored columns (NULL columns are left out, so a column added
    later as NULL keeps old hashes valid)."""
    body = {k: _canonical(v) if isinstance(v, dt.date) else v
            for k, v in columns.items() if k not in _NOT_HASHED and v is not None}
    body["prev_hash"] = prev_hash
    return hashlib.sha256(_ENCODE(body).encode("utf-8")).hexdigest()


@frozen
class ChainProblem:
    """One place where the stored events are not what trialflow wrote."""

    patient: str
    seq: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"#{self.seq} (event {self.event_id})" if self.event_id is not None else "its events:"
        return f"{self.patient} {where} {self.problem}"


@frozen
class ChainReport:
    """The result of checking every patient's chain."""

    patients: int
    events: int
    problems: tuple[ChainProblem, ...]
    head: str  # digest of every patient's last hash: write it down to detect a rewrite of whole chains
    # registered protocol versions whose stored text no longer is the version registered (one sentence each)
    protocol_problems: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return not self.problems and not self.protocol_problems


def check_chains(rows: Iterable[Mapping[Any, Any]], last_seq: Mapping[str, int]) -> ChainReport:
    """Check event rows (ordered by patient, seq) against each other and the patients' ``last_seq``."""
    problems: list[ChainProblem] = []
    heads: dict[str, str] = {}
    seen: dict[str, int] = {}
    count = 0
    for row in rows:
        count += 1
        pid, seq = row["patient_id"], row["seq"]
        expected_seq = seen.get(pid, 0) + 1
        prev = heads.get(pid, "")
        if seq > expected_seq:
            gap = f"#{expected_seq}" if seq == expected_seq + 1 else f"#{expected_seq} to #{seq - 1}"
            problems.append(ChainProblem(pid, seq, row["id"], f"comes after a gap: {gap} deleted"))
        elif seq < expected_seq:
            problems.append(ChainProblem(pid, seq, row["id"], f"repeats #{seq}"))
        if row["prev_hash"] != prev:
            problems.append(ChainProblem(pid, seq, row["id"], "does not follow the previous event (an event was "
                                         "inserted, deleted or re-ordered before it)"))
        if row["hash"] != event_hash(row, row["prev_hash"] or ""):
            problems.append(ChainProblem(pid, seq, row["id"], "was changed after it was recorded (its content no "
                                         "longer matches its hash)"))
        heads[pid] = row["hash"] or ""
        seen[pid] = seq
    for pid, n in last_seq.items():
        if seen.get(pid, 0) != n:
            problems.append(ChainProblem(pid, None, None, f"the store says {n} events, {seen.get(pid, 0)} are there "
                                         "(events were deleted or added outside trialflow)"))
    for pid in seen.keys() - last_seq.keys():
        problems.append(ChainProblem(pid, None, None, "has events but no patient record"))
    head = hashlib.sha256("".join(f"{p}:{h}\n" for p, h in sorted(heads.items())).encode()).hexdigest()
    return ChainReport(len(seen.keys() | last_seq.keys()), count, tuple(problems), head)


def verify_store(store: Store, who: Any = None) -> ChainReport:
    """Check every patient's chain in ``store``; that every registered protocol version's stored text is still
    the version registered under its content hash; and that every protocol a patient was enrolled or migrated
    under is one of them (read-only). In a store with users ``who`` must authenticate and hold the audit role
    (the answer names patients of every site), as ``audit --verify`` does."""
    import json
    from dataclasses import replace

    from sqlalchemy import select

    from ._access import reader
    from ._db import read_session
    from ._identity import authorize
    from ._tables import EventRow, PatientRow, ProtocolVersionRow

    actor = reader(store, who)
    if actor.role not in (None, "system"):  # (a store without users; trialflow's own upkeep)
        authorize(actor, "audit")
    events = EventRow.__table__  # type: ignore[attr-defined]
    patients = PatientRow.__table__  # type: ignore[attr-defined]
    versions = ProtocolVersionRow.__table__  # type: ignore[attr-defined]
    with read_session(store.engine) as s:
        last_seq = {pid: n for pid, n in s.execute(select(patients.c.id, patients.c.last_seq))}
        stored = s.execute(select(versions.c.version, versions.c.content_hash, versions.c.yaml_text,
                                  versions.c.source_file).order_by(versions.c.id)).all()
        under = s.execute(select(events.c.patient_id, events.c.id, events.c.kind, events.c.payload)
                          .where(events.c.kind.in_(("enrolled", "migrated")))
                          .order_by(events.c.patient_id, events.c.seq)).all()
        rows = s.execute(select(events).order_by(events.c.patient_id, events.c.seq)).mappings()
        report = check_chains(rows, last_seq)
    damaged = [p for p in (_protocol_problem(*v) for v in stored) if p]
    registered = {v.content_hash for v in stored}
    for pid, event_id, kind, payload in under:
        try:
            h = json.loads(payload).get("protocol_hash" if kind == "enrolled" else "to_hash")
        except (TypeError, ValueError, AttributeError):
            continue  # (an unreadable payload no longer matches its hash: the chain check names it)
        if h not in registered:
            damaged.append(f"{pid}: event {event_id} ({kind}) names protocol {str(h)[:12]}, which this store does "
                           "not hold (a registered version was removed or replaced)")
    return replace(report, protocol_problems=tuple(damaged)) if damaged else report


def _protocol_problem(version: str, content_hash: str, text: str, file: str) -> str | None:
    """Why a registered version's stored text is not the version registered (None: it is)."""
    from trialflow.protocol import ProtocolError, StoredProtocolMismatch, rebuild_protocol

    try:
        rebuild_protocol(text, file, content_hash, cached=False)
    except StoredProtocolMismatch as err:
        return (f"protocol version {version} ({content_hash[:12]}) was changed after it was registered: its stored "
                f"text now hashes to {err.found[:12]}, so the store refuses to use it")
    except ProtocolError as err:
        return (f"protocol version {version} ({content_hash[:12]}) was changed after it was registered: its text "
                f"is no longer readable YAML ({err.problems[0]})")
    except Exception as err:
        return (f"protocol version {version} ({content_hash[:12]}) is not a protocol this store validated: its text "
                f"cannot be built into one ({type(err).__name__}: {err})")
    return None


#: the name the engine exports it under (``verify_store`` there is the team's audit check, which calls this)
verify_chains = verify_store
