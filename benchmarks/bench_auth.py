"""What authentication costs a user: whole `trialflow` processes on a store with a team vs. one without.

Measured as users run it: each figure is the median of N whole processes (interpreter start, imports,
output), against the same command on a store without users measured in the same run. Beside them, the
in-process cost of one argon2id verification with the default parameters (RFC 9106 low-memory profile:
64 MiB, 3 passes, 4 lanes) and with the cheap test setting.

Run:  python benchmarks/bench_auth.py [--runs 7]
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

PASSWORD = "bench-password-0001"


def trialflow(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "from trialflow.cli import main; main()", *args], cwd=cwd, env=env,
                       input=stdin, text=True, capture_output=True)
    took = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"trialflow {' '.join(args)} failed: {r.stderr}")
    return took


def median(fn: object, runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALFLOW_")}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        trialflow("init", "--db", "plain.db", env=env, cwd=d)
        trialflow("init", "--db", "team.db", "--admin", "admin.jo", "--password-stdin", env=env, cwd=d,
                  stdin=PASSWORD + "\n")
        team_env = {**env, "TRIALFLOW_USER": "admin.jo", "TRIALFLOW_PASSWORD": PASSWORD}
        trialflow("user", "add", "mona", "--role", "monitor", "--db", "team.db", cwd=d,
                  env={**team_env, "TRIALFLOW_NEW_PASSWORD": PASSWORD})
        mona = {**env, "TRIALFLOW_USER": "mona", "TRIALFLOW_PASSWORD": PASSWORD}
        plain = median(lambda: trialflow("status", "--db", "plain.db", env=env, cwd=d), args.runs)
        team = median(lambda: trialflow("status", "--db", "team.db", env=mona, cwd=d), args.runs)
    from argon2 import PasswordHasher

    def verify_cost(ph: PasswordHasher) -> float:
        h = ph.hash(PASSWORD)
        return median(lambda: (lambda t: (ph.verify(h, PASSWORD), time.perf_counter() - t)[1])(time.perf_counter()),
                      args.runs)

    real = verify_cost(PasswordHasher())
    cheap = verify_cost(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    print(f"trialflow status, whole process, median of {args.runs}:")
    print(f"  store without users (baseline)        {plain * 1000:7.0f} ms")
    print(f"  store with a team (monitor, argon2id) {team * 1000:7.0f} ms  ({team / plain:.2f}x, "
          f"+{(team - plain) * 1000:.0f} ms)")
    print("argon2id verify, in process, median:")
    print(f"  default (m=64 MiB, t=3, p=4)          {real * 1000:7.1f} ms")
    print(f"  test setting (m=1 MiB, t=1, p=1)      {cheap * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
