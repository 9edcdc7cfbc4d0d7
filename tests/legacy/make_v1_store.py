"""Write the fixtures of a store as trialflow 0.1 (main at 66ced54, before Alembic) wrote it.

Run once with that trialflow installed; the output (``v1_store.sqlite.sql``, ``v1_store.postgres.sql``) is
committed, and ``tests/test_store_schema.py`` loads it to check that today's code opens such a store.

    python tests/legacy/make_v1_store.py  [postgresql+psycopg://postgres@127.0.0.1:5432/scratch_db]

The store holds one enrolled, started patient with a Tg series, a correction, and the bundled protocol.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from trialflow.engine import correct, enroll, init_store, record_many, start
from trialflow.protocol import load_bundled_protocol

HERE = Path(__file__).parent


def fill(db: str) -> None:
    store, _ = init_store(db, None, "investigator.dr-smit")
    proto = load_bundled_protocol()
    answers = {c.id: "yes" for c in proto.eligibility.inclusion} | {c.id: "no" for c in proto.eligibility.exclusion}
    enroll(store, "P-001", dt.date(2025, 12, 29), answers, "coordinator.anna")
    day0 = dt.date(2026, 1, 12)
    start(store, "P-001", day0, "coordinator.anna")
    tgs = [("P-001", {"kind": "tg", "date": (day0 + dt.timedelta(weeks=4 * i)).isoformat(), "value": v,
                      "unit": "ug/L", "loq": 0.2}) for i, v in enumerate((120, 95, 70, 61))]
    written = record_many(store, tgs, "coordinator.anna")
    first = written[0].events[1].id
    correct(store, "P-001", first, {"value": 96}, "transcription error", "coordinator.anna")
    store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v1.db"
        fill(str(path))
        con = sqlite3.connect(path)
        (HERE / "v1_store.sqlite.sql").write_text("\n".join(con.iterdump()) + "\n", encoding="utf-8")
        con.close()
    if len(sys.argv) > 1:
        url = sys.argv[1]
        fill(url)
        dsn = "postgresql://" + url.split("://", 1)[1]
        dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", "--inserts", dsn],
                              check=True, capture_output=True, text=True).stdout
        # Schema-neutral, so a test can load it into its own schema (search_path).
        dump = "\n".join(line.replace("public.", "") for line in dump.splitlines()
                         if "set_config('search_path'" not in line and not line.startswith("\\"))
        (HERE / "v1_store.postgres.sql").write_text(dump + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
