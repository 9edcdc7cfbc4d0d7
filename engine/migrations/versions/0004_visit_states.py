"""Visit states: each patient's visit ledger kept beside its events, and the decision it stands at.

* ``visit_state``: one row per visit as the patient's records place it (``engine._schedule.placed``),
  rewritten with the patient's projection, so ``status`` and ``visits --status`` read it instead of
  folding every event; a state that follows the clock is computed on the date of reading.
* ``patient.decision``: the phase the latest standing decision chose.

The rows cannot be computed here (they follow from the protocol): every patient's ``valid_from`` is
cleared, so the stored projection counts as absent (reads replay those patients from their events)
until ``trialflow init`` rebuilds it, which it does right after upgrading.

Revision ID: 0004
Revises: 0003
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("visit", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("by_clock", sa.Boolean(), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_state_patient_id"), ["patient_id"], unique=False)
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision", sa.String(), nullable=True))
    op.execute("UPDATE patient SET valid_from = NULL")  # rebuilt by trialflow init (see above)


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("decision")
    with op.batch_alter_table("visit_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_state_patient_id"))
    op.drop_table("visit_state")
