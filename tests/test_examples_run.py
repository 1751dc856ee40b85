"""The runnable examples, run as `make demo` runs them (outputs in a temporary directory)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, eventually, run_faice

#: on the worker that runs test_podman (pytest-xdist --dist loadgroup), which rebuilds the same image
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("podman-and-example-images")]


def _exec(tmp_path: Path, red: Path, *args: str):
    result = run_faice("--db", str(tmp_path / "faice.db"), "exec", str(red), "--json", "--outdir", str(tmp_path / "out"), *args, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def example_images():
    subprocess.run([sys.executable, str(EXAMPLES.parent / "scripts" / "build-images.py"), "faice-example-grepwrap"], check=True, capture_output=True)


def test_many_batches_example(tmp_path: Path, example_images):
    doc = _exec(tmp_path, EXAMPLES / "many-batches" / "red.yml")
    assert len(doc["batches"]) == 12 and {b["state"] for b in doc["batches"]} == {"succeeded"}
    assert (tmp_path / "out" / "batch_1" / "out.txt").read_text() == "The QUick brown fox\njumps over the lazy dog.\n"  # fox, -A 1


def test_seed_red8_example(tmp_path: Path, example_images):
    sent = EXAMPLES.parent / "outputs" / "seed-grepwrap-out.txt"
    sent.unlink(missing_ok=True)  # what an earlier make demo sent must not pass for this run's
    doc = _exec(tmp_path, EXAMPLES / "seed-grepwrap-red8" / "red.yml")
    assert doc["state"] == "succeeded"
    assert sent.read_text() == (tmp_path / "out" / "out.txt").read_text()


def test_http_example_against_its_loopback_server(tmp_path: Path, example_images):
    port_file = tmp_path / "port"
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "http" / "server.py"), "--root", str(EXAMPLES / "http" / "www"), "--uploads", str(tmp_path / "uploads"), "--port-file", str(port_file)])
    try:
        eventually(lambda: port_file.exists() and port_file.read_text(), 5, what="the example server writing its port")
        doc = _exec(tmp_path, EXAMPLES / "http" / "red.yml", "--var", f"server=127.0.0.1:{port_file.read_text()}", "--non-interactive")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert doc["batches"][0]["argv"] == ["grepwrap", "-A", "1", "fox", "/cc/inputs/text_file/in.txt"]
    assert (tmp_path / "uploads" / "results" / "out.txt").read_text() == "The QUick brown fox\njumps over the lazy dog.\n"


def test_ssh_example_against_its_loopback_sshd(tmp_path: Path, example_images):
    """make demo's ssh part: a file over SFTP, the corpus mounted with sshfs, the result uploaded."""
    from tests.conftest import faice_command

    env = {"FAICE": faice_command()[0], "FAICE_DB": str(tmp_path / "faice.db"), "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/bin"}
    done = subprocess.run([str(EXAMPLES / "ssh" / "run-demo.sh")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--no-mount" not in done.stdout  # this machine mounts
    uploaded = done.stdout.split("matches.txt:\n", 1)[1]
    assert uploaded == "The quick brown fox\nA fox is not a dog.\n/cc/inputs/corpus/corpus/aesop.txt:2\n/cc/inputs/corpus/corpus/grimm.txt:2\n"
    listed = json.loads(run_faice("--db", str(tmp_path / "faice.db"), "list", "--json").stdout)
    assert listed[0]["states"] == {**listed[0]["states"], "succeeded": 1}
