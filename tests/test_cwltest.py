"""faice exec as a CWL runner under cwltest, the CWL conformance test runner: the real
``cwltest --test FILE --tool scripts/faice-cwl-runner`` as a subprocess, on the small conformance
file tests/data/cwltest/conformance.yml (tools in the offline busybox image, expected outputs
checked against cwltool too). cwltest calls ``RUNNER --outdir=DIR --quiet TOOL [JOB]``, with the
tool and job as file:// URIs unless they lie under its working directory, and compares the output
object faice prints on stdout (class, basename, checksum, size, location)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, faice_env

pytestmark = pytest.mark.docker

DATA = ROOT / "tests" / "data" / "cwltest"
RUNNER = ROOT / "scripts" / "faice-cwl-runner"
CASES = 8  # in conformance.yml


def cwltest(test_file: Path, tmp_path: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run cwltest on ``test_file`` with faice as the runner; faice's state in tmp_path."""
    program = shutil.which("cwltest", path=str(Path(sys.executable).parent)) or shutil.which("cwltest")
    if program is None:
        pytest.fail("cwltest is not installed (make test-deps installs it)")
    bin_dir = Path(sys.executable).parent
    env = faice_env({
        "FAICE_DB": str(tmp_path / "state.db"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # the wrapper's `faice`: this checkout's
        "TMPDIR": str(tmp_path),  # cwltest's output directories (mkdtemp)
    })
    return subprocess.run([program, "--test", str(test_file), "--tool", str(RUNNER), *extra],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def test_the_wrapper_is_two_lines_and_executable():
    assert os.access(RUNNER, os.X_OK)
    assert RUNNER.read_text(encoding="utf-8").splitlines() == ["#!/bin/sh", 'exec "${FAICE:-faice}" exec "$@"']


@pytest.mark.parametrize("where", ["elsewhere", "beside"], ids=["file-uris", "relative-paths"])
def test_conformance_cases_pass(tmp_path: Path, where: str):
    # run from elsewhere, cwltest passes file:///... URIs; from the data directory, relative paths
    cwd = tmp_path if where == "elsewhere" else DATA
    done = cwltest(DATA / "conformance.yml", tmp_path, cwd, "-j", "4")
    assert done.returncode == 0, shown(done)
    assert "All tests passed" in done.stderr, shown(done)
    assert done.stderr.count("Test [") == CASES, shown(done)


def test_a_wrong_expected_output_fails(tmp_path: Path):
    """The negative control: the same runner, a wrong checksum expected, cwltest must fail."""
    done = cwltest(DATA / "wrong-output.yml", tmp_path, tmp_path)
    assert done.returncode == 1, shown(done)
    assert "0 tests passed, 1 failures" in done.stderr, shown(done)
    assert "sha1$0000000000000000000000000000000000000000" in done.stderr + done.stdout, shown(done)


def test_faice_takes_file_uris():
    """What cwltest passes when the files are not under its working directory."""
    from faice.errors import LoadError
    from faice.red.source import local_location
    from tests.conftest import run_faice

    uri = (DATA / "echo job.cwl").as_uri()  # percent-encoded
    assert local_location(uri) == str(DATA / "echo job.cwl")
    assert local_location("file://localhost/tmp/x.cwl") == "/tmp/x.cwl"
    assert local_location("tool.cwl") == "tool.cwl"
    with pytest.raises(LoadError, match="another host"):
        local_location("file://elsewhere/tmp/x.cwl")
    done = run_faice("validate", (DATA / "echo.cwl").as_uri())
    assert done.returncode == 0, done.stderr
    assert "valid CWL v1.2 CommandLineTool" in done.stdout


def test_the_stdin_file_is_the_staged_inputs_host_file(tmp_path: Path):
    from faice.connectors.base import ConnectorError
    from faice.runner.batch import stdin_source
    from faice.runner.docker_engine import Mount

    mounts = [Mount(tmp_path / "a.txt", "/cc/inputs/f/a.txt"), Mount(tmp_path / "dir", "/cc/inputs/d/dir")]
    assert stdin_source(None, mounts) is None
    assert stdin_source("/cc/inputs/f/a.txt", mounts) == tmp_path / "a.txt"
    assert stdin_source("/cc/inputs/d/dir/sub/b.txt", mounts) == tmp_path / "dir" / "sub" / "b.txt"
    with pytest.raises(ConnectorError, match="not a staged input"):
        stdin_source("/cc/inputs/f/a.txt.bak", mounts)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "out").symlink_to("/etc/hostname")
    with pytest.raises(ConnectorError, match="not a staged input"):
        stdin_source("/cc/inputs/d/dir/../../../etc/hostname", mounts)
    with pytest.raises(ConnectorError, match="leads out"):
        stdin_source("/cc/inputs/d/dir/out", mounts)


def test_a_feature_faice_does_not_run_is_unsupported_not_failed(tmp_path: Path):
    done = cwltest(DATA / "unsupported.yml", tmp_path, tmp_path)
    assert done.returncode == 0, shown(done)
    assert "0 tests passed, 1 unsupported features" in done.stderr, shown(done)
