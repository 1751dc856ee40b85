"""Shared test helpers: run ``faice`` (in this process or as a real program), find reference examples, serve files."""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import traceback
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


def communicate(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``process.communicate``; a process that does not end in time is made to print every
    thread's stack (faulthandler, on SIGABRT: start it with ``PYTHONFAULTHANDLER=1``) into the
    failure, which says where it hung."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stdout, stderr = process.communicate(timeout=30)
        raise AssertionError(f"{process.args} did not end within {timeout} s; its threads:\n{stderr}\n--- stdout\n{stdout}") from None


class _Pipe(io.TextIOWrapper):
    """A text stream over bytes, with ``.buffer``, that is not a terminal (as a subprocess's pipe)."""

    def __init__(self, data: bytes = b"") -> None:
        self.raw_bytes = io.BytesIO(data)
        super().__init__(self.raw_bytes, encoding="utf-8", errors="surrogateescape", newline="\n", write_through=True)

    def isatty(self) -> bool:
        return False

    def close(self) -> None:  # faice closes stderr on a broken pipe; what it wrote stays readable
        self.flush()

    def text(self) -> str:
        """What was written, read as ``subprocess.run(text=True)`` reads it (universal newlines)."""
        self.flush()
        return self.raw_bytes.getvalue().decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _clear_caches() -> None:
    """What faice caches per process that depends on the environment (PATH finds connectors)."""
    registry = sys.modules.get("faice.connectors.registry")
    if registry is not None:
        for cached in (registry.resolve, registry.plugin, registry.connector):
            cached.cache_clear()


class _TimedOut(BaseException):
    """Raised in the main thread when an in-process run takes longer than its timeout."""


def run_inprocess(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``faice.cli.main(args)`` in this process, as ``run_faice`` runs the program: the same
    environment, working directory and stdin (a pipe, not a terminal), stdout and stderr
    captured, the exit code returned (an uncaught exception: its traceback and 1, as Python);
    after ``timeout`` seconds (SIGALRM) subprocess.TimeoutExpired, as ``subprocess.run`` raises.

    What a run may change in this process is put back afterwards: the environment, the working
    directory, the standard streams, the signal handlers, and the caches that depend on the
    environment."""
    from faice.cli import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    data = input.encode() if isinstance(input, str) else (input or b"")
    stdout, stderr = _Pipe(), _Pipe()
    code: int
    try:
        os.environ.clear()
        os.environ.update(faice_env(env))
        if cwd is not None:
            os.chdir(cwd)
        _clear_caches()
        sys.stdin, sys.stdout, sys.stderr = _Pipe(data), stdout, stderr
        signal.signal(signal.SIGALRM, lambda signum, frame: _raise(_TimedOut()))
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            main(list(args))
            code = 0
        except _TimedOut:
            raise subprocess.TimeoutExpired(["faice", *args], timeout, stdout.text(), stderr.text()) from None
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - what the interpreter would print for the program
            stderr.write(traceback.format_exc())
            code = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in saved_handlers.items():
            signal.signal(sig, handler)
        _clear_caches()
    return subprocess.CompletedProcess(["faice", *args], code, stdout.text(), stderr.text())


def _raise(error: BaseException) -> None:
    raise error


@pytest.fixture
def faice():
    """Run faice in this process (``run_inprocess``); tests that need a real process use ``run_faice``."""
    return run_inprocess


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

    remove_containers_of(*tmp_path_factory.getbasetemp().rglob("*.db"))


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


def eventually(predicate: Any, timeout: float = 30, interval: float = 0.05, what: Any = "") -> Any:
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
