"""Electronic signatures on decisions (21 CFR Part 11 §11.50, §11.70, §11.200).

A signature is an event in the patient's stream, appended in the same transaction as the decision
it signs. It holds the signer's full name and login, the moment of signing, the meaning ("approved:
move to rai_plus_sorafenib"), and binds the decision by hashes: one of the decision event's stored
content (its evidence included) and one per recorded event the decision rested on. So

- a signature copied onto another decision (or patient) no longer matches (§11.70);
- a stored decision or piece of evidence altered in the database is detected by :func:`verify_signatures`;
- a later correction, retraction or late record of the evidence marks the signature *invalidated*
  (:func:`signature_status`), without deleting anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialflow.protocol import Protocol

from ._state import CORRECTION, DECISION, OBSERVATION, SIGNATURE, Event, PatientState

__all__ = [
    "SIGNATURE",
    "SignatureStatus",
    "decision_digest",
    "decision_hash",
    "evidence_kinds",
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


def decision_hash(patient: str, seq: int, effective_date: dt.date, payload: Mapping[str, Any],
                  reason: str | None) -> str:
    """The hash a signature binds: the decision event's patient, position, date, content and evidence."""
    return _sha({"patient": patient, "seq": seq, "kind": DECISION, "effective_date": effective_date.isoformat(),
                 "payload": dict(payload), "reason": reason})


def event_hash(e: Event) -> str:
    """The stored content of one recorded event (an observation or a correction)."""
    return _sha({"id": e.id, "patient": e.patient, "kind": e.kind, "effective_date": e.effective_date.isoformat(),
                 "payload": dict(e.payload)})


def evidence_kinds(protocol: Protocol) -> frozenset[str]:
    """The record kinds the decision's criteria read."""
    from trialflow.rules import get_rule

    return frozenset(k for c in protocol.decision.criteria for k in get_rule(c.rule).observation_kinds)


def signed_records(protocol: Protocol, state: PatientState, when: dt.date) -> list[list[Any]]:
    """[event id, hash] of each current record the decision on ``when`` rests on (its kinds, dated by then)."""
    kinds = evidence_kinds(protocol)
    by_id = {e.id: e for e in state.events}
    return [[r.event_id, event_hash(by_id[r.event_id])] for r in state.records
            if r.record.kind in kinds and r.record.date <= when and r.event_id in by_id]


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
    body = {"decision_seq": decision_seq, "decision_hash": decision_sha, "records": [list(r) for r in records],
            "signer_id": signer_id, "signer": signer, "full_name": full_name,
            "signed_at": signed_at.isoformat(timespec="seconds"), "meaning": meaning_text,
            "method": "user name and password re-entered at signing"}
    return {**body, "signature_hash": _sha(body)}


@dataclass(frozen=True, slots=True)
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


def signature_status(protocol: Protocol, state: PatientState, sig: Event) -> SignatureStatus:
    """Does ``sig`` still stand on the evidence as recorded now? Later changes to it invalidate it."""
    p = sig.payload
    decision = _decision_at(state.events, int(p["decision_seq"]))
    signed = {int(i): h for i, h in p.get("records", [])}
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
    by_id = {e.id: e for e in evs}
    problems: list[str] = []
    signed_seqs: set[int] = set()
    for sig in (e for e in evs if e.kind == SIGNATURE):
        p = dict(sig.payload)
        body = {k: v for k, v in p.items() if k != "signature_hash"}
        where = f"{sig.patient}: signature event {sig.id}"
        if _sha(body) != p.get("signature_hash"):
            problems.append(f"{where}: its own content was altered (signer, meaning, time or hashes)")
        seq = int(p.get("decision_seq", -1))
        signed_seqs.add(seq)
        decision = _decision_at(evs, seq)
        if decision is None:
            problems.append(f"{where}: the decision it signs (position {seq}) is not in this patient's events")
            continue
        if decision_hash(decision.patient, decision.seq, decision.effective_date, decision.payload,
                         decision.reason) != p.get("decision_hash"):
            problems.append(f"{where}: decision event {decision.id} no longer matches what was signed "
                            "(its content or evidence was altered)")
        for eid, h in p.get("records", []):
            ev = by_id.get(int(eid))
            if ev is None:
                problems.append(f"{where}: evidence event {eid} is missing")
            elif event_hash(ev) != h:
                problems.append(f"{where}: evidence event {eid} was altered after signing")
    return problems
