"""Store read paths at registry scale (issue 17), as whole processes, each beside its baseline in the same run.

- **stored protocol**: a process that opens the store and loads its registered protocol version
  (``Store.protocol()``: safe YAML read, content-hash check, model build; no JSON Schema, no semantic
  checks) against a process that validates the same stored text from scratch (``parse_protocol``, what
  every store command did before); beside them, the same two calls in one warm process;
- **long lists**: ``trialflow next`` (a screenful of rows and the "… N more" line), ``next --limit 50`` and
  ``next --all`` (every row as one rich table, what ``next`` printed before) against ``next --json`` over
  the same store; ``status`` likewise.

Every figure is the median of ``--repeat`` runs (≥ 5), the commands interleaved so a load swing hits them
alike. The cohort is bench_worklist's: the demo's 30 patients at every stage, replicated under new ids
with Core bulk inserts (SQLite).

    python benchmarks/bench_store.py [--patients 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_worklist import fill, seed_rows

LOAD_STORED = "import sys; from trialflow.engine import Store; Store.open(sys.argv[1]).protocol()"
VALIDATE_STORED = ("import sys; from trialflow.engine import Store; from trialflow.protocol import parse_protocol; "
                   "s = Store.open(sys.argv[1]); v = s.versions()[-1]; "
                   "from trialflow.engine._tables import ProtocolVersionRow; from sqlalchemy import select; "
                   "t = s.engine.connect().execute(select(ProtocolVersionRow.yaml_text)).scalar_one(); "
                   "parse_protocol(t, v.source_file)")


def run(cmd: list[str]) -> float:
    env = {**os.environ, "COLUMNS": "100", "LINES": "40"}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def in_process(db: str, repeat: int) -> tuple[float, float]:
    from sqlalchemy import select

    from trialflow.engine import Store
    from trialflow.engine._tables import ProtocolVersionRow
    from trialflow.protocol import parse_protocol, rebuild_protocol

    s = Store.open(db)
    with s.engine.connect() as c:
        text, h, f = c.execute(select(ProtocolVersionRow.yaml_text, ProtocolVersionRow.content_hash,
                                      ProtocolVersionRow.source_file)).one()
    parse_protocol(text, f)  # rules and schema loaded once, as in any warm process

    def med(fn: object) -> float:
        out = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            out.append(time.perf_counter() - t)
        return statistics.median(out)

    s.close()
    return med(lambda: rebuild_protocol(text, f, h)), med(lambda: parse_protocol(text, f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tf = str(Path(sys.executable).with_name("trialflow"))
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench-store.db")
        t = time.perf_counter()
        fill(db, args.patients, seed_rows(Path(tmp))).close()
        print(f"store of {args.patients:,} patients built in {time.perf_counter() - t:.1f} s (SQLite)")
        cases = {
            "load the stored protocol (no re-validation)": [sys.executable, "-c", LOAD_STORED, db],
            "baseline: validate the stored text again": [sys.executable, "-c", VALIDATE_STORED, db],
            "next --json (baseline)": [tf, "next", "--db", db, "--json"],
            "next (a screenful)": [tf, "next", "--db", db],
            "next --limit 50": [tf, "next", "--db", db, "--limit", "50"],
            "next --all (every row, as before)": [tf, "next", "--db", db, "--all"],
            "status --json (baseline)": [tf, "status", "--db", db, "--json"],
            "status (a screenful)": [tf, "status", "--db", db],
            "status --all (every row, as before)": [tf, "status", "--db", db, "--all"],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for name, cmd in cases.items():
                times[name].append(run(cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = {"load": med["baseline: validate the stored text again"], "next": med["next --json (baseline)"],
                "status": med["status --json (baseline)"]}
        print(f"\nwhole processes, median of {args.repeat}, load average {os.getloadavg()[0]:.1f}")
        print("| command | median | × its baseline |\n| --- | ---: | ---: |")
        for name, m in med.items():
            b = base["load" if "protocol" in name or "stored text" in name else name.split()[0]]
            print(f"| `{name}` | {m:.2f} s | {m / b:.2f} |")
        rebuilt, validated = in_process(db, max(args.repeat, 20))
        print(f"\nin process (warm): rebuild a stored version {rebuilt * 1000:.1f} ms, "
              f"validate it again {validated * 1000:.1f} ms")


if __name__ == "__main__":
    main()
