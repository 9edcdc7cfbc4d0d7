"""Dump every table of a trialflow store in a canonical order, to diff two stores built the same way.

Used to show that a change to how the demo (or an import) writes leaves the store it writes as it was:
build the same store with the old code and the new, dump both and ``diff`` the dumps.

    python scripts/dump_store.py OLD.db > old.txt; python scripts/dump_store.py NEW.db > new.txt; diff old.txt new.txt

What legitimately differs between two builds is normalised, and only that:

- wall-clock moments (``event.recorded_at``, ``patient.updated_at``, ``protocol_version.registered_at``,
  ``audit_log.at``, the users', sites' and data queries' moments): each is replaced by its rank among the
  distinct moments of its column, so the dump still shows which rows were written in the same transaction;
- ``protocol_version.source_file``, the path of the bundled protocol in the checkout that built the store:
  dumped as the file's name;
- the hash chain (``event.hash``, ``event.prev_hash``), which hashes ``recorded_at``: left out of the dump,
  and instead every patient's chain is checked (``engine/_chain.py``) and the result printed.
- the row ids of the projection's caches (``work_item``, ``visit_state``), which count how often a patient's
  rows were rewritten (a bulk write updates a changed row where it stands, a row-by-row write replaces them
  all): each is replaced by its rank among its patient's rows, so the dump still shows the rows' order.

Every other column of every table is dumped as stored, rows ordered by every column.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select

#: (table, column) holding a wall-clock moment: dumped as its rank among the column's distinct values
MOMENTS = {("event", "recorded_at"), ("patient", "updated_at"), ("protocol_version", "registered_at"),
           ("audit_log", "at"), ("site", "created_at"), ("app_user", "created_at"),
           ("app_user", "password_changed_at"), ("app_user", "last_login_at"), ("login_failure", "at"),
           ("data_query", "opened_at"), ("data_query", "updated_at")}
#: (table, column) holding a file path: dumped as the file's name (the bundled protocol lives in each checkout)
PATHS = {("protocol_version", "source_file")}
#: (table, column) left out: the chain, which hashes the moments above (checked instead)
LEFT_OUT = {("event", "hash"), ("event", "prev_hash")}
#: tables rewritten with every projection (their row ids count the rewrites)
CACHES = {"work_item", "visit_state"}


def canonical_tables(store: Any, *, moments: bool = True, cache_ids: bool = True) -> dict[str, list[str]]:
    """Every table of ``store`` (an open Store) as its header line and its rows as lines, in a canonical order.

    ``moments=False`` leaves the wall-clock moments out instead of ranking them, and ``cache_ids=False`` the
    row ids of the projection's caches (``work_item``, ``visit_state``) instead of ranking them within each
    patient: for comparing a store written in one transaction with one written a transaction per command,
    whose rows may stand in another order."""
    meta = MetaData()
    meta.reflect(store.engine)
    out: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        for name in sorted(meta.tables):
            cols = [c for c in meta.tables[name].columns if (name, c.name) not in LEFT_OUT
                    and (moments or (name, c.name) not in MOMENTS)
                    and (cache_ids or name not in CACHES or c.name != "id")]
            rows = [tuple(r) for r in conn.execute(select(*cols))]
            for i, c in enumerate(cols):
                if (name, c.name) in MOMENTS:
                    rank = {v: k for k, v in enumerate(sorted({r[i] for r in rows if r[i] is not None}))}
                    rows = [(*r[:i], None if r[i] is None else f"<moment {rank[r[i]]}>", *r[i + 1:]) for r in rows]
                elif (name, c.name) in PATHS:
                    rows = [(*r[:i], Path(r[i]).name, *r[i + 1:]) for r in rows]
                elif name in CACHES and c.name == "id":
                    patient = next(k for k, d in enumerate(cols) if d.name == "patient_id")
                    mine: dict[Any, list[Any]] = {}
                    for r in rows:
                        mine.setdefault(r[patient], []).append(r[i])
                    rank = {(p, v): k for p, ids in mine.items() for k, v in enumerate(sorted(ids))}
                    rows = [(*r[:i], f"<row {rank[(r[patient], r[i])]}>", *r[i + 1:]) for r in rows]
            lines = [f"== {name} ({len(rows)} rows): {', '.join(c.name for c in cols)}"]
            lines += ["|".join("NULL" if v is None else str(v) for v in r)
                      for r in sorted(rows, key=lambda r: tuple((v is not None, str(v)) for v in r))]
            out[name] = lines
    return out


def dump(db: str, out: Any = sys.stdout) -> None:
    """Print every table of the store at ``db`` canonically, then what the hash chains' check finds."""
    from trialflow.engine import Store
    from trialflow.engine._chain import verify_store
    from trialflow.engine._identity import SYSTEM  # (the dump reads every table: a store with users too)

    store = Store.open(db)
    try:
        for lines in canonical_tables(store).values():
            print("\n".join(lines), file=out)
        report = verify_store(store, SYSTEM)
        # the head digest hashes the moments: the counts and the problems are what two builds share
        print(f"== chain: {report.patients} patients, {report.events} events, problems: {list(report.problems)}",
              file=out)
        if report.protocol_problems:  # (a sound store has none: the dumps of two builds stay as they were)
            print(f"== protocol versions: {list(report.protocol_problems)}", file=out)
    finally:
        store.close()


if __name__ == "__main__":
    dump(sys.argv[1])
