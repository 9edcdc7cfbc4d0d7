"""The SQL tables: protocol versions, an append-only event log, and a patient projection.

Events are never updated or deleted. The ``patient`` row is a projection of the events (phase,
anchors, next due date) written in the same transaction as the events it summarises; its
``last_seq`` is the optimistic-concurrency guard that makes two coordinators writing for one patient
serialise instead of overwriting each other.

Each class declares its columns once (``engine/_rows.py`` makes the SQL table and the ORM mapping from
them); no ``from __future__ import annotations`` here: the annotations are the column types, read as
each class is made.
"""

import datetime as dt

from sqlalchemy import Index, UniqueConstraint

from ._rows import Row, field

__all__ = [
    "AuditRow",
    "DataQueryRow",
    "EventRow",
    "LoginFailureRow",
    "PatientRow",
    "ProtocolVersionRow",
    "SiteRow",
    "StoreInfoRow",
    "UserRow",
    "UserSiteRow",
    "VisitRow",
    "WorkItemRow",
]


class StoreInfoRow(Row):
    """Key/value facts about the store itself (schema version, study id)."""

    __tablename__ = "store_info"
    key: str = field(primary_key=True)
    value: str


class ProtocolVersionRow(Row):
    """A registered protocol version: its full YAML text, so any version can be reloaded and replayed."""

    __tablename__ = "protocol_version"
    # A version name is unique in a study (revision 0003): concurrent amendments cannot both register "1.1".
    __table_args__ = (Index("uq_protocol_version_study_version", "study_id", "version", unique=True),)
    id: int | None = field(default=None, primary_key=True)
    study_id: str = field(index=True)
    version: str
    content_hash: str = field(unique=True)
    yaml_text: str = field(text=True)
    source_file: str
    registered_at: dt.datetime
    registered_by: str
    reason: str


class PatientRow(Row):
    """The current state of one patient, derived from its events (a cache, never the truth)."""

    __tablename__ = "patient"
    id: str = field(primary_key=True)
    protocol_version_id: int = field(foreign_key="protocol_version.id", index=True)
    phase: str = field(index=True)
    enrolled_on: dt.date
    day0: dt.date | None = None
    phase_entered_on: dt.date
    dose_mg_per_day: float | None = None
    next_due: dt.date | None = field(default=None, index=True)
    valid_from: dt.date | None = None  # the stored work items hold for clinical dates from this one on
    site: str | None = field(default=None, index=True)  # a site.code (checked by the engine); None: no sites yet
    decision: str | None = None  # the phase the latest standing decision chose (revision 0004)
    # what the endpoint report counts of the patient (JSON, engine._endpoint.line_json; revision 0005)
    report: str | None = field(default=None, text=True)
    last_seq: int = 0
    updated_at: dt.datetime


class EventRow(Row):
    """One thing that happened to a patient, appended with who recorded it, when, and why."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("patient_id", "seq", name="uq_event_patient_seq"),
        Index("ix_event_patient_recorded", "patient_id", "recorded_at"),
    )
    id: int | None = field(default=None, primary_key=True)
    patient_id: str = field(index=True)
    seq: int
    kind: str = field(index=True)
    effective_date: dt.date
    recorded_at: dt.datetime
    user: str  # the name as given: a login name, or a free-text legacy name when user_id is None
    user_id: int | None = field(default=None, index=True)  # the authenticated user (app_user.id); None: free text
    context: str | None = None  # JSON: where the action came from (OS login, host, interface)
    reason: str | None = None
    payload: str = field(text=True)
    corrects_id: int | None = field(default=None, foreign_key="event.id")
    dedup_key: str | None = field(default=None, unique=True)
    # The per-patient hash chain (engine/_chain.py, revision 0003): the previous event's hash ("" for the
    # first) and this row's. Every other column is hashed as stored: a new event column must be given its
    # value in Transaction.append (no column default), and NULL columns are not hashed.
    prev_hash: str | None = None
    hash: str | None = None


class WorkItemRow(Row):
    """One open worklist item of a patient, rewritten with the patient's projection (a cache)."""

    __tablename__ = "work_item"
    __table_args__ = (Index("ix_work_item_opens", "opens"),)
    id: int | None = field(default=None, primary_key=True)
    patient_id: str = field(foreign_key="patient.id", index=True)
    action: str
    visit: str | None = None
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date | None = None
    opens: dt.date
    clock: str
    reason: str
    detail: str
    waiting_detail: str | None = None


class VisitRow(Row):
    """One visit of a patient's ledger as its records place it, rewritten with the patient's projection (a cache).

    ``status`` is settled (done, skipped, not required, missed on leaving the phase) unless ``by_clock``:
    then the state on a date follows from the window dates alone (``engine._schedule.at_date``).
    ``body`` (JSON) holds the kinds, records, missing kinds, deviations and skip reason.
    """

    __tablename__ = "visit_state"
    id: int | None = field(default=None, primary_key=True)
    patient_id: str = field(foreign_key="patient.id", index=True)
    visit: str
    name: str
    phase: str
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date
    status: str
    by_clock: bool
    done_on: dt.date | None = None
    reason: str
    body: str = field(text=True)


class SiteRow(Row):
    """A hospital taking part in the study; every patient belongs to one."""

    __tablename__ = "site"
    code: str = field(primary_key=True)
    name: str
    created_at: dt.datetime
    created_by: str


class UserRow(Row):
    """A member of the study team. Never deleted (their events keep pointing at them): disabled instead."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    id: int | None = field(default=None, primary_key=True)
    name: str = field(unique=True)  # the login name, lower-case
    full_name: str  # printed on electronic signatures (21 CFR 11.50)
    role: str
    password_hash: str  # argon2id, PHC string format; the password itself is never stored
    disabled: bool = False
    created_at: dt.datetime
    created_by: str
    password_changed_at: dt.datetime
    last_login_at: dt.datetime | None = None


class UserSiteRow(Row):
    """The sites a coordinator or investigator works at."""

    __tablename__ = "user_site"
    user_id: int = field(foreign_key="app_user.id", primary_key=True)
    site: str = field(foreign_key="site.code", primary_key=True)


class LoginFailureRow(Row):
    """A failed authentication (wrong name or password), kept for the audit and to slow brute force."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_name_at", "name", "at"),)
    id: int | None = field(default=None, primary_key=True)
    name: str  # as typed (cut to 64 characters), lower-case
    at: dt.datetime
    context: str | None = None


class AuditRow(Row):
    """A store-level action (sites, users, passwords, protocol versions): the patients' events hold the rest."""

    __tablename__ = "audit_log"
    id: int | None = field(default=None, primary_key=True)
    at: dt.datetime = field(index=True)
    kind: str
    user: str
    user_id: int | None = field(default=None, foreign_key="app_user.id")
    target: str
    detail: str = field(text=True)  # JSON
    context: str | None = None


class DataQueryRow(Row):
    """A data query's current state: a cache of its events (query_opened/answered/closed) in the patient's stream."""

    __tablename__ = "data_query"
    id: int = field(primary_key=True)  # the id of the query_opened event
    patient_id: str = field(foreign_key="patient.id", index=True)
    event_id: int  # the recorded event the query is about
    status: str = field(index=True)  # open, answered, closed
    text: str = field(text=True)
    opened_by: str
    opened_at: dt.datetime
    assigned_to: str | None = None
    answer: str | None = field(default=None, text=True)
    updated_at: dt.datetime
