"""The study team: sites, users with roles, user sites, failed logins, the store-level audit log, data queries.

Adds ``patient.site`` and ``event.user_id`` / ``event.context`` (nullable: events recorded before users
keep their free-text names and are shown as legacy names). A store that already holds patients gains
one site, ``main``, which they all join; nothing recorded is rewritten.

Revision ID: 0002
Revises: 0001
Created: 2026-12-02
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("context", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_name_at", "login_failure", ["name", "at"])
    op.create_table(
        "site",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("context", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "user_site",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["site"], ["site.code"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("user_id", "site"),
    )
    op.create_table(
        "data_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_to", sa.String(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_query_patient_id", "data_query", ["patient_id"])
    op.create_index("ix_data_query_status", "data_query", ["status"])
    # Plain ADD COLUMN (no batch copy of tables that others reference); the engine checks the values.
    op.add_column("event", sa.Column("user_id", sa.Integer(), nullable=True))
    op.add_column("event", sa.Column("context", sa.String(), nullable=True))
    op.create_index("ix_event_user_id", "event", ["user_id"])
    op.add_column("patient", sa.Column("site", sa.String(), nullable=True))
    op.create_index("ix_patient_site", "patient", ["site"])
    _existing_patients_join_one_site()


def _existing_patients_join_one_site() -> None:
    conn = op.get_bind()
    patients = conn.execute(sa.text("SELECT count(*) FROM patient")).scalar_one()
    if not patients:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    conn.execute(sa.text("INSERT INTO site (code, name, created_at, created_by) VALUES (:c, :n, :t, :b)"),
                 {"c": "main", "n": "main site (existing patients, from the upgrade)", "t": now,
                  "b": "trialflow upgrade"})
    conn.execute(sa.text("UPDATE patient SET site = 'main' WHERE site IS NULL"))
    detail = json.dumps({"name": "main site", "patients_adopted": patients,
                         "why": "upgrade of a store from before sites"}, sort_keys=True)
    conn.execute(sa.text('INSERT INTO audit_log (at, kind, "user", user_id, target, detail, context) '
                         "VALUES (:t, 'site_added', 'trialflow upgrade', NULL, 'main', :d, NULL)"),
                 {"t": now, "d": detail})


def downgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_index("ix_patient_site")
        batch.drop_column("site")
    with op.batch_alter_table("event") as batch:
        batch.drop_index("ix_event_user_id")
        batch.drop_column("context")
        batch.drop_column("user_id")
    for table in ("data_query", "user_site", "audit_log", "site", "login_failure", "app_user"):
        op.drop_table(table)
