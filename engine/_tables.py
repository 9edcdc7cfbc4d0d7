"""The SQL tables (sqlmodel): protocol versions, an append-only event log, and a patient projection.

Events are never updated or deleted. The ``patient`` row is a projection of the events (phase,
anchors, next due date) written in the same transaction as the events it summarises; its
``last_seq`` is the optimistic-concurrency guard that makes two coordinators writing for one patient
serialise instead of overwriting each other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["EventRow", "PatientRow", "ProtocolVersionRow", "StoreInfoRow", "WorkItemRow"]


class StoreInfoRow(SQLModel, table=True):
    """Key/value facts about the store itself (schema version, study id)."""

    __tablename__ = "store_info"
    key: str = Field(primary_key=True)
    value: str


class ProtocolVersionRow(SQLModel, table=True):
    """A registered protocol version: its full YAML text, so any version can be reloaded and replayed."""

    __tablename__ = "protocol_version"
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(index=True)
    version: str
    content_hash: str = Field(unique=True)
    yaml_text: str = Field(sa_column=Column(Text, nullable=False))
    source_file: str
    registered_at: dt.datetime
    registered_by: str
    reason: str


class PatientRow(SQLModel, table=True):
    """The current state of one patient, derived from its events (a cache, never the truth)."""

    __tablename__ = "patient"
    id: str = Field(primary_key=True)
    protocol_version_id: int = Field(foreign_key="protocol_version.id", index=True)
    phase: str = Field(index=True)
    enrolled_on: dt.date
    day0: dt.date | None = None
    phase_entered_on: dt.date
    dose_mg_per_day: float | None = None
    next_due: dt.date | None = Field(default=None, index=True)
    valid_from: dt.date | None = None  # the stored work items hold for clinical dates from this one on
    last_seq: int = 0
    updated_at: dt.datetime


class EventRow(SQLModel, table=True):
    """One thing that happened to a patient, appended with who recorded it, when, and why."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("patient_id", "seq", name="uq_event_patient_seq"),
        Index("ix_event_patient_recorded", "patient_id", "recorded_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(index=True)
    seq: int
    kind: str = Field(index=True)
    effective_date: dt.date
    recorded_at: dt.datetime
    user: str
    reason: str | None = None
    payload: str = Field(sa_column=Column(Text, nullable=False))
    corrects_id: int | None = Field(default=None, foreign_key="event.id")
    dedup_key: str | None = Field(default=None, unique=True)


class WorkItemRow(SQLModel, table=True):
    """One open worklist item of a patient, rewritten with the patient's projection (a cache)."""

    __tablename__ = "work_item"
    __table_args__ = (Index("ix_work_item_opens", "opens"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
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
