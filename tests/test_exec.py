"""faice exec on the real Docker engine, with real connectors, a real HTTP server and a real SQLite file."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, communicate, eventually, fill_up, labelled_containers, run_faice, run_inprocess
from tests.redfiles import as_batches, shell_red, write

pytestmark = pytest.mark.docker


class Run:
    """faice commands on one state file and output directory: in this process (``run_inprocess``),
    or as real programs (``real()``) where a test is the end-to-end one of its commands."""

    def __init__(self, tmp_path: Path, runner: Any = run_inprocess) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "state" / "faice.db"
        self.outdir = tmp_path / "out"
        #: the environment of every faice this run starts (beside what a call adds)
        self.env: dict[str, str] = {}
        self.runner = runner

    def real(self) -> Run:
        """The same files, with faice started as a real program."""
        other = copy.copy(self)
        other.runner = run_faice
        return other

    def __call__(self, data: dict[str, Any] | Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        path = data if isinstance(data, Path) else write(self.tmp / "red.yml", data)
        result = self.runner("--db", str(self.db), "exec", str(path), "--json", "--outdir", str(self.outdir), *args, env={**self.env, **(env or {})},
                             cwd=self.tmp, timeout=timeout)
        try:
            document = json.loads(result.stdout)
        except json.JSONDecodeError:
            document = None
        return result, document

    def faice(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.runner("--db", str(self.db), *args)


@pytest.fixture
def run(tmp_path: Path, docker_image: str) -> Run:
    return Run(tmp_path)


def sha1(path: Path) -> str:
    return "sha1$" + hashlib.sha1(path.read_bytes()).hexdigest()


def test_grepwrap_example_runs_and_is_recorded(run: Run):
    run = run.real()  # end to end: exec, show and list as real programs
    result, doc = run(EXAMPLES / "grepwrap" / "red.yml")
    assert result.returncode == 0, result.stderr
    assert doc is not None and doc["state"] == "succeeded"
    batch = doc["batches"][0]
    out = run.outdir / "out.txt"
    assert batch["outputs"]["out_file"] == {"class": "File", "path": str(out), "size": out.stat().st_size, "checksum": sha1(out)}
    assert out.read_text().splitlines()[0] == "The QUick brown fox"
    assert batch["argv"] == ["grepwrap", "-B", "1", "QU", "/cc/inputs/text_file/in.txt"]
    shown = json.loads(run.faice("show", batch["batchId"], "--json").stdout)
    assert shown["state"] == "succeeded"
    assert [h["state"] for h in shown["history"]] == ["registered", "scheduled", "processing", "succeeded"]
    listed = json.loads(run.faice("list", "--json").stdout)
    assert listed[0]["experimentId"] == doc["experimentId"] and listed[0]["states"]["succeeded"] == 1
    human = run.faice("show", batch["batchId"]).stdout
    assert "argv: grepwrap -B 1 QU /cc/inputs/text_file/in.txt" in human and "all outputs found and delivered" in human
    assert batch["batchId"] in run.faice("show", doc["experimentId"]).stdout
    assert doc["experimentId"] in run.faice("list").stdout
    assert labelled_containers(f"faice.experiment={doc['experimentId']}") == []


def test_failing_batch_does_not_stop_the_others(run: Run):
    data = as_batches(
        shell_red('echo "working on $1"; [ "$1" != bad ] || { echo "it broke: $1" >&2; exit 3; }; echo "$1" > result.txt', cli_inputs={"word": {"type": "string", "inputBinding": {"position": 0}}},
                  outputs={"result": {"type": "File", "outputBinding": {"glob": "result.txt"}}}),
        [{"word": "good"}, {"word": "bad"}, {"word": "fine"}],
    )
    result, doc = run(data, "--jobs", "2")
    assert result.returncode == 1
    states = [b["state"] for b in doc["batches"]]
    assert states == ["succeeded", "failed", "succeeded"]
    failed = doc["batches"][1]
    assert failed["exitCode"] == 3
    assert "exit code 3" in failed["error"] and "it broke: bad" in failed["error"]
    assert (run.outdir / "batch_2" / "result.txt").read_text() == "fine\n"
    logs = run.real().faice("logs", failed["batchId"])  # end to end: logs as a real program
    assert logs.stdout == "working on bad\n"
    assert run.faice("logs", failed["batchId"], "--stderr").stdout == "it broke: bad\n"


def test_missing_required_and_optional_outputs(run: Run):
    data = shell_red("touch present.txt", outputs={
        "present": {"type": "File", "outputBinding": {"glob": "present.txt"}},
        "maybe": {"type": "File?", "outputBinding": {"glob": "maybe.txt"}},
    })
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert doc["batches"][0]["outputs"]["maybe"]["path"] is None
    data["cli"]["outputs"]["needed"] = {"type": "File", "outputBinding": {"glob": "needed-*.txt"}}
    result, doc = run(data)
    assert result.returncode == 1
    assert 'required output "needed": glob "needed-*.txt" matched no file' in doc["batches"][0]["error"]


def test_ambiguous_glob_is_an_error(run: Run):
    data = shell_red("touch a.txt b.txt", outputs={"one": {"type": "File", "outputBinding": {"glob": "*.txt"}}})
    result, doc = run(data)
    assert result.returncode == 1
    assert "matched 2 entries (a.txt, b.txt)" in doc["batches"][0]["error"]


def test_stdout_and_stderr_outputs(run: Run):
    data = shell_red("echo to-out; echo to-err >&2", outputs={"o": {"type": "stdout"}, "e": {"type": "stderr"}}, stdout="captured.txt")
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert (run.outdir / "captured.txt").read_text() == "to-out\n"
    assert (run.outdir / "e.stderr").read_text() == "to-err\n"
    assert doc["batches"][0]["outputs"]["o"]["checksum"] == sha1(run.outdir / "captured.txt")


def test_directory_input_and_output_with_local_connector(run: Run, tmp_path: Path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_text("A")
    (tmp_path / "data" / "sub" / "b.txt").write_text("BB")
    data = shell_red(
        'mkdir -p result && cp -r "$1"/. result/ && ls -R "$1" > listing.txt',
        inputs={"d": {"class": "Directory", "connector": {"command": "red-connector-local", "access": {"path": "data"}}, "listing": [{"class": "File", "basename": "a.txt"}]}},
        cli_inputs={"d": {"type": "Directory", "inputBinding": {"position": 0}}},
        outputs={"result": {"type": "Directory", "outputBinding": {"glob": "result"}}},
    )
    data["outputs"] = {"result": {"class": "Directory", "connector": {"command": "red-connector-local", "access": {"path": "sent", "overwrite": True}}}}
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sent" / "sub" / "b.txt").read_text() == "BB"
    assert doc["batches"][0]["outputs"]["result"]["size"] == 3


def test_listing_checks_what_was_delivered(run: Run, tmp_path: Path):
    (tmp_path / "data").mkdir()
    data = shell_red(
        "true",
        inputs={"d": {"class": "Directory", "connector": {"command": "red-connector-local", "access": {"path": "data"}}, "listing": [{"class": "File", "basename": "missing.txt"}]}},
        cli_inputs={"d": {"type": "Directory", "inputBinding": {"position": 0}}},
    )
    result, doc = run(data)
    assert result.returncode == 1
    assert 'input "d" (red-connector-local): missing from the delivered directory: missing.txt' == doc["batches"][0]["error"]


def test_http_connector_in_and_out_with_basic_auth(run: Run, http_server):
    http_server.expected_auth = ("alice", "pa55-w0rd-xyz")
    (http_server.root / "in.txt").write_text("hello over http\n")
    (http_server.root / "tree" / "sub").mkdir(parents=True)
    (http_server.root / "tree" / "one.txt").write_text("1")
    (http_server.root / "tree" / "sub" / "two.txt").write_text("22")
    auth = {"username": "alice", "password": "{{pw}}"}
    data = shell_red(
        'tr a-z A-Z < "$1" > upper.txt; cat "$2/sub/two.txt" >> upper.txt',
        inputs={
            "f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": f"{http_server.url}/in.txt", "auth": auth}}},
            "d": {"class": "Directory", "connector": {"command": "red-connector-http", "access": {"url": f"{http_server.url}/tree", "auth": auth}},
                  "listing": [{"class": "File", "basename": "one.txt"}, {"class": "Directory", "basename": "sub", "listing": [{"class": "File", "basename": "two.txt"}]}]},
        },
        cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "d": {"type": "Directory", "inputBinding": {"position": 1}}},
        outputs={"upper": {"type": "File", "outputBinding": {"glob": "upper.txt"}}},
    )
    data["outputs"] = {"upper": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": f"{http_server.url}/results/upper.txt", "method": "PUT", "auth": auth}}}}
    result, doc = run(data, env={"FAICE_VAR_pw": "pa55-w0rd-xyz"})
    assert result.returncode == 0, result.stderr
    assert (http_server.root / "results" / "upper.txt").read_text() == "HELLO OVER HTTP\n22"
    assert ("PUT", "/results/upper.txt") in http_server.received
    # The password never reaches the state file, the logs or what faice printed.
    secret = b"pa55-w0rd-xyz"
    for path in [run.db, *run.db.parent.rglob("*")]:
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert "pa55-w0rd-xyz" not in result.stdout + result.stderr
    red = json.loads(run.faice("show", doc["experimentId"], "--json").stdout)["red"]
    assert red["inputs"]["f"]["connector"]["access"]["auth"]["password"] == "********"
    # the private directory the inputs were fetched into is gone
    assert not list(Path(tempfile.gettempdir()).glob(f"faice-{doc['batches'][0]['batchId']}-*"))


@pytest.mark.parametrize(
    "url_path,expected",
    [("/status/404", "HTTP 404 Not Found"), ("/status/500", "HTTP 500 Internal Server Error"), (None, "connection refused")],
    ids=["404", "500", "refused"],
)
def test_http_failures_name_the_reason(run: Run, http_server, url_path, expected):
    url = f"{http_server.url}{url_path}" if url_path else "http://127.0.0.1:9/in.txt"
    data = shell_red("cat \"$1\"", inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": url}}}},
                     cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}})
    result, doc = run(data)
    assert result.returncode == 1
    assert expected in doc["batches"][0]["error"]
    assert doc["batches"][0]["error"].startswith('input "f" (red-connector-http): GET')


def test_sending_to_a_failing_server_fails_the_batch(run: Run, http_server):
    data = shell_red("echo x > o.txt", outputs={"o": {"type": "File", "outputBinding": {"glob": "o.txt"}}})
    data["outputs"] = {"o": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": f"{http_server.url}/status/500"}}}}
    result, doc = run(data)
    assert result.returncode == 1
    assert 'output "o" (red-connector-http): POST' in doc["batches"][0]["error"] and "HTTP 500" in doc["batches"][0]["error"]
    assert (run.outdir / "o.txt").read_text() == "x\n"  # nothing lost: the file stays in the output directory


def test_under_sudo_outputs_belong_to_the_caller_not_to_root(run: Run):
    data = shell_red("id -u > uid.txt; id -g > gid.txt; touch $HOME/writable && echo $HOME > home.txt",
                     outputs={"uid": {"type": "File", "outputBinding": {"glob": "uid.txt"}}, "log": {"type": "stdout"}}, stdout="log.txt")
    result, _doc = run(data, env={"SUDO_UID": "4321", "SUDO_GID": "4322", "SUDO_USER": "someone"})
    assert result.returncode == 0, result.stderr
    assert ((run.outdir / "uid.txt").read_text().strip(), (run.outdir / "gid.txt").read_text().strip()) == ("4321", "4322")  # the tool ran as the caller
    for path in (run.outdir, run.outdir / "uid.txt", run.outdir / "log.txt"):  # the stream file too, which faice writes
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322), path
    assert (run.outdir / "home.txt").read_text().strip() == "/cc/home"  # a HOME the caller may write


def test_container_settings_labels_memory_and_readonly_inputs(run: Run, tmp_path: Path):
    (tmp_path / "in.txt").write_text("x")
    data = shell_red('echo changed > "$1" 2> err.txt; echo $? > status.txt',
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": "in.txt"}}}},
                     cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}})
    data["container"]["settings"]["ram"] = 300
    result, doc = run(data, "--leave-container")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "in.txt").read_text() == "x"
    assert (run.outdir / "status.txt").read_text().strip() != "0"
    containers = labelled_containers(f"faice.batch={doc['batches'][0]['batchId']}")
    try:
        assert len(containers) == 1
        info = json.loads(subprocess.run(["docker", "inspect", containers[0]], capture_output=True, text=True, check=True).stdout)[0]
        assert info["HostConfig"]["Memory"] == 300 * 1024 * 1024
        assert info["Config"]["Labels"]["faice.experiment"] == doc["experimentId"]
        assert run(shell_red("true"))[0].returncode == 0  # a later run sweeps what Docker could not remove, never what was kept
        assert labelled_containers(f"faice.batch={doc['batches'][0]['batchId']}") == containers
        assert info["Config"]["Entrypoint"] == ["sh"]
        assert info["Config"]["WorkingDir"] == "/cc/outputs"
        assert any(m["Destination"] == "/cc/inputs/f/in.txt" and not m["RW"] for m in info["Mounts"])
    finally:
        subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)


def test_timeout_kills_the_container(run: Run):
    result, doc = run(shell_red("sleep 30"), "--timeout", "1")
    assert result.returncode == 1
    assert doc["batches"][0]["error"] == "timed out after 1 s (container killed)"
    assert labelled_containers(f"faice.experiment={doc['experimentId']}") == []


def test_retries_are_recorded(run: Run):
    result, doc = run(shell_red("exit 7"), "--retries", "1")
    assert result.returncode == 1
    batch = doc["batches"][0]
    assert batch["attempts"] == 2
    history = json.loads(run.faice("show", batch["batchId"], "--json").stdout)["history"]
    assert [h["state"] for h in history] == ["registered", "scheduled", "processing", "registered", "processing", "failed"]
    assert "attempt 1 failed (exit code 7); retrying" in history[3]["reason"]


def test_missing_image_with_disable_pull_exits_3(run: Run):
    data = shell_red("true")
    data["container"]["settings"]["image"]["url"] = "faice-no-such-image:never"
    result, doc = run(data, "--disable-pull")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == 'faice: image "faice-no-such-image:never" is not on this machine and --disable-pull forbids pulling it'


def test_unreachable_docker_exits_3(run: Run):
    result, doc = run(shell_red("true"), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 3
    assert "Docker is not reachable" in result.stderr and "Traceback" not in result.stderr


def _start(run: Run, data: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``faice exec`` in the background, as ``run`` starts it."""
    path = write(run.tmp / "red.yml", data)
    from tests.conftest import faice_command, faice_env

    return subprocess.Popen([*faice_command(), "--db", str(run.db), "exec", str(path), "--json", "--outdir", str(run.outdir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=run.tmp,
                            env=faice_env({**run.env, "PYTHONFAULTHANDLER": "1", **(env or {})}))


def _experiment_id(run: Run) -> str | None:
    if not run.db.exists():
        return None
    with sqlite3.connect(run.db) as conn:
        row = conn.execute("SELECT id FROM experiments ORDER BY created_at DESC LIMIT 1").fetchone() if _has_tables(conn) else None
    return row[0] if row else None


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'experiments'").fetchone() is not None


def _wait_for_containers(run: Run, count: int) -> str:
    """Wait until this run's experiment has ``count`` containers; return its id."""
    eventually(lambda: _experiment_id(run) is not None and len(labelled_containers(f"faice.experiment={_experiment_id(run)}")) >= count, 60, 0.2,
               what=f"{count} containers of the run's experiment")
    experiment_id = _experiment_id(run)
    assert experiment_id is not None
    return experiment_id


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_interrupt_cancels_cleans_up_and_records(run: Run, signal_name: str):
    import signal

    data = as_batches(shell_red("sleep 60", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(4)])
    process = _start(run, data, "--jobs", "2")
    experiment_id = _wait_for_containers(run, 2)
    process.send_signal(getattr(signal, signal_name))
    stdout, stderr = communicate(process, 60)
    assert process.returncode == 130, stderr
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    doc = json.loads(stdout)
    assert doc["state"] == "cancelled" and {b["state"] for b in doc["batches"]} == {"cancelled"}
    shown = json.loads(run.faice("show", experiment_id, "--json").stdout)
    assert {b["state"] for b in shown["batches"]} == {"cancelled"}


def test_cancel_from_another_terminal(run: Run):
    data = as_batches(shell_red("sleep 60", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(3)])
    process = _start(run, data, "--jobs", "1")
    experiment_id = _wait_for_containers(run, 1)
    cancelled = run.real().faice("cancel", experiment_id)  # end to end: cancel as a real program
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == "cancelled 3 batches"
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    history = json.loads(run.faice("show", json.loads(stdout)["batches"][0]["batchId"], "--json").stdout)["history"]
    assert history[-1] == {**history[-1], "state": "cancelled", "reason": "cancelled by faice cancel"}


def test_logs_follow_streams_a_running_batch(run: Run):
    data = shell_red("for i in 1 2 3; do echo line $i; sleep 1; done")
    process = _start(run, data)
    _wait_for_containers(run, 1)
    with sqlite3.connect(run.db) as conn:
        batch_id = conn.execute("SELECT id FROM batches").fetchone()[0]
    followed = run.faice("logs", batch_id, "--follow")
    process.communicate(timeout=60)
    assert followed.returncode == 0
    assert followed.stdout == "line 1\nline 2\nline 3\n"


def test_http_archive_connector_receives_a_directory(run: Run, http_server, tmp_path: Path):
    import tarfile

    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("archived")
    with tarfile.open(http_server.root / "tree.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "tree" / "a.txt", arcname="a.txt")
    data = shell_red('cat "$1/a.txt" > got.txt',
                     inputs={"d": {"class": "Directory", "connector": {"command": "red-connector-http-archive", "access": {"url": f"{http_server.url}/tree.tar.gz", "archiveFormat": "gztar"}}}},
                     cli_inputs={"d": {"type": "Directory", "inputBinding": {"position": 0}}})
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert (run.outdir / "got.txt").read_text() == "archived"


def test_preserved_environment_and_network_mode(run: Run):
    data = shell_red('echo "$FAICE_TEST_VALUE" > env.txt; ls /sys/class/net > net.txt; env | grep -c FAICE_TEST_SECRET > leaked.txt || true')
    result, doc = run(data, "--preserve-environment", "FAICE_TEST_VALUE", "--network", "none", env={"FAICE_TEST_VALUE": "kept", "FAICE_TEST_SECRET": "not passed"})
    assert result.returncode == 0, result.stderr
    assert (run.outdir / "env.txt").read_text() == "kept\n"
    assert (run.outdir / "net.txt").read_text().split() == ["lo"]
    assert (run.outdir / "leaked.txt").read_text().strip() == "0"


def test_two_processes_share_the_state_file(run: Run, tmp_path: Path):
    from tests.conftest import faice_command

    data = as_batches(shell_red("sleep 1; echo $1", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(3)])
    path = write(tmp_path / "shared.yml", data)
    processes = [
        subprocess.Popen([*faice_command(), "--db", str(run.db), "exec", str(path), "--json", "--outdir", str(tmp_path / f"out{i}")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    listed = json.loads(run.faice("list", "--json").stdout)
    assert len(listed) == 2 and all(e["states"]["succeeded"] == 3 for e in listed)


def test_live_view_on_a_terminal(run: Run):
    from tests.test_cli import _run_in_pty

    path = write(run.tmp / "red.yml", as_batches(shell_red("sleep 1"), [{}, {}]))
    code, screen = _run_in_pty(["--db", str(run.db), "exec", str(path), "--outdir", str(run.outdir)], [], timeout=60)
    assert code == 0, screen
    assert "/2 done, " in screen and "waiting" in screen  # the live title: "0/2 done, 0 failed, 2 running, 0 waiting — 1 s"
    assert "experiment" in screen and screen.count("succeeded") >= 2  # then the summary table


def test_a_link_planted_by_the_tool_is_not_followed(run: Run, tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    data = shell_red(f"ln -s {victim} log.txt; echo written by the tool", stdout="log.txt")
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "untouched\n"
    assert not (run.outdir / "log.txt").is_symlink() and (run.outdir / "log.txt").read_text() == "written by the tool\n"


def test_an_output_directory_faice_did_not_make_is_refused(run: Run, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    result, doc = run(shell_red("true"), "--outdir", str(project))
    assert result.returncode == 2
    assert "is not empty and was not made by faice" in result.stderr
    assert (project / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("project")) == ["project"]
    # faice's own earlier output is kept aside, not overwritten
    first, _ = run(shell_red("echo one > one.txt"))
    second, _ = run(shell_red("echo two > two.txt"))
    assert first.returncode == second.returncode == 0
    assert (run.outdir / "two.txt").exists() and not (run.outdir / "one.txt").exists()
    assert [p for p in run.outdir.parent.iterdir() if p.name.startswith("out.old-")][0].joinpath("one.txt").read_text() == "one\n"


def test_a_command_docker_cannot_start_fails_once_with_the_reason(run: Run):
    data = shell_red("true")
    data["cli"]["baseCommand"] = ["no-such-program-here"]
    result, doc = run(data, "--retries", "2")
    assert result.returncode == 1
    batch = doc["batches"][0]
    assert batch["error"].startswith("Docker cannot start the container:") and "no-such-program-here" in batch["error"]
    assert batch["attempts"] == 1


def test_url_credentials_never_reach_errors(run: Run):
    data = shell_red('cat "$1"', inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "http://127.0.0.1:99999/data.txt?token=TOPSECRETTOKEN"}}}},
                     cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}})
    result, doc = run(data)
    assert result.returncode == 1
    assert "TOPSECRETTOKEN" not in result.stdout + result.stderr
    assert b"TOPSECRETTOKEN" not in run.db.read_bytes()
    assert doc["batches"][0]["error"] == 'input "f" (red-connector-http): GET http://127.0.0.1:99999/data.txt: InvalidURL'


def test_a_killed_run_is_cleaned_up_by_the_next_faice_command(run: Run):
    import signal

    data = as_batches(shell_red("sleep 60", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(3)])
    process = _start(run, data, "--jobs", "2")
    experiment_id = _wait_for_containers(run, 2)
    process.send_signal(signal.SIGKILL)  # no chance to clean up
    process.communicate(timeout=30)
    assert len(labelled_containers(f"faice.experiment={experiment_id}")) == 2
    listed = json.loads(run.faice("list", "--json").stdout)
    assert listed[0]["states"]["failed"] == 3
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    batch = json.loads(run.faice("show", experiment_id, "--json").stdout)["batches"][0]
    shown = json.loads(run.faice("show", batch["batchId"], "--json").stdout)
    assert shown["history"][-1]["reason"] == "the faice process running it ended without recording a result"
    assert shown["error"] == "the faice process running it ended without recording a result"  # not null: the reason where people look


def test_a_clusters_batch_concurrency_limit_is_capped_by_this_machine_and_said_once(run: Run):
    """The real command prints the notice once; how many batches then run at once is
    test_lifecycle's test of the same name (on a fake engine, where the overlap is exact)."""
    from faice.host import cpu_count

    data = as_batches(shell_red("true", cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": i} for i in range(cpu_count() + 2)])
    data["execution"] = {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 10_000_000}}
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "batchConcurrencyLimit" in line]
    cap = min(cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20) // 256)
    assert len(notices) == 1 and notices[0].startswith(f"{run.tmp / 'red.yml'}: notice: batchConcurrencyLimit 10000000 is a cluster's: here up to {cap} batches run at once (")
    assert notices[0].endswith("); --jobs N chooses")
    assert {b["state"] for b in doc["batches"]} == {"succeeded"}
    quiet, _doc = run(data, "--jobs", "2")
    assert "batchConcurrencyLimit" not in quiet.stderr  # --jobs chose: nothing to say


def test_batch_concurrency_limit_under_ccfaice_is_refused_with_what_to_do(run: Run, faice):
    data = shell_red("true")
    data["execution"] = {"engine": "ccfaice", "settings": {"batchConcurrencyLimit": 4}}
    result = faice("validate", str(write(run.tmp / "red.yml", data)))
    assert result.returncode == 2
    assert "execution.settings.batchConcurrencyLimit: unknown key \"batchConcurrencyLimit\"; it belongs to execution engine ccagency (a cluster's limit): locally, faice exec --jobs N sets how many batches run at once" in result.stderr


@pytest.mark.parametrize("outdir,message", [
    ("/proc/faice-x", "cannot make the output directory /proc/faice-x: No such file or directory"),
    ("{tmp}/a-file/sub", "cannot make the output directory {tmp}/a-file/sub: {tmp}/a-file is a file, not a directory"),
], ids=["proc", "under-a-file"])
def test_an_output_directory_that_cannot_be_made_is_refused_before_anything_is_recorded(run: Run, outdir: str, message: str):
    (run.tmp / "a-file").write_text("x")
    result, _doc = run(shell_red("true"), "--outdir", outdir.format(tmp=run.tmp))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "faice: " + message.format(tmp=run.tmp)
    assert json.loads(run.faice("list", "--json").stdout) == []


def test_a_missing_local_input_is_found_before_anything_is_recorded(run: Run):
    data = as_batches(shell_red('cat "$1"', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}}),
                      [{"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": name}}}} for name in ("here.txt", "nowhere.txt")])
    (run.tmp / "here.txt").write_text("x")
    result, _doc = run(data)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"faice: connector check failed before anything ran: batch 1 input f: nowhere.txt: no such file or directory (looked in {run.tmp})"
    assert json.loads(run.faice("list", "--json").stdout) == []
    assert not run.outdir.exists()


def test_ids_are_never_wrapped_and_unique_starts_or_capitals_find_them(run: Run, monkeypatch: pytest.MonkeyPatch):
    from tests.test_cli import _run_in_pty

    data = as_batches(shell_red('echo "a rather long complaint about what went wrong in this batch, to fill the table" >&2; exit 3',
                                cli_inputs={"n": {"type": "int", "inputBinding": {"position": 0}}}), [{"n": 1}, {"n": 2}])
    _result, doc = run(data)
    experiment_id, batch_id = doc["experimentId"], doc["batches"][1]["batchId"]
    monkeypatch.setenv("COLUMNS", "80")
    for args in (["list"], ["show", experiment_id]):
        code, screen = _run_in_pty(["--db", str(run.db), *args], [], timeout=60)
        assert code == 0, screen
        assert experiment_id in screen, screen  # whole on one line, as a copy takes it
    code, screen = _run_in_pty(["--db", str(run.db), "show", experiment_id], [], timeout=60)
    assert batch_id in screen, screen
    shown = json.loads(run.faice("show", batch_id.upper(), "--json").stdout)
    assert shown["batchId"] == batch_id
    assert json.loads(run.faice("show", batch_id[:20], "--json").stdout)["batchId"] == batch_id
    shared = os.path.commonprefix([experiment_id, batch_id])  # the first 8 are the time they were made: the first 4 change every 18 hours
    assert len(shared) >= 4
    ambiguous = run.faice("show", shared)
    assert ambiguous.returncode == 2 and f"starts several ids: {experiment_id} (experiment)" in ambiguous.stderr
    logs = run.faice("logs", experiment_id)
    assert logs.returncode == 2 and f"{experiment_id} is an experiment; logs belong to its batches: " in logs.stderr and f"{batch_id} (failed)" in logs.stderr
    assert run.faice("cancel", experiment_id.upper()).stdout.strip() == "cancelled 0 batches"


def test_an_output_that_is_a_link_out_of_the_output_directory_is_named(run: Run, tmp_path: Path):
    data = shell_red("ln -s /etc/hostname result.txt", outputs={"result": {"type": "File", "outputBinding": {"glob": "result.txt"}}})
    result, doc = run(data)
    assert result.returncode == 1
    assert doc["batches"][0]["error"] == 'output "result": glob "result.txt" matched result.txt, a link that leads out of the output directory (never taken)'


def test_more_ram_than_the_machine_has_is_a_true_warning_and_runs(run: Run, faice):
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    data = shell_red("echo ran > ran.txt", outputs={"ran": {"type": "File", "outputBinding": {"glob": "ran.txt"}}})
    data["container"]["settings"]["ram"] = physical + 4096
    validated = faice("validate", str(write(run.tmp / "red.yml", data)))
    assert validated.returncode == 0
    assert f"{physical + 4096} MiB is more than this machine's {physical} MiB: faice exec runs such a batch with no other beside it" in validated.stderr
    result, doc = run(data)
    assert result.returncode == 0, result.stderr  # it said "cannot run it here" before, and then ran
    assert (run.outdir / "ran.txt").read_text() == "ran\n"


def test_a_batch_has_a_process_limit(run: Run):
    pids_max = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"  # cgroup v2, or v1
    data = shell_red(f"({pids_max}) > max.txt; n=0; while [ $n -lt 300 ]; do sleep 5 & n=$((n+1)); done; echo all forked > forked.txt",
                     outputs={"max": {"type": "File", "outputBinding": {"glob": "max.txt"}}})
    result, doc = run(data, "--pids-limit", "64", "--timeout", "60")
    assert (run.outdir / "max.txt").read_text().strip() == "64"
    assert not (run.outdir / "forked.txt").exists()  # the fork bomb stopped at the limit
    assert doc["batches"][0]["state"] == "failed"
    default, _doc = run(shell_red(f"({pids_max}) > max.txt", outputs={"max": {"type": "File", "outputBinding": {"glob": "max.txt"}}}))
    assert default.returncode == 0 and (run.outdir / "max.txt").read_text().strip() == "4096"


def test_an_input_that_equals_a_secret_is_not_stored_in_clear(run: Run, http_server):
    (http_server.root / "in.txt").write_text("x\n")
    http_server.expected_auth = ("alice", "pa55-w0rd-xyz")
    data = shell_red('cat "$1"; echo "$2"', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "word": {"type": "string", "inputBinding": {"position": 1}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": f"{http_server.url}/in.txt", "auth": {"username": "alice", "password": "{{pw}}"}}}},
                             "word": "pa55-w0rd-xyz"})
    result, doc = run(data, env={"FAICE_VAR_pw": "pa55-w0rd-xyz"})
    assert result.returncode == 0, result.stderr
    assert b"pa55-w0rd-xyz" not in run.db.read_bytes()
    red = json.loads(run.faice("show", doc["experimentId"], "--json").stdout)["red"]
    assert red["inputs"]["word"] == "********"


def test_quiet_says_only_what_failed(run: Run):
    data = as_batches(shell_red('[ "$1" != bad ] || { echo "it broke" >&2; exit 3; }', cli_inputs={"word": {"type": "string", "inputBinding": {"position": 0}}}),
                      [{"word": "good"}, {"word": "bad"}])
    path = write(run.tmp / "red.yml", data)
    result = run_inprocess("--db", str(run.db), "exec", str(path), "--quiet", "--outdir", str(run.outdir), cwd=run.tmp)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "batch 1 failed: exit code 3; stderr: it broke\n"
    del data["batches"][1]
    quiet = run_inprocess("--db", str(run.db), "exec", str(write(run.tmp / "red.yml", data)), "-q", "--outdir", str(run.tmp / "out2"), cwd=run.tmp)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_converted_batches_run_on_their_own_and_are_not_overwritten(run: Run, faice):
    (run.tmp / "data").mkdir()
    (run.tmp / "data" / "in.txt").write_text("payload\n")
    data = as_batches(shell_red('cat "$1" > copy.txt', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                                outputs={"copy": {"type": "File", "outputBinding": {"glob": "copy.txt"}}}),
                      [{"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": "data/in.txt"}}}}] * 2)
    path = write(run.tmp / "red.yml", data)
    converted = faice("convert", "batches", str(path), "--outdir", str(run.tmp / "runs" / "deeper"))
    assert converted.returncode == 0, converted.stderr
    single = run.tmp / "runs" / "deeper" / "faice_batch_1.yml"
    result, doc = run(single)
    assert result.returncode == 0, result.stderr  # data/in.txt is found from the new place
    assert (run.outdir / "copy.txt").read_text() == "payload\n"
    single.write_text("# mine\n")
    again = faice("convert", "batches", str(path), "--outdir", str(run.tmp / "runs" / "deeper"))
    assert again.returncode == 2 and "faice_batch_0.yml and 1 more exist already; --force replaces them" in again.stderr
    assert single.read_text() == "# mine\n"
    assert faice("convert", "batches", str(path), "--outdir", str(run.tmp / "runs" / "deeper"), "--force").returncode == 0
    assert single.read_text() != "# mine\n"


def test_docker_disappearing_mid_run_is_named_and_its_container_is_swept_later(run: Run, tmp_path: Path):
    from tests.servers import SocketProxy

    proxy = SocketProxy(tmp_path / "docker.sock")
    process = _start(run, shell_red("sleep 30"), env={"DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}"})
    try:
        experiment_id = _wait_for_containers(run, 1)
        proxy.cut()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    error = json.loads(stdout)["batches"][0]["error"]
    assert error.startswith(f"Docker stopped answering at unix://{tmp_path / 'docker.sock'} during the batch ("), error
    assert "internal error" not in error
    assert labelled_containers(f"faice.experiment={experiment_id}") != []  # Docker could not be told to remove it
    later, _doc = run(shell_red("true"))  # the next run, with Docker back
    assert later.returncode == 0, later.stderr
    assert labelled_containers(f"faice.experiment={experiment_id}") == []


def test_a_batch_that_ends_while_the_state_file_disk_is_full_is_reported_and_settled_by_the_next_command(run: Run, tiny_disk: Path):
    run.db = tiny_disk / "faice.db"
    process = _start(run, shell_red("sleep 2"))
    experiment_id = _wait_for_containers(run, 1)
    filler = fill_up(tiny_disk)
    _stdout, stderr = process.communicate(timeout=60)
    assert "(not recorded: database or disk is full)" in stderr, stderr  # the run says so itself
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    filler.unlink()
    (batch,) = json.loads(run.faice("show", experiment_id, "--json").stdout)["batches"]
    assert batch["state"] == "failed" and batch["error"] == "the faice process running it ended without recording a result"


def test_a_second_run_never_mixes_its_outputs_with_the_first(run: Run):
    import signal

    script = 'echo "run $2, batch $1" > result.txt; [ "$2" = first ] || sleep 60'
    cli_inputs = {"n": {"type": "int", "inputBinding": {"position": 0}}, "run": {"type": "string", "inputBinding": {"position": 1}}}
    first = as_batches(shell_red(script, cli_inputs=cli_inputs), [{"n": i, "run": "first"} for i in range(3)])
    result, _doc = run(first, "--jobs", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in run.outdir.iterdir()) == [".faice-outputs", "batch_0", "batch_1", "batch_2"]
    second = as_batches(shell_red(script, cli_inputs=cli_inputs), [{"n": i, "run": "second"} for i in range(3)])
    process = _start(run, second, "--jobs", "1")
    eventually(lambda: (run.outdir / "batch_0" / "result.txt").exists() and "second" in (run.outdir / "batch_0" / "result.txt").read_text())
    process.send_signal(signal.SIGINT)  # interrupted while its first batch runs
    process.communicate(timeout=60)
    results = sorted(str(p.relative_to(run.outdir)) for p in run.outdir.rglob("result.txt"))
    assert results == ["batch_0/result.txt"]  # nothing of the first run in the new set ...
    assert (run.outdir / "batch_0" / "result.txt").read_text() == "run second, batch 0\n"  # ... only what the second wrote
    kept = [p for p in run.outdir.parent.iterdir() if p.name.startswith("out.old-")]
    assert len(kept) == 1 and sorted((kept[0] / f"batch_{i}" / "result.txt").read_text() for i in range(3)) == [f"run first, batch {i}\n" for i in range(3)]


def test_rm_and_prune_remove_records_logs_and_only_their_own_outputs(run: Run):
    script = 'echo "$1" > result.txt; echo "to stdout $1"; [ "$1" != bad ]'
    cli_inputs = {"word": {"type": "string", "inputBinding": {"position": 0}}}
    first, doc1 = run(shell_red(script, cli_inputs=cli_inputs, inputs={"word": "first"}))
    second, doc2 = run(shell_red(script, cli_inputs=cli_inputs, inputs={"word": "second"}))
    failed, doc3 = run(shell_red(script, cli_inputs=cli_inputs, inputs={"word": "bad"}), "--outdir", str(run.tmp / "elsewhere"))
    assert (first.returncode, second.returncode, failed.returncode) == (0, 0, 1)
    moved = next(p for p in run.tmp.iterdir() if p.name.startswith("out.old-"))  # the first run's set, moved aside by the second
    listed = {row["experimentId"]: row for row in json.loads(run.faice("list", "--json").stdout)}
    assert listed[doc1["experimentId"]]["diskBytes"] >= len("first\n") + len("to stdout first\n")
    dry = run.faice("rm", doc1["experimentId"][:16], "--dry-run")
    assert dry.returncode == 0 and f"would remove {doc1['experimentId']}: " in dry.stdout and str(moved) in dry.stdout
    assert moved.exists()
    left = run.db.parent / "logs" / f"{doc1['batches'][0]['batchId']}.stderr.partial"
    left.write_bytes(b"an attempt's, as a killed run leaves it")
    removed = run.real().faice("rm", doc1["experimentId"])  # end to end: rm and prune as real programs
    assert removed.returncode == 0, removed.stderr
    assert not moved.exists() and (run.outdir / "result.txt").read_text() == "second\n"  # the newer run's set is not its to take
    assert run.faice("show", doc1["experimentId"]).returncode == 2
    assert not (run.db.parent / "logs" / f"{doc1['batches'][0]['batchId']}.stdout").exists() and not left.exists()
    pruned = run.real().faice("prune", "--older-than", "0s", "--state", "failed")
    assert pruned.returncode == 0 and doc3["experimentId"] in pruned.stdout and doc2["experimentId"] not in pruned.stdout
    assert not (run.tmp / "elsewhere").exists() and (run.outdir / "result.txt").exists()
    assert [row["experimentId"] for row in json.loads(run.faice("list", "--json").stdout)] == [doc2["experimentId"]]
    assert run.faice("prune", "--older-than", "soon").returncode == 2


def test_rm_refuses_a_running_experiment(run: Run):
    process = _start(run, shell_red("sleep 60"))
    experiment_id = _wait_for_containers(run, 1)
    refused = run.faice("rm", experiment_id)
    assert refused.returncode == 2 and f"experiment {experiment_id} has batches that have not finished: cancel it first" in refused.stderr
    run.faice("cancel", experiment_id)
    process.communicate(timeout=60)


def _documented_shapes() -> dict[str, set[str]]:
    """The README's list of JSON shapes: "command  {keys}" per line of its JSON block."""
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    block = text.split("**JSON.**", 1)[1].split("```", 2)[1]
    shapes = {}
    for line in block.strip().splitlines():
        command, rest = line.split("  ", 1)
        keys = rest.strip().split("  ")[0].strip("[]{} ")
        shapes[command.strip()] = {k.strip() for k in keys.split(",")}
    return shapes


def test_every_json_document_has_the_documented_shape(run: Run, faice):
    shapes = _documented_shapes()
    assert len(shapes) == 14  # why and cache ls|du|prune: tests/test_cache.py; validate --json (CWL): tests/test_validate_cwl.py
    data = shell_red("echo hi > o.txt", outputs={"o": {"type": "File", "outputBinding": {"glob": "o.txt"}}})
    path = write(run.tmp / "red.yml", data)
    result, doc = run(data)
    assert set(doc) == shapes["exec --json"] and set(doc["batches"][0]) == {"batchId", "index", "state", "argv", "exitCode", "outputs", "error", "attempts"}
    assert set(doc["batches"][0]["outputs"]["o"]) == {"class", "path", "size", "checksum"}
    assert set(json.loads(faice("exec", str(path), "--dry-run", "--json").stdout)) == shapes["exec --dry-run --json"]
    one = json.loads(faice("validate", str(path), "--json").stdout)
    assert set(one) == shapes["validate --json (one file)"]
    several = json.loads(faice("validate", str(path), str(path), "--json").stdout)
    assert set(several) == shapes["validate --json (several)"] and all(set(f) == set(one) for f in several["files"])
    listed = json.loads(run.faice("list", "--json").stdout)
    assert set(listed[0]) == shapes["list --json"]
    shown = json.loads(run.faice("show", doc["experimentId"], "--json").stdout)
    assert set(shown) == shapes["show EXPERIMENT --json"] and set(shown["disk"]) == {"experimentId", "diskBytes", "logBytes", "outputBytes", "outputs"}
    batch = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)
    assert set(batch) == shapes["show BATCH --json"] and set(batch["history"][0]) == {"time", "state", "reason", "node"}
    assert set(shown["batches"][0]) == shapes["show BATCH --json"] - {"history"}
    assert shapes["users list --json"] == {"name", "isAdmin", "createdAt"} and shapes["submit --json"] == {"experimentId"}  # tested in test_users, test_submit


# --- what the README claims, each shown to hold ------------------------------------------------


def test_ram_is_a_limit_without_swap_and_its_kill_is_named(run: Run):
    data = shell_red("dd if=/dev/zero of=/dev/null bs=400M count=1")  # one 400 MiB buffer in 256 MiB of ram
    result, doc = run(data)
    assert result.returncode == 1
    assert doc["batches"][0]["error"].startswith("killed: out of memory (ram limit 256 MiB)")


def test_gpus_are_requested_from_the_engine(run: Run):
    """No GPU here: Docker's own answer shows the device request reached it."""
    result, doc = run(shell_red("true"), "--gpu-ids", "0")
    assert result.returncode == 1
    error = doc["batches"][0]["error"]
    assert error.startswith("Docker cannot ") and "gpu" in error.lower(), error


def test_an_output_directory_a_running_experiment_writes_to_is_refused(run: Run):
    process = _start(run, shell_red("sleep 60"))
    experiment_id = _wait_for_containers(run, 1)
    second, _doc = run(shell_red("true"))
    assert second.returncode == 2
    assert f"output directory {run.outdir} holds the outputs of experiment {experiment_id}, which is still running: choose another --outdir" in second.stderr
    assert run.outdir.exists() and not [p for p in run.tmp.iterdir() if p.name.startswith("out.old-")]  # the running one's set stays where it is
    run.faice("cancel", experiment_id)
    process.communicate(timeout=60)
