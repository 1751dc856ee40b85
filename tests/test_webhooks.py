"""Webhooks: a real ``faice serve`` running real containers POSTs each state change of an
experiment submitted with ``notify`` to a receiver on loopback, signed, in order, again while the
receiver fails, without holding up the batches; non-admins reach only the public internet."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from faice.server.webhooks import WebhookProblem, check_urls, shown, signature
from tests import serve_fixture
from tests.conftest import eventually, faice_command, faice_env
from tests.serve_fixture import Server, post_red, serving, wait_final
from tests.serve_fixture import agency_red as red

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)


class Receiver:
    """A webhook receiver on loopback: every POST in the order it came; the first ``fail`` answered 503,
    or each held ``hold`` seconds."""

    def __init__(self, fail: int = 0, hold: float = 0.0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail, self.hold = fail, hold
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.hold)
                failing = receiver.fail > 0
                receiver.fail -= 1
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook/s3cr3t-path"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]

    def finished(self, experiment_id: str) -> bool:
        return any(e["event"] == "experiment" and e["experimentId"] == experiment_id and e["finished"] for e in self.events())

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def secret(server: Server, user: str) -> str:
    answer = server.get("/webhooks/secret", user).json()
    assert answer["header"] == "X-Faice-Signature-256"
    return answer["secret"]


def test_urls_are_checked_and_shown_without_their_path():
    assert check_urls(["https://hooks.example.org/a", "https://hooks.example.org/a"], public_only=False) == ["https://hooks.example.org/a"]
    assert check_urls("http://127.0.0.1:9/x", public_only=False) == ["http://127.0.0.1:9/x"]
    for bad, why in ((["ftp://x.org/"], "http:// or https://"), ([1], "a list of URLs"), (["http://127.0.0.1/x"], "private network"),
                     (["http://localhost/x"], "private network"), ([f"https://h{i}.org/" for i in range(6)], "at most 5")):
        with pytest.raises(WebhookProblem, match=why):
            check_urls(bad, public_only=True)
    assert shown("https://user:pw@hooks.example.org/T000/B000/XXXX?token=1") == "https://hooks.example.org/…"
    body = b'{"event":"batch"}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


@pytest.mark.docker
def test_each_state_change_is_posted_signed_and_in_order(server: Server):
    receiver = Receiver()
    try:
        data = red("echo hi", ["a", "b"])
        data["notify"] = [receiver.url]
        experiment_id = post_red(server, data, "admin")
        wait_final(server, experiment_id)
        eventually(lambda: receiver.finished(experiment_id), 15, what=lambda: receiver.events())
        key = secret(server, "admin")
        for headers, body in receiver.received:
            assert headers["x-faice-signature-256"] == "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            assert headers["content-type"] == "application/json" and headers["x-faice-event"] == json.loads(body)["event"]
        events = receiver.events()
        first = next(e for e in events if e["event"] == "experiment")
        assert sum(first["batches"].values()) == 2 and not first["finished"]  # counts of both batches, before the end
        assert events[-1]["event"] == "experiment" and events[-1]["finished"] and events[-1]["batches"]["succeeded"] == 2
        batch_events = [e for e in events if e["event"] == "batch"]
        for index in (0, 1):
            assert [e["state"] for e in batch_events if e["index"] == index] == ["scheduled", "processing", "succeeded"]
        ids = [e["id"] for e in events]
        assert ids == sorted(ids)  # in order
        assert secret(server, "alice") != key  # a secret per user
        document = server.get(f"/experiments/{experiment_id}").json()
        assert receiver.url not in json.dumps(document) and "notify" not in json.dumps(document.get("red", {}))  # never stored or shown
    finally:
        receiver.close()


@pytest.mark.docker
def test_a_failing_receiver_gets_each_event_again_in_order_and_a_hanging_one_holds_up_no_batch(server: Server):
    failing, hanging = Receiver(fail=2), Receiver(hold=20)
    try:
        data = red("echo hi")
        data["notify"] = [failing.url, hanging.url]
        started = time.monotonic()
        experiment_id = post_red(server, data, "admin")
        wait_final(server, experiment_id)
        assert time.monotonic() - started < 15  # the hanging receiver (20 s a POST) did not hold the batch
        eventually(lambda: failing.finished(experiment_id), 30, what=lambda: failing.events())
        sent = [(e["id"], e["event"], e.get("batchId")) for e in failing.events()]
        assert sent[0] == sent[1] == sent[2]  # the first event tried three times (two 503s)
        assert sent[2:] == sorted(set(sent[2:]), key=sent[2:].index) and [i for i, *_ in sent] == sorted(i for i, *_ in sent)  # then each once, in order
        assert len(hanging.received) >= 1  # it got the first, and holds it
    finally:
        failing.close()
        hanging.http.shutdown()


def test_a_non_admin_may_not_notify_this_machine_and_bad_fields_are_refused(server: Server):
    data = red("true")
    data["notify"] = ["http://127.0.0.1:9/hook"]
    refused = server.post("/red", "alice", json=data)
    assert refused.status_code == 400 and "private network" in refused.text and "127.0.0.1:9/hook" not in refused.text
    data["notify"] = "ftp://example.org/x"
    assert server.post("/red", "admin", json=data).status_code == 400


@pytest.mark.docker
def test_submit_notify_sends_the_url_with_the_experiment(server: Server, tmp_path: Path):
    receiver = Receiver()
    try:
        data = red("true")
        data["execution"] = {"engine": "ccagency", "settings": {"access": {"url": server.url}}}
        path = tmp_path / "red.json"
        path.write_text(json.dumps(data))
        env = faice_env({"FAICE_AGENCY_USER": "admin", "FAICE_AGENCY_PASSWORD": server.passwords["admin"]})
        result = subprocess.run([*faice_command(), "submit", str(path), "--notify", receiver.url, "--wait", "--json"], capture_output=True, text=True,
                                env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        experiment_id = json.loads(result.stdout)["experimentId"]
        eventually(lambda: receiver.finished(experiment_id), 15, what=lambda: receiver.events())
    finally:
        receiver.close()


@pytest.mark.docker
def test_a_cancelled_large_experiment_notifies_every_cancellation_before_finished(server: Server):
    receiver = Receiver()
    try:
        data = red("sleep 60", [str(i) for i in range(1500)])
        data["notify"] = [receiver.url]
        experiment_id = post_red(server, data, "admin")
        assert server.delete(f"/experiments/{experiment_id}").status_code == 200
        eventually(lambda: receiver.finished(experiment_id), 60, what=lambda: len(receiver.received))
        events = receiver.events()
        assert events[-1]["event"] == "experiment" and events[-1]["finished"]
        cancelled = {e["batchId"] for e in events if e["event"] == "batch" and e["state"] == "cancelled"}
        assert len(cancelled) == 1500
    finally:
        receiver.close()


@pytest.mark.docker
def test_a_stopping_server_notifies_the_cancellations_it_makes(tmp_path: Path):
    receiver = Receiver()
    try:
        with serving(tmp_path) as agency:
            data = red("sleep 60")
            data["notify"] = [receiver.url]
            experiment_id = post_red(agency, data, "admin")
            eventually(lambda: any(e.get("state") == "processing" for e in receiver.events()), 30, what=lambda: receiver.events())
        states = [e.get("state") for e in receiver.events() if e["event"] == "batch"]
        assert states[-1] == "cancelled" and receiver.finished(experiment_id)
    finally:
        receiver.close()


def test_malformed_urls_and_too_many_in_use_are_refused_in_one_line(server: Server, tmp_path: Path):
    from faice.server.webhooks import MAX_USER_URLS, Webhooks

    for bad in ("http://[::1/x", "http://[zz]/x", "http://example.org:port/x"):
        data = red("true")
        data["notify"] = [bad]
        answer = server.post("/red", "alice", json=data)
        assert answer.status_code == 400 and "not a valid URL" in answer.text, answer.text
    assert "Traceback" not in server.stderr()

    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    hooks = Webhooks(store, lambda name: "s")
    hooks.add("e1", "carol", [f"https://h{i}.example.org/" for i in range(MAX_USER_URLS)], public_only=True)
    with pytest.raises(WebhookProblem, match=f"at most {MAX_USER_URLS}"):
        hooks.check_room("carol", ["https://another.example.org/"])
    hooks.check_room("dave", ["https://another.example.org/"])  # another user's room


def test_a_damaged_key_file_stops_the_server_at_its_start(tmp_path: Path):
    from tests.serve_fixture import add_users

    db = tmp_path / "faice.db"
    add_users(db, {"admin": ("admin-password-1", True)})
    (tmp_path / "faice.db.webhook-key").write_text("abcd\n")
    started = subprocess.run([*faice_command(), "--db", str(db), "serve", "--port", "0"], capture_output=True, text=True, timeout=60,
                             env=faice_env(), stdin=subprocess.DEVNULL)
    assert started.returncode == 3 and "holds no webhook key" in started.stderr and "Traceback" not in started.stderr, started.stderr
