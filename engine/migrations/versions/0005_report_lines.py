"""Report lines: what the endpoint report counts of each patient, kept beside its events.

* ``patient.report`` (JSON, ``engine._endpoint.line_json``): the patient's phase facts, deviations, screen
  failure, withdrawal, latest decision with its signature, and safety facts, rewritten with the patient's
  projection, so ``report`` and ``safety`` read one row per patient instead of folding its events.

The lines cannot be computed here (they follow from the protocol): the column starts empty, reads fold the
patients without a line from their events, and ``trialflow init`` (right after upgrading) fills it.

Revision ID: 0005
Revises: 0004
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("report")
