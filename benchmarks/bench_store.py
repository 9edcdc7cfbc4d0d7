"""The store at registry scale (issue 17), as whole processes, each beside its baseline in the same run.

The store is built by ``trialflow demo --patients N`` (SQLite; on PostgreSQL the same ``populate_demo``
through the library): the demo's 30 patients at every stage, then patients whose courses are drawn
from theirs, every one enrolled, started, recorded and decided through the workflow functions in bulk.
The lab file holds ``--rows`` Tg results of treated patients on days that hold no record yet.

- **import**: ``trialflow import lab.csv`` (one bulk transaction: rows parsed and validated, each
  patient's events read by one chunked query, events written by one executemany, projections set-wise;
  the chunks read, checked and projected by forked workers while the parent writes, and beside it the
  same import in one process, ``TRIALFLOW_FORK=0``) against a plain driver ``executemany`` (sqlite3 /
  psycopg) of the same rows into the same event table, and SQLAlchemy Core ``insert`` of them; every run on
  a fresh copy of the store (copy not timed);
- **reads**: ``report``, ``status``, ``next`` (a screenful), ``visits --status missed``, each against
  ``next --json`` over the same store; ``next ID`` for one patient against the bare import of the CLI;
- **stored protocol**: a process loading the registered version (hash-checked, not validated again)
  against one validating the same stored text from scratch;
- the build itself (``demo --patients N``), once.

Every figure is the median of ``--repeat`` runs (≥ 5), the commands interleaved so a load swing hits
them alike; wall and CPU (user + sys) time and peak RSS from ``/usr/bin/time``.

    python benchmarks/bench_store.py [--patients 10000] [--rows 100000] [--repeat 5] [--pg URL] [--only import|reads]
                                     [--store PATH | --pg URL --store NAME]

``--store`` keeps the built store for later runs (a build of 10^5 patients takes minutes); each import run
still writes to a fresh copy of it, and the reads change nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

USER = "coordinator.anna"

#: the same rows as the import writes, straight into the event table with the bare driver
DRIVER = r"""
import csv, datetime as dt, hashlib, json, sys
url, path = sys.argv[1], sys.argv[2]
now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
with open(path, encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
params = []
for i, r in enumerate(rows):
    payload = json.dumps({"kind": "tg", "date": r["date"], "value": float(r["value"]), "unit": r["unit"],
                          "loq": float(r["loq"]), "_v": 1}, sort_keys=True)
    key = hashlib.sha256((r["patient"] + payload).encode()).hexdigest()
    params.append((r["patient"], 100000 + i, "observation", r["date"], now, "anna", payload, key))
sql = ("INSERT INTO event (patient_id, seq, kind, effective_date, recorded_at, user, payload, dedup_key) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
if url.startswith("sqlite"):
    import sqlite3
    con = sqlite3.connect(url.split("///", 1)[1])
    con.executemany(sql, [(*p[:4], p[4].isoformat(" "), *p[5:]) for p in params])
    con.commit()
else:
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as con:
        con.cursor().executemany(sql.replace("?", "%s").replace(" user,", ' "user",'), params)
"""

CORE = r"""
import csv, datetime as dt, hashlib, json, sys
from sqlalchemy import create_engine, insert
from trialflow.engine._tables import EventRow
url, path = sys.argv[1], sys.argv[2]
now = dt.datetime.now(dt.UTC)
with open(path, encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
params = []
for i, r in enumerate(rows):
    payload = json.dumps({"kind": "tg", "date": r["date"], "value": float(r["value"]), "unit": r["unit"],
                          "loq": float(r["loq"]), "_v": 1}, sort_keys=True)
    params.append({"patient_id": r["patient"], "seq": 100000 + i, "kind": "observation",
                   "effective_date": dt.date.fromisoformat(r["date"]), "recorded_at": now, "user": "anna",
                   "payload": payload, "dedup_key": hashlib.sha256((r["patient"] + payload).encode()).hexdigest()})
with create_engine(url).begin() as c:
    c.execute(insert(EventRow.__table__), params)
"""

BUILD_PG = ("import sys; from trialflow.engine import init_store; from trialflow.engine._demo import populate_demo; "
            "s, _ = init_store(sys.argv[1], None, 'investigator.dr-smit'); populate_demo(s, patients=int(sys.argv[2]))")
LOAD_STORED = "import sys; from trialflow.engine import Store; Store.open(sys.argv[1]).protocol()"
VALIDATE_STORED = ("import sys; from trialflow.engine import Store; from trialflow.protocol import parse_protocol; "
                   "s = Store.open(sys.argv[1]); v = s.versions()[-1]; "
                   "from trialflow.engine._tables import ProtocolVersionRow; from sqlalchemy import select; "
                   "t = s.engine.connect().execute(select(ProtocolVersionRow.yaml_text)).scalar_one(); "
                   "parse_protocol(t, v.source_file)")
BARE = ("import typer, rich, sqlalchemy, sqlmodel, trialflow.cli, trialflow.engine._store, "
        "trialflow.engine._queries")


def _bytecode() -> None:
    """Compile trialflow's modules to bytecode, as ``pip install`` does: with ``PYTHONDONTWRITEBYTECODE`` set (this
    machine's environment), every process would otherwise compile them from source, which no user pays."""
    import compileall
    import importlib.util

    for pkg in ("documents", "protocol", "rules", "engine", "cli", "exchange", "web"):
        spec = importlib.util.find_spec(f"trialflow.{pkg}")
        for where in (spec.submodule_search_locations or []) if spec is not None else []:
            compileall.compile_dir(where, quiet=1)


def _patients(url: str) -> tuple[int, str]:
    """How many patients the store holds, and the first demo patient's id (for ``next ID``)."""
    from sqlalchemy import text

    from trialflow.engine import Store

    store = Store.open(url)
    with store.engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM patient")).scalar_one()
        first = c.execute(text("SELECT min(id) FROM patient WHERE id LIKE 'DEMO-%'")).scalar_one()
    store.close()
    return int(n), str(first)


def _pg_has_store(url: str, name: str) -> bool:
    """Whether the server holds database ``name`` with patients in it (a store built by an earlier run)."""
    import psycopg

    admin = url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0]
    with psycopg.connect(admin + "/postgres", autocommit=True) as con:
        if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return False
    with psycopg.connect(f"{admin}/{name}") as con:
        found = con.execute("SELECT to_regclass('patient') IS NOT NULL").fetchone()
        return bool(found and found[0] and con.execute("SELECT count(*) FROM patient").fetchone()[0])  # type: ignore[index]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS KB) of one whole process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        t = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", out.name, *cmd], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True,
                              env={**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                                   "COLUMNS": "100", "LINES": "40", **(env or {})})
        wall = time.perf_counter() - t
        if done.returncode != 0:
            tail = "\n".join(x[:300] for x in done.stderr.splitlines()[-5:])
            sys.exit(f"{' '.join(c[:60] for c in cmd)} failed:\n{tail}")
        user, sys_, rss = out.read().split()[-3:]
    return wall, float(user) + float(sys_), int(rss)


def lab_csv(url: str, path: Path, rows: int) -> int:
    """``rows`` Tg results of patients on treatment, round-robin, on days after day 0 that hold no record."""
    from sqlalchemy import text

    from trialflow.engine import Store

    store = Store.open(url)
    with store.engine.connect() as c:
        started = c.execute(text("SELECT id, day0 FROM patient WHERE day0 IS NOT NULL AND phase IN "
                                 "('sorafenib_6m', 'decision_6m', 'rai_plus_sorafenib', 'continued_sorafenib') "
                                 "ORDER BY id")).all()
        taken = {(p, json.loads(pl)["date"]) for p, pl in
                 c.execute(text("SELECT patient_id, payload FROM event WHERE kind = 'observation'"))}
    store.close()
    today, rng = dt.date.today(), random.Random(17)
    free = [[d for k in range(1, (today - dt.date.fromisoformat(str(d0))).days)
             if (pid, (d := (dt.date.fromisoformat(str(d0)) + dt.timedelta(days=k)).isoformat())) not in taken]
            for pid, d0 in started]
    lines, i = ["patient,kind,date,value,unit,loq"], 0
    while len(lines) <= rows and any(free):
        days = free[i % len(free)]
        if days:
            lines.append(f"{started[i % len(free)][0]},tg,{days.pop()},{round(rng.uniform(0.5, 80), 2)},ug/L,0.2")
        i += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


class Copies:
    """A fresh copy of the built store for each write run: a file copy (SQLite), a template database (PG)."""

    def __init__(self, base: str, tmp: Path):
        self.base, self.tmp, self.n = base, tmp, 0

    def fresh(self) -> str:
        self.n += 1
        if self.base.startswith("sqlite"):
            src = Path(self.base.split("///", 1)[1])
            dst = self.tmp / f"run-{self.n % 2}.db"
            for suffix in ("-wal", "-shm"):
                Path(str(dst) + suffix).unlink(missing_ok=True)
            shutil.copyfile(src, dst)
            return f"sqlite:///{dst}"
        return _pg_clone(self.base, f"{_pg_name(self.base)}_run")


def _pg_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def _pg_admin(url: str, *sql: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres",
                         autocommit=True) as con:
        for q in sql:
            con.execute(q)  # type: ignore[arg-type]  # our own fixed statements


def _pg_clone(base: str, name: str) -> str:
    _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}" TEMPLATE "{_pg_name(base)}"')
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg", help="a PostgreSQL URL whose server may create databases named after it "
                                 "(<name>_bench, <name>_bench_run); default: SQLite")
    ap.add_argument("--only", choices=("import", "reads"), help="run only the import (against its baselines) or "
                                                                 "only the reads; default: both")
    ap.add_argument("--store", help="reuse a built store: SQLite, a path (built there once if missing); with --pg, "
                                    "the name of a database on that server (built there once if missing, kept "
                                    "afterwards); the build figure is then not measured")
    ap.add_argument("--with-all", action="store_true", help="time `next --all` above 20,000 patients too")
    args = ap.parse_args()
    tf = str(Path(sys.executable).with_name("trialflow"))
    py = sys.executable
    _bytecode()
    print(f"load average at the start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        build: tuple[float, float, int] | None = None
        if args.pg:
            name = args.store or f"{_pg_name(args.pg)}_bench"
            base = args.pg.rsplit("/", 1)[0] + f"/{name}"
            if not (args.store and _pg_has_store(args.pg, name)):
                _pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
                build = timed([py, "-c", BUILD_PG, base, str(args.patients)])
            backend = "PostgreSQL"
        else:
            db = Path(args.store) if args.store else tmp / "store.db"
            if not db.exists():
                build = timed([tf, "demo", "--patients", str(args.patients), "--db", str(db)])
            base, backend = f"sqlite:///{db}", "SQLite"
        patients, first = _patients(base)
        rows = lab_csv(base, tmp / "lab.csv", args.rows) if args.only != "reads" else 0
        built = (f"`demo --patients {args.patients:,}` built the store in {build[0]:.1f} s wall, {build[1]:.1f} s "
                 f"CPU, {build[2] / 1024:.0f} MB peak" if build else f"the store {args.store} reused")
        print(f"{backend}: {patients:,} patients; {built}; lab file of {rows:,} rows")
        copies = Copies(base, tmp)
        lab = str(tmp / "lab.csv")
        writes = {
            "import lab.csv": lambda u: [tf, "import", lab, "--db", u, "--user", USER],
            # the same import with its chunks all worked out in its own process (engine/_forked.py turned off)
            "import lab.csv in one process (TRIALFLOW_FORK=0)": lambda u: ["env", "TRIALFLOW_FORK=0", tf, "import",
                                                                           lab, "--db", u, "--user", USER],
            "baseline: driver executemany": lambda u: [py, "-c", DRIVER, u, lab],
            "baseline: SQLAlchemy Core insert": lambda u: [py, "-c", CORE, u, lab],
        }
        reads = {
            "next --json (baseline)": [tf, "next", "--db", base, "--json"],
            "report": [tf, "report", "--db", base],
            "status": [tf, "status", "--db", base],
            "next (a screenful)": [tf, "next", "--db", base],
            "next --all (every row as one table, as before)": [tf, "next", "--db", base, "--all"],
            "visits --status missed": [tf, "visits", "--status", "missed", "--db", base],
            "bare imports (baseline)": [py, "-c", BARE],
            "baseline: validate the stored protocol text again": [py, "-c", VALIDATE_STORED, base],
            "load the stored protocol (no re-validation)": [py, "-c", LOAD_STORED, base],
            "next ID (one patient)": [tf, "next", first, "--db", base],
        }
        if patients > 20_000 and not args.with_all:  # one table of ~10 rows per patient: minutes per run
            del reads["next --all (every row as one table, as before)"]
            print("`next --all` left out above 20,000 patients (--with-all times it)")
        if args.only == "import":
            reads = {}
        elif args.only == "reads":
            writes = {}
        results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in [*writes, *reads]}
        for _ in range(args.repeat):
            for name, cmd in writes.items():
                results[name].append(timed(cmd(copies.fresh())))
            for name, rcmd in reads.items():
                results[name].append(timed(rcmd))
        med: dict[str, Any] = {k: tuple(statistics.median(x[i] for x in v) for i in range(3))
                               for k, v in results.items()}
        baseline = {"import lab.csv": "baseline: driver executemany",
                    "import lab.csv in one process (TRIALFLOW_FORK=0)": "baseline: driver executemany",
                    "baseline: SQLAlchemy Core insert":
                    "baseline: driver executemany", "next ID (one patient)": "bare imports (baseline)",
                    "load the stored protocol (no re-validation)": "baseline: validate the stored protocol text again"}
        print(f"\n{backend}, {patients:,} patients, median of {args.repeat}, "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| command | wall | CPU | peak RSS | × its baseline (wall) | × (CPU) |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, (wall, cpu, rss) in med.items():
            b = baseline.get(name, "next --json (baseline)" if name in reads else name)
            print(f"| `{name}` | {wall:.2f} s | {cpu:.2f} s | {rss / 1024:.0f} MB | {wall / med[b][0]:.2f} "
                  f"| {cpu / med[b][1]:.2f} |")
        if writes:
            imp = med["import lab.csv"][0]
            print(f"\nimport: {rows / imp:,.0f} rows/s as a whole process (driver executemany "
                  f"{rows / med['baseline: driver executemany'][0]:,.0f} rows/s); CPU "
                  f"{med['import lab.csv'][1] / med['baseline: driver executemany'][1]:.2f}× the driver's")
        if args.pg:
            _pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{_pg_name(base)}_run"')
            if not args.store:
                _pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{_pg_name(base)}"')


if __name__ == "__main__":
    main()
