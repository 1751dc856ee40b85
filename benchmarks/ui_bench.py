"""Latency of the requests /ui makes for its first table pages, over a state file of 100,000 batches.

Called by benchmarks/live.sh (one line), or alone:

    .venv/bin/python benchmarks/ui_bench.py --faice .venv/bin/faice --docker docker --work "$(mktemp -d)/ui"

The state file is filled as benchmarks/serve_bench.py fills it (its seed(): faice exec records
whose states and history are set with SQL in one transaction, about 10 s for 100,000 batches); a
real ``faice serve`` is started on loopback (serve_bench.start_server) and signed in to with
``POST /login`` as the page does (Bearer token). Each route is then asked, one request after the
other on one keep-alive connection (one person's page), WARMUP untimed times and --requests timed
times; a request's time is the wall time from sending it to having read its whole answer
(time.perf_counter, loopback: the server's time plus a few tens of microseconds).

The routes are exactly what the page asks for: the batch table's first page is one request,
``GET /batches?limit=50&skip=0`` (its total comes from the same answer's X-Total-Count: the page
makes no separate count), the same with each of its filters (state, experiment); the experiments
view's ``GET /experiments?limit=20&skip=0`` and one ``GET /experiments/ID`` per row (its live
counts) are shown too. Target: p99 <= 50 ms for each batch table page (judged); the others are
informative, as is a deep page (skip=50,000: SQLite walks the skipped rows). Beside the wall times,
the server process's CPU time per request (/proc/PID/stat over the timed requests, divided by
their number): on a machine busy with other work the p99 includes waits for a core, the CPU time
does not.

Exit status: 0 every target met, 1 a target missed, 2 a request failed, a check did not hold or
the set-up is broken.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the other benchmarks sit next to this file
    sys.path.insert(0, str(HERE))
from benchlib import BenchError, machine, report_verdicts, table  # noqa: E402
from serve_bench import USER, Conn, build_request, call, fmt_ms, header, proc_cpu, seed, set_up, start_server, stop_server  # noqa: E402

TARGET_P99_MS = 50.0
WARMUP = 20
PAGE = 50
EXPERIMENT_PAGE = 20


@dataclass
class Route:
    name: str
    path: str
    expect_total: int | None  # X-Total-Count of a list; None for a document
    judged: bool
    latencies: list[float] | None = None
    cpu_ms: float = 0.0  # the server process's CPU time per timed request (all its threads)

    def pct(self, q: float) -> float:
        values = sorted(self.latencies or [0.0])
        return values[min(len(values) - 1, int(q * len(values)))] * 1000


def measure(port: int, pid: int, route: Route, bearer: str, requests: int) -> None:
    """WARMUP then ``requests`` timed requests on one keep-alive connection; every answer checked."""
    conn = Conn(port)
    request = build_request("GET", route.path, port, {"Authorization": bearer})
    latencies = []
    cpu = 0.0
    try:
        for i in range(WARMUP + requests):
            if i == WARMUP:
                cpu = proc_cpu(pid)
            start = time.perf_counter()
            status, head, body = conn.exchange(request)
            wall = time.perf_counter() - start
            if status != 200:
                raise BenchError(f"GET {route.path}: HTTP {status}: {body[:300]!r}")
            if route.expect_total is not None and header(head, "X-Total-Count") != str(route.expect_total):
                raise BenchError(f"GET {route.path}: X-Total-Count {header(head, 'X-Total-Count')}, expected {route.expect_total}")
            if i >= WARMUP:
                latencies.append(wall)
        route.cpu_ms = (proc_cpu(pid) - cpu) * 1000 / requests
    finally:
        conn.close()
    route.latencies = latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faice", required=True)
    ap.add_argument("--docker", required=True)
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (created; the caller removes it)")
    ap.add_argument("--image", default="faice-test-busybox:latest", help="the image the seeded records name (nothing runs)")
    ap.add_argument("--batches", type=int, default=100_000)
    ap.add_argument("--experiments", type=int, default=10)
    ap.add_argument("--requests", type=int, default=500, help="timed requests per route")
    args = ap.parse_args()
    if min(args.batches, args.experiments, args.requests) < 1 or args.experiments > args.batches:
        print("ui_bench: counts must be positive, and no more experiments than batches", file=sys.stderr)
        return 2
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    db = work / "state" / "faice.db"
    password = secrets.token_urlsafe(18)
    began = time.perf_counter()
    server = None
    try:
        versions = set_up(args, db, password, work)
        print(f"  [seed] {args.batches:,} batches in {args.experiments} experiments ...", file=sys.stderr, flush=True)
        seeded = seed(db, args.image, args.experiments, args.batches)
        print(f"  [seed] done in {seeded.seconds:.1f} s", file=sys.stderr, flush=True)
        pick = seeded.experiment_ids[len(seeded.experiment_ids) // 2]
        with sqlite3.connect(str(db)) as conn:
            in_pick = conn.execute("SELECT COUNT(*) FROM batches WHERE experiment_id = ?", (pick,)).fetchone()[0]
        first, deep = f"limit={PAGE}&skip=0", min(50_000, seeded.batches // 2)
        routes = [
            Route("GET /batches?limit=50&skip=0", f"/batches?{first}", seeded.batches, True),
            Route("GET /batches?state=failed&limit=50&skip=0", f"/batches?state=failed&{first}", seeded.states.get("failed", 0), True),
            Route("GET /batches?experimentId=X&limit=50&skip=0", f"/batches?experimentId={pick}&{first}", in_pick, True),
            Route(f"GET /batches?limit=50&skip={deep} (a deep page)", f"/batches?limit={PAGE}&skip={deep}", seeded.batches, False),
            Route("GET /experiments?limit=20&skip=0", f"/experiments?limit={EXPERIMENT_PAGE}&skip=0", len(seeded.experiment_ids), False),
            Route("GET /experiments/ID (a row's live counts)", f"/experiments/{pick}", None, False),
        ]
        server = start_server(args.faice, db, work / "server.log", work)
        basic = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        _wall, _head, login = call(server.port, "POST", "/login", {"Authorization": basic, "X-Requested-With": "XMLHttpRequest"})
        bearer = "Bearer " + login["access_token"]
        for route in routes:
            measure(server.port, server.proc.pid, route, bearer, args.requests)
            print(f"  [load] {route.name}: p50 {route.pct(0.5):.2f} ms, p99 {route.pct(0.99):.2f} ms", file=sys.stderr, flush=True)
        stop_seconds = stop_server(server)
        server = None
    except BenchError as exc:
        print(f"ui_bench: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.proc.kill()

    print()
    print(f"/ui's first table pages over {seeded.batches:,} batches in {len(seeded.experiment_ids)} experiments "
          f"(faice {versions['faice']}; {machine()}); {args.requests} timed requests each, one keep-alive connection, Bearer token;"
          f" load average {os.getloadavg()[0]:.1f} at the end (other work on the machine shows in the p99)")
    print()
    rows = [["request the page makes", "n", "p50 ms", "p99 ms", "max ms", "server CPU ms/req", "target p99 ms", "verdict"]]
    verdicts = []
    for route in routes:
        ok = route.pct(0.99) <= TARGET_P99_MS
        rows.append([route.name, str(len(route.latencies or [])), fmt_ms(route.pct(0.5)), fmt_ms(route.pct(0.99)), fmt_ms(route.pct(1.0)), f"{route.cpu_ms:.2f}",
                     f"<= {TARGET_P99_MS:.0f}" if route.judged else "(informative)", ("PASS" if ok else "FAIL") if route.judged else ""])
        if route.judged:
            verdicts.append((f"{route.name}: p99 <= {TARGET_P99_MS:.0f} ms", f"{route.pct(0.99):.2f} ms", ok))
    print(table(rows, right={1, 2, 3, 4, 5}))
    print("(server CPU: the faice serve process's user+system time over the timed requests, divided by their number: what a request costs"
          " the server however busy the machine is; the p99 also holds the waits for a core)")
    print(f"(faice serve stopped {stop_seconds:.2f} s after SIGTERM)")
    return report_verdicts(verdicts, "ui_bench", began)


if __name__ == "__main__":
    sys.exit(main())
