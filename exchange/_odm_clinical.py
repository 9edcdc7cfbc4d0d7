"""AdminData and ClinicalData of an ODM export: every stored event as FormData with its audit trail.

Each event becomes one FormData (``FormRepeatKey`` = the event's sequence number in the patient's
history) inside the StudyEventData of the visit whose window holds it, or of the study course, the
decision, or the unscheduled records. A correction is the same FormData again with
``TransactionType="Update"`` (a retraction: ``"Remove"``), so the original value and every change
stay in the file as ODM's transactional form intends. Every ItemData carries its AuditRecord: who
recorded it, where, when (the event's ``recorded_at``), the reason given, and ``SourceID`` = the
event's place in the patient's history and its id in this store (a decision's evidence names the
records it used by that id); the decision's FormData carries the investigator's Signature, built from
the signature event bound to that decision (who signed, when), at the patient's site.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from trialflow.engine import Event, PatientState, fold
from trialflow.protocol import Protocol

from ._forms import GENERIC_EVENT, GENERIC_RECORD, FormSpec, encode, flatten, forms_for
from ._odm_admin import SIGNATURE_DEF, location_oid, user_oid
from ._odm_metadata import DECISION_EVENT, STUDY_EVENT, UNSCHEDULED_EVENT, mdv_oid, study_oid, visit_event_oid
from ._odm_model import ODM

__all__ = ["build_clinical"]

_NOT_OID = re.compile(r"[^A-Za-z0-9._-]")
SIGNATURE = "signature"  # issue 13's signature event (trialflow.engine._state.SIGNATURE)

EVENT_FORMS = {"enrolled": "F.ENROLMENT", "phase_changed": "F.PHASE_CHANGE", "withdrawn": "F.WITHDRAWAL",
               "decision": "F.DECISION", "migrated": "F.MIGRATION"}


def _stamp(when: dt.datetime) -> str:
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def _audit(e: Event, location: str) -> ODM.AuditRecord:
    audit = ODM.AuditRecord(UserRef=ODM.UserRef(UserOID=user_oid(e.user)),
                            LocationRef=ODM.LocationRef(LocationOID=location),
                            DateTimeStamp=ODM.DateTimeStamp(_content=_stamp(e.recorded_at)),
                            SourceID=ODM.SourceID(_content=f"seq {e.seq}; event {e.id}"))
    if e.reason:
        audit.ReasonForChange = ODM.ReasonForChange(_content=e.reason)
    return audit


def _form_data(form: FormSpec, e: Event, key: int, payload: Mapping[str, Any] | None,
               transaction: str, location: str) -> ODM.FormData:
    fd = ODM.FormData(FormOID=form.oid, FormRepeatKey=str(key), TransactionType=transaction)
    if payload is None:  # a retraction: the FormData with its audit, no values
        fd.AuditRecord = _audit(e, location)
        return fd
    rows = flatten(form, payload)
    if form.role == "event":
        date_item = next(i for i in form.main.items if i.data_type == "date")
        rows[form.main.oid][0] = {date_item.oid: encode(date_item, e.effective_date), **rows[form.main.oid][0]}
    for group in form.groups:
        for n, row in enumerate(rows.get(group.oid, []), start=1):
            if not row:
                continue
            igd = ODM.ItemGroupData(ItemGroupOID=group.oid, TransactionType=transaction)
            if group.repeating:
                igd.ItemGroupRepeatKey = str(n)
            units = {i.oid: i.unit for i in group.items}
            for item_oid, value in row.items():
                data = ODM.ItemData(ItemOID=item_oid, Value=value, TransactionType=transaction,
                                    AuditRecord=_audit(e, location))
                if units.get(item_oid):
                    data.MeasurementUnitRef = ODM.MeasurementUnitRef(MeasurementUnitOID=units[item_oid])
                igd.ItemData.append(data)
            fd.ItemGroupData.append(igd)
    return fd


def _placement(protocol: Protocol, state: PatientState) -> dict[int, str]:
    """Observation event id → StudyEventOID: the first visit whose window and kinds hold the record."""
    from trialflow.engine import schedule

    visits = schedule(protocol, state, dt.date.max)
    out: dict[int, str] = {}
    for value in state.records:
        rec = value.record
        visit = next((v for v in visits if rec.kind in v.kinds and v.window_start <= rec.date <= v.window_end), None)
        out[value.event_id] = visit_event_oid(visit.visit) if visit else UNSCHEDULED_EVENT
    return out


def _signature(patient: str, decision: Event, signed_by: Event | None, location: str) -> ODM.Signature:
    """The decision's Signature: from the signature event bound to it (issue 13: the signer, the moment
    of signing), or, for a decision taken in a store without users, the deciding event's user and time."""
    if signed_by is None:
        signer, when = decision.user, decision.recorded_at
    else:
        p = signed_by.payload
        signer = str(p.get("signer") or signed_by.user)
        when = dt.datetime.fromisoformat(p["signed_at"]) if p.get("signed_at") else signed_by.recorded_at
    return ODM.Signature(
        ID=f"SIG.{_NOT_OID.sub('_', patient)}.{decision.seq}", UserRef=ODM.UserRef(UserOID=user_oid(signer)),
        LocationRef=ODM.LocationRef(LocationOID=location), SignatureRef=ODM.SignatureRef(SignatureOID=SIGNATURE_DEF),
        DateTimeStamp=ODM.DateTimeStamp(_content=_stamp(when)))


def _subject(patient: str, events: Sequence[Event], protocol: Protocol, site: str | None) -> ODM.SubjectData:
    location = location_oid(site)
    state = fold(events)
    signatures = {int(e.payload["decision_seq"]): e for e in events
                  if e.kind == SIGNATURE and "decision_seq" in e.payload}
    forms = {f.kind: f for f in forms_for(protocol)}
    by_oid = {f.oid: f for f in forms.values()}
    placement = _placement(protocol, state)
    root_of: dict[int, Event] = {}
    visit_order = [STUDY_EVENT] + [visit_event_oid(v.id) for v in protocol.visits] + [DECISION_EVENT,
                                                                                      UNSCHEDULED_EVENT]
    slots: dict[str, list[ODM.FormData]] = {}
    for e in events:
        if e.kind == "observation":
            root_of[e.id] = e
            where = placement.get(e.id, UNSCHEDULED_EVENT)
            fd = _form_data(forms.get(e.payload["kind"], forms[GENERIC_RECORD]), e, e.seq, e.payload, "Insert",
                            location)
        elif e.kind == "correction":
            root = root_of[e.payload["root"]]
            where = placement.get(root.id, UNSCHEDULED_EVENT)
            form = forms.get(root.payload["kind"], forms[GENERIC_RECORD])
            retracted = bool(e.payload.get("retracted"))
            fd = _form_data(form, e, root.seq, None if retracted else e.payload["record"],
                            "Remove" if retracted else "Update", location)
        elif e.kind in EVENT_FORMS:
            where = DECISION_EVENT if e.kind == "decision" else STUDY_EVENT
            fd = _form_data(by_oid[EVENT_FORMS[e.kind]], e, e.seq, e.payload, "Insert", location)
            if e.kind == "decision":
                fd.Signature = _signature(patient, e, signatures.get(e.seq), location)
        else:
            where = STUDY_EVENT
            generic = {"kind": e.kind, "payload": dict(e.payload)} | ({"corrects": e.corrects} if e.corrects else {})
            fd = _form_data(forms[GENERIC_EVENT], e, e.seq, generic, "Insert", location)
        slots.setdefault(where, []).append(fd)
    subject = ODM.SubjectData(SubjectKey=patient, TransactionType="Insert")
    if site is not None:  # ODM 1.3.2's SiteRef: the Location (AdminData) where the subject is enrolled
        subject.SiteRef = ODM.SiteRef(LocationOID=location)
    for oid in sorted(slots, key=lambda o: visit_order.index(o) if o in visit_order else len(visit_order)):
        sed = ODM.StudyEventData(StudyEventOID=oid, TransactionType="Insert", FormData=slots[oid])
        if oid == UNSCHEDULED_EVENT:
            sed.StudyEventRepeatKey = "1"
        subject.StudyEventData.append(sed)
    return subject


def build_clinical(events_by_patient: Mapping[str, Sequence[Event]], protocols: Mapping[str, Protocol],
                   sites: Mapping[str, str | None] | None = None) -> list[ODM.ClinicalData]:
    """One ClinicalData per protocol version that has patients (a patient sits under its current version);
    every AuditRecord and Signature of a patient names the patient's site (``sites``) as its Location, and the
    SubjectData's SiteRef names it too (a patient at no site has none)."""
    sites = sites or {}
    by_version: dict[str, list[ODM.SubjectData]] = {}
    for patient in sorted(events_by_patient):
        events = sorted(events_by_patient[patient], key=lambda e: e.seq)
        protocol = protocols[fold(events).protocol_hash]
        by_version.setdefault(protocol.content_hash, []).append(_subject(patient, events, protocol,
                                                                           sites.get(patient)))
    out = []
    for content_hash, subjects in by_version.items():
        p = protocols[content_hash]
        out.append(ODM.ClinicalData(StudyOID=study_oid(p), MetaDataVersionOID=mdv_oid(p), SubjectData=subjects))
    return out
