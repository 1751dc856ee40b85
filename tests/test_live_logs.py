"""Live logs: ``faice logs ID --follow`` and ``GET /batches/ID/stdout?follow=true`` deliver a
running batch's output as it comes, from every attempt (an attempt after the first is announced),
and end when the batch ends. Real containers, a real ``faice exec`` and a real ``faice serve``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import serve_fixture
from tests.conftest import communicate, eventually, faice_command, faice_env
from tests.redfiles import shell_red
from tests.serve_fixture import Server, error_object, post_red, wait_final, wait_state
from tests.serve_fixture import agency_red as red
from tests.test_exec import Run, _start
from tests.test_podman import podman_image

pytestmark = pytest.mark.docker

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)
podman_image = podman_image  # test_podman's fixture: the test image in podman's store

#: 2 s between lines: a follower's start-up on a loaded machine still comes before the batch ends
THREE_LINES = "for i in 1 2 3; do echo line $i; echo err $i >&2; sleep 2; done"
#: a new container each attempt: its host name tells the attempts apart
TWO_ATTEMPTS = "echo run $(hostname); sleep 3; echo end; exit 3"  # 3 s: a follower started on a loaded machine still sees the first


@pytest.fixture
def run(tmp_path: Path, docker_image: str) -> Run:
    return Run(tmp_path)


def batch_row(db: Path) -> tuple[str, str] | None:
    """(id, state) of the only batch in the state file, once there is one."""
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("SELECT id, state FROM batches").fetchone()
        except sqlite3.OperationalError:  # no tables yet
            return None
    return (row[0], row[1]) if row else None


def follow(run: Run, batch_id: str, *args: str) -> subprocess.Popen[bytes]:
    """``faice logs BATCH --follow`` as a real program, its output in bytes."""
    return subprocess.Popen([*faice_command(), "--db", str(run.db), "logs", batch_id, "--follow", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=faice_env(run.env), bufsize=0)  # unbuffered: a readline takes no more than its line


def test_follow_prints_each_line_while_the_batch_runs_and_ends_with_it(run: Run):
    follows_each_line(run)


@pytest.mark.xdist_group("podman-and-example-images")  # with test_podman.py: they share podman's service
def test_follow_needs_no_engine_so_podman_batches_are_followed_too(run: Run, podman_image: str):
    run.env["FAICE_ENGINE"] = "podman"
    follows_each_line(run)


def follows_each_line(run: Run) -> None:
    exec_run = _start(run, shell_red(THREE_LINES))
    batch_id = eventually(lambda: (row := batch_row(run.db)) and row[1] == "processing" and row[0], 60, 0.05, what="the batch processing")
    out, err = follow(run, batch_id), follow(run, batch_id, "--stderr")
    assert out.stdout is not None and err.stdout is not None
    first = out.stdout.readline()
    assert first == b"line 1\n"
    assert batch_row(run.db) == (batch_id, "processing") and exec_run.poll() is None  # before the batch ended
    assert err.stdout.readline() == b"err 1\n"
    rest, notes = out.communicate(timeout=60)
    ended = time.monotonic()
    assert out.returncode == 0, notes
    assert first + rest == b"line 1\nline 2\nline 3\n" and notes == b""  # exact bytes, no attempt marker for a first attempt
    assert batch_row(run.db) == (batch_id, "succeeded")  # it ends with the batch
    assert err.stdout.read() == b"err 2\nerr 3\n" and err.wait(30) == 0
    communicate(exec_run, 60)
    assert exec_run.returncode == 0
    assert time.monotonic() - ended < 30


def test_follow_shows_every_attempt_of_a_retried_batch(run: Run):
    exec_run = _start(run, shell_red(TWO_ATTEMPTS), "--retries", "1")
    batch_id = eventually(lambda: (row := batch_row(run.db)) and row[0], 60, 0.05, what="the batch recorded")
    followed = follow(run, batch_id)
    stdout, stderr = followed.communicate(timeout=90)
    communicate(exec_run, 60)
    assert followed.returncode == 0, stderr
    assert batch_row(run.db) == (batch_id, "failed")
    first, second = stdout.decode().split("end\n")[:2]
    assert stdout == f"{first}end\n{second}end\n".encode()
    assert first.startswith("run ") and second.startswith("run ") and first != second  # two containers, both shown
    assert stderr == b"--- attempt 2 ---\n"
    shown = run.faice("logs", batch_id)  # the file keeps the last attempt
    assert shown.stdout == f"{second}end\n"


# --- the API ----------------------------------------------------------------------------------


def followed(server: Server, batch_id: str, user: str = "alice", stream: str = "stdout") -> requests.Response:
    response = server.get(f"/batches/{batch_id}/{stream}", user, params={"follow": "true"}, stream=True, timeout=60)
    assert response.status_code == 200, response.text
    assert "Content-Length" not in response.headers and response.headers.get("Transfer-Encoding") == "chunked"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return response


def state(server: Server, batch_id: str) -> str:
    return server.get(f"/batches/{batch_id}", "alice").json()["state"]


def only_batch(server: Server, experiment_id: str, user: str = "alice") -> str:
    [listed] = server.get("/batches", user, params={"experimentId": experiment_id}).json()
    return listed["_id"]


def test_follow_over_http_streams_while_the_batch_runs(server: Server, docker_image: str) -> None:
    batch_id = only_batch(server, post_red(server, red(THREE_LINES), "alice"))
    plain = server.get(f"/batches/{batch_id}/stdout", "bob")
    refused = server.get(f"/batches/{batch_id}/stdout", "bob", params={"follow": "true"})
    assert refused.status_code == plain.status_code == 404 and refused.json() == error_object(plain, 404)  # not bob's
    wait_state(server, batch_id, ("processing",), "alice")
    with followed(server, batch_id) as response:
        chunks = response.iter_content(chunk_size=None)
        received = next(chunks)
        assert received.startswith(b"line 1\n")
        assert state(server, batch_id) == "processing"  # it came while the batch runs
        for chunk in chunks:
            received += chunk
    assert received == b"line 1\nline 2\nline 3\n"
    assert state(server, batch_id) == "succeeded"
    ended = server.get(f"/batches/{batch_id}/stderr", "alice", params={"follow": "true"})
    assert ended.content == b"err 1\nerr 2\nerr 3\n"  # a batch that ended: answered as without follow
    assert ended.headers["Content-Length"] == str(len(ended.content))


def test_follow_over_http_says_which_attempt(server: Server, docker_image: str) -> None:
    experiment_id = post_red(server, red(TWO_ATTEMPTS), "alice")  # CC-Agency's default: a failed batch is tried once more
    batch_id = only_batch(server, experiment_id)
    with followed(server, batch_id) as response:
        body = b"".join(response.iter_content(chunk_size=None)).decode()
    [document] = wait_final(server, experiment_id, "alice")
    assert document["state"] == "failed" and document["attempts"] == 2
    first, marker, second = body.partition("--- attempt 2 ---\n")
    assert marker and first.startswith("run ") and first.endswith("end\n") and second.startswith("run ") and second.endswith("end\n") and first != second, body


def open_fds_to(pid: int, path: Path) -> int:
    """How many of the process's open files are ``path``."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def test_a_client_that_leaves_does_not_keep_the_server_following(server: Server, docker_image: str) -> None:
    batch_id = only_batch(server, post_red(server, red("echo hi; sleep 30"), "alice"))
    wait_state(server, batch_id, ("processing",), "alice")
    partial = server.db.parent / "logs" / f"{batch_id}.stdout.partial"
    eventually(partial.exists, 20, what="the running attempt's output file")
    writers = open_fds_to(server.process.pid, partial)  # the runner's (in the same process)
    responses: list[Any] = []
    for _ in range(5):
        response = followed(server, batch_id)
        chunks = response.iter_content(chunk_size=None)
        assert next(chunks) == b"hi\n"
        responses.append((response, chunks))  # the iterator too: dropped, it closes the connection
    time.sleep(0.5)
    assert open_fds_to(server.process.pid, partial) == writers + 5  # each follower reads the file
    started = time.monotonic()
    for response, _chunks in responses:
        response.close()  # the connection goes away while the batch runs on
    eventually(lambda: open_fds_to(server.process.pid, partial) == writers, 10, what="the followers of the closed connections ended")
    assert server.get("/version", "alice").status_code == 200
    assert time.monotonic() - started < 10
    assert state(server, batch_id) == "processing"
    assert server.delete(f"/batches/{batch_id}", "alice").status_code == 200


def raw_follow(server: Server, path: str, user: str) -> Any:
    """A follow over a plain socket, as curl -N makes it (requests' connection pool behaves otherwise)."""
    import base64
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    auth = base64.b64encode(f"{user}:{server.passwords[user]}".encode()).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Basic {auth}\r\nAccept: */*\r\n\r\n".encode())
    return sock


def test_a_server_that_stops_ends_its_followed_logs_cleanly(tmp_path: Path, docker_image: str) -> None:
    """SIGTERM while clients follow a running batch: each follow ends at once, as a complete answer
    (not cut off when uvicorn's grace period is over, with tracebacks), and the server exits 0."""
    import signal

    stopping = serve_fixture.start_server(tmp_path)
    try:
        batch_id = only_batch(stopping, post_red(stopping, red("echo hi; sleep 60"), "alice"))
        wait_state(stopping, batch_id, ("processing",), "alice")
        socks = [raw_follow(stopping, f"/batches/{batch_id}/stdout?follow=true", "alice") for _ in range(3)]
        received = [b""] * 3
        for i, sock in enumerate(socks):
            while b"hi\n" not in received[i]:
                received[i] += sock.recv(65536)
        time.sleep(1)
        started = time.monotonic()
        stopping.process.send_signal(signal.SIGTERM)
        for i, sock in enumerate(socks):
            while chunk := sock.recv(65536):
                received[i] += chunk
            sock.close()
        took = time.monotonic() - started
        assert stopping.process.wait(timeout=30) == 0
        assert all(r.endswith(b"\r\n0\r\n\r\n") for r in received), received  # each a complete chunked answer
        assert took < 4, f"held {took:.1f} s: until uvicorn's grace period was over"
        assert "Exception in ASGI application" not in stopping.stderr() and "CancelledError" not in stopping.stderr()
    finally:
        stopping.stop()
