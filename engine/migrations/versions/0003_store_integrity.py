"""Store integrity: one name per protocol version, and a hash chain over each patient's events.

* ``protocol_version(study_id, version)`` is unique (a unique index): concurrent amendments can no longer
  register two different versions both named "1.1". Duplicates already stored (from before this
  revision) keep their content; the later ones are renamed "1.1 (duplicate, id 7)" so that
  ``migrate --to 1.1`` is unambiguous.
* ``event.prev_hash`` / ``event.hash``: every event is chained to the patient's previous one
  (``trialflow.engine._chain``); the events already stored are chained here, in order.

Revision ID: 0003
Revises: 0002
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialflow.engine._chain import event_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    seen: set[tuple[str, str]] = set()
    for id_, study, version in conn.execute(sa.text("SELECT id, study_id, version FROM protocol_version ORDER BY id")):
        if (study, version) in seen:
            conn.execute(sa.text("UPDATE protocol_version SET version = :v WHERE id = :id"),
                         {"v": f"{version} (duplicate, id {id_})", "id": id_})
        seen.add((study, version))
    op.create_index("uq_protocol_version_study_version", "protocol_version", ["study_id", "version"], unique=True)

    op.add_column("event", sa.Column("prev_hash", sa.String(), nullable=True))
    op.add_column("event", sa.Column("hash", sa.String(), nullable=True))
    event = sa.Table("event", sa.MetaData(), autoload_with=conn)  # typed columns: dates as dates, as appended
    prev: dict[str, str] = {}
    updates = []
    for row in conn.execute(sa.select(event).order_by(event.c.patient_id, event.c.seq)).mappings():
        before = prev.get(row["patient_id"], "")
        prev[row["patient_id"]] = event_hash(row, before)
        updates.append({"row_id": row["id"], "p": before, "h": prev[row["patient_id"]]})
    if updates:
        conn.execute(sa.update(event).where(event.c.id == sa.bindparam("row_id"))
                     .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")), updates)


def downgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    op.drop_index("uq_protocol_version_study_version", "protocol_version")
