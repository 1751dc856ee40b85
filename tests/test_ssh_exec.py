"""faice exec with red-connector-ssh on the real Docker engine and a real sshd: copies, sshfs mounts, clean-up."""

from __future__ import annotations

import json
import os
import pwd
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

from faice.connectors import fuse
from tests.conftest import eventually, labelled_containers
from tests.redfiles import as_batches, shell_red, write
from tests.test_exec import Run, _start, _wait_for_containers

pytestmark = pytest.mark.docker


@pytest.fixture
def run(tmp_path: Path, docker_image: str, sshd) -> Run:
    run = Run(tmp_path)
    run.env = {"XDG_DATA_HOME": str(tmp_path / "data"), "FAICE_VAR_ssh_port": str(sshd.port), "FAICE_VAR_ssh_password": sshd.password}
    return run


def faice_mounts(*experiment_ids: str) -> list[str]:
    """The sshfs mounts of these experiments (other tests, on other workers, mount at the same time)."""
    return [p for p in fuse.mountpoints() if any(f"/faice-mnt-{experiment_id}-" in p for experiment_id in experiment_ids)]


def ssh_value(sshd, path: Path, kind: str = "File", mount: bool = False, **access: Any) -> dict[str, Any]:
    """An input or output value that reaches ``path`` on the test sshd, with variables as people write them."""
    connector: dict[str, Any] = {"command": "red-connector-ssh", "access": {
        "host": "127.0.0.1", "port": "{{ssh_port}}", "auth": {"username": sshd.user, "password": "{{ssh_password}}"},
        ("dirPath" if kind == "Directory" else "filePath"): str(path), **access}}
    if mount:
        connector["mount"] = True
    return {"class": kind, "connector": connector}


def dir_input_red(sshd, script: str, path: Path, mount: bool = True, **access: Any) -> dict[str, Any]:
    return shell_red(script, inputs={"d": ssh_value(sshd, path, "Directory", mount=mount, **access)},
                     cli_inputs={"d": {"type": "Directory", "inputBinding": {"position": 0}}},
                     outputs={"seen": {"type": "File", "outputBinding": {"glob": "seen.txt"}}})


def test_files_and_directories_in_and_out_over_sftp_with_no_secret_left_anywhere(run: Run, sshd):
    sshd.put("e1/in/data.txt", "some data\n")
    sshd.put("e1/in/tree/a.txt", "A\n")
    sshd.put("e1/in/tree/sub/b.txt", "B\n")
    sshd.mkdir("e1/out")
    data = shell_red(
        'tr a-z A-Z < "$1" > upper.txt; mkdir report; ls -R "$2" > report/listing.txt; cat "$2/sub/b.txt" >> report/listing.txt',
        inputs={"f": ssh_value(sshd, sshd.root / "e1/in/data.txt"),
                "d": {**ssh_value(sshd, sshd.root / "e1/in/tree", "Directory"),
                      "listing": [{"class": "File", "basename": "a.txt"}, {"class": "Directory", "basename": "sub", "listing": [{"class": "File", "basename": "b.txt"}]}]}},
        cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "d": {"type": "Directory", "inputBinding": {"position": 1}}},
        outputs={"upper": {"type": "File", "outputBinding": {"glob": "upper.txt"}}, "report": {"type": "Directory", "outputBinding": {"glob": "report"}}},
    )
    data["outputs"] = {"upper": ssh_value(sshd, sshd.root / "e1/out/upper.txt"), "report": ssh_value(sshd, sshd.root / "e1/out/report", "Directory")}
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert (sshd.root / "e1/out/upper.txt").read_text() == "SOME DATA\n"
    assert (sshd.root / "e1/out/report/listing.txt").read_text().endswith("B\n")
    assert doc["batches"][0]["argv"][-2:] == ["/cc/inputs/f/data.txt", "/cc/inputs/d/tree"]
    secret = sshd.password.encode()
    for path in [*run.db.parent.rglob("*"), *run.outdir.rglob("*")]:
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert sshd.password not in result.stdout + result.stderr
    assert run.faice("show", doc["experimentId"], "--json").stdout.count(sshd.password) == 0


def test_a_failing_connection_fails_its_batch_with_one_line_and_the_others_go_on(run: Run, sshd):
    sshd.put("e2/good.txt", "good\n")
    data = as_batches(shell_red('cat "$1" > got.txt', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                                outputs={"got": {"type": "File", "outputBinding": {"glob": "got.txt"}}}),
                      [{"f": ssh_value(sshd, sshd.root / "e2/good.txt")}, {"f": ssh_value(sshd, sshd.root / "e2/missing.txt")}])
    result, doc = run(data, "--jobs", "2")
    assert result.returncode == 1
    assert [b["state"] for b in doc["batches"]] == ["succeeded", "failed"]
    # the login name (under auth) and the filled {{ssh_port}} are secrets to faice: masked like the password
    assert doc["batches"][1]["error"] == f'input "f" (red-connector-ssh): ********@127.0.0.1:********:{sshd.root}/e2/missing.txt: no such file or directory'
    assert doc["batches"][1]["exitCode"] is None  # failed before the tool ran
    assert (run.outdir / "batch_0" / "got.txt").read_text() == "good\n"


def test_a_wrong_password_fails_the_batch_naming_the_login_and_never_the_password(run: Run, sshd):
    sshd.put("e3/x.txt", "x\n")
    data = shell_red('cat "$1"', inputs={"f": ssh_value(sshd, sshd.root / "e3/x.txt")}, cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}})
    result, doc = run(data, env={"FAICE_VAR_ssh_password": "Wr0ng-Passw0rd"})
    assert result.returncode == 1
    assert doc["batches"][0]["error"].endswith(f"********@127.0.0.1:********:{sshd.root}/e3/x.txt: authentication failed: the server refused the password")
    assert "Wr0ng-Passw0rd" not in result.stdout + result.stderr and b"Wr0ng-Passw0rd" not in run.db.read_bytes()


def test_faice_validate_checks_ssh_access_like_http(tmp_path: Path, faice, sshd):
    data = dir_input_red(sshd, "true", Path("/d"))
    data["inputs"]["d"]["connector"]["access"]["port"] = "twenty-two"
    del data["inputs"]["d"]["connector"]["access"]["auth"]["password"]
    result = faice("validate", str(write(tmp_path / "red.yml", data)))
    assert result.returncode == 2
    assert 'inputs.d.connector.access: red-connector-ssh: access "port" must be a port number' in result.stderr
    assert 'inputs.d.connector.access: red-connector-ssh: auth needs "password" or "privateKey"' in result.stderr
    data = dir_input_red(sshd, "true", Path("/d"))
    data["inputs"]["d"]["connector"]["access"]["port"] = "{{ssh_port}}"
    assert faice("validate", str(write(tmp_path / "red.yml", data))).returncode == 0
    filled = faice("exec", str(tmp_path / "red.yml"), "--dry-run", env={"FAICE_VAR_ssh_port": "22x", "FAICE_VAR_ssh_password": "pw-pw-pw"})
    assert filled.returncode == 2 and 'access "port" must be a port number' in filled.stderr


# --- mount: true ----------------------------------------------------------------------------------


def test_a_mounted_directory_is_read_only_in_the_container_and_unmounted_afterwards(run: Run, sshd):
    sshd.put("m1/tree/a.txt", "A\n")
    sshd.put("m1/tree/sub/b.txt", "B\n")
    script = ('grep " /cc/inputs/d/tree " /proc/mounts | cut -d" " -f3 > seen.txt; ls "$1" >> seen.txt; cat "$1/sub/b.txt" >> seen.txt; '
              'if touch "$1/new.txt" 2>/dev/null; then echo WROTE >> seen.txt; else echo READ-ONLY >> seen.txt; fi')
    result, doc = run(dir_input_red(sshd, script, sshd.root / "m1/tree"))
    assert result.returncode == 0, result.stderr
    assert (run.outdir / "seen.txt").read_text() == "fuse.sshfs\na.txt\nsub\nB\nREAD-ONLY\n"
    assert not (sshd.root / "m1/tree/new.txt").exists()
    assert faice_mounts(doc["experimentId"]) == []
    assert not list(Path(tempfile.gettempdir()).glob(f"faice-mnt-{doc['experimentId']}-*"))


def test_a_writable_mount_writes_through_to_the_server(run: Run, sshd):
    sshd.put("m2/work/in.txt", "in\n")
    script = 'cat "$1/in.txt" > seen.txt; echo "made by the tool" > "$1/made.txt"'
    result, doc = run(dir_input_red(sshd, script, sshd.root / "m2/work", writable=True))
    assert result.returncode == 0, result.stderr
    assert (sshd.root / "m2/work/made.txt").read_text() == "made by the tool\n"
    assert (sshd.root / "m2/work/made.txt").stat().st_uid == pwd.getpwnam(sshd.user).pw_uid  # written by the ssh login, not by root
    assert faice_mounts(doc["experimentId"]) == []


@pytest.mark.parametrize("how", ["tool fails", "timeout"])
def test_mounts_are_unmounted_when_the_batch_fails(run: Run, sshd, how: str):
    sshd.mkdir("m3/tree")
    script, args = ("exit 3", ()) if how == "tool fails" else ("sleep 60", ("--timeout", "2"))
    result, doc = run(dir_input_red(sshd, script, sshd.root / "m3/tree"), *args)
    assert result.returncode == 1
    assert ("exit code 3" if how == "tool fails" else "timed out after 2 s") in doc["batches"][0]["error"]
    assert faice_mounts(doc["experimentId"]) == []


def test_mounts_are_unmounted_on_ctrl_c_and_no_password_is_in_any_argv(run: Run, sshd):
    sshd.mkdir("m4/tree")
    private_tmp = run.tmp / "tmp"  # where faice's temporary files go: other workers mount at the same time
    private_tmp.mkdir()
    process = _start(run, dir_input_red(sshd, "sleep 60", sshd.root / "m4/tree"), env={"TMPDIR": str(private_tmp)})
    experiment_id = _wait_for_containers(run, 1)
    eventually(lambda: faice_mounts(experiment_id) != [], what="the run's sshfs mount")
    argvs, environs = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if pid == str(process.pid):
            continue  # faice itself was given FAICE_VAR_ssh_password by this test
        try:
            argvs.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            environs.append(Path(f"/proc/{pid}/environ").read_bytes())
        except OSError:
            continue
    assert any(b"sshfs" in argv and b"faice-mnt-" in argv for argv in argvs)  # the mount is really there ...
    assert not any(sshd.password.encode() in text for text in argvs + environs)  # ... and no process has the password in argv or environ
    assert list(private_tmp.glob("faice-sshfs-*")) == []  # nor on disk
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert faice_mounts(experiment_id) == []


def test_a_killed_run_leaves_mounts_that_the_next_faice_command_removes(run: Run, sshd):
    sshd.mkdir("m5/tree")
    process = _start(run, dir_input_red(sshd, "sleep 60", sshd.root / "m5/tree"))
    experiment_id = _wait_for_containers(run, 1)
    eventually(lambda: faice_mounts(experiment_id) != [], what="the run's sshfs mount")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert faice_mounts(experiment_id) != []  # nothing cleaned up by the dead process
    listed = json.loads(run.faice("list", "--json").stdout)
    assert listed[0]["states"]["failed"] == 1
    assert faice_mounts(experiment_id) == []
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    assert not list(Path(tempfile.gettempdir()).glob(f"faice-mnt-{experiment_id}-*"))


def test_without_sshfs_mounting_fails_before_anything_runs_and_no_mount_copies_instead(run: Run, sshd, tmp_path: Path):
    sshd.put("m6/tree/a.txt", "A\n")
    no_sshfs = tmp_path / "bin"
    no_sshfs.mkdir()
    data = dir_input_red(sshd, 'grep -c " /cc/inputs/d/tree fuse.sshfs " /proc/mounts > seen.txt; cat "$1/a.txt" >> seen.txt', sshd.root / "m6/tree", writable=True)
    env = {"PATH": str(no_sshfs)}
    result, _doc = run(data, env=env)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "faice: cannot mount before anything ran: batch 0 input d (red-connector-ssh): mount: true needs sshfs, which is not installed here "
        "(Debian: apt-get install sshfs), or run faice with --no-mount to copy the directory instead")
    assert not run.db.exists() or json.loads(run.faice("list", "--json").stdout) == []
    result, doc = run(data, "--no-mount", env=env)
    assert result.returncode == 0, result.stderr
    assert "notice: --no-mount: 1 directory marked mount: true is copied in instead; 1 of them writable: what the tool changes there stays in the copy" in result.stderr
    assert (run.outdir / "seen.txt").read_text() == "0\nA\n"


def test_a_connector_that_cannot_mount_says_so(run: Run, http_server, tmp_path: Path, faice):
    (http_server.root / "tree").mkdir()
    (http_server.root / "tree" / "a.txt").write_text("A\n")
    data = shell_red('cat "$1/a.txt" > seen.txt', inputs={"d": {"class": "Directory", "listing": [{"class": "File", "basename": "a.txt"}],
                                                         "connector": {"command": "red-connector-http", "mount": True, "access": {"url": f"{http_server.url}/tree"}}}},
                     cli_inputs={"d": {"type": "Directory", "inputBinding": {"position": 0}}})
    validated = faice("validate", str(write(tmp_path / "red.yml", data)))
    assert validated.returncode == 0
    assert "inputs.d.connector.mount: warning: red-connector-http cannot mount directories; faice exec --no-mount copies the directory instead" in validated.stderr
    result, _doc = run(data)
    assert result.returncode == 2
    assert "batch 0 input d: red-connector-http cannot mount a Directory; run with --no-mount to copy it instead" in result.stderr
    result, _doc = run(data, "--no-mount")
    assert result.returncode == 0, result.stderr


def test_faice_serve_runs_ssh_inputs_and_mounts_for_admins_and_keeps_others_off_this_machine(tmp_path: Path, sshd, docker_image: str):
    from tests.serve_fixture import post_red, serving, wait_final

    sshd.put("s1/tree/a.txt", "A\n")
    sshd.put("s1/in.txt", "in\n")
    data = shell_red('cat "$1" "$2/a.txt"; grep -c " /cc/inputs/d/tree fuse.sshfs " /proc/mounts',
                     inputs={"f": ssh_value(sshd, sshd.root / "s1/in.txt"), "d": ssh_value(sshd, sshd.root / "s1/tree", "Directory", mount=True)},
                     cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "d": {"type": "Directory", "inputBinding": {"position": 1}}})
    data["outputs"] = {}
    text = json.dumps(data).replace("{{ssh_port}}", str(sshd.port)).replace("{{ssh_password}}", sshd.password)  # POST /red takes filled files only
    with serving(tmp_path / "serve", env={"XDG_DATA_HOME": str(tmp_path / "data")}) as server:
        allowed = wait_final(server, post_red(server, json.loads(text), "admin"))[0]
        assert allowed["state"] == "succeeded", allowed["error"]
        assert server.get(f"/batches/{allowed['_id']}/stdout").text == "in\nA\n1\n"
        connections = sshd.log.read_text(errors="replace").count("Connection from")
        refused = wait_final(server, post_red(server, json.loads(text), "alice"), "alice")[0]
        assert refused["state"] == "failed"
        assert "private network; through faice serve only admins may reach those" in refused["error"]
        assert sshd.password not in json.dumps(refused) + server.get(f"/experiments/{refused['experimentId']}", "alice").text
        assert sshd.log.read_text(errors="replace").count("Connection from") == connections
    assert faice_mounts(allowed["experimentId"], refused["experimentId"]) == []
