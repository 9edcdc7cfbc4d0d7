"""``trialflow import odm FILE``: ClinicalData of an ODM 1.3 file onto trialflow's record kinds.

Values are found through their ItemOIDs (``_forms``), whatever the file's FormOIDs, ItemGroupOIDs
or StudyEventOIDs are, so an ODM export of a REDCap project built from trialflow's metadata maps
straight back. The whole file is one transaction: every problem is reported with its line, column
and place (subject, study event, form, item), and nothing is written unless the file is clean.

Two things can come in:

* a subject the store does not know, with its enrolment (a trialflow export, or a system that keeps
  a full audit trail): its history is restored event by event, each with the user, time and reason
  of its AuditRecord, phase changes checked against the protocol's machine;
* records for subjects already enrolled (the REDCap case): recorded as the CSV import records them,
  with the same admissibility checks; what is already stored is skipped, so re-importing adds nothing.

A subject already in the store whose file history repeats the stored one gets only the new records that
follow, recorded as the CSV import records them. Any other event after the stored history (a phase change,
a decision, a reversal, a deviation...) is refused: it has its own engine command, whose guards the importer
does not repeat. A whole history is restored only for a subject the store does not have.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialflow.engine import Event, PatientState, PermissionDenied, Refused, Store, Written, fold
from trialflow.engine._base import Problem as EngineProblem
from trialflow.engine._dataqueries import cache_query
from trialflow.engine._signature import BY_ID, IMPORTED_IDS
from trialflow.engine._state import (
    ELIGIBILITY_ANSWERED,
    EVENT_ID_KEYS,
    QUERY_ANSWERED,
    QUERY_CLOSED,
    QUERY_OPENED,
    SIGNATURE,
    map_event_ids,
)
from trialflow.protocol import DocumentError, Problem, Protocol

from ._forms import EVENT_PAYLOAD, EXTRA_ITEM, GENERIC_EVENT, FormSpec, GroupSpec, decode, forms_for, unflatten
from ._odm_admin import LEGACY_LOCATION_OID, LOCATION_OID
from ._odm_model import ODM_NS
from ._xml import Node, parse_xml

__all__ = ["OdmImport", "import_odm"]

REDCAP_NS = "https://projectredcap.org"
_SEQ = re.compile(r"seq\s+(\d+)")
_EVENT = re.compile(r"event\s+(\d+)")


@dataclass(frozen=True, slots=True)
class OdmImport:
    """What an ODM import did."""

    file: str
    restored: tuple[str, ...]  # subjects whose history was restored
    written: tuple[Written, ...]
    events: int
    skipped: tuple[str, ...] = ()  # administrative fields of the source system, left out on purpose

    @property
    def message(self) -> str:
        return (f"{self.file}: {self.events} event(s) written; {len(self.restored)} subject(s) restored"
                + (f", {len(self.skipped)} source-system field(s) skipped" if self.skipped else ""))


@dataclass(slots=True)
class _Entry:
    """One FormData of the file, decoded."""

    patient: str
    where: str
    form: FormSpec
    key: tuple[str, str, str]  # (StudyEventOID, FormOID, FormRepeatKey): a correction targets the same key
    transaction: str
    effective: dt.date | None
    payload: dict[str, Any]
    user: str | None
    recorded_at: dt.datetime | None
    reason: str | None
    seq: int | None
    order: int
    source_id: int | None = None  # the event's id in the store that wrote the file
    extra: dict[str, Any] = field(default_factory=dict)
    at: str = ""  # FILE:LINE:COLUMN of its FormData

    @property
    def place(self) -> str:
        """Where a refusal of the entry points: its place in the file, then its path there."""
        return f"{self.at}: {self.where}" if self.at else self.where


@dataclass(frozen=True, slots=True)
class _Site:
    """Where the file says a subject is: its SiteRef, the Location's site code (None: the exporting store's own
    Location, a patient at no site) and name, and the place of the SiteRef in the file."""

    code: str | None
    name: str
    place: str


def _where(*parts: str) -> str:
    return "/".join(parts)


class _Reader:
    def __init__(self, file: str, forms: Sequence[FormSpec]):
        self.file = file
        self.problems: list[Problem] = []
        self.skipped: list[str] = []
        self.index = {i.oid: (f, g, i) for f in forms for g in f.groups for i in g.items}
        self.users: dict[str, str] = {}
        self.record_id_fields: set[str] = set()
        self.order = 0

    def problem(self, node: Node, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, node.line, node.col, where, message))

    def audit(self, *nodes: Node) -> Node | None:
        for node in nodes:
            found = node.first("AuditRecord", ODM_NS)
            if found is not None:
                return found
        return None

    def admin_field(self, item_oid: str, form_oid: str) -> bool:
        """REDCap's record-id field and its per-instrument completion status are not data."""
        if item_oid in self.record_id_fields:
            return True
        return form_oid.startswith("Form.") and item_oid == form_oid[len("Form."):] + "_complete"

    def form_data(self, patient: str, se: Node, fd: Node, where: str) -> _Entry | None:
        form_oid = fd.attrs.get("FormOID", "")
        owners: dict[str, FormSpec] = {}
        rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        item_nodes: list[Node] = []
        before = len(self.problems)
        for igd in fd.all("ItemGroupData", ODM_NS):
            group_key = (igd.attrs.get("ItemGroupOID", ""), igd.attrs.get("ItemGroupRepeatKey", "1"))
            for node in igd.all("ItemData", ODM_NS):
                item_oid = node.attrs.get("ItemOID", "")
                at = _where(where, f"ItemData[{item_oid}]")
                found = self.index.get(item_oid)
                if found is None:
                    if self.admin_field(item_oid, form_oid):
                        self.skipped.append(f"{patient}: {item_oid}")
                    else:
                        self.problem(node, at, f"unknown ItemOID {item_oid!r}: not an item of trialflow's "
                                               "metadata (trialflow export odm --metadata-only lists them)")
                    continue
                form, group, item = found
                value = node.attrs.get("Value")
                if value is None or node.attrs.get("IsNull") == "Yes" or (value == "" and item.codec == "plain"):
                    continue  # a blank: REDCap writes every field of a form, filled or not
                owners[form.oid] = form
                item_nodes.append(node)
                try:
                    decoded = decode(item, value)
                except ValueError as err:
                    self.problem(node, at, str(err))
                    continue
                row = rows.setdefault(group.oid, {}).setdefault(group_key if group.repeating else ("", ""), {})
                row[EXTRA_ITEM if item.oid.endswith(EXTRA_ITEM) else item.key] = decoded
        transaction = fd.attrs.get("TransactionType", "Insert")
        if len(owners) > 1:
            self.problem(fd, where, f"items of several trialflow forms in one FormData: {', '.join(sorted(owners))}")
            return None
        if len(self.problems) > before:
            return None
        if not owners:
            if transaction != "Remove":
                return None  # nothing filled in (or only source-system fields)
            spec = next((f for f in self.index.values() if f[0].oid == form_oid), None)
            if spec is None:
                self.problem(fd, where, f"a removal of unknown form {form_oid!r}")
                return None
            form = spec[0]
        else:
            form = next(iter(owners.values()))
        audit = self.audit(*item_nodes, fd)
        user = recorded_at = reason = seq = source_id = None
        if audit is not None:
            user_ref = audit.first("UserRef", ODM_NS)
            if user_ref is not None:
                oid = user_ref.attrs.get("UserOID", "")
                user = self.users.get(oid) or oid.removeprefix("USR.")
            stamp = audit.first("DateTimeStamp", ODM_NS)
            if stamp is not None:
                try:
                    when = dt.datetime.fromisoformat(stamp.text.strip())
                    recorded_at = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
                except ValueError:
                    self.problem(stamp, where, f"DateTimeStamp {stamp.text.strip()!r} is not an ISO date-time")
                    return None
            why = audit.first("ReasonForChange", ODM_NS)
            reason = why.text.strip() if why is not None else None
            source = audit.first("SourceID", ODM_NS)
            m = _SEQ.search(source.text) if source is not None else None
            seq = int(m.group(1)) if m else None
            m = _EVENT.search(source.text) if source is not None else None
            source_id = int(m.group(1)) if m else None
        decoded_rows = {g: list(r.values()) for g, r in rows.items()}
        if form.role == "event":
            date_item = next(i for i in form.main.items if i.data_type == "date")
            main = decoded_rows.get(form.main.oid, [{}])[0]
            effective = main.pop("", None)
            if effective is None and transaction != "Remove":
                self.problem(fd, where, f"{date_item.oid} is missing")
                return None
        try:
            payload = unflatten(form, decoded_rows)
        except ValueError as err:
            self.problem(fd, where, str(err))
            return None
        if form.role == "event":
            effective = dt.date.fromisoformat(effective) if isinstance(effective, str) else None
        else:
            effective = None
        self.order += 1
        return _Entry(patient, where, form, (se.attrs.get("StudyEventOID", ""), form_oid,
                                             fd.attrs.get("FormRepeatKey", "1")),
                      transaction, effective, payload, user, recorded_at, reason, seq, self.order, source_id,
                      at=f"{self.file}:{fd.line}:{fd.col}")


def _read(path: Path, store: Store) -> tuple[dict[str, list[_Entry]], list[str], dict[str, _Site], bool]:
    file = str(path)
    root = parse_xml(path)
    if root.ns != ODM_NS or root.tag != "ODM":
        raise DocumentError([Problem(file, root.line, root.col, "$", "not a CDISC ODM 1.3 document (the root "
                                     f"element is {root.tag!r} in namespace {root.ns!r})")])
    forms: dict[str, FormSpec] = {}
    for version in store.versions():
        for f in forms_for(store.protocol(version.content_hash)[0]):
            merged = forms.get(f.oid)
            if merged is not None:  # versions differ in eligibility and outcome items: take the union
                groups = tuple(GroupSpec(g.oid, g.name, tuple({i.oid: i for i in (*g0.items, *g.items)}.values()),
                                         g.key, g.scalar) for g0, g in zip(merged.groups, f.groups, strict=True))
                f = FormSpec(f.oid, f.name, f.kind, f.role, groups)
            forms[f.oid] = f
    reader = _Reader(file, list(forms.values()))
    studies = {store.protocol(v.content_hash)[0].study.id for v in store.versions()}
    locations: dict[str, str] = {}  # Location OID -> its name
    for admin in root.all("AdminData", ODM_NS):
        for loc in admin.all("Location", ODM_NS):
            locations[loc.attrs.get("OID", "")] = loc.attrs.get("Name", "")
        for u in admin.all("User", ODM_NS):
            login = u.first("LoginName", ODM_NS)
            if login is not None and login.text.strip():
                reader.users[u.attrs.get("OID", "")] = login.text.strip()
    for study in root.all("Study", ODM_NS):
        for mdv in study.all("MetaDataVersion", ODM_NS):
            if f"{{{REDCAP_NS}}}RecordIdField" in mdv.attrs:
                reader.record_id_fields.add(mdv.attrs[f"{{{REDCAP_NS}}}RecordIdField"])
    entries: dict[str, list[_Entry]] = {}
    sites: dict[str, _Site] = {}
    clinical = list(root.all("ClinicalData", ODM_NS))
    if not clinical:
        raise DocumentError([Problem(file, root.line, root.col, "$", "the file has no ClinicalData to import")])
    wrong_study = [cd for cd in clinical if _other_study(root, cd, studies)]
    if wrong_study:
        mine = ", ".join(f"{s} (StudyOID ST.{s})" for s in sorted(studies))
        raise DocumentError([Problem(file, cd.line, cd.col, "ClinicalData", f"the file's data is for StudyOID "
                                     f"{cd.attrs.get('StudyOID', '')!r}, and this store holds study {mine}: "
                                     "nothing imported") for cd in wrong_study])
    for cd in clinical:
        for sd in cd.all("SubjectData", ODM_NS):
            patient = sd.attrs.get("SubjectKey", "")
            if f"{{{REDCAP_NS}}}RecordIdField" in sd.attrs:
                reader.record_id_fields.add(sd.attrs[f"{{{REDCAP_NS}}}RecordIdField"])
            site_ref = sd.first("SiteRef", ODM_NS)
            if site_ref is not None:
                sites[patient] = _site(reader, site_ref, patient, locations)
            for se in sd.all("StudyEventData", ODM_NS):
                for fd in se.all("FormData", ODM_NS):
                    where = _where(f"SubjectData[{patient}]", f"StudyEventData[{se.attrs.get('StudyEventOID', '')}]",
                                   f"FormData[{fd.attrs.get('FormOID', '')}:{fd.attrs.get('FormRepeatKey', '1')}]")
                    entry = reader.form_data(patient, se, fd, where)
                    if entry is not None:
                        entries.setdefault(patient, []).append(entry)
    if reader.problems:
        raise DocumentError(sorted(reader.problems, key=lambda p: (p.line, p.column)))
    for evs in entries.values():  # the source's order of events when it states it (SourceID), else the file's
        # (decided before sorting: inside list.sort's key the list being sorted reads as empty)
        by_seq = all(x.seq is not None for x in evs)
        evs.sort(key=lambda e: ((e.seq or 0) if by_seq else 0, e.order))
    # written by trialflow's export (its ODM attributes as _odm_export writes them): only such a file's
    # "unusual value confirmed" notes are the engine's own
    ours = root.attrs.get("SourceSystem") == "trialflow" and root.attrs.get("Originator") == "trialflow"
    return entries, reader.skipped, sites, ours


def _site(reader: _Reader, ref: Node, patient: str, locations: dict[str, str]) -> _Site:
    """A SubjectData's SiteRef as a site code: trialflow's Location OIDs are ``LOC.<site code>``
    (``TRIALFLOW.STORE``: no site); another system's Location is taken by its OID."""
    oid = ref.attrs.get("LocationOID", "")
    at = f"{reader.file}:{ref.line}:{ref.col}: SubjectData[{patient}]/SiteRef[{oid}]"
    if locations and oid not in locations:
        reader.problem(ref, f"SubjectData[{patient}]/SiteRef[{oid}]",
                       f"SiteRef names Location {oid!r}, which the file's AdminData does not define")
    # (LOC.STORE named "trialflow store": the no-site Location of exports before it had its own OID)
    legacy = oid == LEGACY_LOCATION_OID and locations.get(oid) == "trialflow store"
    code = None if oid == LOCATION_OID or legacy else oid.removeprefix("LOC.")
    return _Site(code, locations.get(oid, ""), at)


def _other_study(root: Node, cd: Node, studies: set[str]) -> bool:
    """A ClinicalData of another study: its StudyOID is in trialflow's form (``ST.<study id>``), or the file is a
    trialflow export, and it names none of the store's studies. Another system names its study its own way
    (REDCap: ``Project.<name>``); its data is mapped by the ItemOIDs alone."""
    oid = cd.attrs.get("StudyOID", "")
    ours = oid.startswith("ST.") or root.attrs.get("SourceSystem") == "trialflow"
    return ours and oid not in {f"ST.{s}" for s in studies}


# -- turning entries into events ---------------------------------------------------------------------
def _record_payload(entry: _Entry) -> dict[str, Any]:
    from trialflow.engine import record_from_dict

    try:
        return record_from_dict(entry.payload).to_dict()
    except (ValueError, TypeError) as err:
        raise Refused(f"{entry.place}: {err}") from None


def _generic(entry: _Entry) -> tuple[str, dict[str, Any], int | None]:
    """(kind, payload, the file's id of the event it points at) of an entry of the generic event form."""
    fields = dict(entry.payload)
    kind = str(fields.pop("kind", "")) or "event"
    if "payload" not in fields:  # a file written before the form carried the payload whole: its fields beside
        return kind, fields, None
    payload, corrects = fields["payload"], fields.get("corrects")
    if not isinstance(payload, dict):
        raise Refused(f"{entry.place}: {EVENT_PAYLOAD} must hold a JSON object")
    return kind, payload, corrects if isinstance(corrects, int) and not isinstance(corrects, bool) else None


def _signature(kind: str, effective: dt.date, payload: Any, recorded_at: dt.datetime | None,
               user: str | None) -> str:
    stamp = (recorded_at if recorded_at.tzinfo else recorded_at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC) \
        if recorded_at else None
    if kind == SIGNATURE and isinstance(payload, dict):  # the import's own note beside what was signed
        payload = {k: v for k, v in payload.items() if k != IMPORTED_IDS}
    return json.dumps([kind, effective.isoformat(), payload, stamp.isoformat() if stamp else None, user],
                      sort_keys=True, default=str)


def _stored_signature(e: Event, seq_of: dict[int, Any]) -> str:
    payload: Any = map_event_ids(e.kind, dict(e.payload), seq_of)
    if e.kind == "correction":
        payload = {k: v for k, v in payload.items() if k != "root"}
    return _signature(e.kind, e.effective_date, payload, e.recorded_at, e.user)


class _Restorer:
    """Builds one patient's events from its entries and appends them in the transaction, in batches: a batch
    ends where an event needs the id of one before it (a correction names its root) or a migration changes
    the protocol."""

    def __init__(self, store: Store, tx: Any, patient: str, state: PatientState | None, site: _Site | None = None,
                 confirm_unusual: str | None = None, ours: bool = False):
        from trialflow.engine._base import today

        self.store, self.tx, self.patient, self.state, self.site = store, tx, patient, state, site
        self.confirm_unusual = confirm_unusual
        self.ours = ours  # the file is a trialflow export: its confirmations of unusual values are the engine's
        self.on = today()  # read once: every record's date is compared with it, as record_in does
        self.moved = False  # a pending event changes the state records are checked against (a phase change...)
        self.chains: dict[tuple[str, str, str], list[Event]] = {}  # form key → root and its corrections
        self.written: list[Event] = []
        self.pending: list[tuple[Any, _Entry]] = []
        self.new_id: dict[int, int] = {}  # the file's event id → the id the event has here
        self.seq_of: dict[int, Any] = {}  # the file's event id → ("seq", place in the history), for signatures
        self.phase = state.phase if state is not None else None  # the phase after the pending events

    def protocol(self) -> Protocol:
        assert self.state is not None
        return self.store.protocol(self.state.protocol_hash)[0]

    def new_event(self, entry: _Entry, *, check: bool = True) -> tuple[Any, str]:
        """(NewEvent, signature) for an entry; Refused when it cannot stand (``check`` False: an entry already
        in the store, only its signature is wanted)."""
        from trialflow.engine._store import NewEvent

        kind = entry.form.kind
        payload = dict(entry.payload)
        sig_payload: Any = payload
        if entry.form.role == "record":
            if entry.transaction in ("Update", "Remove") and check:
                self.flush()  # the correction points at events that must have their ids
            chain = self.chains.get(entry.key)
            reason = entry.reason
            if entry.transaction in ("Update", "Remove"):
                if not chain:
                    raise Refused(f"{entry.place}: a {entry.transaction.lower()} of a form the subject does not have")
                last = chain[-1]
                if last.kind == "correction" and last.payload.get("retracted"):
                    raise Refused(f"{entry.place}: the record was already removed")
                current = last.payload if last.kind == "observation" else last.payload["record"]
                if entry.transaction == "Remove":
                    sig_payload = {"retracted": True}
                    effective = dt.date.fromisoformat(current["date"])
                else:
                    record = _record_payload(entry)
                    sig_payload = {"record": record}
                    effective = dt.date.fromisoformat(record["date"])
                    reason = self.check_record(entry, record, chain) if check else reason
                body = {"root": chain[0].id, **sig_payload}
                return (NewEvent("correction", effective, body, reason, corrects=last.id,
                                 recorded_at=entry.recorded_at, user=entry.user),
                        _signature("correction", effective, sig_payload, entry.recorded_at, entry.user))
            record = _record_payload(entry)
            from trialflow.engine._store import dedup_key

            effective = dt.date.fromisoformat(record["date"])
            if check:
                reason = self.check_record(entry, record)
            return (NewEvent("observation", effective, record, reason, dedup=dedup_key(self.patient, record),
                             recorded_at=entry.recorded_at, user=entry.user),
                    _signature("observation", effective, record, entry.recorded_at, entry.user))
        assert entry.effective is not None
        source_corrects = None
        if kind == GENERIC_EVENT:
            kind, payload, source_corrects = _generic(entry)
        sig_payload = map_event_ids(kind, payload, self.seq_of)
        corrects = None
        if (kind in EVENT_ID_KEYS or source_corrects is not None) and check:
            # the payload names events by id (a decision's evidence, what a reversal reverses, the event a
            # query is about): those events must have their ids here, and the payload gets them
            self.flush()
            payload = map_event_ids(kind, payload, self.new_id)
            if source_corrects is not None:
                corrects = self.new_id.get(source_corrects)
                if corrects is None:
                    raise Refused(f"{entry.place}: it points at event {source_corrects} of the exporting store, "
                                  "which the file does not hold before it")
        if kind == SIGNATURE and check and isinstance(payload, dict):
            payload = self.id_bound_signature(payload)
        if kind == "phase_changed" and self.state is not None and check:
            self.check_transition(entry, payload)
        if kind == "enrolled" and check:
            self.check_enrolment(entry, payload)
        if kind == "migrated" and check:
            self.check_migration(entry, payload)
        if kind == ELIGIBILITY_ANSWERED and check:
            self.check_answers(entry, payload if isinstance(payload, dict) else {})
        return (NewEvent(kind, entry.effective, payload, entry.reason, corrects=corrects,
                         recorded_at=entry.recorded_at, user=entry.user),
                _signature(kind, entry.effective, sig_payload, entry.recorded_at, entry.user))

    def id_bound_signature(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A version-1 signature (it binds the signing store's event ids, engine/_signature) with
        ``imported_ids`` beside it: each earlier event's id in the file → its place in the history, through
        which its hashes find the events here. A signature that binds places, or already carries the
        note (a copy of a copy), is taken as it is."""
        if payload.get("binds", BY_ID) != BY_ID or IMPORTED_IDS in payload:
            return payload
        self.flush()  # the earlier events must have their places
        return {**payload, IMPORTED_IDS: {str(i): seq for i, (_, seq) in sorted(self.seq_of.items())}}

    def check_record(self, entry: _Entry, record: dict[str, Any], chain: Sequence[Event] = ()) -> str | None:
        """A restored record checked as ``trialflow record`` checks one (the engine's :func:`admissible` and
        :func:`implausible_fields`, as ``record_in`` calls them), against the restored subject's state at that
        point of its history; returns the reason to store (an unusual value's confirmation added to it).
        A value the exporting store recorded as confirmed unusual carries that confirmation in its
        ReasonForChange and stands as confirmed, when the file is a trialflow export and the note has the form
        the engine writes (else ``--confirm-unusual`` is asked for, as for any other file). A different value
        for what the subject already has on that day is refused as :func:`conflict` refuses it for ``record``
        (``chain``: the events of the record a correction replaces, left out of the comparison, as ``correct``
        leaves them out)."""
        from trialflow.engine import record_from_dict
        from trialflow.engine._checks import admissible, conflict, implausible_fields
        from trialflow.engine._state import RecordedValue

        if self.state is None:
            return entry.reason  # no enrolment before it: append refuses it
        if self.moved:
            self.flush()  # the state the record is checked against holds every event before it
        protocol = self.protocol()
        rec = record_from_dict(record)
        bad = admissible(protocol, self.state, rec, on=self.on)
        if bad:
            raise Refused(_at(entry, "date", EngineProblem(f"{self.patient}: {bad}")))
        skip = {e.id for e in chain}
        same_day = [v for v in self.state.records if v.event_id not in skip
                    and v.kind == rec.kind and v.date == rec.date]
        same_day += [RecordedValue(-1, record_from_dict(n.payload), self.tx.now, "")  # (unwritten yet)
                     for n, _ in self.pending if n.kind == "observation"]
        clash = conflict(same_day, rec, self.patient)
        if clash:
            raise Refused(_at(entry, "date", clash if isinstance(clash, EngineProblem) else EngineProblem(clash)))
        unusual = implausible_fields(protocol, rec, record)
        if not unusual or (self.ours and _confirmed(entry.reason)):
            return entry.reason
        if self.confirm_unusual is None:
            raise Refused(*[_at(entry, f, EngineProblem(f"{self.patient}: {u}", f"; if it is right, {HOW_TO_CONFIRM}",
                                                   unusual=True)) for f, u in unusual])
        note = f"{CONFIRMED} {self.confirm_unusual.strip()}"
        return f"{entry.reason}; {note}" if entry.reason else note

    def check_enrolment(self, entry: _Entry, payload: dict[str, Any]) -> None:
        """A restored enrolment's eligibility answers checked as ``enroll`` checks them (the engine's
        :func:`eligibility_answers` under the version it was enrolled under): every criterion answered yes or no,
        and its ``eligible`` flag the answers' verdict. (A version this store lacks: ``append`` says so.)"""
        from trialflow.engine._checks import eligibility_answers

        version = next((v for v in self.store.versions() if v.content_hash == payload.get("protocol_hash")), None)
        if version is None:
            return
        protocol = self.store.protocol(version.content_hash)[0]
        answers = payload.get("eligibility", {})
        if not isinstance(answers, dict):
            raise Refused(f"{entry.place}: the enrolment's eligibility answers are not criterion: yes/no")
        _, problems, unmet = eligibility_answers(protocol, answers)
        if problems:
            raise Refused(*[_at(entry, f"eligibility.{q.field}" if isinstance(q, EngineProblem) and q.field
                                else None, f"{self.patient}: {q}") for q in problems])
        eligible = payload.get("eligible", True)
        if eligible is not (not unmet):
            verdict = (f"criteria {', '.join(unmet)} not met" if unmet else "every criterion met")
            raise Refused(_at(entry, "eligible", f"{self.patient}: the enrolment says eligible={eligible!r}, its "
                                                 f"answers say otherwise ({verdict})"))

    def check_migration(self, entry: _Entry, payload: dict[str, Any]) -> None:
        """A migration to a protocol version this store has not registered: named, with how to register it.
        A screening patient moves only once it has answered every criterion of the version it moves to, each
        met, as ``migrate`` requires (the engine's :func:`_screening` and :func:`screening_answers`)."""
        from trialflow.engine._amend import _screening, screening_answers

        to_hash = str(payload.get("to_hash", ""))
        if not any(v.content_hash == to_hash for v in self.store.versions()):
            raise Refused(f"{entry.place}: {self.patient} was migrated on {entry.effective} to protocol "
                          f"v{payload.get('to_version', '?')} (sha256 {to_hash[:12]}), which this store has not "
                          "registered: register that version first (trialflow protocol amend FILE --apply, FILE "
                          "being its YAML), then import again; nothing imported")
        self.flush()  # the state the migration starts from holds every event before it
        if self.state is None:
            return  # no enrolment before it: append refuses it
        target = self.store.protocol(to_hash)[0]
        unfit = screening_answers(target, self.state)[1] if _screening(target, self.state) else []
        if unfit:
            raise Refused(*[f"{entry.place}: {self.patient} is in screening and v{target.version} asks: {u}; "
                            "nothing imported" for u in unfit])

    def check_answers(self, entry: _Entry, payload: dict[str, Any]) -> None:
        """Eligibility answered after the enrolment (``trialflow rescreen``): each a yes/no to a criterion of a
        registered version, the subject in screening, every criterion of that version then answered and met, as
        ``rescreen`` checks them (the engine's :func:`screening_answers`)."""
        from trialflow.engine._amend import _screening, screening_answers

        place = f"{entry.place}/ItemData[{EVENT_PAYLOAD}]"
        given, to_hash = payload.get("answers"), str(payload.get("protocol_hash", ""))
        if not isinstance(given, dict) or not given or \
                not all(isinstance(k, str) and v in ("yes", "no") for k, v in given.items()):
            raise Refused(f"{place}: {self.patient}'s eligibility answers {given!r} must map each criterion id to "
                          "yes or no; nothing imported")
        if not any(v.content_hash == to_hash for v in self.store.versions()):
            raise Refused(f"{place}: {self.patient}'s eligibility answers are to the criteria of protocol "
                          f"v{payload.get('version', '?')} (sha256 {to_hash[:12]}), which this store has not "
                          "registered: register it first (trialflow protocol amend FILE --apply); nothing imported")
        self.flush()
        if self.state is None:
            return  # no enrolment before it: append refuses it
        under = self.store.protocol(to_hash)[0]
        if not _screening(under, self.state):
            raise Refused(f"{place}: {self.patient} is past screening ({self.state.phase}): eligibility is answered "
                          "in screening only; nothing imported")
        unfit = screening_answers(under, self.state, given)[1]
        if unfit:
            raise Refused(*[f"{place}: {self.patient}: {u}; nothing imported" for u in unfit])

    def check_transition(self, entry: _Entry, payload: dict[str, Any]) -> None:
        from trialflow.engine import TransitionRefused, machine_for

        assert self.phase is not None
        if payload.get("from") != self.phase:
            raise Refused(f"{entry.place}: the phase change starts from {payload.get('from')!r} but the subject is "
                          f"in {self.phase!r}")
        try:
            dest = machine_for(self.protocol()).fire(self.patient, self.phase, str(payload.get("trigger")))
        except TransitionRefused as err:
            raise Refused(f"{entry.place}: {err}") from None
        if dest != payload.get("to"):
            raise Refused(f"{entry.place}: trigger {payload.get('trigger')!r} leads from {self.phase!r} to "
                          f"{dest!r}, not {payload.get('to')!r}")

    def append(self, new: Any, entry: _Entry) -> None:
        from trialflow.engine._projection import projection

        if self.state is None:
            if new.kind != "enrolled":
                raise Refused(f"unknown patient {self.patient!r}: enrol them first (the file holds no enrolment "
                              f"for them before {entry.where})")
            content_hash = new.payload.get("protocol_hash")
            version = next((v for v in self.store.versions() if v.content_hash == content_hash), None)
            if version is None:
                raise Refused(f"{entry.place}: the subject was enrolled under protocol v"
                              f"{new.payload.get('protocol_version')} (sha256 {str(content_hash)[:12]}), which this "
                              "store has not registered: register it first (trialflow protocol amend FILE --apply)")
            protocol = self.store.protocol(version.content_hash)[0]
            events = self.tx.create(self.patient, version.id, new.effective_date, [new],
                                    projection(protocol, version.id), site=self.where(entry))
            self.written.extend(events)
            self.track(events[0], entry)
            self.state = fold(events)
            self.phase = self.state.phase
            return
        if new.kind == "phase_changed":
            self.phase = new.payload.get("to")
        self.moved = self.moved or new.kind not in ("observation", "correction")
        self.pending.append((new, entry))
        if new.kind == "migrated":
            self.flush()

    def where(self, entry: _Entry) -> str | None:
        """The site the restored subject joins, found and permitted as ``enroll --site`` finds and permits it
        (the engine's :func:`resolve_site` and the enrolling permission at that site)."""
        from trialflow.engine._identity import authorize, resolve_site

        codes = self.tx.site_codes()
        site = self.site
        try:
            where = resolve_site(self.tx.actor, site.code if site else None, codes)
        except Refused:
            if site is None:  # resolve_site's advice is enrol's --site, which an import has not
                raise Refused(f"{entry.place}: the file names no site for {self.patient} and this store has "
                              f"{len(codes)} sites ({', '.join(codes)}): give its SubjectData a SiteRef "
                              f"(<SiteRef LocationOID=\"LOC.{codes[0]}\"/>, before its StudyEventData); "
                              "nothing imported") from None
            name = f" ({site.name})" if site.name else ""
            add = f"trialflow site add {site.code} {json.dumps(site.name or site.code)}"
            known = ", ".join(codes) if codes else "none yet"
            raise Refused(f"{site.place}: {self.patient} is at site {site.code}{name} in the file, which this store "
                          f"does not have (sites: {known}): add it first ({add}), then import again; nothing "
                          "imported") from None
        authorize(self.tx.actor, "enroll", where, patient=self.patient)
        return where

    def flush(self) -> None:
        """Append the pending events in one go and refresh the projection once."""
        from trialflow.engine._projection import projection

        if not self.pending or self.state is None:
            return
        news = [n for n, _ in self.pending]
        last = news[-1]
        target = self.store.protocol(last.payload["to_hash"]) if last.kind == "migrated" else None
        protocol = target[0] if target else self.protocol()
        events = self.tx.append(self.patient, self.state, news, projection(protocol, target[1].id if target else None))
        self.written.extend(events)
        self.state = fold([*self.state.events, *events])
        for event, (_, entry) in zip(events, self.pending, strict=True):
            self.track(event, entry)
        self.pending = []
        self.moved = False

    def track(self, event: Event, entry: _Entry) -> None:
        if entry.source_id is not None:
            self.new_id[entry.source_id] = event.id
            self.seq_of[entry.source_id] = ("seq", event.seq)
        if event.kind == "observation":
            self.chains[entry.key] = [event]
        elif event.kind == "correction":
            self.chains[entry.key].append(event)


#: what an unusual value's confirmation reads in its event's reason (``record_in`` and ``correct`` write it)
CONFIRMED = "unusual value confirmed:"
HOW_TO_CONFIRM = "import the file with --confirm-unusual REASON"
#: the confirmation as the engine writes it: the whole reason (``record_in``, this import) or after the
#: correction's own reason and '; ' (``correct``), followed by the confirming reason
_CONFIRMATION = re.compile(rf"(?:^|; ){re.escape(CONFIRMED)} \S")


def _confirmed(reason: str | None) -> bool:
    """A reason carrying an unusual value's confirmation in the form the engine writes it (not a mention of
    the words anywhere in a free text)."""
    return bool(reason) and _CONFIRMATION.search(reason or "") is not None


def _extra_oid(entry: _Entry) -> str | None:
    """The ItemOID of the entry's form's JSON item (``..._extra_json``): where a generic payload travels."""
    return next((i.oid for g in entry.form.groups for i in g.items if i.oid.endswith(EXTRA_ITEM)), None)


def _item_oid(entry: _Entry, field: str | None) -> str | None:
    """The ItemOID of an engine refusal's ``field`` (``value``, ``target[].diameter_mm``) in the entry's form."""
    if not field:
        return None
    name, _, rest = field.partition("[].")
    for group in entry.form.groups:
        if (group.key is None and not rest) or (group.key == name and rest):
            found = next((i.oid for i in group.items if i.key == (rest or name)), None)
            if found:
                return found
    return None


def _at(entry: _Entry, field: str | None, problem: str) -> str:
    """An engine refusal of the entry's record said at its place in the file, as the file's other problems are
    (``FILE:LINE:COLUMN: SubjectData[...]/.../FormData[...]/ItemData[...]``), its advice and kind kept."""
    oid = _item_oid(entry, field)
    place = entry.place + (f"/ItemData[{oid}]" if oid else "")
    return problem.at(place) if isinstance(problem, EngineProblem) else f"{place}: {problem}"


def _appended_record(patient: str, entry: _Entry) -> Any:
    """What the file adds after a stored history: only new records, which ``record_in`` checks as ``trialflow
    record`` does. Any other event (a phase change, a decision, a withdrawal, a reversal, a deviation...) has its
    engine command with that command's guards (``trialflow reverse`` refuses to reverse a decision's phase
    change, say); the importer would only check its permission, so it is refused here."""
    from trialflow.engine import record_from_dict

    if entry.form.role == "record" and entry.transaction in ("Insert", "Upsert", "Context"):
        return record_from_dict(_record_payload(entry))
    kind = _generic(entry)[0] if entry.form.kind == GENERIC_EVENT else entry.form.kind
    what = f"a {entry.transaction.lower()} of a record" if entry.form.role == "record" else f"a {kind} event"
    raise Refused(f"{entry.place}: {patient}'s history is already in this store, and an import adds only new "
                  f"records to it, not {what}: record that with trialflow's own command, which checks it "
                  "(nothing imported)")


def _plan_patient(store: Store, tx: Any, patient: str, entries: list[_Entry],
                  records: list[tuple[str, Any, _Entry]], site: _Site | None = None,
                  confirm_unusual: str | None = None, ours: bool = False) -> tuple[list[Event], bool]:
    """Restore or extend one subject's history; plain record inserts for an enrolled subject without a history
    in the file go to ``records`` with their entries (checked like the CSV import). Returns (events written,
    restored)."""
    from trialflow.engine import record_from_dict

    state = tx.state(patient)
    if state is not None and site is not None:  # the file's SiteRef must agree with where the store has the subject
        stored = tx.site_of(patient)
        if site.code != stored:
            raise Refused(f"{site.place}: the file puts {patient} at {site.code or 'no site'}, the store at "
                          f"{stored or 'no site'}: a subject moves site with trialflow's own command, not an "
                          "import; nothing imported")
    restorer = _Restorer(store, tx, patient, state, site, confirm_unusual, ours)
    if state is not None and not any(e.form.kind == "enrolled" for e in entries):
        for e in entries:
            if e.form.role != "record" or e.transaction not in ("Insert", "Upsert", "Context"):
                raise Refused(f"{e.place}: only new records can be imported for {patient}, who is already enrolled "
                              f"(a {e.form.kind} {e.transaction.lower()} needs the subject's history in the file)")
            records.append((patient, record_from_dict(_record_payload(e)), e))
        return [], False
    stored = list(state.events) if state is not None else []
    stored_seq: dict[int, Any] = {e.id: ("seq", e.seq) for e in stored}
    for i, entry in enumerate(entries):
        if state is not None and i >= len(stored):
            records.append((patient, _appended_record(patient, entry), entry))
            continue
        new, signature = restorer.new_event(entry, check=i >= len(stored))
        if i < len(stored):
            if _stored_signature(stored[i], stored_seq) != signature:
                raise Refused(f"{entry.place}: {patient}'s history in the file departs from the store's at event "
                              f"seq {stored[i].seq} ({stored[i].kind} of {stored[i].effective_date}); nothing "
                              "imported")
            restorer.track(stored[i], entry)
            continue
        restorer.append(new, entry)
    restorer.flush()
    return restorer.written, state is None


def import_odm(store: Store, path: str | Path, user: Any, confirm_unusual: str | None = None) -> OdmImport:
    """Import the ClinicalData of an ODM file in one transaction; importing it again writes nothing.

    Every record is checked as ``trialflow record`` checks it, a restored subject's against its state at that
    point of the restored history; ``confirm_unusual``: the reason the file's values outside a plausible range
    the protocol declares are right (stored with each of them), as ``trialflow import`` takes it."""
    from trialflow.engine._workflow import record_in

    if confirm_unusual is not None and not confirm_unusual.strip():
        raise Refused("--confirm-unusual needs the reason the value is right")
    p = Path(path)
    if not p.exists():
        raise DocumentError([Problem(str(p), 1, 1, "$", "no such file")])
    entries, skipped, sites, ours = _read(p, store)

    def work(tx: Any) -> OdmImport:
        written: list[Written] = []
        restored: list[str] = []
        records: list[tuple[str, Any, _Entry]] = []
        problems: list[str] = []
        count = 0
        for patient in sorted(entries):
            try:
                events, was_restored = _plan_patient(store, tx, patient, entries[patient], records,
                                                     sites.get(patient), confirm_unusual, ours)
            except PermissionDenied:
                raise  # not a problem of the file: the whole import is refused with the user's role
            except Refused as err:
                problems.extend(err.problems)
                continue
            for e in events:  # a restored data query is listed and on the worklist as it was
                if e.kind in (QUERY_OPENED, QUERY_ANSWERED, QUERY_CLOSED):
                    cache_query(tx, e)
            if events:
                count += len(events)
                state = tx.state(patient)
                written.append(Written(patient, tuple(events), state.phase,
                                       f"{patient}: {len(events)} event(s) "
                                       f"{'restored' if was_restored else 'added'}; phase {state.phase}"))
            elif not any(p == patient for p, _, _ in records):
                written.append(Written(patient, (), "", f"{patient}: already up to date"))
            if was_restored:
                restored.append(patient)
        if problems:
            raise Refused(*problems)
        if records:
            try:
                added = record_in(store, tx, [(patient, rec) for patient, rec, _ in records],
                                  confirm_unusual=confirm_unusual, how_to_confirm=HOW_TO_CONFIRM,
                                  reasons=[e.reason for _, _, e in records],
                                  confirmed={i for i, (_, _, e) in enumerate(records) if ours and _confirmed(e.reason)})
            except PermissionDenied:
                raise
            except Refused as err:  # each refusal at its record's place in the file
                raise Refused(*[_at(records[q.item][2], q.field, q)
                                if isinstance(q, EngineProblem) and q.item is not None else q
                                for q in err.problems]) from None
            for w in added:
                count += len(w.events)
                written.append(w)
        return OdmImport(str(p), tuple(restored), tuple(written), count, tuple(skipped))

    result: OdmImport = store.write(user, work)
    return result

