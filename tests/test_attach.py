"""A container's stdout and stderr, copied from an attach made before its start (as ``docker run``
does), on the real engines: byte for byte whatever the bytes (Docker's json-file log, which the
logs endpoint reads, would replace those that are not UTF-8), complete however soon the tool
ends or however much it writes, kept up to a timeout's kill, and with no thread left behind."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import test_stdin
from tests.redfiles import local_file, shell_red
from tests.test_exec import Run, sha1
from tests.test_stdin import Runner, feeding_threads

pytestmark = pytest.mark.docker

#: the engines' fixtures of the stdin tests (a Runner on Docker and on Podman, on Docker only)
run = test_stdin.run
docker_run = test_stdin.docker_run


def every_byte(size: int) -> bytes:
    """Random bytes with all 256 values in them (none of which a copy may change)."""
    return bytes(range(256)) + os.urandom(size - 256)


def test_binary_stdout_comes_back_byte_for_byte(run: Runner, tmp_path: Path):
    data = every_byte(3 << 20)
    (tmp_path / "in").write_bytes(data)
    outcome, stdout, stderr, _ = run(["cat"], tmp_path / "in")
    assert (outcome.exit_code, outcome.timed_out, stderr) == (0, False, b"")
    assert len(stdout) == len(data)
    assert hashlib.sha256(stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    assert feeding_threads() == []


def test_stdout_and_stderr_interleaved_are_both_complete(run: Runner):
    script = 'i=0; while [ $i -lt 5000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf "\\377\\000" >&2'
    outcome, stdout, stderr, _ = run(["sh", "-c", script], None)
    assert outcome.exit_code == 0
    assert stdout == b"".join(b"out %d\n" % i for i in range(5000))
    assert stderr == b"".join(b"err %d\n" % i for i in range(5000)) + b"\xff\x00"


def test_fifty_mib_of_stdout(run: Runner):
    outcome, stdout, stderr, _ = run(["head", "-c", str(50 << 20), "/dev/zero"], None)
    assert (outcome.exit_code, stderr) == (0, b"")
    assert len(stdout) == 50 << 20
    assert stdout == bytes(50 << 20)


def test_no_output_is_empty_files(run: Runner, tmp_path: Path):
    (tmp_path / "stdout").write_bytes(b"left from before")
    outcome, stdout, stderr, _ = run(["true"], None)
    assert (outcome.exit_code, stdout, stderr) == (0, b"", b"")


def test_a_tool_that_ends_at_once_has_its_output(run: Runner):
    for _ in range(10):
        outcome, stdout, stderr, took = run(["echo", "hi"], None)
        assert (outcome.exit_code, stdout, stderr) == (0, b"hi\n", b"")
        assert took < 10
    assert feeding_threads() == []


def test_a_timeout_keeps_the_output_written_before_the_kill(run: Runner):
    outcome, stdout, stderr, took = run(["sh", "-c", "echo started; echo warned >&2; exec sleep 60"], None, timeout=2)
    assert outcome.timed_out and outcome.exit_code != 0
    assert (stdout, stderr) == (b"started\n", b"warned\n")
    assert took < 15, f"took {took:.1f} s"
    assert feeding_threads() == []
    assert run.containers() == []


def test_a_kill_from_another_thread_ends_the_copy(run: Runner):
    """What Ctrl-C's kill_all does while a batch's thread waits in start_and_wait."""
    container = run.engine.create(run.spec(["sh", "-c", "echo before; exec sleep 60"], None))
    try:
        killer = threading.Timer(1.5, run.engine.kill, [container])
        killer.start()
        started = time.monotonic()
        outcome = run.engine.start_and_wait(container, 60, run.tmp / "stdout", run.tmp / "stderr")
        killer.join()
    finally:
        run.engine.remove(container)
    assert (outcome.exit_code, outcome.timed_out) == (137, False)
    assert (run.tmp / "stdout").read_bytes() == b"before\n"
    assert time.monotonic() - started < 15
    assert feeding_threads() == []


def test_the_files_appear_complete_once_the_container_ended(run: Runner):
    """Until then the output is written beside them (which ``faice logs --follow`` reads as it grows),
    and nothing of that is left after."""
    stdout = run.tmp / "stdout"
    container = run.engine.create(run.spec(["sh", "-c", "echo early; sleep 2; echo late"], None))
    ended: list = []
    try:
        waiter = threading.Thread(target=lambda: ended.append(run.engine.start_and_wait(container, 60, stdout, run.tmp / "stderr")))
        waiter.start()
        deadline = time.monotonic() + 20
        partial = run.tmp / "stdout.partial"
        while time.monotonic() < deadline and not (partial.is_file() and partial.stat().st_size):
            time.sleep(0.05)
        assert partial.read_bytes() == b"early\n"  # as it comes, not after the end
        assert not stdout.exists()
        waiter.join(30)
    finally:
        run.engine.remove(container)
    assert ended[0].exit_code == 0
    assert stdout.read_bytes() == b"early\nlate\n"
    assert sorted(p.name for p in run.tmp.iterdir()) == ["stderr", "stdout"]


def test_a_start_that_fails_leaves_no_files(docker_run: Runner, tmp_path: Path):
    from faice.runner.dockerapi import DockerError

    container = docker_run.engine.create(docker_run.spec(["no-such-program"], None))
    try:
        with pytest.raises(DockerError):
            docker_run.engine.start_and_wait(container, 20, tmp_path / "stdout", tmp_path / "stderr")
    finally:
        docker_run.engine.remove(container)
    assert list(tmp_path.iterdir()) == []
    assert feeding_threads() == []


def test_output_comes_without_docker_keeping_a_log(docker_run: Runner, monkeypatch: pytest.MonkeyPatch):
    """A daemon with ``log-driver: none`` keeps no log for the logs endpoint: the attach needs none."""
    engine = docker_run.engine
    config = engine.container_config

    def without_log(spec):
        body = config(spec)
        body["HostConfig"]["LogConfig"] = {"Type": "none", "Config": {}}
        return body

    monkeypatch.setattr(engine, "container_config", without_log)
    outcome, stdout, stderr, _ = docker_run(["sh", "-c", "echo out; echo err >&2"], None)
    assert (outcome.exit_code, stdout, stderr) == (0, b"out\n", b"err\n")


def test_an_engine_refusing_the_attach_gets_the_logs_endpoint(docker_run: Runner, monkeypatch: pytest.MonkeyPatch):
    from faice.runner.dockerapi import DockerError

    def refuse(container: str, stdin: bool):
        raise DockerError(501, "attach is not implemented")

    monkeypatch.setattr(docker_run.engine.api, "attach", refuse)
    outcome, stdout, stderr, _ = docker_run(["sh", "-c", "echo out; echo err >&2"], None)
    assert (outcome.exit_code, stdout, stderr) == (0, b"out\n", b"err\n")


def test_an_engine_refusing_the_attach_of_a_stdin_file_fails_the_start(docker_run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Without the attach there is no way to feed the file: no fallback, and the container never runs."""
    from faice.runner.dockerapi import DockerError

    def refuse(container: str, stdin: bool):
        raise DockerError(501, "attach is not implemented")

    monkeypatch.setattr(docker_run.engine.api, "attach", refuse)
    (tmp_path / "in").write_bytes(b"x")
    docker_run.refused_start(["cat"], tmp_path / "in", "attach is not implemented")


def test_faice_exec_keeps_a_binary_stdout_output_exact(tmp_path: Path, docker_image: str):
    data = every_byte(1 << 20)
    (tmp_path / "data.bin").write_bytes(data)
    red = shell_red('cat "$1"', inputs={"f": local_file("data.bin")}, cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                    outputs={"o": {"type": "stdout"}}, stdout="out.bin")
    faice = Run(tmp_path)
    result, doc = faice(red)
    assert result.returncode == 0, result.stderr
    assert (faice.outdir / "out.bin").read_bytes() == data
    assert doc is not None
    assert doc["batches"][0]["outputs"]["o"]["checksum"] == sha1(tmp_path / "data.bin")


def engine_stream(frames: bytes) -> tuple[Any, socket.socket]:
    """An Attachment's answer from a stand-in engine (one end of a socket pair) that has sent ``frames``; the other end."""
    from faice.runner.dockerapi import _Response

    ours, engine = socket.socketpair()
    engine.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frames)
    return _Response(ours), engine


def frame(kind: int, data: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_a_full_disk_is_raised_once_the_container_ended_and_the_rest_is_drained(tmp_path: Path):
    """The tool is not held up by output nobody can write (the engine would block it): it is read and dropped."""

    from faice.runner.dockerapi import Attachment

    class FullDisk(io.BytesIO):
        def write(self, data):  # type: ignore[override]
            raise OSError(errno.ENOSPC, "No space left on device")

    response, engine = engine_stream(frame(1, b"x" * 1000))
    err = io.BytesIO()
    attachment = Attachment(response, FullDisk(), err)  # type: ignore[arg-type]
    engine.sendall(frame(1, b"y" * (4 << 20)) + frame(2, b"z"))  # more than the socket buffers: only a reader lets it through
    engine.close()
    with pytest.raises(OSError) as raised:
        attachment.finish()
    assert raised.value.errno == errno.ENOSPC
    assert feeding_threads() == []


def test_a_stream_that_does_not_end_after_the_container_is_cut_and_said(monkeypatch: pytest.MonkeyPatch):

    from faice.runner.dockerapi import Attachment

    monkeypatch.setattr(Attachment, "FINISH_SECONDS", 0.5)
    response, engine = engine_stream(frame(1, b"partial\n"))
    out = io.BytesIO()
    attachment = Attachment(response, out, io.BytesIO())
    started = time.monotonic()
    with pytest.raises(OSError) as raised:
        attachment.finish()
    assert raised.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - started < 3
    assert out.getvalue() == b"partial\n"
    assert feeding_threads() == []
    engine.close()


def test_a_kill_before_the_start_still_stops_the_container(run: Runner):
    """Ctrl-C while a batch's container is created but not yet started: Docker ignores a kill of a
    container that is not running, so the start must not let it run its course."""
    container = run.engine.create(run.spec(["sleep", "60"], None))
    try:
        run.engine.kill(container)
        started = time.monotonic()
        outcome = run.engine.start_and_wait(container, 90, run.tmp / "stdout", run.tmp / "stderr")
        assert outcome.exit_code == 137 and time.monotonic() - started < 20
    finally:
        run.engine.remove(container)
