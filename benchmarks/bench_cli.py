"""Whole-process timings of the coordinator's commands, as a user runs them, against bare-import baselines.

Each command is a fresh ``trialflow`` process (interpreter start, imports, the work, the output) on the
demo store, timed ``--repeat`` times (median reported, at least 7). In the same run, the bare
interpreter baselines a command cannot do without: ``python -c "import typer"`` (the CLI framework),
``import typer, sqlmodel`` (the store) and, for the commands that compute a p-value or a confidence
interval (``evaluate``, ``report``), ``import typer, sqlmodel, scipy.special``. The ratio to the
baseline is the figure that holds on a loaded machine; the in-process time of the same command
(``app(args)`` in an interpreter that has already imported everything, median of the same runs) is
printed beside it, to show what the process costs on top of the work.

Targets (issue 12): ``--help`` and ``protocol validate`` ≤ 2.5× ``import typer``; every store command
≤ 1.25× the bare imports it needs.

Run:  python benchmarks/bench_cli.py [--repeat 7] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout, suppress
from pathlib import Path

BASELINES = {
    "typer": "import typer",
    "typer+sqlmodel": "import typer, sqlmodel",
    "typer+sqlmodel+scipy.special": "import typer, sqlmodel, scipy.special",
}
TRIALFLOW = [sys.executable, "-c", "import sys; from trialflow.cli import main; sys.argv[0] = 'trialflow'; main()"]


def commands(db: str, patient: str, protocol: str) -> list[tuple[str, list[str], str, float]]:
    """(label, arguments, baseline, target ratio)."""
    store = ["--db", db]
    return [
        ("--help", ["--help"], "typer", 2.5),
        ("protocol validate", ["protocol", "validate", protocol], "typer", 2.5),
        ("next", ["next", *store], "typer+sqlmodel", 1.25),
        ("status", ["status", *store], "typer+sqlmodel", 1.25),
        ("visits ID", ["visits", patient, *store], "typer+sqlmodel", 1.25),
        ("history ID", ["history", patient, *store], "typer+sqlmodel", 1.25),
        ("record", ["record", patient, "adverse_event", "--date", "{date}", "--term", "Fatigue", "--grade", "1",
                    *store], "typer+sqlmodel", 1.25),
        ("evaluate", ["evaluate", patient, *store], "typer+sqlmodel+scipy.special", 1.25),
        ("report", ["report", *store], "typer+sqlmodel+scipy.special", 1.25),
    ]


def _run(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-6:])} failed ({done.returncode}): {done.stderr.decode()[-400:]}")
    return elapsed


def _in_process(args: list[str]) -> float:
    from trialflow.cli import app

    t = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), suppress(SystemExit):
        app(args, standalone_mode=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per command (median; at least 7)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the README)")
    opts = ap.parse_args()
    repeat = max(7, opts.repeat)
    from trialflow.engine import build_demo
    from trialflow.protocol import bundled_protocol_path

    tmp = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    db = str(tmp / "demo.db")
    build_demo(db).close()
    patient = "DEMO-020"  # in the 6-month phase: visits, history and evaluate have work to do
    env = {**os.environ, "COLUMNS": "80", "TRIALFLOW_USER": "bench"}
    base = {name: statistics.median(_run([sys.executable, "-c", code], env) for _ in range(repeat))
            for name, code in BASELINES.items()}
    rows = []
    day = dt.date.today()
    for label, args, against, target in commands(db, patient, str(bundled_protocol_path())):
        times, inproc = [], []
        for k in range(repeat):
            argv = [a.replace("{date}", str(day - dt.timedelta(days=1 + k))) for a in args]
            times.append(_run([*TRIALFLOW, *argv], env))
            argv = [a.replace("{date}", str(day - dt.timedelta(days=30 + k))) for a in args]
            inproc.append(_in_process(argv))
        med = statistics.median(times)
        rows.append((label, med, statistics.median(inproc), against, base[against], med / base[against], target))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {repeat} runs, demo store (30 patients), load average {load:.1f} on {os.cpu_count()} CPUs")
    print("baselines: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in base.items()))
    if opts.markdown:
        print("\n| command | process | in-process | baseline | ratio | target |")
        print("| --- | ---: | ---: | --- | ---: | ---: |")
        for label, med, inp, against, b, ratio, target in rows:
            ok = "ok" if ratio <= target else "over"
            print(f"| `trialflow {label}` | {med * 1000:.0f} ms | {inp * 1000:.0f} ms | {against} "
                  f"{b * 1000:.0f} ms | {ratio:.2f}× | ≤ {target}× ({ok}) |")
        return
    print(f"{'command':<20} {'process':>9} {'in-proc':>9}  {'baseline':<30} {'ratio':>6}  target")
    for label, med, inp, against, b, ratio, target in rows:
        ok = "ok" if ratio <= target else "OVER"
        print(f"{label:<20} {med * 1000:>7.0f}ms {inp * 1000:>7.0f}ms  {against + f' {b * 1000:.0f}ms':<30} "
              f"{ratio:>5.2f}×  ≤{target}× {ok}")


if __name__ == "__main__":
    main()
