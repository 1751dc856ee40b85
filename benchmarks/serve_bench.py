"""Load measurements of `faice serve` (the CC-Agency REST API) over a state file of 100,000 batches.

Called by benchmarks/serve.sh, which finds faice, makes sure the offline test image exists and
provides a scratch directory; see there. Standard library only (plus faice's own Store API to
seed the state file and its Filters to build the floor's SQL); table() comes from benchlib.py.

How latency is taken: every client is its own process (fork) with one keep-alive HTTP/1.1
connection and a prebuilt request; it sends a request, reads the whole response (Content-Length)
and takes the wall time around that with time.perf_counter (CLOCK_MONOTONIC). The clients run a
closed loop (the next request right after the answer) and share one counter, so a route gets
exactly N timed requests, unless it takes longer than ROUTE_SECONDS_MAX (one client:
ONE_CLIENT_SECONDS_MAX; the table marks such a count with *) which keeps the whole run under 3
minutes; all clients first send untimed warm-up requests (and check the first answer's JSON:
length, X-Total-Count, filters), then start together at a barrier. Requests/s is the count over
the time from the barrier to the last answer. "server CPU ms/req" is the server process's
user+system CPU time (/proc/PID/stat, all its threads) over the timed part, divided by N; "load
gen CPU" is the same for all client processes together: both share the machine's cores.

The floor is the route's SQL run by Python's sqlite3 on the same file, one client, before the
server starts: for a list, the statement of faice/state/listing.py rows() (fetched completely, each
row's history included as its stored JSON); for a count, its COUNT(*). The statements are built
with faice's own Filters and checked once against the store's rows()/count().

The seeded experiments are faice exec records (runner "exec") whose pid is this process, alive
while the server runs: the server's reconcile leaves them alone (it fails only dead runs) and its
worker runs only experiments of its own (runner "serve"). After the server stops, the benchmark
checks that none of them changed.

Exit status: 0 every target met, 1 a target missed, 2 a request failed, a check did not hold or
the set-up is broken.
"""

from __future__ import annotations

import argparse
import array
import base64
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # benchlib sits next to this file; python -P or PYTHONSAFEPATH leave it out
    sys.path.insert(0, HERE)
from benchlib import BenchError, capture, machine, program, report_verdicts, table, tool_versions  # noqa: E402

USER = "bench"
OWNERS = ("bench", "alice", "bob")  # usernames of the seeded experiments (the admin sees them all)
HOST = "127.0.0.1"
WARMUP_PER_CLIENT = 20
WRITES_PER_SECOND = 100  # commits by another process while the +writes rows are measured
ROUTE_SECONDS_MAX = 20.0  # a route with all clients stops early (and says so) after this long
ONE_CLIENT_SECONDS_MAX = 3.0  # the same with one client
LIST_P99_MS = 50.0
COUNT_P99_MS = 20.0
POST_SECONDS = 3.0
# idx % 20 -> state of a seeded batch: 60 % succeeded, 20 % failed, 10 % cancelled, 5 % registered, 5 % processing
STATE_OF = ["succeeded"] * 12 + ["failed"] * 4 + ["cancelled"] * 2 + ["registered", "processing"]


# --------------------------------------------------------------------------- seeding


def seed_red(image: str) -> dict[str, Any]:
    """What a seeded experiment record keeps as its (redacted) RED data."""
    return {
        "redVersion": "9",
        "cli": {
            "cwlVersion": "v1.0",
            "class": "CommandLineTool",
            "baseCommand": "true",
            "doc": "Do nothing, successfully.",
            "inputs": {"n": {"type": "int", "inputBinding": {"position": 0}}},
            "outputs": {},
        },
        "container": {"engine": "docker", "settings": {"image": {"url": image}, "ram": 256}},
        "execution": {"engine": "ccfaice", "settings": {}},
    }


@dataclass
class Seed:
    experiment_ids: list[str]  # oldest first
    batches: int
    history: int
    states: dict[str, int]
    seconds: float
    fingerprint: Any = None


def fingerprint(conn: sqlite3.Connection, ids: list[str]) -> Any:
    """What would change if anything touched the seeded batches or their history."""
    marks = ",".join("?" * len(ids))
    per_state = conn.execute(
        f"SELECT state, COUNT(*), SUM(attempts), MAX(updated_at), COUNT(node), SUM(exit_code) FROM batches WHERE experiment_id IN ({marks}) GROUP BY state ORDER BY state",
        ids,
    ).fetchall()
    history = conn.execute(f"SELECT COUNT(*), MAX(id), MAX(time) FROM history WHERE experiment_id IN ({marks})", ids).fetchone()
    return [tuple(r) for r in per_state], tuple(history)


def seed(db: Path, image: str, experiments: int, batches: int) -> Seed:
    """``experiments`` faice exec records sharing ``batches`` batches, states and history set with SQL."""
    from faice.host import node_name
    from faice.state.store import Store

    start = time.perf_counter()
    store = Store(db)
    per = [batches // experiments + (1 if e < batches % experiments else 0) for e in range(experiments)]
    ids = []
    for e, count in enumerate(per):
        experiment_id, _ = store.create_experiment(
            source=f"benchmarks/serve_bench.py seed {e}",
            red=seed_red(image),
            argvs=[["true", str(i)] for i in range(count)],
            image=image,
            engine="ccfaice",
            username=OWNERS[e % len(OWNERS)],
            ram=256,
            runner="exec",
        )
        ids.append(experiment_id)
    node = node_name()
    base = time.time() - experiments * 3600.0
    states = "CASE idx % 20 " + " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STATE_OF)) + " END"
    store.close()
    conn = sqlite3.connect(str(db))  # states and history are set with the benchmark's own SQL, in one transaction
    with conn:
        for e, experiment_id in enumerate(ids):
            created = base + e * 3600.0
            conn.execute("UPDATE experiments SET created_at = ?, pid = ? WHERE id = ?", (created, os.getpid(), experiment_id))
            conn.execute(
                f"UPDATE batches SET created_at = ?, state = {states}, updated_at = ? + 60 + idx * 0.01,"
                " node = CASE WHEN idx % 20 = 18 THEN NULL ELSE ? END, attempts = CASE WHEN idx % 20 = 18 THEN 0 ELSE 1 END,"
                " exit_code = CASE WHEN idx % 20 < 12 THEN 0 WHEN idx % 20 < 16 THEN 1 ELSE NULL END,"
                " error = CASE WHEN idx % 20 BETWEEN 12 AND 15 THEN 'the tool exited with status 1' ELSE NULL END,"
                " container = CASE WHEN idx % 20 = 18 THEN NULL ELSE lower(hex(randomblob(32))) END WHERE experiment_id = ?",
                (created, created, node, experiment_id),
            )
            conn.execute("UPDATE history SET time = ? WHERE experiment_id = ?", (created, experiment_id))
            for offset, state, reason, where in [
                (1, "'scheduled'", f"'scheduled on node {node}'", "state != 'registered'"),
                (2, "'processing'", "'container started'", "state != 'registered' AND idx % 20 NOT IN (16, 17)"),
                (
                    3,
                    "state",
                    "CASE state WHEN 'failed' THEN error WHEN 'cancelled' THEN 'cancelled by the user' ELSE 'the tool exited with status 0' END",
                    "state IN ('succeeded', 'failed', 'cancelled')",
                ),
            ]:
                conn.execute(
                    f"INSERT INTO history (batch_id, experiment_id, time, state, reason, node) SELECT id, experiment_id, created_at + {offset} + idx * 0.01,"
                    f" {state}, {reason}, node FROM batches WHERE experiment_id = ? AND {where} ORDER BY rowid",
                    (experiment_id,),
                )
            # what Store.set_states keeps beside each batch: its history's list projection
            conn.execute(
                "UPDATE batches SET history_json = (SELECT json_group_array(json_object('state', h.state, 'time', h.time, 'node', h.node))"
                " FROM (SELECT * FROM history WHERE batch_id = batches.id ORDER BY id) h) WHERE experiment_id = ?",
                (experiment_id,),
            )
    found = dict(conn.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall())
    history = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no ANALYZE: faice never runs it, so users' files have no statistics
    result = Seed(ids, sum(found.values()), history, found, time.perf_counter() - start, fingerprint(conn, ids))
    conn.close()
    if result.batches != batches:
        raise BenchError(f"seeding wrote {result.batches} batches, expected {batches}")
    return result


# --------------------------------------------------------------------------- a small HTTP/1.1 client

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def build_request(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Conn:
    """One keep-alive connection; answers must carry Content-Length (all of faice serve's JSON do)."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send a request and read its answer: (status, head, body)."""
        sock, buf = self.sock, self.buf
        sock.sendall(request)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(262144)
            if not chunk:
                raise BenchError("the server closed the connection")
            buf += chunk
        head = bytes(buf[:end])
        match = CONTENT_LENGTH.search(head)
        if match is None:
            raise BenchError(f"an answer without Content-Length: {head[:200]!r}")
        need = end + 4 + int(match.group(1))
        while len(buf) < need:
            chunk = sock.recv(max(262144, need - len(buf)))
            if not chunk:
                raise BenchError("the server closed the connection in the middle of an answer")
            buf += chunk
        body = bytes(buf[end + 4 : need])
        del buf[:need]
        return int(head[9:12]), head, body

    def close(self) -> None:
        self.sock.close()


def header(head: bytes, name: str) -> str | None:
    match = re.search(rb"\r\n" + re.escape(name.encode()) + rb":[ \t]*([^\r\n]*)", head, re.IGNORECASE)
    return match.group(1).decode("latin-1").strip() if match else None


def call(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", expect: int = 200) -> tuple[float, bytes, Any]:
    """One request on a new connection: (wall seconds, head, JSON body); the status must be ``expect``."""
    conn = Conn(port, timeout=300)
    try:
        request = build_request(method, path, port, headers, body)
        start = time.perf_counter()
        status, head, data = conn.exchange(request)
        wall = time.perf_counter() - start
    finally:
        conn.close()
    if status != expect:
        raise BenchError(f"{method} {path}: HTTP {status} (expected {expect}): {data[:500].decode('utf-8', 'replace')}")
    try:
        return wall, head, json.loads(data) if data else None
    except ValueError:
        raise BenchError(f"{method} {path}: the answer is not JSON: {data[:200]!r}") from None


# --------------------------------------------------------------------------- the routes


@dataclass
class Route:
    name: str  # the request line's path, as the table shows it
    path: str  # with the real experiment id
    kind: str  # "list" or "count"
    expect_total: int  # the count, or the X-Total-Count of a list
    filters: dict[str, str] = field(default_factory=dict)  # for the floor and the checks
    floor_sql: list[tuple[str, list[Any]]] = field(default_factory=list)
    results: dict[int, Result] = field(default_factory=dict)  # clients -> result
    floor: Result | None = None
    informative: bool = False  # measured under writes: shown against the target, not judged
    commits: int = 0

    @property
    def target_ms(self) -> float:
        return LIST_P99_MS if self.kind == "list" else COUNT_P99_MS


@contextlib.contextmanager
def writer(db: Path, per_second: int) -> Iterator[Any]:
    """Another process committing ``per_second`` small transactions a second (a side table only)."""
    stop = multiprocessing.Event()
    commits = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=_write, args=(str(db), per_second, stop, commits), daemon=True)
    process.start()
    try:
        yield commits
    finally:
        stop.set()
        process.join(10)


def _write(db: str, per_second: int, stop: Any, commits: Any) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    while not stop.is_set():
        conn.execute("INSERT INTO login_failures (username, client, time) VALUES ('bench-writer', 'bench', 0)")
        with commits.get_lock():
            commits.value += 1
        time.sleep(1 / per_second)
    conn.execute("DELETE FROM login_failures WHERE username = 'bench-writer'")
    conn.close()


def check_answer(route_kind: str, limit: int, expect_total: int, filters: dict[str, str], head: bytes, body: bytes) -> None:
    """The first answer a client gets is read completely: the right shape, total and filter."""
    data = json.loads(body)
    if route_kind == "count":
        if data != {"count": expect_total}:
            raise BenchError(f"answered {str(data)[:200]}, expected {{'count': {expect_total}}}")
        return
    total = header(head, "x-total-count")
    if total != str(expect_total):
        raise BenchError(f"X-Total-Count {total}, expected {expect_total}")
    if not isinstance(data, list) or len(data) != min(limit, expect_total):
        raise BenchError(f"answered {type(data).__name__} of {len(data) if isinstance(data, list) else '?'} items, expected {min(limit, expect_total)}")
    for key, value in filters.items():
        if any(item.get(key) != value for item in data):
            raise BenchError(f"answered an item whose {key} is not {value}")
    if not all(item.get("history") for item in data):
        raise BenchError("answered a batch without its history")
    times = [item["registrationTime"] for item in data]
    if times != sorted(times, reverse=True):
        raise BenchError("the batches are not newest first")


# --------------------------------------------------------------------------- load


@dataclass
class Result:
    clients: int
    latencies: list[float]  # seconds, sorted
    seconds: float  # barrier to the last answer
    server_cpu: float | None = None  # seconds
    client_cpu: float | None = None  # seconds, all client processes
    stopped_early: bool = False

    @property
    def n(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        return self.latencies[max(0, math.ceil(q * self.n) - 1)] * 1000

    @property
    def rps(self) -> float:
        return self.n / self.seconds


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(port: int, request: bytes, check: tuple[Any, ...], warmup: int, counter: Any, total: int, seconds: float, barrier: Any, out: Any) -> None:
    """One client process: warm up (checking the first answer), then a closed loop until the
    shared counter reaches ``total`` or ``seconds`` have passed since the barrier."""
    try:
        conn = Conn(port)
        for i in range(warmup):
            status, head, body = conn.exchange(request)
            if status != 200:
                raise BenchError(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
            if i == 0:
                check_answer(*check, head, body)
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        out.put(("error", f"warm-up: {exc}"))
        return
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        out.put(("error", "another client failed"))
        return
    perf = time.perf_counter
    cpu0 = time.process_time()
    end = perf()
    deadline = end + seconds
    lat = array.array("d")
    lock = counter.get_lock()
    error = None
    try:
        while end < deadline:
            with lock:
                if counter.value >= total:
                    break
                counter.value += 1
            start = perf()
            status, _head, body = conn.exchange(request)
            end = perf()
            if status != 200:
                error = f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"
                break
            lat.append(end - start)
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        error = str(exc)
    conn.close()
    out.put(("error", error) if error else ("ok", lat.tobytes(), end, time.process_time() - cpu0))


def load(port: int, server_pid: int, route: Route, authorization: str, clients: int, total: int, seconds: float, limit: int = 100) -> Result:
    """``total`` timed requests of ``route`` (at most ``seconds`` long) from ``clients`` closed-loop client processes."""
    ctx = multiprocessing.get_context("fork")
    request = build_request("GET", route.path, port, {"Authorization": authorization})
    counter = ctx.Value("q", 0)
    barrier = ctx.Barrier(clients + 1)
    out = ctx.Queue()
    check = (route.kind, limit, route.expect_total, route.filters)
    procs = [
        ctx.Process(target=_client, args=(port, request, check, WARMUP_PER_CLIENT, counter, total, seconds, barrier, out), daemon=True) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass  # a client failed: it says why below
    cpu0 = proc_cpu(server_pid)
    start = time.perf_counter()
    results = [out.get(timeout=seconds + 180) for _ in procs]
    cpu1 = proc_cpu(server_pid)
    for p in procs:
        p.join(timeout=10)
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise BenchError(f"GET {route.path} with {clients} client(s): {errors[0]}")
    latencies: list[float] = []
    for r in results:
        latencies += array.array("d", r[1])
    latencies.sort()
    if not latencies:
        raise BenchError(f"GET {route.path} with {clients} client(s): no request was timed")
    last = max(r[2] for r in results)
    return Result(clients, latencies, last - start, cpu1 - cpu0, sum(r[3] for r in results), stopped_early=len(latencies) < total)


# --------------------------------------------------------------------------- the floor


def floor_statements(conn: sqlite3.Connection, db: Path, route: Route, limit: int) -> None:
    """The SQL the server runs for ``route`` (faice/state/listing.py), checked against the store's rows()/count()."""
    from faice.state.listing import Filters

    filters = Filters(state=route.filters.get("state"), experiment_id=route.filters.get("experimentId"))
    where, params = filters.where()
    from faice.state.store import Store

    store = Store(db)
    if route.kind == "count":
        route.floor_sql = [(f"SELECT COUNT(*) FROM batches{where}", params)]
        got = conn.execute(*route.floor_sql[0]).fetchone()[0]
        if got != store.count("batches", filters) or got != route.expect_total:
            raise BenchError(f"the floor's count for {route.name} is {got}, expected {route.expect_total}")
        return
    # the store's rows(): newest first, each with its history (stored as JSON beside the batch)
    rows_sql = f"SELECT id, username, created_at, state, experiment_id, node, idx, history_json FROM batches{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
    route.floor_sql = [(rows_sql, [*params, limit, 0])]
    ids = [r[0] for r in conn.execute(rows_sql, [*params, limit, 0])]
    expected = [r["id"] for r in store.rows("batches", filters, limit=limit)]
    store.close()
    if ids != expected:
        raise BenchError(f"the floor's rows for {route.name} differ from the store's rows()")


def run_floor(db: Path, route: Route, requests: int, warmup: int) -> Result:
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.row_factory = sqlite3.Row  # as the server's connection
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        floor_statements(conn, db, route, 100)
        sql, params = route.floor_sql[0]
        lat = []
        for i in range(warmup + requests):
            start = time.perf_counter()
            conn.execute(sql, params).fetchall()
            if i >= warmup:
                lat.append(time.perf_counter() - start)
        lat.sort()
        return Result(1, lat, sum(lat))
    finally:
        conn.close()


# --------------------------------------------------------------------------- the server


def set_up(args: argparse.Namespace, db: Path, password: str, work: Path) -> dict[str, str]:
    """The programs found (``args.faice``, ``args.docker``), a new state file holding the admin
    USER with ``password``; the versions the report names."""
    args.faice, args.docker = program(args.faice), program(args.docker)
    db.parent.mkdir(parents=True)
    versions = tool_versions(args.faice, None, args.docker, work)
    add_admin(args.faice, db, password, work)  # the user first: it creates the state file
    return versions


def add_admin(faice: str, db: Path, password: str, work: Path) -> None:
    """The admin USER (who sees every experiment) in the state file at db, created if need be."""
    added = subprocess.run([faice, "--db", str(db), "users", "add", USER, "--password-stdin", "--admin"], input=password + "\n", capture_output=True, text=True, cwd=work)
    if added.returncode != 0:
        raise BenchError(f"faice users add failed (exit status {added.returncode}): {added.stdout}{added.stderr}")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def start_server(faice: str, db: Path, log: Path, work: Path) -> Server:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [faice, "--db", str(db), "serve", "--host", HOST, "--port", "0", "--jobs", "2"],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        match = re.search(r"CC-Agency API on http://127\.0\.0\.1:(\d+)", text)
        if match:
            port = int(match.group(1))
            while time.monotonic() < deadline:  # uvicorn takes the socket a moment after the line
                try:
                    call(port, "GET", "/")
                    return Server(proc, port, log)
                except (OSError, BenchError):
                    time.sleep(0.05)
        if proc.poll() is not None:
            raise BenchError(f"faice serve exited with status {proc.returncode} before listening:\n{text[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise BenchError(f"faice serve did not start listening within 60 s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(server: Server) -> float:
    """SIGTERM, as a service manager would; returns the seconds it took to exit (status 0 expected)."""
    start = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        raise BenchError("faice serve did not stop within 60 s of SIGTERM") from None
    if code != 0:
        raise BenchError(f"faice serve exited with status {code} after SIGTERM:\n{server.log.read_text(errors='replace')[-3000:]}")
    return time.perf_counter() - start


# --------------------------------------------------------------------------- POST /red


def post_document(image: str, batches: int) -> bytes:
    """A RED 9 document: `true N S` in the offline image, an int and a string input and `outputs: {}` per batch."""
    doc = seed_red(image)
    doc["cli"]["inputs"]["s"] = {"type": "string", "inputBinding": {"position": 1}}
    doc["execution"] = {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 1}}
    doc["batches"] = [{"inputs": {"n": i, "s": f"batch {i:06d}"}, "outputs": {}} for i in range(batches)]
    return json.dumps(doc).encode()


def open_of(port: int, auth: dict[str, str], experiment_id: str) -> int:
    return sum(call(port, "GET", f"/batches/count?experimentId={experiment_id}&state={s}", auth)[2]["count"] for s in ("scheduled", "processing"))


# --------------------------------------------------------------------------- main


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faice", required=True)
    ap.add_argument("--docker", required=True)
    ap.add_argument("--image", required=True, help="a local image (nothing is pulled)")
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (emptied by the caller)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=3000, help="timed requests per route with all clients (1 client: a fifteenth, at least 100)")
    ap.add_argument("--floor-requests", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=100_000)
    ap.add_argument("--experiments", type=int, default=10)
    ap.add_argument("--post-batches", type=int, default=10_000)
    ap.add_argument("--runs-small", type=int, default=5, help="POST /login runs")
    ap.add_argument("--runs-big", type=int, default=3, help="POST /red runs")
    args = ap.parse_args()
    if min(args.clients, args.requests, args.batches, args.experiments, args.post_batches, args.runs_small, args.runs_big, args.floor_requests) < 1:
        print("serve_bench: every count must be positive", file=sys.stderr)
        return 2
    if args.experiments > args.batches:
        print("serve_bench: more experiments than batches", file=sys.stderr)
        return 2
    work: Path = args.work.resolve()
    db = work / "state" / "faice.db"
    log = work / "server.log"
    one_client = max(100, args.requests // 15)
    password = secrets.token_urlsafe(18)
    basic = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()}
    server: Server | None = None
    posted: list[str] = []
    began = time.perf_counter()
    try:
        versions = set_up(args, db, password, work)
        faice_version, docker_version = versions["faice"], versions["docker"]
        print(f"  [seed] {args.batches:,} batches in {args.experiments} experiments ...", file=sys.stderr, flush=True)
        sd = seed(db, args.image, args.experiments, args.batches)
        print(f"  [seed] done in {sd.seconds:.1f} s: {sd.history:,} history rows", file=sys.stderr, flush=True)

        pick = sd.experiment_ids[len(sd.experiment_ids) // 2]
        with sqlite3.connect(str(db)) as c:
            in_pick = c.execute("SELECT COUNT(*) FROM batches WHERE experiment_id = ?", (pick,)).fetchone()[0]
        routes = [
            Route("GET /batches?limit=100", "/batches?limit=100", "list", sd.batches),
            Route(
                "GET /batches?limit=100&state=succeeded", "/batches?limit=100&state=succeeded", "list", sd.states.get("succeeded", 0), {"state": "succeeded"}
            ),
            Route("GET /batches?experimentId=X&limit=100", f"/batches?experimentId={pick}&limit=100", "list", in_pick, {"experimentId": pick}),
            Route("GET /batches/count", "/batches/count", "count", sd.batches),
            Route("GET /batches/count?state=failed", "/batches/count?state=failed", "count", sd.states.get("failed", 0), {"state": "failed"}),
            Route("GET /experiments/count", "/experiments/count", "count", len(sd.experiment_ids)),
        ]

        # the floor, before the server starts (nothing else uses the file)
        for route in routes:
            if route.name == "GET /experiments/count":
                route.floor_sql = [("SELECT COUNT(*) FROM experiments", [])]
                conn = sqlite3.connect(str(db))
                lat = []
                for i in range(50 + args.floor_requests):
                    start = time.perf_counter()
                    conn.execute("SELECT COUNT(*) FROM experiments").fetchone()
                    if i >= 50:
                        lat.append(time.perf_counter() - start)
                conn.close()
                route.floor = Result(1, sorted(lat), sum(lat))
            else:
                route.floor = run_floor(db, route, args.floor_requests, 50)
            print(f"  [floor] {route.name}: p50 {route.floor.pct(0.5):.3f} ms  p99 {route.floor.pct(0.99):.3f} ms", file=sys.stderr, flush=True)

        server = start_server(args.faice, db, log, work)
        port = server.port
        print(f"  [server] faice serve pid {server.proc.pid} on port {port}", file=sys.stderr, flush=True)

        # log in, and HTTP Basic once
        logins = []
        for _ in range(args.runs_small):
            wall, _head, data = call(port, "POST", "/login", basic)
            logins.append(wall)
        token = data["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        route_c = routes[3]
        basic_result = load(port, server.proc.pid, route_c, basic["Authorization"], 1, one_client, ONE_CLIENT_SECONDS_MAX)
        bearer_result = load(port, server.proc.pid, route_c, bearer["Authorization"], 1, one_client, ONE_CLIENT_SECONDS_MAX)
        print(
            f"  [auth] POST /login first {logins[0] * 1000:.0f} ms, then median {statistics.median(logins[1:] or logins) * 1000:.1f} ms;"
            f" Basic p50 {basic_result.pct(0.5):.2f} ms vs Bearer p50 {bearer_result.pct(0.5):.2f} ms",
            file=sys.stderr,
            flush=True,
        )

        # the routes: 1 client, then all clients
        for route in routes:
            for clients, total, seconds in ((1, one_client, ONE_CLIENT_SECONDS_MAX), (args.clients, args.requests, ROUTE_SECONDS_MAX)):
                result = load(port, server.proc.pid, route, bearer["Authorization"], clients, total, seconds)
                route.results[clients] = result
                print(
                    f"  [load] {route.name} x{clients}: {result.n} requests, {result.rps:.0f}/s, p50 {result.pct(0.5):.2f} ms, p99 {result.pct(0.99):.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )

        # the filtered routes again while another process commits WRITES_PER_SECOND times a second
        # (faice exec runs in other terminals share the file): nothing may depend on a quiet file
        for route in [r for r in routes if r.filters.get("state")]:
            busy = Route(f"{route.name} +writes", route.path, route.kind, route.expect_total, route.filters, route.floor_sql, floor=route.floor, informative=True)
            with writer(db, WRITES_PER_SECOND) as commits:
                busy.results[args.clients] = load(port, server.proc.pid, busy, bearer["Authorization"], args.clients, args.requests, ROUTE_SECONDS_MAX)
            busy.commits = commits.value
            routes.append(busy)
            result = busy.results[args.clients]
            print(f"  [load] {busy.name} x{args.clients}: {result.n} requests, {commits.value} commits elsewhere, p50 {result.pct(0.5):.2f} ms,"
                  f" p99 {result.pct(0.99):.2f} ms", file=sys.stderr, flush=True)

        # POST /red, each cancelled at once
        body = post_document(args.image, args.post_batches)
        post_walls, delete_walls, cancelled = [], [], []
        for run in range(args.runs_big):
            wall, _head, data = call(port, "POST", "/red?disableRetry=1", {**bearer, "Content-Type": "application/json"}, body)
            experiment_id = data.get("experimentId") if isinstance(data, dict) else None
            if not isinstance(experiment_id, str) or not re.fullmatch(r"[0-9a-f]{24}", experiment_id):
                raise BenchError(f"POST /red answered {str(data)[:300]}, no experimentId")
            posted.append(experiment_id)
            dwall, _head, ddata = call(port, "DELETE", f"/experiments/{experiment_id}", bearer)
            post_walls.append(wall)
            delete_walls.append(dwall)
            cancelled.append(ddata.get("cancelled"))
            if not isinstance(ddata.get("cancelled"), int) or ddata["cancelled"] < args.post_batches - 2:
                raise BenchError(f"DELETE /experiments/{experiment_id} cancelled {ddata.get('cancelled')} batches, expected about {args.post_batches}")
            until = time.monotonic() + 20  # let the cancelled batch's container go before the next run
            while open_of(port, bearer, experiment_id) and time.monotonic() < until:
                time.sleep(0.1)
            print(
                f"  [post] run {run + 1}/{args.runs_big}: POST /red {wall:.2f} s, DELETE {dwall:.2f} s ({ddata['cancelled']} cancelled)",
                file=sys.stderr,
                flush=True,
            )

        stop_seconds = stop_server(server)
        server_log = log.read_text(encoding="utf-8", errors="replace")
        server = None

        # nothing seeded changed, nothing POSTed is left open or running
        with sqlite3.connect(str(db)) as c:
            if fingerprint(c, sd.experiment_ids) != sd.fingerprint:
                raise BenchError("the server changed seeded batches or their history")
            marks = ",".join("?" * len(posted))
            still = c.execute(
                f"SELECT COUNT(*) FROM batches WHERE experiment_id IN ({marks}) AND state IN ('registered', 'scheduled', 'processing')", posted
            ).fetchone()[0]
            ran = c.execute(f"SELECT COUNT(DISTINCT batch_id) FROM history WHERE experiment_id IN ({marks}) AND state = 'processing'", posted).fetchone()[0]
        if still:
            raise BenchError(f"{still} POSTed batches are still open after the server stopped")
        for experiment_id in posted:
            left = capture([args.docker, "ps", "-aq", "--filter", f"label=faice.experiment={experiment_id}"], work)
            if left:
                raise BenchError(f"containers of the POSTed experiment {experiment_id} were left behind: {left}")
        print("  [check] seeded batches unchanged; POSTed batches all final; no container left", file=sys.stderr, flush=True)
    except BenchError as exc:
        print(f"\nserve_bench: BENCHMARK ABORTED: {exc}", file=sys.stderr)
        if server is not None:
            try:
                stop_server(server)
            except BenchError as stop_exc:
                print(f"serve_bench: {stop_exc}", file=sys.stderr)
            print(f"serve_bench: server log:\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        return 2
    finally:
        if server is not None and server.proc.poll() is None:
            server.proc.kill()

    # --------------------------------------------------------------------------- report
    uvicorn_version = importlib.metadata.version("uvicorn")
    http_impl = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop_impl = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    size_mib = db.stat().st_size / 2**20
    print("== faice serve benchmark")
    print(f"faice     {args.faice} ({faice_version}); uvicorn {uvicorn_version} (HTTP: {http_impl}, loop: {loop_impl}); docker engine {docker_version}")
    print(
        f"state     {sd.batches:,} batches in {len(sd.experiment_ids)} experiments, {sd.history:,} history rows, {size_mib:.0f} MiB; "
        + ", ".join(f"{s} {sd.states.get(s, 0):,}" for s in ("succeeded", "failed", "cancelled", "registered", "processing"))
        + f" (seeded in {sd.seconds:.1f} s)"
    )
    print(f"server    faice --db DB serve --host {HOST} --port 0 --jobs 2; Bearer token from POST /login")
    print(
        f"clients   closed loop, {args.clients} client processes (one keep-alive connection each) then 1; {args.requests:,} timed requests per route"
        f" with {args.clients}, {one_client:,} with 1 (after {WARMUP_PER_CLIENT} warm-up requests per client); client-side wall time per request"
    )
    print(
        f"floor     Python sqlite3 on the same file, 1 client, {args.floor_requests:,} runs (after 50): the route's SQL (lists: rows() with each row's stored history JSON; counts: COUNT(*))"
    )
    print(f"machine   {machine()}")
    print()

    rows = [["route", "clients", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "server CPU ms/req", "load gen CPU ms/req", "target", "result"]]
    verdicts = []
    for route in routes:
        for clients in sorted(route.results):
            r = route.results[clients]
            target = f"p99 < {route.target_ms:g} ms" if clients == args.clients else "-"
            if clients == args.clients and route.informative:
                verdict = "(under)" if r.pct(0.99) < route.target_ms else "(over)"
            elif clients == args.clients:
                ok = r.pct(0.99) < route.target_ms
                verdict = "PASS" if ok else "FAIL"
                verdicts.append((f"{route.name}, {clients} clients: p99 < {route.target_ms:g} ms", f"{r.pct(0.99):.1f} ms", ok))
            else:
                verdict = "info"
            rows.append(
                [
                    route.name,
                    str(clients),
                    f"{r.n:,}" + ("*" if r.stopped_early else ""),
                    f"{r.rps:.0f}",
                    fmt_ms(r.pct(0.5)),
                    fmt_ms(r.pct(0.9)),
                    fmt_ms(r.pct(0.99)),
                    fmt_ms(r.latencies[-1] * 1000),
                    f"{r.server_cpu / r.n * 1000:.2f}",
                    f"{r.client_cpu / r.n * 1000:.2f}",
                    target,
                    verdict,
                ]
            )
        f = route.floor
        assert f is not None
        if route.informative:
            continue
        rows.append(
            [
                f"  floor: sqlite3, {'rows()' if route.kind == 'list' else 'COUNT(*)'}",
                "1",
                f"{f.n:,}",
                f"{f.rps:.0f}",
                fmt_ms(f.pct(0.5)),
                fmt_ms(f.pct(0.9)),
                fmt_ms(f.pct(0.99)),
                fmt_ms(f.latencies[-1] * 1000),
                "-",
                "-",
                "-",
                "floor",
            ]
        )
    print(table(rows, right={1, 2, 3, 4, 5, 6, 7, 8, 9}))
    if any(r.stopped_early for route in routes for r in route.results.values()):
        print(f"(* stopped after {ONE_CLIENT_SECONDS_MAX:.0f} s with 1 client, {ROUTE_SECONDS_MAX:.0f} s with {args.clients}: fewer requests than asked)")
    print(
        "(server CPU: the faice serve process, all threads, over the timed part; load gen: all client processes; the machine has"
        f" {os.cpu_count()} CPUs for both)"
    )
    print(
        f"(closed loop: with {args.clients} clients the mean latency is about {args.clients} / req/s; a server CPU ms/req near 1000 / req/s means"
        " the server process is saturated)"
    )
    print(
        f"(+writes: while another process commits about {WRITES_PER_SECOND} times a second, as faice exec runs elsewhere would;"
        " shown against the target, not judged: (under) / (over))"
    )

    print()
    rows = [["route", f"p50 {args.clients} cl / floor", f"p99 {args.clients} cl / floor", "p50 1 cl / floor", "p99 1 cl / floor"]]
    for route in routes:
        f, m, s = route.floor, route.results[args.clients], route.results.get(1)
        assert f is not None
        rows.append(
            [
                route.name,
                f"{m.pct(0.5) / f.pct(0.5):.1f}",
                f"{m.pct(0.99) / f.pct(0.99):.1f}",
                f"{s.pct(0.5) / f.pct(0.5):.1f}" if s else "-",
                f"{s.pct(0.99) / f.pct(0.99):.1f}" if s else "-",
            ]
        )
    print(table(rows, right={1, 2, 3, 4}))

    print()
    post_median = statistics.median(post_walls)
    post_ok = post_median < POST_SECONDS
    verdicts.append((f"POST /red of {args.post_batches:,} batches < {POST_SECONDS:g} s (median of {len(post_walls)})", f"{post_median:.2f} s", post_ok))
    rows = [["request", "runs", "median", "min", "max", "target", "result"]]
    rows.append(
        [
            f"POST /red ({args.post_batches:,} batches, {len(body) / 2**20:.1f} MiB JSON, ?disableRetry=1)",
            str(len(post_walls)),
            f"{post_median:.2f} s",
            f"{min(post_walls):.2f} s",
            f"{max(post_walls):.2f} s",
            f"< {POST_SECONDS:g} s",
            "PASS" if post_ok else "FAIL",
        ]
    )
    rows.append(
        [
            f"DELETE /experiments/ID right after (cancels {min(cancelled):,}-{max(cancelled):,})",
            str(len(delete_walls)),
            f"{statistics.median(delete_walls):.2f} s",
            f"{min(delete_walls):.2f} s",
            f"{max(delete_walls):.2f} s",
            "-",
            "info",
        ]
    )
    rows.append(
        [
            "POST /login (Basic; the first hashes the password with scrypt)",
            str(len(logins)),
            f"{statistics.median(logins) * 1000:.1f} ms",
            f"{min(logins) * 1000:.1f} ms",
            f"{max(logins) * 1000:.1f} ms",
            "-",
            "info",
        ]
    )
    rows.append(["POST /login, the first (scrypt)", "1", f"{logins[0] * 1000:.1f} ms", "", "", "-", "info"])
    for label, r in ((f"{route_c.name} (HTTP Basic, password cached), 1 client", basic_result), (f"{route_c.name} (Bearer), 1 client", bearer_result)):
        rows.append([label + f": p50 (p99) of {r.n}", "1", f"{r.pct(0.5):.2f} ms", f"p99 {r.pct(0.99):.2f} ms", "", "-", "info"])
    rows.append(["SIGTERM to exit (faice serve stops)", "1", f"{stop_seconds:.2f} s", "", "", "-", "info"])
    print(table(rows, right={1, 2, 3, 4}))
    print(f"POSTed batches that started a container before the DELETE: {ran} of {len(posted) * args.post_batches:,}; all cancelled or final; no container left")
    if "Traceback" in server_log or "ERROR" in server_log:
        print("NOTE: the server log has errors:\n" + server_log[-2000:])

    return report_verdicts(verdicts, "serve_bench", began)


if __name__ == "__main__":
    sys.exit(main())
