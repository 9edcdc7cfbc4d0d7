"""The worklist page, ``/api/worklist`` and patient pages for 10,000 patients under 8 concurrent clients.

The store is the demo cohort replicated to N patients (``bench_worklist.fill``: Core bulk inserts of
the demo's rows), given one site and a coordinator of that site through the library (``add_site``
adopts every patient). The server is ``trialflow serve`` as a user runs it (a separate process:
uvicorn, one worker), on loopback. Eight client threads, each signed in with its own session, request
the worklist page, the API and a patient page (each time another patient: its visit ledger, history
and decision preview) in turn for ``--seconds`` (30 by default). Figures:

- median and p95 of the server's own time (the ``Server-Timing`` header: from the request reaching
  the app to the response leaving it) and of the client's round trip, per route;
- every status code seen (the target: no 500, ever), and the verdict on the issue's target: worklist page
  p95 <= 300 ms (server time) for 10,000 patients;
- the baseline, measured in the same run: ``trialflow next --json`` in process (``next_actions`` on
  the same store, converted and dumped as the CLI does), median of 7, and the whole process once.

Run:  python benchmarks/bench_web.py [--patients 10000] [--seconds 30] [--clients 8] [--backends sqlite postgres]
(``--pg`` defaults to $TRIALFLOW_TEST_PG_URL; PostgreSQL runs in a throw-away schema.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_worklist import backend, fill, seed_rows

from trialflow.cli._output import jsonable
from trialflow.engine import add_site, add_user, authenticate, next_actions

ADMIN, ADMIN_PW = "bench.admin", "bench-admin-password"
USER, USER_PW = "bench.coordinator", "bench-coordinator-password"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def team(url: str, n: int, seed: Any) -> None:
    store = fill(url, n, seed)
    add_user(store, ADMIN, ADMIN, "admin", ADMIN_PW, first_admin=True)
    admin = authenticate(store, ADMIN, ADMIN_PW)
    add_site(store, admin, "LEI", "Leiden University Medical Center")  # the first site adopts every patient
    add_user(store, admin, USER, "coordinator", USER_PW, sites=["LEI"])
    store.close()


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def baseline(url: str) -> tuple[float, float, int]:
    """``trialflow next --json`` in process (median of 7, ms) and as a whole process (ms), and its items."""
    from trialflow.engine import Store

    store = Store.open(url)
    actor = authenticate(store, USER, USER_PW)
    runs = []
    items = 0
    for _ in range(7):
        t = time.perf_counter()
        acts = next_actions(store, actor=actor)
        json.dumps(jsonable(acts), indent=2, ensure_ascii=False)
        runs.append(time.perf_counter() - t)
        items = len(acts)
    store.close()
    env = {**os.environ, "TRIALFLOW_PASSWORD": USER_PW}
    t = time.perf_counter()
    cli = [sys.executable, "-c", "from trialflow.cli import main; main()"]
    subprocess.run([*cli, "next", "--json", "--db", url, "--user", USER], check=True, capture_output=True, env=env)
    whole = time.perf_counter() - t
    return statistics.median(runs) * 1000, whole * 1000, items


def serve(url: str, p: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", "from trialflow.cli import main; main()", "serve", "--port",
                             str(p), "--db", url], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                            env={**os.environ, "TRIALFLOW_WEB_SECRET": "bench"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=2).text == "ok":
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text(errors='replace')}")
    raise SystemExit("the server did not start in 120 s")


PAGE, API, PATIENT = "/", "/api/worklist", "/patients/ID"
TARGET_P95_MS = 300.0  # the worklist page's p95 server time for 10,000 patients


MIXES = {"worklist": (PAGE, API),  # the benchmark: the worklist page and /api/worklist
         "all": (PAGE, API, PATIENT)}  # with a patient page (ledger, history, preview) in every third request


def client_loop(base: str, seconds: float, out: dict[str, list[tuple[float, float]]], codes: dict[int, int],
                lock: threading.Lock, n: int, k: int, routes: tuple[str, ...]) -> None:
    with httpx.Client(base_url=base, timeout=60) as c:
        tok = TOKEN.search(c.get("/login").text)
        assert tok
        r = c.post("/login", data={"name": USER, "password": USER_PW, "csrf_token": tok.group(1)})
        assert r.status_code == 303, r.text
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            route = routes[i % len(routes)]
            # a different patient each time (the bench's ids are B000000 ...), spread over the cohort
            path = f"/patients/B{(k * 7919 + i * 104729) % n:06d}" if route == PATIENT else route
            i += 1
            t = time.perf_counter()
            r = c.get(path)
            rtt = time.perf_counter() - t
            m = re.search(r"dur=([0-9.]+)", r.headers.get("server-timing", ""))
            server = float(m.group(1)) / 1000 if m else float("nan")
            with lock:
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                out[route].append((server, rtt))


def run(kind: str, url: str, n: int, seconds: float, clients: int, seed: Any, tmp: Path,
        routes: tuple[str, ...]) -> None:
    t = time.perf_counter()
    team(url, n, seed)
    print(f"{kind}: {n:,} patients (filled in {time.perf_counter() - t:.1f} s)", flush=True)
    in_proc, whole, items = baseline(url)
    p = port()
    log = tmp / f"server-{kind}.log"
    proc = serve(url, p, log)
    try:
        out: dict[str, list[tuple[float, float]]] = {PAGE: [], API: [], PATIENT: []}
        codes: dict[int, int] = {}
        lock = threading.Lock()
        threads = [threading.Thread(target=client_loop, args=(f"http://127.0.0.1:{p}", seconds, out, codes, lock,
                                                              n, k, routes)) for k in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"  baseline trialflow next --json: in process {in_proc:8.1f} ms (median of 7, {items:,} items); "
          f"whole process {whole:8.1f} ms", flush=True)
    for route, xs in out.items():
        if route not in routes:
            continue
        if not xs:
            print(f"  {route:14s} no request completed in {seconds:g} s", flush=True)
            continue
        server = [s * 1000 for s, _ in xs]
        rtt = [r * 1000 for _, r in xs]
        print(f"  {route:14s} {len(xs):5d} requests  server median {statistics.median(server):8.1f} ms  "
              f"p95 {quantile(server, 0.95):8.1f} ms   round trip median {statistics.median(rtt):8.1f} ms  "
              f"p95 {quantile(rtt, 0.95):8.1f} ms   ({statistics.median(server) / in_proc:4.2f}x baseline)",
              flush=True)
    print(f"  status codes: {dict(sorted(codes.items()))}  (500s: {codes.get(500, 0)})", flush=True)
    page = [s * 1000 for s, _ in out[PAGE]]
    if page:
        p95 = quantile(page, 0.95)
        verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
        print(f"  target: worklist page p95 {p95:.1f} ms <= {TARGET_P95_MS:g} ms for {n:,} patients: {verdict}"
              f"{'' if n >= 10_000 else ' (fewer patients than the target names: not a verdict on it)'}; "
              f"no 500: {'met' if not codes.get(500) else 'NOT met'}", flush=True)
    errors = log.read_text(errors="replace").strip()
    if errors:
        print("  server log:\n    " + "\n    ".join(errors.splitlines()[-40:]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--pg", default=os.environ.get("TRIALFLOW_TEST_PG_URL"))
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    ap.add_argument("--mix", choices=sorted(MIXES), default="all",
                    help="worklist: the worklist page and /api/worklist only (the target's mix); "
                         "all: a patient page in every third request too")
    args = ap.parse_args()
    print(f"{args.clients} clients for {args.seconds:g} s on loopback, mix {args.mix} ({', '.join(MIXES[args.mix])}); "
          f"load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seed = seed_rows(tmp)
        for kind in args.backends:
            if kind == "postgres" and not args.pg:
                print("postgres: skipped (no --pg / TRIALFLOW_TEST_PG_URL)")
                continue
            with backend(kind, args.pg, tmp) as url:
                run(kind, url, args.patients, args.seconds, args.clients, seed, tmp, MIXES[args.mix])


if __name__ == "__main__":
    sys.exit(main())
