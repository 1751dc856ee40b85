"""On the real Docker engine: the dry-run argv is what a container receives, and the converted
CWL tool runs under cwltool in the same offline image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.redfiles import grepwrap, local_file, write

pytestmark = pytest.mark.docker


def test_dry_run_argv_reaches_the_container_unchanged(tmp_path: Path, faice, docker_image):
    data = grepwrap()
    data["cli"] = {
        "cwlVersion": "v1.0",
        "class": "CommandLineTool",
        "baseCommand": ["printf", "<%s>\\n"],
        "inputs": {
            "words": {"type": "string[]", "inputBinding": {"position": 2}},
            "tricky": {"type": "string", "inputBinding": {"position": 1, "prefix": "--tricky="}},
            "ratio": {"type": "double", "inputBinding": {"position": 3, "prefix": "-r", "separate": False}},
            "flag": {"type": "boolean", "inputBinding": {"prefix": "--flag"}},
            "text_file": {"type": "File", "inputBinding": {"position": 4}},
        },
        "outputs": {},
    }
    data["inputs"] = {
        "words": ["two words", "$HOME", "a;b", "'q'", "ünï"],
        "tricky": "x y",
        "ratio": 0.00001,
        "flag": True,
        "text_file": local_file("in.txt"),
    }
    path = write(tmp_path / "red.yml", data)
    plan = json.loads(faice("exec", str(path), "--dry-run", "--json").stdout)["batches"][0]
    argv = plan["argv"]
    assert argv[:2] == ["printf", "<%s>\\n"]
    run = subprocess.run(["docker", "run", "--rm", "--entrypoint", argv[0], plan["image"], *argv[1:]], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"<{a}>" for a in argv[2:]]
    assert argv[2:] == ["--flag", "--tricky=", "x y", "two words", "$HOME", "a;b", "'q'", "ünï", "-r0.00001", "/cc/inputs/text_file/in.txt"]


def test_converted_cwl_tool_runs_under_cwltool_in_the_offline_image(tmp_path: Path, faice):
    red = EXAMPLES / "grepwrap" / "red.yml"
    converted = faice("convert", "cwl", str(red), "-o", str(tmp_path / "tool.cwl"), "--job", str(tmp_path / "job.yml"))
    assert converted.returncode == 0, converted.stderr
    cwltool = Path(sys.executable).with_name("cwltool")
    run = subprocess.run([str(cwltool), "--quiet", "--outdir", str(tmp_path / "out"), str(tmp_path / "tool.cwl"), str(tmp_path / "job.yml")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    expected = [line for i, line in enumerate((EXAMPLES / "grepwrap" / "in.txt").read_text().splitlines()) if "QU" in line or i == 1]
    assert (tmp_path / "out" / "out.txt").read_text().splitlines() == expected


def test_an_address_that_is_no_docker_engine_is_named(tmp_path):
    import http.server
    import threading

    from tests.conftest import run_faice
    from tests.redfiles import shell_red, write

    class NotDocker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        result = run_faice("--db", str(tmp_path / "db"), "exec", str(write(tmp_path / "red.yml", shell_red("true"))), "--outdir", str(tmp_path / "out"),
                           env={"DOCKER_HOST": address})
    finally:
        server.shutdown()
    assert result.returncode == 3
    assert result.stderr.strip() == f"faice: Docker is not reachable at {address}: it answered HTTP 404 (not found); is that a Docker engine?"
