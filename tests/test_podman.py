"""faice exec on Podman (FAICE_ENGINE=podman): real containers through podman's Docker-compatible
service, which faice finds or starts itself; `make test` installs podman and loads the test image."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT, eventually, faice_command, faice_env, run_faice
from tests.redfiles import TEST_IMAGE, as_batches, shell_red, write
from tests.servers import system_users_lock

#: one worker runs them all (pytest-xdist --dist loadgroup): they share podman's root service,
#: which faice starts when none listens, and rebuild the example image, as test_examples_run does
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("podman-and-example-images")]

PODMAN = {"FAICE_ENGINE": "podman"}


def podman_containers(label: str) -> list[str]:
    """Podman's containers (running or not) with this label, e.g. faice.experiment=ID."""
    done = subprocess.run(["podman", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.fixture(scope="module")
def podman_image() -> str:
    """The test image in podman's store; a machine without podman fails here (make test installs it)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make test` (it installs Debian's podman and loads the test image)")
    if subprocess.run(["podman", "image", "exists", TEST_IMAGE]).returncode != 0:
        pytest.fail(f"{TEST_IMAGE} is not in podman's store: run `make images` (docker save | podman load)")
    return TEST_IMAGE


@pytest.fixture(scope="module", autouse=True)
def no_podman_container_outlives_the_module(tmp_path_factory: pytest.TempPathFactory):
    """What a failed test left in podman goes (the session's own sweep asks Docker only)."""
    yield
    if shutil.which("podman") is None:
        return
    from tests.serve_fixture import experiment_ids

    ids = experiment_ids(*tmp_path_factory.getbasetemp().rglob("*.db"))
    listed = subprocess.run(["podman", "ps", "-a", "--filter", "label=faice.experiment", "--format", '{{.ID}} {{index .Labels "faice.experiment"}}'],
                            capture_output=True, text=True).stdout
    if found := [line.split()[0] for line in listed.splitlines() if len(line.split()) == 2 and line.split()[1] in ids]:
        subprocess.run(["podman", "rm", "-f", *found], capture_output=True)


class Run:
    """``faice exec`` under podman with its own state file and output directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "state" / "faice.db"
        self.outdir = tmp_path / "out"

    def argv(self, data: dict[str, Any] | Path, *args: str) -> list[str]:
        path = data if isinstance(data, Path) else write(self.tmp / "red.yml", data)
        return ["--db", str(self.db), "exec", str(path), "--json", "--outdir", str(self.outdir), *args]

    def __call__(self, data: dict[str, Any] | Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        result = run_faice(*self.argv(data, *args), env={**PODMAN, **(env or {})}, cwd=self.tmp, timeout=300)
        assert "Traceback" not in result.stderr, result.stderr
        return result, json.loads(result.stdout) if result.stdout.strip() else {}

    def start(self, data: dict[str, Any], *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*faice_command(), *self.argv(data, *args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.tmp,
                                env=faice_env(PODMAN))

    def faice(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_faice("--db", str(self.db), *args, env=PODMAN)

    def experiment_id(self) -> str | None:
        if not self.db.exists():
            return None
        with sqlite3.connect(self.db) as conn:
            try:
                row = conn.execute("SELECT id FROM experiments").fetchone()
            except sqlite3.Error:
                return None
        return row[0] if row else None


@pytest.fixture
def run(tmp_path: Path, podman_image: str) -> Run:
    return Run(tmp_path)


def test_an_unknown_engine_is_refused_with_the_known_ones(tmp_path: Path):
    red = write(tmp_path / "red.yml", shell_red("true"))
    result = run_faice("--db", str(tmp_path / "f.db"), "exec", str(red), "--outdir", str(tmp_path / "out"), env={"FAICE_ENGINE": "rkt"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith('unknown container engine "rkt" (from FAICE_ENGINE); known: docker, podman'), result.stderr


def test_the_engine_is_named_by_argument_then_environment_then_docker(monkeypatch: pytest.MonkeyPatch):
    from faice.errors import InvalidInput
    from faice.runner.engine import engine_name

    monkeypatch.delenv("FAICE_ENGINE", raising=False)
    assert engine_name() == "docker"
    monkeypatch.setenv("FAICE_ENGINE", "Podman")
    assert (engine_name(), engine_name("docker")) == ("podman", "docker")
    with pytest.raises(InvalidInput, match='^unknown container engine "lxc"; known: docker, podman$'):
        engine_name("lxc")


def test_an_unreachable_podman_exits_3_with_the_reason(run: Run):
    result, _doc = run(shell_red("true"), env={"CONTAINER_HOST": "unix:///nonexistent/podman.sock"})
    assert result.returncode == 3
    assert "Podman is not reachable at unix:///nonexistent/podman.sock" in result.stderr


def test_podman_missing_or_not_coming_up_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No socket answers: without podman on PATH, then with a podman whose service dies at once."""
    from faice.errors import EnvironmentUnusable
    from faice.runner import podman

    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setattr(podman, "default_socket", lambda: tmp_path / "run" / "podman.sock")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(EnvironmentUnusable, match="podman is not installed"):
        podman.PodmanEngine()
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "podman"
    fake.write_text("#!/bin/sh\necho 'Error: no storage here' >&2\nexit 125\n")
    fake.chmod(0o755)
    with pytest.raises(EnvironmentUnusable, match=r"did not come up: it ended with exit code 125: Error: no storage here"):
        podman.PodmanEngine()


def test_grepwrap_example_runs_and_leaves_no_container(run: Run):
    result, doc = run(EXAMPLES / "grepwrap" / "red.yml")
    assert result.returncode == 0, result.stderr
    assert doc["state"] == "succeeded"
    assert (run.outdir / "out.txt").read_text().splitlines()[0] == "The QUick brown fox"
    assert doc["batches"][0]["outputs"]["out_file"]["path"] == str(run.outdir / "out.txt")
    assert podman_containers(f"faice.experiment={doc['experimentId']}") == []
    assert subprocess.run(["docker", "ps", "-aq", "--filter", f"label=faice.experiment={doc['experimentId']}"], capture_output=True, text=True).stdout == ""


def test_parallel_batches_a_failing_one_and_their_logs(run: Run):
    data = as_batches(
        shell_red('echo "working on $1"; [ "$1" != bad ] || { echo "it broke: $1" >&2; exit 3; }; echo "$1" > result.txt',
                  cli_inputs={"word": {"type": "string", "inputBinding": {"position": 0}}}, outputs={"result": {"type": "File", "outputBinding": {"glob": "result.txt"}}}),
        [{"word": w} for w in ("good", "bad", "fine", "well", "ok", "right")],
    )
    result, doc = run(data, "--jobs", "3")
    assert result.returncode == 1
    assert [b["state"] for b in doc["batches"]] == ["succeeded", "failed", "succeeded", "succeeded", "succeeded", "succeeded"]
    failed = doc["batches"][1]
    assert failed["exitCode"] == 3 and "it broke: bad" in failed["error"]
    for index, word in enumerate(("good", "bad", "fine", "well", "ok", "right")):
        if word != "bad":
            assert (run.outdir / f"batch_{index}" / "result.txt").read_text() == f"{word}\n"
    assert run.faice("logs", failed["batchId"]).stdout == "working on bad\n"
    assert run.faice("logs", failed["batchId"], "--stderr").stdout == "it broke: bad\n"
    assert podman_containers(f"faice.experiment={doc['experimentId']}") == []


def test_rootful_podman_records_peak_memory_and_cpu_time(run: Run):
    """Rootful podman gives each container a cgroup (/libpod_parent/libpod-ID with cgroupfs) that
    faice reads while it runs, as under Docker."""
    result, doc = run(shell_red("head -c 50000000 /dev/zero > /cc/home/blob; sleep 0.3"))
    assert result.returncode == 0, result.stderr
    shown = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)
    assert 50_000_000 <= shown["peakMemory"] < 50_000_000 + 64 * 1024 * 1024, shown
    assert 0 < shown["cpuSeconds"] < 30, shown


def test_outputs_belong_to_the_invoking_user(run: Run):
    data = shell_red("id -u > uid.txt; id -g > gid.txt; touch $HOME/writable && echo $HOME > home.txt", outputs={"uid": {"type": "File", "outputBinding": {"glob": "uid.txt"}}})
    result, _doc = run(data, env={"SUDO_UID": "4321", "SUDO_GID": "4322", "SUDO_USER": "someone"})
    assert result.returncode == 0, result.stderr
    assert ((run.outdir / "uid.txt").read_text().strip(), (run.outdir / "gid.txt").read_text().strip()) == ("4321", "4322")
    for path in (run.outdir, run.outdir / "uid.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322), path
    assert (run.outdir / "home.txt").read_text().strip() == "/cc/home"


def test_timeout_kills_the_container(run: Run):
    result, doc = run(shell_red("sleep 30"), "--timeout", "1")
    assert result.returncode == 1
    assert doc["batches"][0]["error"] == "timed out after 1 s (container killed)"
    assert podman_containers(f"faice.experiment={doc['experimentId']}") == []


def test_cancel_from_another_terminal_kills_the_container(run: Run):
    """``--engine podman`` on the command line; the cancel needs no engine named: the record has it."""
    data = as_batches(shell_red("sleep 60", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(3)])
    process = subprocess.Popen([*faice_command(), *run.argv(data, "--jobs", "1", "--engine", "podman")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=run.tmp, env=faice_env())
    try:
        eventually(lambda: run.experiment_id() is not None and len(podman_containers(f"faice.experiment={run.experiment_id()}")) == 1, 60, 0.2)
        started = time.monotonic()
        cancelled = run_faice("--db", str(run.db), "cancel", str(run.experiment_id()))
        assert cancelled.returncode == 0 and cancelled.stdout.strip() == "cancelled 3 batches", cancelled.stderr
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert time.monotonic() - started < 30  # killed, not waited for
    assert process.returncode == 130, stderr
    assert {b["state"] for b in json.loads(stdout)["batches"]} == {"cancelled"}
    assert podman_containers(f"faice.experiment={run.experiment_id()}") == []


def test_limits_reach_podman_and_an_oom_kill_is_named(run: Run):
    pids_max = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
    result, _doc = run(shell_red(f"({pids_max}) > max.txt"), "--pids-limit", "64")
    assert result.returncode == 0, result.stderr
    assert (run.outdir / "max.txt").read_text().strip() == "64"
    result, doc = run(shell_red("dd if=/dev/zero of=/dev/null bs=400M count=1"))  # one 400 MiB buffer in 256 MiB of ram
    assert result.returncode == 1
    assert doc["batches"][0]["error"].startswith("killed: out of memory (ram limit 256 MiB)"), doc["batches"][0]["error"]


def test_a_kept_container_stays_and_a_later_run_sweeps_what_podman_did_not_remove(run: Run):
    result, doc = run(shell_red("true"), "--leave-container")
    assert result.returncode == 0, result.stderr
    kept = podman_containers(f"faice.experiment={doc['experimentId']}")
    try:
        assert len(kept) == 1
        info = json.loads(subprocess.run(["podman", "inspect", kept[0]], capture_output=True, text=True, check=True).stdout)[0]
        assert (info["HostConfig"]["Memory"], info["HostConfig"]["PidsLimit"]) == (256 * 1024 * 1024, 4096)
        assert info["Config"]["Labels"]["faice.experiment"] == doc["experimentId"]
        labels = ["--label", f"faice.experiment={doc['experimentId']}", "--label", "faice.removable=1"]
        stray = subprocess.run(["podman", "create", *labels, TEST_IMAGE, "true"], capture_output=True, text=True, check=True).stdout.strip()
        assert run(shell_red("true"))[0].returncode == 0
        assert podman_containers(f"faice.experiment={doc['experimentId']}") == kept  # the stray one swept, the kept one not
        assert stray not in subprocess.run(["podman", "ps", "-aq", "--no-trunc"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["podman", "rm", "-f", *kept], capture_output=True)


@pytest.mark.parametrize("example", ["many-batches", "seed-grepwrap-red8"])
def test_examples_run_under_podman(run: Run, example: str):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build-images.py"), "faice-example-grepwrap"], check=True, capture_output=True)
    result, doc = run(EXAMPLES / example / "red.yml")
    assert result.returncode == 0, result.stderr
    assert {b["state"] for b in doc["batches"]} == {"succeeded"}
    assert podman_containers(f"faice.experiment={doc['experimentId']}") == []


# --- rootless: a user who is not root, with the service faice starts for them --------------------

ROOTLESS_USER = "faice-rootless"
ROOTLESS_SCRIPT = """
import os, sys
from pathlib import Path
from faice.runner.docker_engine import ContainerSpec, Mount, invoking_user
from faice.runner.engine import open_engine

engine = open_engine()
out = Path(sys.argv[1])
spec = ContainerSpec(image="faice-test-busybox:latest", argv=["sh", "-c", "id -u > uid.txt; echo done; sleep 0.5"], workdir="/cc/outputs",
                     mounts=[Mount(out, "/cc/outputs", read_only=False)], labels={"faice.experiment": "rootless-test", "faice.removable": "1"},
                     user=invoking_user(), ram_mib=64, pids_limit=64, network="none")
container = engine.create(spec)
outcome = engine.start_and_wait(container, 60, out / "stdout", out / "stderr")
engine.remove(container)
print(engine.rootless, outcome.exit_code, engine.containers(**{"faice.experiment": "rootless-test"}), engine.host)
print(outcome.peak_memory, outcome.cpu_seconds)
"""


@pytest.fixture(scope="module")
def rootless_user(podman_image: str) -> pwd.struct_passwd:
    """A user who is not root (this one when the tests run unprivileged), the test image in their store."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    with system_users_lock():
        try:
            user = pwd.getpwnam(ROOTLESS_USER)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", ROOTLESS_USER], check=True)
            user = pwd.getpwnam(ROOTLESS_USER)
        for kind in ("uid", "gid"):  # useradd gives subordinate ids only where /etc/subuid already was
            ranges = Path(f"/etc/sub{kind}").read_text().splitlines() if Path(f"/etc/sub{kind}").exists() else []
            if not any(line.split(":")[0] == ROOTLESS_USER for line in ranges):
                start = max([int(f[1]) + int(f[2]) for f in (line.split(":") for line in ranges if line.count(":") == 2)] + [100000])
                subprocess.run(["usermod", f"--add-sub{kind}s", f"{start}-{start + 65535}", ROOTLESS_USER], check=True)
    save = subprocess.Popen(["docker", "save", TEST_IMAGE], stdout=subprocess.PIPE)
    subprocess.run(["runuser", "-u", ROOTLESS_USER, "--", "env", f"HOME={user.pw_dir}", "podman", "load"], stdin=save.stdout, check=True, capture_output=True, cwd="/")
    assert save.wait() == 0
    return user


def test_rootless_podman_is_started_for_the_user_and_their_files_stay_theirs(rootless_user: pwd.struct_passwd):
    """faice starts the user's own service in their runtime directory; keep-id keeps their uid."""
    python = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable  # the test's own may live under /root
    top = Path(tempfile.mkdtemp(prefix="faice-rootless-"))  # not under pytest's directory, which only root may enter
    out, runtime = top / "out", top / "run"
    out.mkdir()
    runtime.mkdir(mode=0o700)
    for path in (top, out, runtime):
        os.chown(path, rootless_user.pw_uid, rootless_user.pw_gid)
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": rootless_user.pw_dir, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT), "FAICE_ENGINE": "podman"}
    prefix = ["runuser", "-u", rootless_user.pw_name, "--"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*prefix, "env", "-i", *(f"{k}={v}" for k, v in env.items()), python, "-c", ROOTLESS_SCRIPT, str(out)],
                              capture_output=True, text=True, timeout=180, cwd=str(top))
        assert done.returncode == 0, done.stderr
        said = done.stdout.splitlines()
        assert said[0].split() == ["True", "0", "[]", f"unix://{runtime}/podman/podman.sock"]
        if not Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v1: a rootless container has no cgroup of its own
            assert said[1] == "None None", said
        else:  # v2: its own (delegated) cgroup, read while the tool sleeps: both figures
            peak, cpu = said[1].split()
            assert int(peak) > 0 and float(cpu) >= 0, said
        assert (out / "uid.txt").read_text().strip() == str(rootless_user.pw_uid)
        assert (out / "uid.txt").stat().st_uid == rootless_user.pw_uid
        assert (out / "stdout").read_text() == "done\n"
    finally:
        stop = subprocess.run(["pgrep", "-u", str(rootless_user.pw_uid), "-f", f"system service --time=600 unix://{runtime}/"], capture_output=True, text=True)
        for pid in stop.stdout.split():
            os.kill(int(pid), 15)  # the service this test started, not another of the user's
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize(("message", "status", "started"), [
    ("read /proc/4242/cgroup: no such process", "exited", True),
    ("read /proc/4242/cgroup: no such process", "running", False),
    ("OCI runtime error: crun: executable file `nope` not found", "exited", False),
])
def test_a_start_that_lost_podmans_cgroup_race_counts_when_the_container_ended(message: str, status: str, started: bool):
    """Podman 4.3 (Debian's) may answer a start with "read /proc/PID/cgroup: no such process" when
    the tool ended before podman read its cgroup (podman issue 16383, fixed in 4.4): the container
    ran, and waiting for it gives its exit code. Any other failure to start is still one."""
    from faice.runner.dockerapi import DockerError
    from faice.runner.podman import PodmanEngine

    class Api:
        def start(self, container: str) -> None:
            raise DockerError(500, message)

        def inspect_container(self, container: str) -> dict:
            return {"State": {"Status": status, "ExitCode": 0}}

    engine = PodmanEngine.__new__(PodmanEngine)  # no service: only its calls are under test
    engine.api = Api()
    if started:
        engine.start("c1")
    else:
        with pytest.raises(DockerError, match=re.escape(message)):
            engine.start("c1")


def test_a_wait_that_meets_podmans_cgroup_race_waits_on():
    """The same race in an inspect while waiting: the tool has just ended, the next inspect says how."""
    from faice.runner.dockerapi import DockerError
    from faice.runner.podman import PodmanEngine

    answers: list[Any] = [DockerError(500, "read /proc/4242/cgroup: no such process"), {"State": {"Status": "exited", "ExitCode": 7}}]

    class Api:
        def inspect_container(self, container: str) -> dict:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    engine = PodmanEngine.__new__(PodmanEngine)
    engine.api = Api()
    assert engine.wait("c1", 5) == 7 and answers == []
    answers[:] = [DockerError(500, "no such container")]
    with pytest.raises(DockerError, match="no such container"):
        engine.wait("c1", 5)
