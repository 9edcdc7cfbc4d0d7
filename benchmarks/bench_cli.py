"""Whole-process timings of the coordinator's commands, as a user runs them, against bare-import baselines.

Each command is a fresh ``trialflow`` process (interpreter start, imports, the work, the output) on a
demo store (30 patients, ``trialflow demo``), run ``--repeat`` times (median, at least 7). In the same
run, interleaved with the commands so that a change of load falls on both alike, the bare interpreter
baselines a command cannot do without: ``python -c "import typer"`` (the CLI framework),
``import typer, sqlmodel`` (the store) and, for the commands that compute a p-value or a confidence
interval (``evaluate``, ``report``), ``import typer, sqlmodel, scipy.special``.

Each figure is given as wall-clock seconds and CPU seconds (user + system, from ``wait4``), with the
ratio of each to its baseline. On a machine other jobs load, wall-clock stretches with the load and
CPU much less: the CPU ratio is the figure that holds there, the wall ratio the one a quiet machine
gives. The in-process time of the same command (``app(args)`` in this process, every import done,
median of the same number of runs) is printed beside it: what the work costs without the start-up.

trialflow's modules are compiled to bytecode first (as ``pip install`` does): with
``PYTHONDONTWRITEBYTECODE`` set, every process would otherwise compile them from source, which an
installed trialflow never does.

Targets (issue 12): ``--help`` and ``protocol validate`` ≤ 2.5× ``import typer``; every store command
≤ 1.25× the bare imports it needs.

trialflow's console script pauses the cyclic garbage collector while it starts (``cli/_startup.py``);
a bare ``import`` does not. So each command's CPU is also compared with its baseline run the same way
(``import gc; gc.disable(); import ...; gc.freeze()``, measured in the same run, interleaved): the
ratio that the code's own cost decides, beside the issue's ratio (the ``gc-paused`` column).

Run:  python benchmarks/bench_cli.py [--repeat 7] [--markdown] [--only next status]
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
from dataclasses import dataclass
from pathlib import Path

BASELINES = {
    "typer": "import typer",
    "typer+sqlmodel": "import typer, sqlmodel",
    "typer+sqlmodel+scipy.special": "import typer, sqlmodel, scipy.special",
}
# each baseline again with the collector paused as the console script pauses it (cli/_startup.py)
PAUSED = {name: f"import gc; gc.disable(); {code}; gc.freeze()" for name, code in BASELINES.items()}
TRIALFLOW = [sys.executable, "-c", "import sys; from trialflow.cli import main; sys.argv[0] = 'trialflow'; main()"]
PATIENT = "DEMO-020"  # in the 6-month phase: visits, history and evaluate have work to do


@dataclass(frozen=True)
class Command:
    label: str
    args: tuple[str, ...]  # "{db}", "{protocol}" and "{date}" are filled in per run
    baseline: str
    target: float


COMMANDS = (
    Command("--help", ("--help",), "typer", 2.5),
    Command("protocol validate", ("protocol", "validate", "{protocol}"), "typer", 2.5),
    Command("next", ("next", "--db", "{db}"), "typer+sqlmodel", 1.25),
    Command("status", ("status", "--db", "{db}"), "typer+sqlmodel", 1.25),
    Command("visits ID", ("visits", PATIENT, "--db", "{db}"), "typer+sqlmodel", 1.25),
    Command("history ID", ("history", PATIENT, "--db", "{db}"), "typer+sqlmodel", 1.25),
    Command("record", ("record", PATIENT, "adverse_event", "--date", "{date}", "--term", "Fatigue", "--grade", "1",
                       "--db", "{db}"), "typer+sqlmodel", 1.25),
    Command("evaluate ID", ("evaluate", PATIENT, "--db", "{db}"), "typer+sqlmodel+scipy.special", 1.25),
    Command("report", ("report", "--db", "{db}"), "typer+sqlmodel+scipy.special", 1.25),
)


@dataclass
class Runs:
    wall: list[float]
    cpu: list[float]

    @property
    def med_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def med_cpu(self) -> float:
        return statistics.median(self.cpu)


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``argv`` as its own process; a failure stops the benchmark."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[3:])} failed ({os.waitstatus_to_exitcode(status)}): "
                         f"{err.decode(errors='replace')[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime


def _in_process(args: list[str]) -> float:
    """The command as ``main()`` runs it (only the named command built), in this warm process."""
    from trialflow.cli._app import for_arguments

    lean = for_arguments(args)
    t = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), suppress(SystemExit):
        lean(args, standalone_mode=False)
    return time.perf_counter() - t


def _bytecode() -> None:
    """Compile trialflow's modules to bytecode, as ``pip install`` does (see the module docstring)."""
    import compileall
    import importlib.util

    for pkg in ("documents", "protocol", "rules", "engine", "cli", "exchange", "web"):
        try:
            spec = importlib.util.find_spec(f"trialflow.{pkg}")
        except ModuleNotFoundError:
            continue
        for where in (spec.submodule_search_locations or []) if spec is not None else []:
            compileall.compile_dir(where, quiet=1)


def _fill(args: tuple[str, ...], db: str, protocol: str, day: dt.date) -> list[str]:
    return [a.replace("{db}", db).replace("{protocol}", protocol).replace("{date}", day.isoformat()) for a in args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per command (median; at least 7)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the README)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only these (help, protocol, next, status, visits, history, record, evaluate, report)")
    ap.add_argument("--smoke", action="store_true", help="allow fewer than 7 runs, to check the script (no figures)")
    opts = ap.parse_args()
    repeat = opts.repeat if opts.smoke else max(7, opts.repeat)
    chosen = [c for c in COMMANDS if not opts.only or c.label.split()[0].lstrip("-") in opts.only]
    if not chosen:
        raise SystemExit(f"--only names none of: {', '.join(c.label for c in COMMANDS)}")

    from trialflow.engine import build_demo
    from trialflow.protocol import bundled_protocol_path

    _bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    db, inproc_db = str(tmp / "demo.db"), str(tmp / "demo_in_process.db")
    build_demo(db).close()
    build_demo(inproc_db).close()  # the in-process runs write to their own copy (record adds events)
    protocol = str(bundled_protocol_path())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"COLUMNS": "80", "TRIALFLOW_USER": "bench"})
    os.environ.update({"COLUMNS": "80", "TRIALFLOW_USER": "bench"})
    needed = {c.baseline for c in chosen}
    base = {name: Runs([], []) for name in BASELINES if name in needed}
    paused = {name: Runs([], []) for name in base}
    runs = {c.label: Runs([], []) for c in chosen}
    inproc: dict[str, list[float]] = {c.label: [] for c in chosen}
    day = dt.date.today()
    load0 = os.getloadavg()
    for k in range(repeat + 1):  # round 0 warms the caches (files, bytecode) and is not counted
        for name in base:
            w, c = _run([sys.executable, "-c", BASELINES[name]], env)
            pw, pc = _run([sys.executable, "-c", PAUSED[name]], env)
            if k:
                base[name].wall.append(w)
                base[name].cpu.append(c)
                paused[name].wall.append(pw)
                paused[name].cpu.append(pc)
        for cmd in chosen:
            w, c = _run([*TRIALFLOW, *_fill(cmd.args, db, protocol, day - dt.timedelta(days=1 + k))], env)
            t = _in_process(_fill(cmd.args, inproc_db, protocol, day - dt.timedelta(days=100 + k)))
            if k:
                runs[cmd.label].wall.append(w)
                runs[cmd.label].cpu.append(c)
                inproc[cmd.label].append(t)
    load1 = os.getloadavg()

    print(f"median of {repeat} runs each, demo store (30 patients), {os.cpu_count()} CPUs, load average "
          f"{load0[0]:.1f} before, {load1[0]:.1f} after{' (SMOKE RUN: not figures)' if repeat < 7 else ''}")
    print("baselines: " + "; ".join(f"{k} {v.med_wall * 1000:.0f} ms wall, {v.med_cpu * 1000:.0f} ms CPU"
                                    for k, v in base.items()))
    print("the same, collector paused: " + "; ".join(f"{k} {v.med_wall * 1000:.0f} ms wall, {v.med_cpu * 1000:.0f} "
                                                     f"ms CPU" for k, v in paused.items()))
    rows = []
    for cmd in chosen:
        r, b = runs[cmd.label], base[cmd.baseline]
        rw, rc = r.med_wall / b.med_wall, r.med_cpu / b.med_cpu
        rows.append((cmd, r, statistics.median(inproc[cmd.label]), rw, rc, r.med_cpu / paused[cmd.baseline].med_cpu))
    if opts.markdown:
        print("\n| command | wall | CPU | in-process | baseline (wall / CPU) | ratio wall | ratio CPU "
              "| ratio CPU, gc-paused baseline | target |")
        print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
        for cmd, r, inp, rw, rc, rp in rows:
            b = base[cmd.baseline]
            print(f"| `trialflow {cmd.label}` | {r.med_wall * 1000:.0f} ms | {r.med_cpu * 1000:.0f} ms | "
                  f"{inp * 1000:.0f} ms | `{BASELINES[cmd.baseline]}` {b.med_wall * 1000:.0f} / "
                  f"{b.med_cpu * 1000:.0f} ms | {rw:.2f}× | {rc:.2f}× | {rp:.2f}× | ≤ {cmd.target}× |")
        return
    print(f"\n{'command':<18} {'wall':>7} {'CPU':>7} {'in-proc':>8}  {'baseline':<29} {'wall×':>6} {'CPU×':>6} "
          f"{'gc-p×':>6}  target")
    for cmd, r, inp, rw, rc, rp in rows:
        verdict = "ok" if max(rw, rc) <= cmd.target else ("ok on CPU" if rc <= cmd.target else "OVER")
        print(f"{cmd.label:<18} {r.med_wall * 1000:>5.0f}ms {r.med_cpu * 1000:>5.0f}ms {inp * 1000:>6.0f}ms  "
              f"{cmd.baseline:<29} {rw:>5.2f}× {rc:>5.2f}× {rp:>5.2f}×  ≤{cmd.target}× {verdict}"
              + ("" if rp <= cmd.target else " (over against the gc-paused baseline)"))


if __name__ == "__main__":
    main()
