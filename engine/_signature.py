"""Electronic signatures on decisions (21 CFR Part 11 §11.50, §11.70, §11.200).

A signature is an event in the patient's stream, appended in the same transaction as the decision
it signs. It holds the signer's full name and login, the moment of signing, the meaning ("approved:
move to rai_plus_sorafenib"), and binds the decision by hashes: one of the decision event's stored
content (its evidence included) and one per recorded event the decision rested on. So

- a signature copied onto another decision (or patient) no longer matches (§11.70);
- a stored decision or piece of evidence altered in the database is detected by :func:`verify_signatures`;
- a later correction, retraction or late record of the evidence marks the signature *invalidated*
  (:func:`signature_status`), without deleting anything.

What the hashes bind an event by (the payload's ``binds``):

- ``"seq"`` (payload version 2, every signature written now): the event's place in the patient's history,
  its patient, kind, date and content, with every event id inside a payload (a decision's evidence, a
  correction's root) replaced by that event's place. A history copied into another store (the ODM import)
  keeps its places and contents but gets new ids, so its signatures verify there too.
- ``"event_id"`` (version 1, written before): the store's event ids, as they were hashed then; verified
  exactly as before. A copy made by the import carries ``imported_ids`` beside the signed content (the
  exporting store's id of every earlier event → its place), through which the ids signed are found again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

from ._state import CORRECTION, DECISION, OBSERVATION, SIGNATURE, Event, PatientState, map_event_ids

if TYPE_CHECKING:
    from trialflow.protocol import Protocol

__all__ = [
    "BY_ID",
    "BY_SEQ",
    "IMPORTED_IDS",
    "SIGNATURE",
    "SignatureStatus",
    "decision_digest",
    "decision_hash",
    "evidence_kinds",
    "places",
    "record_hash",
    "signature_payload",
    "signature_status",
    "signed_records",
    "verify_signatures",
]



def _canonical(obj: Any) -> bytes:
    # Through a JSON round trip first, so that what is hashed is what the store holds (tuples → lists).
    stored = json.loads(json.dumps(obj, sort_keys=True, ensure_ascii=False))
    return json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj)).hexdigest()


#: what a signature binds events by (its payload's ``binds``): their place in the history, or (version 1) their id
BY_SEQ, BY_ID = "seq", "event_id"
#: beside a version-1 signature copied from another store: that store's id of each earlier event → its place
IMPORTED_IDS = "imported_ids"


def places(events: Iterable[Event]) -> dict[int, list[Any]]:
    """Event id → ``["seq", place in the patient's history]``: what a version-2 signature hashes instead of an id."""
    return {e.id: ["seq", e.seq] for e in events}


def decision_hash(patient: str, seq: int, effective_date: dt.date, payload: Mapping[str, Any],
                  reason: str | None, ids: Mapping[int, Any] | None = None) -> str:
    """The hash a signature binds: the decision event's patient, position, date, content and evidence; the event
    ids in its payload replaced through ``ids`` (:func:`places` for a version-2 signature; None: as stored)."""
    content = dict(payload) if ids is None else map_event_ids(DECISION, dict(payload), ids)
    return _sha({"patient": patient, "seq": seq, "kind": DECISION, "effective_date": effective_date.isoformat(),
                 "payload": content, "reason": reason})


def event_hash(e: Event, as_id: int | None = None, ids: Mapping[int, Any] | None = None) -> str:
    """Version 1: the stored content of one recorded event (an observation or a correction) with its id.
    For a copy from another store: ``as_id`` the id it had there, ``ids`` the ids here → the ids there (a
    correction's root)."""
    payload = dict(e.payload) if ids is None else map_event_ids(e.kind, dict(e.payload), ids)
    return _sha({"id": e.id if as_id is None else as_id, "patient": e.patient, "kind": e.kind,
                 "effective_date": e.effective_date.isoformat(), "payload": payload})


def record_hash(e: Event, ids: Mapping[int, Any]) -> str:
    """Version 2: one recorded event by its place, patient, kind, date and content (ids in it through ``ids``)."""
    return _sha({"seq": e.seq, "patient": e.patient, "kind": e.kind, "effective_date": e.effective_date.isoformat(),
                 "payload": map_event_ids(e.kind, dict(e.payload), ids)})


def evidence_kinds(protocol: Protocol) -> frozenset[str]:
    """The record kinds the decision's criteria read."""
    from trialflow.rules import get_rule

    return frozenset(k for c in protocol.decision.criteria for k in get_rule(c.rule).observation_kinds)


def signed_records(protocol: Protocol, state: PatientState, when: dt.date) -> list[list[Any]]:
    """[place, hash] of each current record the decision on ``when`` rests on (its kinds, dated by then)."""
    kinds = evidence_kinds(protocol)
    by_id = {e.id: e for e in state.events}
    ids = places(state.events)
    return [[by_id[r.event_id].seq, record_hash(by_id[r.event_id], ids)] for r in state.records
            if r.kind in kinds and r.date <= when and r.event_id in by_id]


def decision_digest(patient: str, preview: Any) -> str:
    """A digest of a decision preview as shown to the investigator: sign with it to refuse a changed or foreign one."""
    return _sha({"patient": patient, "decision": preview.decision, "as_of": preview.as_of.isoformat(),
                 "criteria": preview.criteria, "recommended_branch": preview.recommended_branch})[:16]


def meaning(to_phase: str, override: bool, recommended: str | None) -> str:
    if override:
        return f"approved override (recommended: {recommended}): move to {to_phase}"
    return f"approved: move to {to_phase}"


def signature_payload(*, decision_seq: int, decision_sha: str, records: Sequence[Sequence[Any]], signer_id: int,
                      signer: str, full_name: str, signed_at: dt.datetime, meaning_text: str) -> dict[str, Any]:
    """A version-2 signature: ``decision_sha`` and ``records`` bind by place (decision_hash with
    :func:`places`, :func:`signed_records`)."""
    body = {"binds": BY_SEQ, "decision_seq": decision_seq, "decision_hash": decision_sha,
            "records": [list(r) for r in records],
            "signer_id": signer_id, "signer": signer, "full_name": full_name,
            "signed_at": signed_at.isoformat(timespec="seconds"), "meaning": meaning_text,
            "method": "user name and password re-entered at signing"}
    return {**body, "signature_hash": _sha(body)}


@frozen
class SignatureStatus:
    """Whether a signature still stands: ``invalidated_by`` lists the later events that changed its evidence."""

    event: int
    decision_event: int | None
    signer: str
    full_name: str
    signed_at: str
    meaning: str
    valid: bool
    invalidated_by: tuple[str, ...] = ()


def _decision_at(events: Sequence[Event], seq: int) -> Event | None:
    return next((e for e in events if e.seq == seq and e.kind == DECISION), None)


@frozen
class _Signed:
    """One record a signature names: how to name it in a message, the event it is here (None: missing), the
    hash signed and the hash the event has now."""

    label: str
    event: Event | None
    signed: str
    now: str | None


class _Binding:
    """How one signature's hashes find this patient's events: by place (version 2), or by id (version 1),
    through ``imported_ids`` when the history was copied from another store."""

    def __init__(self, sig: Event, events: Sequence[Event]):
        self.payload = sig.payload
        self.by_place = self.payload.get("binds", BY_ID) == BY_SEQ
        self.events = events
        self.by_id = {e.id: e for e in events}
        self.by_seq = {e.seq: e for e in events}
        self.here: dict[int, int] | None = None  # the signing store's event id → the same event's id here
        imported = None if self.by_place else self.payload.get(IMPORTED_IDS)
        if isinstance(imported, Mapping):
            self.here = {int(k): self.by_seq[int(v)].id for k, v in imported.items() if int(v) in self.by_seq}

    def resolve(self, ref: Any) -> tuple[str, Event | None]:
        """The event a signed record reference names here, and how a message names it."""
        if self.by_place:
            ev = self.by_seq.get(int(ref))
            return (f"evidence event {ev.id}" if ev else f"the evidence at place {ref} of the history"), ev
        if self.here is None:
            return f"evidence event {ref}", self.by_id.get(int(ref))
        ev = self.by_id.get(self.here.get(int(ref), -1))
        there = f"event {ref} of the store that signed it"
        return (f"evidence event {ev.id} ({there})" if ev else f"evidence {there}"), ev

    def signed_events(self) -> list[Event]:
        """The events of this patient the signature's records name (those still there)."""
        return [ev for ref, _ in self.payload.get("records", []) if (ev := self.resolve(ref)[1]) is not None]

    def ids(self) -> Mapping[int, Any] | None:
        """What the event ids inside payloads were hashed as: places, the signing store's ids, or as they are."""
        if self.by_place:
            return places(self.events)
        if self.here is not None:  # the ids here → the ids the signing store gave the same events
            return {here: there for there, here in self.here.items()}
        return None

    def records(self) -> list[_Signed]:
        ids = self.ids()
        out: list[_Signed] = []
        for ref, signed in self.payload.get("records", []):
            label, ev = self.resolve(ref)
            if ev is None:
                now = None
            elif self.by_place:
                now = record_hash(ev, ids or {})
            else:
                now = event_hash(ev, int(ref), ids)
            out.append(_Signed(label, ev, signed, now))
        return out

    def decision_hash(self, decision: Event) -> str:
        return decision_hash(decision.patient, decision.seq, decision.effective_date, decision.payload,
                             decision.reason, self.ids())

    def hashed_body(self) -> dict[str, Any]:
        """What ``signature_hash`` covers: all but itself and what the signature does not sign (version 1:
        ``binds``, added on reading, and ``imported_ids``, added by the import)."""
        unsigned = {"signature_hash"} if self.by_place else {"signature_hash", "binds", IMPORTED_IDS}
        return {k: v for k, v in self.payload.items() if k not in unsigned}


def signature_status(protocol: Protocol, state: PatientState, sig: Event) -> SignatureStatus:
    """Does ``sig`` still stand on the evidence as recorded now? Later changes to it invalidate it."""
    p = sig.payload
    decision = _decision_at(state.events, int(p["decision_seq"]))
    signed = {e.id for e in _Binding(sig, state.events).signed_events()}
    why: list[str] = []
    if decision is not None:
        kinds = evidence_kinds(protocol)
        later = [e for e in state.events if e.seq > sig.seq and e.kind in (OBSERVATION, CORRECTION)]
        for e in later:
            rec = e.payload if e.kind == OBSERVATION else e.payload.get("record") or _root_record(state, e)
            if not rec or rec.get("kind") not in kinds:
                continue
            if e.kind == CORRECTION and (e.corrects in signed or _root(state, e) in signed):
                verb = "retracted" if e.payload.get("retracted") else "corrected"
                why.append(f"event {e.id} {verb} evidence event {e.corrects}")
            elif e.kind == OBSERVATION and dt.date.fromisoformat(rec["date"]) <= decision.effective_date:
                why.append(f"event {e.id} recorded {rec['kind']} dated {rec['date']} after the signature")
    return SignatureStatus(sig.id, decision.id if decision else None, p.get("signer", sig.user),
                           p.get("full_name", ""), p.get("signed_at", ""), p.get("meaning", ""), not why, tuple(why))


def _root(state: PatientState, e: Event) -> int | None:
    root = e.payload.get("root")
    return int(root) if root is not None else None


def _root_record(state: PatientState, e: Event) -> Mapping[str, Any] | None:
    root = _root(state, e)
    original = next((x for x in state.events if x.id == root), None)
    return original.payload if original is not None else None


def verify_signatures(events: Iterable[Event]) -> list[str]:
    """Every way the stored signatures of one patient's events fail to match what they signed (empty: intact)."""
    evs = sorted(events, key=lambda e: e.seq)
    problems: list[str] = []
    for sig in (e for e in evs if e.kind == SIGNATURE):
        binding = _Binding(sig, evs)
        p = sig.payload
        where = f"{sig.patient}: signature event {sig.id}"
        if _sha(binding.hashed_body()) != p.get("signature_hash"):
            problems.append(f"{where}: its own content was altered (signer, meaning, time or hashes)")
        seq = int(p.get("decision_seq", -1))
        decision = _decision_at(evs, seq)
        if decision is None:
            problems.append(f"{where}: the decision it signs (position {seq}) is not in this patient's events")
            continue
        if binding.decision_hash(decision) != p.get("decision_hash"):
            problems.append(f"{where}: decision event {decision.id} no longer matches what was signed "
                            "(its content or evidence was altered)")
        for r in binding.records():
            if r.event is None:
                problems.append(f"{where}: {r.label} is missing")
            elif r.now != r.signed:
                problems.append(f"{where}: {r.label} was altered after signing")
    return problems
