"""How store_a25e4a6_signed.sql.gz was made: run at commit a25e4a6 (signatures of payload version 1, bound to
the store's event ids), from tests/:
``PYTHONPATH=. python reference/store_a25e4a6_signed/make_store.py OUT.sql.gz``.

Two patients at Amsterdam, each with a signed 6-month decision; P-A01's week-4 Tg was corrected before the
decision, so its signature binds a correction event too. P-A02 is enrolled first, so ids and positions differ.
"""

from __future__ import annotations

import gzip
import sqlite3
import sys
import tempfile
from pathlib import Path

from team_helpers import PASSWORDS, at_decision, build_team
from workflow_helpers import DECISION_DAY

from trialflow.engine import auth_settings, correct, decide, init_store

s = auth_settings()
s.time_cost, s.memory_kib, s.parallelism, s._hasher = 1, 1024, 1, None
s.sleep = lambda _: None
with tempfile.TemporaryDirectory() as tmp:
    db = Path(tmp) / "signed.db"
    store, _ = init_store(str(db), None, "admin.jo")
    team = build_team(store, [])
    at_decision(team, "P-A02", "anna", "AMS")
    at_decision(team, "P-A01", "anna", "AMS")
    tg = [e for e in store.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg"][1]
    correct(store, "P-A01", tg.id, {"value": float(tg.payload["value"]) * 1.01}, "lab re-issued", team["anna"])
    for pid in ("P-A01", "P-A02"):
        decide(store, pid, DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])
    store.close()
    con = sqlite3.connect(db)
    Path(sys.argv[1]).write_bytes(gzip.compress("\n".join(con.iterdump()).encode(), mtime=0))
    con.close()
