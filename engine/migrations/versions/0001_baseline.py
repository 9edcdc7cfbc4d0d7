"""Baseline: the store as trialflow 0.1 wrote it (main at 66ced54, before Alembic).

A store written before Alembic has no ``alembic_version`` table; ``trialflow init`` recognises it by its
``store_info`` row ``schema_version = 1`` and stamps it with this revision instead of running it.

Revision ID: 0001
Revises:
Created: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "protocol_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash"),
    )
    op.create_index("ix_protocol_version_study_id", "protocol_version", ["study_id"])
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("dedup_key", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["corrects_id"], ["event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "seq", name="uq_event_patient_seq"),
        sa.UniqueConstraint("dedup_key"),
    )
    op.create_index("ix_event_patient_id", "event", ["patient_id"])
    op.create_index("ix_event_patient_recorded", "event", ["patient_id", "recorded_at"])
    op.create_index("ix_event_kind", "event", ["kind"])
    op.create_table(
        "patient",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("protocol_version_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=False),
        sa.Column("day0", sa.Date(), nullable=True),
        sa.Column("phase_entered_on", sa.Date(), nullable=False),
        sa.Column("dose_mg_per_day", sa.Float(), nullable=True),
        sa.Column("next_due", sa.Date(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["protocol_version_id"], ["protocol_version.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_patient_phase", "patient", ["phase"])
    op.create_index("ix_patient_next_due", "patient", ["next_due"])
    op.create_index("ix_patient_protocol_version_id", "patient", ["protocol_version_id"])
    create_work_item()


def create_work_item() -> None:
    """The work-item table (also added on its own to a 0.1 store from before it existed)."""
    op.create_table(
        "work_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("visit", sa.String(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=True),
        sa.Column("opens", sa.Date(), nullable=False),
        sa.Column("clock", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("waiting_detail", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_work_item_opens", "work_item", ["opens"])
    op.create_index("ix_work_item_patient_id", "work_item", ["patient_id"])



def downgrade() -> None:
    for table in ("work_item", "patient", "event", "protocol_version", "store_info"):
        op.drop_table(table)
