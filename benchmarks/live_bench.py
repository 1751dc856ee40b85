"""Latency of following a running batch's output: `faice logs ID --follow` and `GET /batches/ID/stdout?follow=true`.

Called by benchmarks/live.sh, which finds faice, makes sure the offline test image exists and
provides a scratch directory; see there. Standard library only; the server's start and stop, the
RED header, the percentiles and the table come from serve_bench.py, exec_bench.py and benchlib.py.

How delay is taken: one `faice exec` runs one batch whose tool (busybox sh) prints a numbered line
every PERIOD seconds (busybox date has no sub-second %N, so the tool's own clock is not used).
This process watches the batch's captured LOGS/<batch>.stdout.partial, a stat every
WATCH_INTERVAL seconds, and notes when each line is complete in the file (so a delay is short by
up to WATCH_INTERVAL at most). Two followers of the same batch run at once: `faice logs ID --follow`
as a subprocess (its stdout a pipe read as bytes come) and a streaming HTTP client of `faice serve`
(started here on loopback, same state file, Bearer token). A line's delay is the time from its
appearance in the file to its arrival at the follower, all on this process's monotonic clock. Lines
a follower received in its first read (already in the file when it started) are left out.

Exit status: 0 every target met, 1 a target missed, 2 the run broke or a check did not hold.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # the other helpers sit next to this file; python -P or PYTHONSAFEPATH leave it out
    sys.path.insert(0, HERE)
from benchlib import MEASURED, BenchError, machine, no_containers_left, report_verdicts, table  # noqa: E402
from exec_bench import red_header  # noqa: E402
from serve_bench import HOST, USER, Result, call, fmt_ms, set_up, start_server, stop_server  # noqa: E402

PERIOD = 0.2  # seconds between two lines of the tool
WATCH_INTERVAL = 0.005  # seconds between two looks at the .partial file
TARGET_P99 = 0.5  # seconds: a printed line reaches a --follow client within this (p99)
LINE = re.compile(rb"line (\d+)\n")


def make_red(dest: Path, image: str, lines: int) -> None:
    """One batch: `sh -c SCRIPT` printing `line N` every PERIOD seconds, N = 1 .. lines."""
    script = f"i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo line $i; sleep {PERIOD}; done"
    cli = f"""\
  baseCommand: ["sh", "-c"]
  doc: "Print a numbered line every {PERIOD} s."
  inputs:
    script:
      type: "string"
      inputBinding:
        position: 0
  outputs: {{}}
"""
    dest.write_text(red_header(image, cli) + f"batches:\n- inputs:\n    script: '{script}'\n", encoding="utf-8")


@dataclass
class Arrivals:
    """When each line number was first seen complete (monotonic seconds), by one observer."""

    name: str
    seen: dict[int, float] = field(default_factory=dict)
    first_read: set[int] = field(default_factory=set)  # lines of the observer's first read
    buf: bytearray = field(default_factory=bytearray)
    reads: int = 0
    error: str | None = None

    def feed(self, data: bytes, now: float) -> None:
        self.buf += data
        self.reads += 1
        end = self.buf.rfind(b"\n")
        if end < 0:
            return
        for match in LINE.finditer(bytes(self.buf[: end + 1])):
            n = int(match.group(1))
            self.seen.setdefault(n, now)
            if self.reads == 1:
                self.first_read.add(n)
        del self.buf[: end + 1]


def watch_file(partial: Path, final: Path, out: Arrivals, stop: threading.Event) -> None:
    """Note when lines are complete in the .partial file, until it is renamed (or stop)."""
    handle = None
    while not stop.is_set():
        if handle is None:
            try:
                handle = open(partial, "rb")  # noqa: SIM115 - closed below
            except OSError:
                time.sleep(WATCH_INTERVAL)
                continue
        data = handle.read()
        now = time.monotonic()
        if data:
            out.feed(data, now)
        elif not partial.exists() and final.exists():
            out.feed(handle.read(), time.monotonic())
            break
        time.sleep(WATCH_INTERVAL)
    if handle is not None:
        handle.close()


def follow_cli(proc: subprocess.Popen[bytes], out: Arrivals) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while True:
        data = os.read(fd, 65536)
        if not data:
            return
        out.feed(data, time.monotonic())


def follow_api(port: int, token: str, batch_id: str, out: Arrivals) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request("GET", f"/batches/{batch_id}/stdout?follow=true", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        if resp.status != 200:
            out.error = f"HTTP {resp.status}: {resp.read()[:300]!r}"
            return
        while True:
            data = resp.read1(65536)
            if not data:
                return
            out.feed(data, time.monotonic())
    except (OSError, http.client.HTTPException) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def running_batch(db: Path, exec_proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """(experiment id, batch id) of the batch once it is processing, read from the state file."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if exec_proc.poll() is not None:
            raise BenchError(f"faice exec exited with status {exec_proc.returncode} before its batch ran:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute("SELECT experiment_id, id FROM batches WHERE state = 'processing'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            row = None
        if row:
            return row[0], row[1]
        time.sleep(0.02)
    raise BenchError("the batch was not processing within 60 s of faice exec's start")


def delays(file: Arrivals, follower: Arrivals) -> tuple[Result, int, int]:
    """(the delays as a Result, lines left out as catch-up, lines never received)."""
    lat, catch_up, missing = [], 0, 0
    for n, at in sorted(file.seen.items()):
        if n in follower.first_read:
            catch_up += 1
        elif n not in follower.seen:
            missing += 1
        else:
            lat.append(max(0.0, follower.seen[n] - at))
    return Result(1, sorted(lat), 0.0), catch_up, missing


EVENT_CLIENTS = 20  # connected GET /events clients
EVENT_TARGET_P99 = 0.1  # seconds: from a batch's state change to the event, at EVENT_CLIENTS clients (p99)
EVENT_GAP = 0.02  # seconds between two state changes


class EventClient:
    """One GET /events reader: when (wall clock) each batch event arrived, by its id."""

    def __init__(self, port: int, token: str) -> None:
        self.arrived: dict[int, float] = {}
        self.error: str | None = None
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)
        self.conn.request("GET", "/events", headers={"Authorization": f"Bearer {token}"})
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise BenchError(f"GET /events answered {self.response.status}")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event_id = None
        kind = None
        try:
            while line := self.response.fp.readline():  # the chunked framing's size lines are skipped: they match nothing below
                now = time.time()
                if line.startswith(b"id: "):
                    event_id = int(line[4:])
                elif line.startswith(b"event: "):
                    kind = line[7:].strip()
                elif line.startswith(b"data: ") and kind == b"batch" and event_id is not None:
                    self.arrived.setdefault(event_id, now)
        except (OSError, ValueError) as exc:
            self.error = str(exc)
        except AttributeError:  # closed by close() while reading: the measurement is over
            pass

    def close(self) -> None:
        self.conn.close()


def event_latency(port: int, token: str, db: Path, changes: int) -> Result:
    """EVENT_CLIENTS readers of GET /events; ``changes`` batch state changes written to the state
    file one at a time (as faice's worker writes them), EVENT_GAP apart; each event's delay is its
    arrival minus the time its change recorded in the history (both wall clock, same machine)."""
    from faice.state.store import Store

    readers = [EventClient(port, token) for _ in range(EVENT_CLIENTS)]
    store = Store(db)
    try:
        experiment_id, batch_ids = store.create_experiment(source="events-bench", red={}, argvs=[["true"]] * changes, image="none", engine=None, username=USER,
                                               runner="exec")
        time.sleep(0.5)
        for batch_id in batch_ids:
            store.set_state(batch_id, "cancelled", "events benchmark")
            time.sleep(EVENT_GAP)
        from faice.state.events import EventFilter

        changed = {row.id: row.time for row in store.events_after(0, changes * 2, EventFilter(experiment_id=experiment_id)) if row.state == "cancelled"}
        if len(changed) != changes:
            raise BenchError(f"{len(changed)} of {changes} state changes in the history")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(r.arrived.keys() & changed.keys()) < len(changed) for r in readers):
            time.sleep(0.05)
        latencies: list[float] = []
        for reader in readers:
            if reader.error or len(reader.arrived.keys() & changed.keys()) < len(changed):
                raise BenchError(f"an event client saw {len(reader.arrived.keys() & changed.keys())} of {len(changed)} events ({reader.error})")
            latencies += [reader.arrived[i] - t for i, t in changed.items()]
        return Result(EVENT_CLIENTS, sorted(latencies), changes * EVENT_GAP)
    finally:
        for reader in readers:
            reader.close()
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faice", required=True)
    ap.add_argument("--docker", required=True)
    ap.add_argument("--image", required=True, help="a local image (nothing is pulled)")
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (emptied by the caller)")
    ap.add_argument("--lines", type=int, default=100, help=f"lines the tool prints, one every {PERIOD} s")
    ap.add_argument("--runs-small", type=int, default=5, help="unused (common.sh passes it)")
    ap.add_argument("--runs-big", type=int, default=3, help="unused (common.sh passes it)")
    args = ap.parse_args()
    if args.lines < 10:
        print("live_bench: --lines must be at least 10", file=sys.stderr)
        return 2
    work: Path = args.work.resolve()
    db = work / "state" / "faice.db"
    red = work / "ticker.red.yml"
    exec_log, cli_err = work / "exec.log", work / "logs-follow.stderr"
    password = secrets.token_urlsafe(18)
    server = exec_proc = cli = None
    stop = threading.Event()
    began = time.perf_counter()
    try:
        versions = set_up(args, db, password, work)
        faice_version, docker_version = versions["faice"], versions["docker"]
        server = start_server(args.faice, db, work / "server.log", work)
        basic = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        token = call(server.port, "POST", "/login", {"Authorization": basic})[2]["access_token"]
        print(f"  [server] faice serve pid {server.proc.pid} on port {server.port}", file=sys.stderr, flush=True)

        make_red(red, args.image, args.lines)
        with exec_log.open("wb") as log:
            exec_proc = subprocess.Popen([args.faice, "--db", str(db), "exec", str(red)], cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        experiment_id, batch_id = running_batch(db, exec_proc, exec_log)
        MEASURED.add(experiment_id)
        print(f"  [exec] batch {batch_id} processing: {args.lines} lines, one every {PERIOD} s", file=sys.stderr, flush=True)

        from faice.state.store import log_path

        final = log_path(db, batch_id, "stdout")
        file_seen, cli_seen, api_seen = Arrivals("file"), Arrivals("cli"), Arrivals("api")
        with cli_err.open("wb") as err:
            cli = subprocess.Popen(
                [args.faice, "--db", str(db), "logs", batch_id, "--follow"], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        threads = [
            threading.Thread(target=watch_file, args=(final.with_name(final.name + ".partial"), final, file_seen, stop), daemon=True),
            threading.Thread(target=follow_cli, args=(cli, cli_seen), daemon=True),
            threading.Thread(target=follow_api, args=(server.port, token, batch_id, api_seen), daemon=True),
        ]
        for t in threads:
            t.start()
        exec_code = exec_proc.wait(timeout=args.lines * PERIOD * 3 + 120)
        if exec_code != 0:
            raise BenchError(f"faice exec exited with status {exec_code}:\n{exec_log.read_text(errors='replace')[-3000:]}")
        cli_code = cli.wait(timeout=60)
        if cli_code != 0:
            raise BenchError(f"faice logs --follow exited with status {cli_code}:\n{cli_err.read_text(errors='replace')[-3000:]}")
        for t in threads[1:]:
            t.join(timeout=60)
            if t.is_alive():
                raise BenchError("a follower did not end within 60 s of the batch's end")
        stop.set()
        threads[0].join(timeout=10)
        if api_seen.error:
            raise BenchError(f"the API follower failed: {api_seen.error}")
        expected = set(range(1, args.lines + 1))
        for seen in (file_seen, cli_seen, api_seen):
            if set(seen.seen) != expected:
                raise BenchError(f"{seen.name}: {len(set(seen.seen) & expected)} of {args.lines} lines seen")
        final_text = final.read_bytes()
        if [int(m.group(1)) for m in LINE.finditer(final_text)] != sorted(expected):
            raise BenchError(f"{final} does not hold lines 1..{args.lines} in order")
        print(f"  [events] {EVENT_CLIENTS} clients of GET /events, {args.lines * 2} state changes", file=sys.stderr, flush=True)
        events = event_latency(server.port, token, db, args.lines * 2)
        stop_seconds = stop_server(server)
        server = None
        no_containers_left(args.docker, work)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"live_bench: error: {exc}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        for proc in (cli, exec_proc):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if server is not None:
            server.proc.kill()
            server.proc.wait()

    print(f"{faice_version}; Docker {docker_version}; {machine()}")
    print(
        f"One batch printing {args.lines} lines, one every {PERIOD} s; delay = arrival at the follower - line complete in the .partial file"
        f" (watched every {WATCH_INTERVAL * 1000:.0f} ms; faice's follower polls every 0.15 s)"
    )
    print()
    rows = [["face", "lines", "catch-up", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result"]]
    verdicts = []
    for label, seen in (("faice logs --follow (CLI)", cli_seen), ("GET /batches/ID/stdout?follow=true (API)", api_seen)):
        r, catch_up, missing = delays(file_seen, seen)
        if missing or not r.n:
            print(f"live_bench: error: {label}: {missing} lines never received", file=sys.stderr)
            return 2
        ok = r.pct(0.99) <= TARGET_P99 * 1000
        verdicts.append((f"{label}: p99 <= {TARGET_P99:g} s", f"{r.pct(0.99) / 1000:.3f} s", ok))
        rows.append(
            [
                label,
                str(r.n),
                str(catch_up),
                fmt_ms(r.pct(0.5)),
                fmt_ms(r.pct(0.95)),
                fmt_ms(r.pct(0.99)),
                fmt_ms(r.latencies[-1] * 1000),
                f"<= {TARGET_P99 * 1000:.0f}",
                "PASS" if ok else "FAIL",
            ]
        )
    print(table(rows, right={1, 2, 3, 4, 5, 6}))
    print("(catch-up: lines already in the file when the follower started, received in its first read; left out)")
    print()
    print(f"Events: {EVENT_CLIENTS} clients of GET /events; {args.lines * 2} batch state changes written to the state file {EVENT_GAP * 1000:.0f} ms apart;"
          " delay = arrival at a client - the change's time in the history")
    ok = events.pct(0.99) <= EVENT_TARGET_P99 * 1000
    verdicts.append((f"GET /events at {EVENT_CLIENTS} clients: p99 <= {EVENT_TARGET_P99 * 1000:.0f} ms", f"{events.pct(0.99):.1f} ms", ok))
    print(table([["face", "events", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result"],
                 ["GET /events", str(events.n), fmt_ms(events.pct(0.5)), fmt_ms(events.pct(0.95)), fmt_ms(events.pct(0.99)),
                  fmt_ms(events.latencies[-1] * 1000), f"<= {EVENT_TARGET_P99 * 1000:.0f}", "PASS" if ok else "FAIL"]], right={1, 2, 3, 4, 5}))
    print(f"(faice serve stopped {stop_seconds:.2f} s after SIGTERM; no container left)")

    return report_verdicts(verdicts, "live_bench", began)


if __name__ == "__main__":
    sys.exit(main())
