"""Shared test helpers: run the real ``faice`` program, find reference examples, serve files."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.redfiles import TEST_IMAGE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: RED files others wrote (public upstream material, see its INDEX.md), carried here so that every
#: machine runs the tests that use them
REFERENCE_EXAMPLES = Path(os.environ.get("FAICE_REFERENCE_EXAMPLES", ROOT / "tests" / "data" / "reference-examples"))


def faice_command() -> list[str]:
    exe = Path(sys.executable).with_name("faice")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "faice"]


def faice_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the test runner's own FAICE_VAR_ values, and ``env``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FAICE_VAR_")}, **(env or {})}


def run_faice(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run faice as a real process; text in, text out."""
    full_env = faice_env(env)
    data = input.decode() if isinstance(input, bytes) else input
    return subprocess.run(
        faice_command() + list(args),
        input=data if data is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture
def faice():
    return run_faice


@pytest.fixture(scope="session")
def reference_examples() -> Path:
    if not REFERENCE_EXAMPLES.is_dir():
        pytest.fail(f"reference examples not found at {REFERENCE_EXAMPLES} (set FAICE_REFERENCE_EXAMPLES)")
    return REFERENCE_EXAMPLES


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The offline test image; `make test` builds it (scripts/build-images.py)."""
    if not docker_available():
        pytest.fail(f"Docker engine or {TEST_IMAGE} missing: run `make test` (it builds the image offline)")
    return TEST_IMAGE


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """GET serves files; PUT/POST store the body; /status/NNN answers NNN; optional basic auth;
    ``received`` lists every GET, and the PUTs and POSTs that stored a body."""

    server: Any

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the stdlib
        pass

    def _authorised(self) -> bool:
        expected = self.server.expected_auth
        if expected is None:
            return True
        import base64

        header = self.headers.get("Authorization", "")
        ok = header == "Basic " + base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        return ok

    def _answered_status(self) -> bool:
        """``/status/NNN`` answers NNN with an empty body, for any method."""
        if not self.path.startswith("/status/"):
            return False
        self.send_response(int(self.path.split("/")[2]))
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:
        self.server.received.append((self.command, self.path))  # every request that reached the server, refused ones too
        if not self._answered_status() and self._authorised():
            super().do_GET()

    def _store_body(self) -> None:
        if self._answered_status() or not self._authorised():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = Path(self.server.root) / self.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        self.server.received.append((self.command, self.path))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = _store_body
    do_POST = _store_body


@pytest.fixture
def http_server(tmp_path: Path):
    """A real HTTP server on 127.0.0.1: yields an object with .url, .root, .received, .expected_auth."""
    root = tmp_path / "http"
    root.mkdir()
    handler = functools.partial(_RecordingHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.root = root  # type: ignore[attr-defined]
    server.received = []  # type: ignore[attr-defined]
    server.expected_auth = None  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def labelled_containers(label: str = "faice.experiment") -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="session")
def sshd():
    """OpenSSH's sshd on 127.0.0.1 for the whole session (tests/servers.py)."""
    from tests.servers import start_sshd, stop_sshd

    server = start_sshd()
    try:
        yield server
    finally:
        stop_sshd(server)


@pytest.fixture
def ftpd(tmp_path: Path):
    """A pyftpdlib FTP server on 127.0.0.1 serving tmp_path/ftp (tests/servers.py)."""
    from tests.servers import start_ftpd

    server = start_ftpd(tmp_path / "ftp")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def no_container_outlives_the_session(tmp_path_factory: pytest.TempPathFactory):
    """Whatever a failed test left running, the session removes the containers of the experiments
    in its own state files (and no one else's)."""
    yield
    if shutil.which("docker") is None:
        return
    from tests.serve_fixture import remove_containers_of

    for db in tmp_path_factory.getbasetemp().rglob("*.db"):
        remove_containers_of(db)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 3 MiB file system (tmpfs) for a state file, to fill up."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mountpoint)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (needs root): {done.stderr}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill_up(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def eventually(predicate: Any, timeout: float = 30, interval: float = 0.1, what: Any = "") -> Any:
    """Call ``predicate`` until it answers something true (returned), or fail after ``timeout`` s
    saying ``what`` (a string, or a function called then: what was seen last)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            pytest.fail(f"not within {timeout} s: {said or getattr(predicate, '__name__', 'the condition')}")
        time.sleep(interval)
