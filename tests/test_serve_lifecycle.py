"""faice serve over time: a graceful stop, a crash and the restart after it, and faice exec runs seen through the API.

A full disk's 507 and a user created again under a removed name are route logic: test_serve_routes.py."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually, faice_command, fill_up, labelled_containers
from tests.redfiles import shell_red, write
from tests.serve_fixture import DEFAULT_USERS, agency_red, finish, post_red, serving, start_server, wait_final, wait_state

pytestmark = pytest.mark.docker


def batch_ids(server: Any, experiment_id: str) -> list[str]:
    listed = server.get("/batches", params={"experimentId": experiment_id, "ascending": "1"}).json()
    return [b["_id"] for b in listed]


def test_sigterm_cancels_and_records_running_batches_and_leaves_no_container(tmp_path: Path, docker_image: str):
    with serving(tmp_path, jobs=2) as server:
        experiment_id = post_red(server, agency_red("sleep 120", values=["a", "b", "c"]))
        ids = batch_ids(server, experiment_id)
        for batch_id in ids[:2]:
            wait_state(server, batch_id, ("processing",))
        eventually(lambda: len(labelled_containers(f"faice.experiment={experiment_id}")) == 2)
        started = time.monotonic()
    assert time.monotonic() - started < 15  # serving() asserted exit code 0
    assert "stopping: cancelling running batches" in server.stderr()
    assert labelled_containers(f"faice.experiment={experiment_id}") == []
    states = _states_in_file(server.db, experiment_id)
    assert states[ids[0]][0] == states[ids[1]][0] == "cancelled"
    assert states[ids[0]][1] == "faice serve was stopped"
    assert states[ids[2]][0] == "registered"  # never started: it waits for the next server


def _states_in_file(db: Path, experiment_id: str) -> dict[str, tuple[str, str]]:
    """(state, last reason) of each batch, read from the state file with faice's own store."""
    from faice.state.store import Store

    store = Store(db)
    try:
        return {b.id: (b.state, store.history(b.id)[-1]["reason"]) for b in store.batches(experiment_id)}
    finally:
        store.close()


def test_restart_after_a_crash_requeues_fails_and_cleans_up(tmp_path: Path, docker_image: str):
    # the attempt before the crash starts before the deadline and sleeps; the one after the restart starts after it and does not
    deadline = int(time.time()) + 8
    resumable_red = agency_red(f'test "$(date +%s)" -ge {deadline} || sleep 120; echo resumed')
    server = start_server(tmp_path, jobs=2)
    try:
        resumable = post_red(server, resumable_red)  # one retry by default
        no_retry = post_red(server, agency_red("sleep 120"), disableRetry="1")
        for experiment_id in (resumable, no_retry):
            wait_state(server, batch_ids(server, experiment_id)[0], ("processing",))
        secret = agency_red("true", values=["x"])
        secret["batches"][0]["outputs"] = {"out": {"class": "File", "connector": {
            "command": "red-connector-http", "access": {"url": "http://127.0.0.1:9/x", "auth": {"username": "u", "password": "secret-pw-1"}}}}}
        secret["cli"]["outputs"] = {"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}}
        waiting = post_red(server, secret)  # both slots are taken: it stays registered
        eventually(lambda: len(labelled_containers(f"faice.experiment={no_retry}")) == 1)
        assert server.get(f"/batches/{batch_ids(server, resumable)[0]}").json()["state"] == "processing", "too slow: it ended before the crash"
    finally:
        server.process.kill()  # no chance to clean up
        server.process.wait(10)
    assert labelled_containers(f"faice.experiment={no_retry}"), "the crash left the container running"
    time.sleep(max(0.0, deadline - time.time()))

    restarted = start_server(tmp_path, db=server.db, users={})
    restarted.passwords.update(server.passwords)
    try:
        eventually(lambda: labelled_containers(f"faice.experiment={no_retry}") == [])
        failed = wait_final(restarted, no_retry)[0]
        assert failed["state"] == "failed"
        assert failed["error"] == failed["history"][-1]["reason"] == "faice serve stopped while it ran (attempt 1, no retries left)"

        unresumable = wait_final(restarted, waiting)[0]
        assert unresumable["state"] == "failed"
        assert "submit the experiment again" in unresumable["error"]
        assert "secret-pw-1" not in str(unresumable)

        resumed = wait_final(restarted, resumable)[0]
        assert resumed["state"] == "succeeded", (resumed["error"], resumed["history"])
        assert resumed["attempts"] == 2
        assert [h["state"] for h in resumed["history"]][-4:] == ["registered", "scheduled", "processing", "succeeded"]
        assert "queued again" in resumed["history"][-4]["reason"]
        assert restarted.get(f"/batches/{resumed['_id']}/stdout").text == "resumed\n"
    finally:
        finish(restarted)


def test_faice_exec_runs_are_listed_under_the_local_user_and_cancellable_through_the_api(tmp_path: Path, docker_image: str):
    local = os.environ.get("SUDO_USER") or getpass.getuser()
    users = {**DEFAULT_USERS, local: ("local-password-1", False)}
    with serving(tmp_path / "server", users=users) as server:
        red = write(tmp_path / "red.yml", shell_red("sleep 120"))
        exec_run = subprocess.Popen([*faice_command(), "--db", str(server.db), "exec", str(red), "--json", "--outdir", str(tmp_path / "out")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            eventually(lambda: server.get("/batches", local, params={"state": "processing"}).json() != [])
            listed = server.get("/experiments", local).json()
            assert [e["username"] for e in listed] == [local]
            assert server.get("/experiments/count", "alice").json() == {"count": 0}
            batch = server.get("/batches", local).json()[0]
            assert batch["node"] == os.uname().nodename
            assert [b["batchId"] for b in server.get("/nodes", local).json()[0]["currentBatches"]] == [batch["_id"]]

            answer = server.delete(f"/batches/{batch['_id']}", local)
            assert answer.status_code == 200
            assert answer.headers["X-Faice-Cancelled"] == "true"
            assert answer.json()["state"] == "cancelled"
            # killed, not waited for: its sleep 120 is far longer (the bound leaves room for a loaded machine)
            eventually(lambda: labelled_containers(f"faice.batch={batch['_id']}") == [], timeout=30, interval=0.2, what="the cancelled batch's container gone")
            stdout, stderr = exec_run.communicate(timeout=30)
        finally:
            if exec_run.poll() is None:
                exec_run.kill()
        assert exec_run.returncode == 130, stderr
        assert "cancelled" in stdout
        history = server.get(f"/batches/{batch['_id']}", local).json()["history"]
        assert history[-1]["state"] == "cancelled"
        assert history[-1]["reason"] == f"cancelled through the API by {local}"


def test_without_docker_batches_wait_instead_of_failing(tmp_path: Path):
    """Started before the Docker engine (at boot, say): batches wait for it; /nodes says offline."""
    with serving(tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}) as server:
        experiment_id = post_red(server, agency_red("true"))
        batch_id = batch_ids(server, experiment_id)[0]
        time.sleep(2.2)  # the round the post wakes and two more (the dispatcher's tick is 1 s): nothing may happen while Docker is away
        document = server.get(f"/batches/{batch_id}").json()
        assert document["state"] == "registered"
        assert [h["state"] for h in document["history"]] == ["registered"]
        node = server.get("/nodes").json()[0]
        assert node["state"] == "offline" and "Docker is not reachable" in node["history"][-1]["debugInfo"]
        assert server.delete(f"/batches/{batch_id}").json()["state"] == "cancelled"


def test_one_server_per_state_file_whatever_name_it_is_given(tmp_path: Path):
    """A symbolic or a hard link to the state file is the same file: a second server is refused."""
    with serving(tmp_path / "first") as server:
        os.symlink(server.db, tmp_path / "symlinked.db")
        os.link(server.db, tmp_path / "hardlinked.db")
        for other in (server.db, tmp_path / "symlinked.db", tmp_path / "hardlinked.db"):
            second = subprocess.run([*faice_command(), "--db", str(other), "serve", "--port", "0"], capture_output=True, text=True, timeout=60)
            assert second.returncode == 3, second.stderr
            assert second.stderr.strip().splitlines()[-1].startswith("faice: another faice serve (pid "), second.stderr
            assert f"pid {server.process.pid})" in second.stderr or other.name == "hardlinked.db"


def test_the_first_start_makes_an_admin_with_a_random_password_printed_once(tmp_path: Path):
    with serving(tmp_path / "a", users={}) as first:
        password = first.passwords["admin"]
        assert len(password) >= 16 and first.stderr().count(password) == 1
        assert first.get("/version", "admin").status_code == 200
        assert password.encode() not in first.db.read_bytes()  # stored as a hash only
        assert "without TLS" not in first.stderr()  # on loopback: no warning
    with serving(tmp_path / "a", users={}, db=first.db) as again:  # users exist now: nothing is made or printed
        assert "created the admin user" not in again.stderr()


def test_the_first_admins_password_is_random(tmp_path: Path):
    from faice.server.run import first_admin
    from faice.state.store import Store

    said: list[str] = []
    for name in ("a.db", "b.db"):
        first_admin(Store(tmp_path / name), said.append)
    passwords = [line.split()[-1] for line in said if "with the password" in line]
    assert len(passwords) == 2 and passwords[0] != passwords[1]  # random, no default


def _local_address_off_loopback() -> str:
    """An address of this machine that is not loopback: the Docker bridge's where there is one."""
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout.splitlines()
    found = {line.split()[1]: line.split()[3].split("/")[0] for line in listed if len(line.split()) > 3}
    address = found.get("docker0") or next((a for name, a in found.items() if not a.startswith("127.")), None)
    if address is None:
        pytest.fail("this machine has no address but loopback to listen on")
    return address


def test_listening_beyond_loopback_without_tls_is_warned_about(tmp_path: Path):
    """On an address of this machine's that is not loopback: passwords would cross a network."""
    bridge = _local_address_off_loopback()
    with serving(tmp_path, host=bridge) as exposed:
        assert f"faice serve: warning: listening on {bridge} without TLS: passwords and tokens cross the network in clear text" in exposed.stderr()


def test_a_batch_that_ends_while_the_disk_is_full_is_failed_with_the_reason_once_there_is_room(tiny_disk: Path, tmp_path: Path, docker_image: str):
    with serving(tmp_path / "logs", db=tiny_disk / "faice.db") as server:
        experiment_id = post_red(server, agency_red("sleep 2"))
        (batch_id,) = batch_ids(server, experiment_id)
        wait_state(server, batch_id, ("processing",))
        eventually(lambda: labelled_containers(f"faice.experiment={experiment_id}") != [])
        filler = fill_up(tiny_disk)
        eventually(lambda: labelled_containers(f"faice.experiment={experiment_id}") == [])  # it ended: its end cannot be written
        time.sleep(1)
        assert server.get(f"/batches/{batch_id}").json()["state"] == "processing"
        filler.unlink()
        (document,) = wait_final(server, experiment_id)
    assert document["state"] == "failed", document
    assert document["error"].startswith("faice serve could not record the end of this batch ("), document["error"]


def test_a_batch_whose_end_could_not_be_recorded_fails_with_the_reason_once_it_can(tmp_path: Path):
    """The narrow part a full disk makes hard to time: the worker keeps the end and writes it later."""
    import sqlite3

    from faice.runner.batch import RunOptions
    from faice.runner.budget import MemoryBudget
    from faice.server.worker import Worker
    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    _, (batch_id,) = store.create_experiment(source="x", red={}, argvs=[["true"]], image="i", engine=None, username="u", runner="serve")
    store.set_state(batch_id, "processing", "attempt 1")
    worker = Worker(store, RunOptions(outdir=tmp_path, jobs=1), lambda name: None, memory=MemoryBudget(None))
    worker._record_later(batch_id, "could not record the end (database or disk is full)")
    real, calls = store.set_state, []

    def full_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(*args, **kwargs)

    store.set_state = full_once  # type: ignore[method-assign]
    worker._record_pending()
    assert store.batch(batch_id).state == "processing" and batch_id in worker.unrecorded  # still no room: kept
    worker._record_pending()
    assert store.batch(batch_id).state == "failed" and store.batch(batch_id).error == "could not record the end (database or disk is full)"
    assert worker.unrecorded == {}
