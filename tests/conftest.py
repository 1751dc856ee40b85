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

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REFERENCE_EXAMPLES = Path(os.environ.get("FAICE_REFERENCE_EXAMPLES", ROOT.parent / "shared" / "reference" / "examples"))
TEST_IMAGE = "faice-test-busybox:latest"


def faice_command() -> list[str]:
    exe = Path(sys.executable).with_name("faice")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "faice"]


def run_faice(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run faice as a real process; text in, text out."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAICE_VAR_")}
    full_env.update(env or {})
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
        pytest.skip(f"reference examples not found at {REFERENCE_EXAMPLES} (set FAICE_REFERENCE_EXAMPLES)")
    return REFERENCE_EXAMPLES


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the stdlib
        pass


@pytest.fixture
def http_dir(tmp_path: Path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (base_url, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


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
