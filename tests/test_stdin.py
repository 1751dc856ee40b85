"""A host file as a container's standard input (ContainerSpec.stdin, CWL ``stdin``), on the real
engines: the bytes arrive exactly, end with EOF, and neither a tool that does not read them nor a
timeout leaves anything hanging (a thread, a container)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.redfiles import TEST_IMAGE

#: podman's cases run on the worker that owns podman's root service (as tests/test_podman.py's)
PODMAN = pytest.param("podman", marks=pytest.mark.xdist_group("podman-and-example-images"))

pytestmark = pytest.mark.docker


class Runner:
    """One engine, and containers labelled for this test only (removed again, whatever happens)."""

    def __init__(self, engine: Any, tmp_path: Path) -> None:
        self.engine = engine
        self.tmp = tmp_path
        self.experiment = f"stdin-test-{uuid.uuid4().hex[:12]}"

    def spec(self, argv: list[str], stdin: Path | None) -> Any:
        from faice.runner.docker_engine import LABEL_EXPERIMENT, LABEL_REMOVABLE, ContainerSpec, invoking_user

        return ContainerSpec(image=TEST_IMAGE, argv=argv, workdir="/", mounts=[], labels={LABEL_EXPERIMENT: self.experiment, LABEL_REMOVABLE: "1"},
                             user=invoking_user(), network="none", stdin=stdin)

    def __call__(self, argv: list[str], stdin: Path | None, timeout: float = 60) -> tuple[Any, bytes, bytes, float]:
        """The outcome, stdout, stderr and how long the run took (create to removal)."""
        started = time.monotonic()
        container = self.engine.create(self.spec(argv, stdin))
        try:
            outcome = self.engine.start_and_wait(container, timeout, self.tmp / "stdout", self.tmp / "stderr")
        finally:
            self.engine.remove(container)
        return outcome, (self.tmp / "stdout").read_bytes(), (self.tmp / "stderr").read_bytes(), time.monotonic() - started

    def refused_start(self, argv: list[str], stdin: Path | None, match: str, after_create: Callable[[], object] = lambda: None) -> None:
        """start_and_wait fails (a DockerError matching ``match``) before the container started."""
        from faice.runner.dockerapi import DockerError

        container = self.engine.create(self.spec(argv, stdin))
        after_create()
        try:
            with pytest.raises(DockerError, match=match):
                self.engine.start_and_wait(container, 20, self.tmp / "stdout", self.tmp / "stderr")
            assert self.engine.api.inspect_container(container)["State"]["Status"] == "created"
        finally:
            self.engine.remove(container)

    def containers(self) -> list[str]:
        from faice.runner.docker_engine import LABEL_EXPERIMENT

        return self.engine.containers(**{LABEL_EXPERIMENT: self.experiment})


def feeding_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("faice-attach")]


@pytest.fixture(params=["docker", PODMAN])
def run(request: pytest.FixtureRequest, tmp_path: Path, docker_image: str):
    if request.param == "podman":
        if shutil.which("podman") is None or subprocess.run(["podman", "image", "exists", TEST_IMAGE]).returncode != 0:
            pytest.fail(f"podman or {TEST_IMAGE} in its store missing: run `make test` (it installs podman and loads the image)")
        from faice.runner.podman import PodmanEngine

        engine: Any = PodmanEngine()
    else:
        from faice.runner.docker_engine import DockerEngine

        engine = DockerEngine()
    runner = Runner(engine, tmp_path)
    yield runner
    for container in runner.containers():
        engine.remove(container)


@pytest.fixture
def docker_run(tmp_path: Path, docker_image: str):
    from faice.runner.docker_engine import DockerEngine

    runner = Runner(DockerEngine(), tmp_path)
    yield runner
    for container in runner.containers():
        runner.engine.remove(container)


def random_text(size: int) -> bytes:
    """Random bytes as text in lines (what Docker's json-file log keeps byte for byte: valid UTF-8),
    with Podman's detach keys (ctrl-p ctrl-q) and a multibyte character in it."""
    text = base64.encodebytes(os.urandom(size * 3 // 4 + 3))[: size - 8]
    return text[:1000] + b"\x10\x11\xc3\xbc" + text[1000:] + b"end\n"


def test_cat_gives_back_exactly_its_stdin(run: Runner, tmp_path: Path):
    data = random_text(3 << 20)
    (tmp_path / "in").write_bytes(data)
    outcome, stdout, stderr, _ = run(["cat"], tmp_path / "in")
    assert (outcome.exit_code, outcome.timed_out, stderr) == (0, False, b"")
    assert len(stdout) == len(data) == 3 << 20
    assert stdout == data


def test_binary_stdin_arrives_byte_for_byte(run: Runner, tmp_path: Path):
    """Checked inside the container (Docker's json-file log would mangle binary output, not input)."""
    data = os.urandom(3 << 20) + b"\x10\x11\x00\xff"
    (tmp_path / "in").write_bytes(data)
    outcome, stdout, _, _ = run(["sha256sum"], tmp_path / "in")
    assert outcome.exit_code == 0
    assert stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_wc_counts_the_bytes_of_stdin(run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(os.urandom(1234567))
    outcome, stdout, _, _ = run(["wc", "-c"], tmp_path / "in")
    assert outcome.exit_code == 0
    assert stdout.strip() == b"1234567"


def test_an_empty_stdin_is_an_immediate_end_of_input(run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(b"")
    outcome, stdout, _, took = run(["wc", "-c"], tmp_path / "in", timeout=20)
    assert (outcome.exit_code, outcome.timed_out) == (0, False)
    assert stdout.strip() == b"0"
    assert took < 10


def test_a_tool_that_does_not_read_its_stdin_ends_at_once(run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(os.urandom(8 << 20))
    outcome, stdout, _, took = run(["true"], tmp_path / "in", timeout=30)
    assert (outcome.exit_code, outcome.timed_out, stdout) == (0, False, b"")
    assert took < 4, f"took {took:.1f} s"  # a writer left blocked until its join gives up would take 5 s more
    assert feeding_threads() == []
    assert run.containers() == []


def test_a_timeout_kills_a_tool_whose_stdin_is_still_being_written(run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(os.urandom(8 << 20))
    outcome, _, _, took = run(["sleep", "30"], tmp_path / "in", timeout=1)
    assert outcome.timed_out
    assert outcome.exit_code != 0
    assert took < 12, f"took {took:.1f} s"
    assert feeding_threads() == []


def test_a_tool_reading_part_of_its_stdin_gets_that_part(docker_run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(b"first line\n" + os.urandom(8 << 20))
    outcome, stdout, _, took = docker_run(["head", "-n", "1"], tmp_path / "in", timeout=30)
    assert (outcome.exit_code, stdout) == (0, b"first line\n")
    assert took < 4
    assert feeding_threads() == []


def test_a_stdin_file_that_cannot_be_read_is_refused_before_any_container(docker_run: Runner, tmp_path: Path):
    from faice.runner.dockerapi import DockerError

    missing = tmp_path / "no-such-file"
    with pytest.raises(DockerError, match=f"^cannot read the standard input file {missing}: No such file or directory$"):
        docker_run.engine.create(docker_run.spec(["cat"], missing))
    with pytest.raises(DockerError, match="Is a directory"):
        docker_run.engine.create(docker_run.spec(["cat"], tmp_path))
    assert docker_run.containers() == []


def test_a_stdin_file_gone_before_the_start_fails_the_start_not_the_process(docker_run: Runner, tmp_path: Path):
    (tmp_path / "in").write_bytes(b"x")
    docker_run.refused_start(["cat"], tmp_path / "in", "cannot read the standard input file", after_create=(tmp_path / "in").unlink)


def test_without_a_stdin_file_the_tool_reads_nothing_and_no_stdin_is_opened(docker_run: Runner, tmp_path: Path):
    config = docker_run.engine.container_config(docker_run.spec(["cat"], None))
    assert not {"OpenStdin", "StdinOnce", "AttachStdin"} & set(config)
    with_stdin = docker_run.engine.container_config(docker_run.spec(["cat"], tmp_path / "in"))
    assert (with_stdin["OpenStdin"], with_stdin["StdinOnce"], with_stdin["AttachStdin"]) == (True, True, True)
    assert (with_stdin["Entrypoint"], with_stdin["Cmd"]) == (["cat"], [])  # the tool's own argv, no shell
    outcome, stdout, _, took = docker_run(["cat"], None, timeout=20)
    assert (outcome.exit_code, outcome.timed_out, stdout) == (0, False, b"")
    assert took < 10
