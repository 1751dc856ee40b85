"""``GET /events``, ``faice watch`` and ``faice submit --wait`` over real HTTP against a real
``faice serve`` running real containers; the event model and SSE decoding as units."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from faice.events import BATCH, EXPERIMENT, Decoder, Event, finished, page_events
from faice.server.events import Subscriber
from faice.state.events import EventFilter, EventPage, EventRow, ExperimentCounts
from faice.state.store import Store
from tests import serve_fixture
from tests.conftest import communicate, eventually, faice_command, faice_env
from tests.serve_fixture import Server, post_red, serving, wait_final
from tests.serve_fixture import agency_red as red

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)


# --- units ----------------------------------------------------------------------------------------


def test_the_decoder_reads_events_split_anywhere_and_skips_comments_and_unknown_kinds():
    stream = ("retry: 1000\r\n\r\n: keep-alive\n\nid: 7\nevent: batch\ndata: {\"batchId\": \"b\",\ndata: \"state\": \"running\"}\n\n"
              "event: ping\ndata: {}\n\nevent: experiment\ndata: {\"finished\": true}\n\nevent: overflow\ndata: {}\n\n")
    for size in (1, 3, len(stream)):
        decoder = Decoder()
        events = [e for i in range(0, len(stream), size) for e in decoder.feed(stream[i:i + size])]
        assert [(e.kind, e.id) for e in events] == [(BATCH, 7), (EXPERIMENT, None), ("overflow", None)]
        assert events[0].data == {"batchId": "b", "state": "running"}
        assert decoder.last_id == 7


def test_an_event_encodes_to_what_the_decoder_reads_back():
    event = Event(BATCH, {"batchId": "b1", "experimentId": "e1", "state": "succeeded", "note": "a\nb"}, 42)
    assert list(Decoder().feed(event.encode().decode())) == [event]


def test_a_page_gives_its_batch_events_but_no_registrations_then_the_counts_of_the_experiments_it_settles():
    rows = [EventRow(1, 1.0, "b1", "e1", "registered", None, "alice", 0), EventRow(2, 2.0, "b1", "e1", "scheduled", "n", "alice", 0),
            EventRow(3, 3.0, "b2", "e2", "succeeded", "n", "alice", 0)]
    counts = [ExperimentCounts("e2", "alice", {"registered": 0, "scheduled": 0, "succeeded": 1})]  # e1 has later changes: no counts yet
    events = page_events(EventPage(rows, counts))
    assert [(e.kind, e.id, e.batch_id or e.experiment_id) for e in events] == [(BATCH, 2, "b1"), (BATCH, 3, "b2"), (EXPERIMENT, 3, "e2")]
    assert events[-1].data["finished"]
    assert not finished({"registered": 0, "succeeded": 0})  # no batches: not finished


def test_an_experiment_is_counted_only_in_the_page_that_holds_its_last_change(tmp_path: Path):
    """Counts read with rows that do not reach an experiment's last change would say more than the
    rows (a "finished" before the last batch events): they wait for the page that holds it."""
    store = Store(tmp_path / "faice.db")
    experiment_id, batch_ids = store.create_experiment(source="a", red={}, argvs=[["true"]] * 3, image="i", engine=None, username="u")
    store.set_states(batch_ids, "cancelled", "test")
    first = store.events_page(0, 4)  # 3 registrations and 1 cancellation of 6 rows
    assert len(first.rows) == 4 and first.counts == []
    rest = store.events_page(first.rows[-1].id, 4)
    assert [r.state for r in rest.rows] == ["cancelled", "cancelled"] and rest.counts[0].batches["cancelled"] == 3
    events = page_events(first) + page_events(rest)
    assert [e.kind for e in events] == [BATCH, BATCH, BATCH, EXPERIMENT] and events[-1].data["finished"]


def test_a_subscriber_sees_only_what_it_may_and_overflows_instead_of_growing():
    own = Event(BATCH, {"batchId": "b1", "experimentId": "e1", "username": "alice"}, 1)
    other = Event(BATCH, {"batchId": "b2", "experimentId": "e1", "username": "bob"}, 2)
    alice = Subscriber(EventFilter(owner="alice"), 0, limit=2)
    assert alice.accepts(own) and not alice.accepts(other)
    one_batch = Subscriber(EventFilter(batch_id="b1", experiment_id="e1"), 0, limit=2)
    assert one_batch.accepts(own) and not one_batch.accepts(other)
    assert one_batch.accepts(Event(EXPERIMENT, {"experimentId": "e1", "username": "bob"}))  # its experiment's counts
    for n in range(3):
        alice.offer(n, b"x%d" % n)
    assert alice.overflowed_at is not None and not alice.pending  # dropped, not grown
    alice.offer(4, b"more")
    assert not alice.pending


def test_history_ids_are_never_used_again_after_the_newest_experiment_is_deleted(tmp_path: Path):
    store = Store(tmp_path / "faice.db")
    first, batches = store.create_experiment(source="a", red={}, argvs=[["true"]], image="i", engine=None, username="u")
    store.set_state(batches[0], "scheduled", "test")
    newest = store.last_event_id()
    store.delete_experiment(first)
    _, again = store.create_experiment(source="b", red={}, argvs=[["true"]], image="i", engine=None, username="u")
    assert store.events_after(0, 10)[0].id > newest  # a client that saw `newest` misses nothing new


# --- over real HTTP -------------------------------------------------------------------------------


class Reader:
    """A client of GET /events in a thread: every event it decoded, with when it came."""

    def __init__(self, server: Server, user: str = "admin", params: dict[str, str] | None = None, last_id: int | None = None) -> None:
        headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
        self.response = requests.get(server.url + "/events", auth=server.auth(user), params=params or {}, headers=headers, stream=True, timeout=60)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.events: list[Event] = []
        self.text = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder = Decoder()
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                self.text += chunk.decode()
                self.events += decoder.feed(chunk.decode())
        except (requests.RequestException, OSError, AttributeError):
            pass

    def batch_states(self, experiment_id: str) -> list[tuple[int, str]]:
        return [(e.data["index"], e.data["state"]) for e in self.events if e.kind == BATCH and e.experiment_id == experiment_id]

    def finished(self, experiment_id: str) -> bool:
        return any(e.kind == EXPERIMENT and e.experiment_id == experiment_id and e.data["finished"] for e in self.events)

    def close(self) -> None:
        self.response.close()


@pytest.mark.docker
def test_each_batch_change_is_an_event_in_order_with_ids_that_resume_exactly_and_only_the_callers_own(server: Server):
    admin, alice, bob = Reader(server), Reader(server, "alice"), Reader(server, "bob")
    try:
        experiment_id = post_red(server, red("echo hi", ["a", "b"]), "alice")
        wait_final(server, experiment_id, "alice")
        eventually(lambda: admin.finished(experiment_id) and alice.finished(experiment_id), 10, what=lambda: admin.text)
        for reader in (admin, alice):
            states = reader.batch_states(experiment_id)
            for index in (0, 1):
                assert [s for i, s in states if i == index] == ["scheduled", "processing", "succeeded"]
        ids = [e.id for e in alice.events if e.kind == BATCH]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) == 6
        assert not any(e.experiment_id == experiment_id for e in bob.events)  # not bob's to see
        final = [e for e in alice.events if e.kind == EXPERIMENT][-1].data
        assert final["batches"]["succeeded"] == 2 and final["finished"] and final["username"] == "alice"
        resumed = Reader(server, "alice", last_id=ids[2])  # as if the client had broken off after the third
        eventually(lambda: resumed.finished(experiment_id), 10, what=lambda: resumed.text)
        assert [e.id for e in resumed.events if e.kind == BATCH] == ids[3:]
        resumed.close()
    finally:
        for reader in (admin, alice, bob):
            reader.close()


@pytest.mark.docker
def test_a_filtered_stream_starts_with_where_its_experiment_stands_and_others_are_refused(server: Server):
    experiment_id = post_red(server, red("exit 3"), "bob")
    wait_final(server, experiment_id, "bob")
    reader = Reader(server, "bob", {"experimentId": experiment_id})
    try:
        eventually(lambda: reader.finished(experiment_id), 10, what=lambda: reader.text)
        assert reader.events[0].kind == EXPERIMENT and reader.events[0].data["batches"]["failed"] == 1 and reader.events[0].id is None
    finally:
        reader.close()
    assert server.get("/events", "alice", params={"experimentId": experiment_id}).status_code == 404  # bob's, not alice's
    batch_id = server.get("/batches", "bob", params={"experimentId": experiment_id}).json()[0]["_id"]
    assert server.get("/events", "alice", params={"batchId": batch_id}).status_code == 404
    assert server.get("/events", "alice", headers={"Last-Event-ID": "x"}).status_code == 400
    assert server.get("/events/clients", "alice").status_code == 403


def test_heartbeats_keep_an_idle_stream_alive(server: Server):
    reader = Reader(server, "alice", {"heartbeat": "1"})
    try:
        eventually(lambda: reader.text.count(": keep-alive") >= 2, 10, what=lambda: reader.text)
    finally:
        reader.close()


def clients(server: Server) -> dict[str, int]:
    return server.get("/events/clients").json()


def test_a_killed_client_is_let_go(server: Server, tmp_path: Path):
    before = clients(server)["clients"]
    script = ("import requests, sys; r = requests.get(sys.argv[1] + '/events', auth=(sys.argv[2], sys.argv[3]), stream=True, timeout=60);"
              " print(r.status_code, flush=True); [None for _ in r.iter_content(chunk_size=None)]")
    client = subprocess.Popen([sys.executable, "-c", script, server.url, *server.auth("alice")], stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None and client.stdout.readline().strip() == "200"
    eventually(lambda: clients(server)["clients"] == before + 1, 10, what=lambda: clients(server))
    client.send_signal(signal.SIGKILL)
    client.wait(10)
    eventually(lambda: clients(server)["clients"] == before, 10, what=lambda: clients(server))


def test_a_stalled_client_is_dropped_while_a_reading_one_misses_nothing(tmp_path: Path):
    """Cancellations 150 at a time: the stalled client (it never reads) fills its socket, then its
    500-event buffer, and is dropped; the reading one (faice's own reader) gets every event. A
    burst of 1,000 at once then overflows the reader too: it reconnects with Last-Event-ID and
    still misses nothing."""
    from faice.submit import AgencyClient, Credentials
    from faice.watch import remote_events

    with serving(tmp_path, "--event-buffer", "500") as agency:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = agency.url.removeprefix("http://").split(":")
        stalled.connect((host, int(port)))
        token = requests.post(agency.url + "/login", auth=agency.auth("admin"), timeout=10).json()["access_token"]
        stalled.sendall(f"GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        client = AgencyClient(agency.url, Credentials(*agency.auth("admin")), str)
        events = remote_events(client, {}, pause=0.1)
        got: list[Event] = []
        store = Store(agency.db)
        _, batch_ids = store.create_experiment(source="many", red={}, argvs=[["true"]] * 21000, image="i", engine=None, username="admin", runner="exec")
        trickled, burst = batch_ids[:20000], batch_ids[20000:]  # 20,000 events: some 5 MB, more than the sockets hold

        def read() -> None:
            batches = 0
            for event in events:
                got.append(event)
                batches += event.kind == BATCH
                if batches >= len(batch_ids):
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        eventually(lambda: clients(agency)["clients"] == 2, 10, what=lambda: clients(agency))
        for start in range(0, len(trickled), 150):
            store.set_states(trickled[start:start + 150], "cancelled", "cancelled by the test")
            time.sleep(0.01)
        eventually(lambda: clients(agency)["clients"] == 1, 15, what=lambda: clients(agency))  # let go while it still reads nothing
        stalled.settimeout(15)
        received = b""
        while chunk := stalled.recv(1 << 20):  # what reached it before the server closed the connection
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK") and b"event: " in received
        # cut off while a write to it waited (or, on a loaded machine where one look at the state
        # file found more than 500 new events, told so and ended while its socket still had room)
        assert not received.endswith(b"0\r\n\r\n") or received.endswith(b"event: overflow\ndata: {}\n\n\r\n0\r\n\r\n"), received[-300:]
        dropped = clients(agency)["dropped"]
        store.set_states(burst, "cancelled", "cancelled by the test")
        reader.join(30)
        assert sorted(e.batch_id for e in got if e.kind == BATCH) == sorted(batch_ids)  # every one, none twice
        assert clients(agency)["dropped"] > dropped  # the burst did overflow the reader
        events.close()
        store.close()


# --- faice watch and faice submit --wait -----------------------------------------------------------


def watch_command(server: Server, *args: str, url: bool = False, user: str = "alice") -> subprocess.Popen[str]:
    extra = ["--url", server.url] if url else []
    env = faice_env({"FAICE_AGENCY_USER": user, "FAICE_AGENCY_PASSWORD": server.passwords[user], "PYTHONFAULTHANDLER": "1"})
    return subprocess.Popen([*faice_command(), "--db", str(server.db), "watch", *args, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.docker
@pytest.mark.parametrize("url", [False, True], ids=["state-file", "url"])
def test_watch_follows_an_experiment_until_it_ends_and_exits_by_its_outcome(server: Server, url: bool):
    experiment_id = post_red(server, red('sleep 4; test "$1" = good', ["good", "bad"]), "alice")
    watcher = watch_command(server, experiment_id if url else experiment_id[:10], "--json", url=url)
    out, err = communicate(watcher, 60)
    assert watcher.returncode == 1, err  # a batch failed
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["event"] == "experiment" and lines[-1]["event"] == "experiment" and lines[-1]["finished"]
    assert lines[-1]["batches"]["failed"] == 1 and lines[-1]["batches"]["succeeded"] == 1
    final = {(line["index"], line["state"]) for line in lines if line["event"] == "batch"}
    assert {(0, "succeeded"), (1, "failed")} <= final
    assert server.passwords["alice"] not in out + err


@pytest.mark.docker
def test_watch_of_a_batch_ends_with_it_and_a_watch_of_everything_ends_with_ctrl_c(server: Server):
    everything = watch_command(server)
    try:
        time.sleep(1.5)  # its start-up, so the experiment comes after it
        experiment_id = post_red(server, red("sleep 5"), "alice")
        batch_id = server.get("/batches", "alice", params={"experimentId": experiment_id}).json()[0]["_id"]
        one = watch_command(server, batch_id, url=True)
        out, err = communicate(one, 60)
        assert one.returncode == 0, err
        assert out.strip().splitlines()[-1].endswith(f"batch 0 {batch_id} of {experiment_id}: succeeded")
        eventually(lambda: server.get(f"/batches/{batch_id}", "alice").json()["state"] == "succeeded", 10)
        time.sleep(0.5)
        everything.send_signal(signal.SIGINT)
        out, err = communicate(everything, 20)
    finally:
        everything.kill()
    assert everything.returncode == 0, err
    assert f"experiment {experiment_id}: 1 batch (1 succeeded) — finished" in out
    again = watch_command(server, batch_id)  # already ended: said at once
    out, err = communicate(again, 30)
    assert again.returncode == 0 and out.strip() == f"batch {batch_id} has ended: succeeded", err


def test_watch_explains_an_unknown_id(server: Server):
    for url in (False, True):
        watcher = watch_command(server, "0123456789abcdef01234567", url=url)
        out, err = communicate(watcher, 30)
        assert watcher.returncode == 2 and "Traceback" not in err and "0123456789abcdef01234567" in err, err


@pytest.mark.docker
def test_submit_wait_follows_the_event_stream_not_the_poll(server: Server, tmp_path: Path):
    """--poll 60: a wait that polled would take a minute; the events end it as the batch ends."""
    data = red("sleep 1; echo done", ["x"])
    data["execution"] = {"engine": "ccagency", "settings": {"access": {"url": server.url}}}
    path = tmp_path / "red.json"
    path.write_text(json.dumps(data))
    env = faice_env({"FAICE_AGENCY_USER": "bob", "FAICE_AGENCY_PASSWORD": server.passwords["bob"]})
    started = time.monotonic()
    result = subprocess.run([*faice_command(), "submit", str(path), "--wait", "--json", "--poll", "60"], capture_output=True, text=True, env=env,
                            timeout=50, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "succeeded"
    assert time.monotonic() - started < 40


def test_a_stopping_server_ends_its_streams_as_complete_answers(tmp_path: Path):
    with serving(tmp_path) as agency:
        reader = Reader(agency, "alice")
        eventually(lambda: clients(agency)["clients"] == 1, 10, what=lambda: clients(agency))
        started = time.monotonic()
    assert time.monotonic() - started < 5  # the stream did not hold up the stop
    reader.thread.join(5)
    assert not reader.thread.is_alive() and reader.text.startswith("retry: 1000")


def test_a_watch_ends_only_after_the_last_change_of_a_large_cancelled_experiment(server: Server):
    """1,500 cancellations in one transaction span two pages of history: "finished" comes after
    every one of them, locally and over GET /events."""
    store = Store(server.db)
    experiment_id, batch_ids = store.create_experiment(source="big", red={}, argvs=[["true"]] * 1500, image="i", engine=None, username="alice",
                                                       runner="exec")
    watchers = [watch_command(server, experiment_id, "--json"), watch_command(server, experiment_id, "--json", url=True)]
    try:
        time.sleep(3)  # both started and subscribed
        store.set_states(batch_ids, "cancelled", "cancelled by the test")
        for watcher in watchers:
            out, err = communicate(watcher, 60)
            assert watcher.returncode == 130, err  # cancelled
            lines = [json.loads(line) for line in out.splitlines()]
            assert sum(1 for line in lines if line["event"] == "batch" and line["state"] == "cancelled") == 1500
            assert lines[-1]["event"] == "experiment" and lines[-1]["finished"]
    finally:
        for watcher in watchers:
            watcher.kill()
        store.close()


def test_a_stream_ends_when_its_user_is_removed_and_an_unknown_last_id_starts_afresh(tmp_path: Path):
    from faice.state.users import Users

    with serving(tmp_path, users={"admin": ("admin-password-1", True), "carol": ("carol-password-1", False)}) as agency:
        reader = Reader(agency, "carol")
        eventually(lambda: clients(agency)["clients"] == 1, 10, what=lambda: clients(agency))
        store = Store(agency.db)
        Users(store).remove("carol")
        reader.thread.join(15)
        assert not reader.thread.is_alive()  # ended within a recheck
        assert clients(agency)["clients"] == 0
        assert agency.get("/events", "admin", headers={"Last-Event-ID": "9" * 30}).status_code == 400
        far = Reader(agency, "admin", last_id=10**9)  # an id this state file never gave: from now on, not never
        experiment_id, batch_ids = store.create_experiment(source="x", red={}, argvs=[["true"]], image="i", engine=None, username="admin", runner="exec")
        store.set_state(batch_ids[0], "cancelled", "test")
        eventually(lambda: far.finished(experiment_id), 10, what=lambda: far.text)
        far.close()
        store.close()
