"""faice serve's CC-Agency REST API, over real HTTP against a real ``faice serve`` process.

Every route, every documented error, paging and filters, user isolation, tokens and their expiry,
failed-login throttling, the customer's own ``requests`` examples from the CC-Agency API document
(cc-agency-api-seed.md), and a schemathesis run against ``/openapi.json``. Facts checked come from
/work/shared/reference/cc-agency-api.md (sections 1-3) unless a test says otherwise.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests import serve_fixture
from tests.conftest import ROOT, labelled_containers
from tests.redfiles import shell_red
from tests.serve_fixture import Server, post_red, serving, wait_final, wait_state
from tests.serve_fixture import agency_red as red

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)

HEX24 = re.compile(r"^[0-9a-f]{24}$")
REALM = 'Basic realm="Please fill in username and password"'
UNKNOWN = "0123456789abcdef01234567"  # well-formed, never issued
SAME_FAILURE = "invalid user name or password"
# The customer's copy of the CC-Agency API document, kept in the repository so that its examples
# run wherever the tests run (FAICE_REFERENCE_DOCS points at another copy).
SEED_DOC = Path(os.environ.get("FAICE_REFERENCE_DOCS", ROOT / "tests" / "data")) / "cc-agency-api-seed.md"
PROTECTED = [
    ("GET", "/version"), ("GET", "/token"), ("POST", "/login"), ("POST", "/red"),
    ("GET", "/experiments/count"), ("GET", "/experiments"), ("GET", f"/experiments/{UNKNOWN}"), ("DELETE", f"/experiments/{UNKNOWN}"),
    ("GET", "/batches/count"), ("GET", "/batches"), ("GET", f"/batches/{UNKNOWN}"), ("DELETE", f"/batches/{UNKNOWN}"),
    ("GET", f"/batches/{UNKNOWN}/stdout"), ("GET", "/nodes"),
]


def bad_request(response: requests.Response, message: str) -> None:
    """CC-Agency's 400 about a parameter: the body is the JSON string "400 Bad Request: MESSAGE"."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == f"400 Bad Request: {message}"


def error_object(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("msg"), str) and body["msg"] and body.get("status") == status, body
    return body


def unauthorized(response: requests.Response) -> dict[str, Any]:
    body = error_object(response, 401)
    assert response.headers.get("WWW-Authenticate") == REALM
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(server: Server, user: str) -> dict[str, Any]:
    response = server.post("/login", user)
    assert response.status_code == 200, response.text
    return response.json()


def containers_of(label: str, value: str) -> list[str]:
    return labelled_containers(f"{label}={value}")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {timeout} s: {what}")


# --- experiments shared by the module --------------------------------------------------------


@dataclass
class Finished:
    alice: str  # 2 batches: out-a/err-a, out-b/err-b
    bob: str  # 1 batch: bob-secret / bob-err
    admin: str  # 3 batches: x0, x1, x2
    red_alice: dict[str, Any]
    batches: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def finished(server: Server, docker_image: str) -> Finished:
    """Three finished experiments of alice, bob and admin (posted in that order)."""
    red_alice = red('echo "out-$1"; echo "err-$1" >&2', ["a", "b"])
    ids = {
        "alice": post_red(server, red_alice, "alice"),
        "bob": post_red(server, red("echo bob-secret; echo bob-err >&2"), "bob"),
        "admin": post_red(server, red('echo "x$1"', ["0", "1", "2"]), "admin"),
    }
    batches = {user: wait_final(server, experiment_id, user) for user, experiment_id in ids.items()}
    return Finished(ids["alice"], ids["bob"], ids["admin"], red_alice, batches)


@pytest.fixture(scope="module")
def node_name(server: Server) -> str:
    return server.get("/nodes").json()[0]["nodeName"]


# --- public routes -----------------------------------------------------------------------------


def test_hello_world_needs_no_credentials(server: Server) -> None:
    response = server.get("/", None)
    assert response.status_code == 200
    assert response.json() == {"Hello": "World"}


def test_schemas_are_public(server: Server) -> None:
    red_schema = server.get("/schema/red", None)
    assert red_schema.status_code == 200
    assert {"redVersion", "cli", "inputs", "outputs", "batches", "container", "execution"} <= set(red_schema.json()["properties"])
    engines = server.get("/schema/engines/container", None)
    assert engines.status_code == 200
    assert list(engines.json()) == ["docker"]
    assert {"image", "ram"} <= set(engines.json()["docker"]["properties"])


def test_version(server: Server) -> None:
    from faice import __version__

    response = server.get("/version", "alice")
    assert response.status_code == 200
    assert response.json() == {"agencyVersion": "9.3.0", "coreVersion": "9.3.0", "faiceVersion": __version__}


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_route_without_credentials_is_401(server: Server, method: str, path: str) -> None:
    unauthorized(server.request(method, path, None, json={} if method == "POST" else None))


def test_wrong_password_and_unknown_user_get_the_same_401(server: Server) -> None:
    wrong = unauthorized(server.get("/version", auth=("bob", "not-the-password")))
    unknown = unauthorized(server.get("/version", auth=(f"nobody{time.monotonic_ns()}", "not-the-password")))
    assert wrong["msg"] == unknown["msg"] == SAME_FAILURE


@pytest.mark.parametrize("header", ["Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer not-a-token", "Digest abc", "Basic"])
def test_malformed_or_unknown_credentials_are_401(server: Server, header: str) -> None:
    unauthorized(server.get("/version", headers={"Authorization": header}))


def test_password_token_of_cc_agency_8(server: Server) -> None:
    response = server.get("/token", "alice")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "validForSeconds"}
    assert re.fullmatch(r"[0-9a-f]{48}", body["token"]) and body["validForSeconds"] == 86400
    token = body["token"]
    # the token replaces the password in Basic auth ...
    assert server.get("/version", auth=("alice", token)).status_code == 200
    assert server.get("/experiments/count", auth=("alice", token)).json() == server.get("/experiments/count", "alice").json()
    # ... of its own user only, and never to get another token or a login
    unauthorized(server.get("/version", auth=("bob", token)))
    unauthorized(server.get("/token", auth=("alice", token)))
    unauthorized(server.post("/login", auth=("alice", token)))


def test_login_gives_tokens_and_bearer_works_on_every_protected_route(server: Server) -> None:
    tokens = login(server, "alice")
    assert set(tokens) == {"access_token", "refresh_token", "username"}
    assert tokens["username"] == "alice" and tokens["access_token"] != tokens["refresh_token"]
    expected = {
        ("GET", "/version"): 200, ("POST", "/red"): 400, ("GET", "/experiments/count"): 200, ("GET", "/experiments"): 200,
        ("GET", f"/experiments/{UNKNOWN}"): 404, ("DELETE", f"/experiments/{UNKNOWN}"): 404, ("GET", "/batches/count"): 200,
        ("GET", "/batches"): 200, ("GET", f"/batches/{UNKNOWN}"): 404, ("DELETE", f"/batches/{UNKNOWN}"): 404,
        ("GET", f"/batches/{UNKNOWN}/stdout"): 404, ("GET", "/nodes"): 200,
        ("GET", "/token"): 401, ("POST", "/login"): 401,  # these two want the real password
    }
    assert set(expected) == set(PROTECTED)
    for (method, path), status in expected.items():
        response = server.request(method, path, headers=bearer(tokens["access_token"]), json={} if method == "POST" else None)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    # the token stands for alice: she sees her own counts, bob's are hidden
    mine = server.get("/batches/count", headers=bearer(tokens["access_token"])).json()
    assert mine == server.get("/batches/count", "alice").json()
    assert server.get("/batches/count", headers=bearer(tokens["access_token"]), params={"username": "bob"}).json() == {"count": 0}


def test_refresh_token(server: Server) -> None:
    tokens = login(server, "bob")
    response = server.post("/refreshtoken", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["access_token"]
    fresh = response.json()["access_token"]
    assert fresh not in (tokens["access_token"], tokens["refresh_token"])
    assert server.get("/version", headers=bearer(fresh)).status_code == 200
    # a refresh token is no access token, and the other way round
    unauthorized(server.get("/version", headers=bearer(tokens["refresh_token"])))
    unauthorized(server.post("/refreshtoken", headers=bearer(tokens["access_token"])))
    unauthorized(server.post("/refreshtoken", headers=bearer(fresh)))
    unauthorized(server.post("/refreshtoken", "bob"))  # Basic credentials are not a refresh token
    unauthorized(server.post("/refreshtoken", None))


# --- POST /red and what it starts --------------------------------------------------------------


@pytest.mark.docker
def test_posted_batches_run_and_succeed(server: Server, finished: Finished, node_name: str) -> None:
    for experiment_id in (finished.alice, finished.bob, finished.admin):
        assert HEX24.match(experiment_id)
    assert [b["batchesListIndex"] for b in finished.batches["alice"]] == [0, 1]
    for batch, value in zip(finished.batches["alice"], ["a", "b"], strict=True):
        assert HEX24.match(batch["_id"]) and batch["experimentId"] == finished.alice and batch["username"] == "alice"
        assert batch["state"] == "succeeded" and batch["attempts"] == 1 and batch["exitCode"] == 0 and batch["node"] == node_name
        assert batch["argv"][-1] == value
        assert [h["state"] for h in batch["history"]] == ["registered", "scheduled", "processing", "succeeded"]
        assert all({"state", "time", "node", "debugInfo", "ccagent"} <= set(h) for h in batch["history"])
        times = [h["time"] for h in batch["history"]]
        assert times == sorted(times) and batch["registrationTime"] == times[0]
        assert batch["inputs"] == {"value": value} and batch["outputs"] == {}
    assert [b["state"] for b in finished.batches["admin"]] == ["succeeded"] * 3


@pytest.mark.docker
def test_experiment_document(server: Server, finished: Finished) -> None:
    response = server.get(f"/experiments/{finished.alice}", "alice")
    assert response.status_code == 200
    doc = response.json()
    assert doc["_id"] == finished.alice and doc["username"] == "alice" and isinstance(doc["registrationTime"], float)
    assert doc["redVersion"] == "9" and doc["batchCount"] == 2
    assert doc["cli"] == finished.red_alice["cli"] and doc["container"] == finished.red_alice["container"]
    assert doc["registrationTime"] == finished.batches["alice"][0]["registrationTime"]


@pytest.mark.docker
def test_list_projections_and_total_count(server: Server, finished: Finished) -> None:
    experiments = server.get("/experiments")
    assert experiments.status_code == 200
    assert experiments.json() and all(set(e) == {"_id", "username", "registrationTime"} for e in experiments.json())
    assert int(experiments.headers["X-Total-Count"]) == len(experiments.json()) == server.get("/experiments/count").json()["count"]
    assert {finished.alice, finished.bob, finished.admin} <= {e["_id"] for e in experiments.json()}
    batches = server.get("/batches", params={"experimentId": finished.alice})
    assert batches.status_code == 200
    keys = {"_id", "username", "registrationTime", "state", "experimentId", "node", "batchesListIndex", "history"}
    assert [set(b) for b in batches.json()] == [keys, keys]
    assert all(set(h) == {"state", "time", "node"} for b in batches.json() for h in b["history"])
    every = server.get("/batches", params={"limit": "1"})
    assert len(every.json()) == 1 and int(every.headers["X-Total-Count"]) == server.get("/batches/count").json()["count"] >= 6


@pytest.mark.docker
def test_stdout_and_stderr_of_a_batch(server: Server, finished: Finished) -> None:
    for batch, value in zip(finished.batches["alice"], ["a", "b"], strict=True):
        for stream in ("stdout", "stderr"):
            response = server.get(f"/batches/{batch['_id']}/{stream}", "alice")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text == f"{'out' if stream == 'stdout' else 'err'}-{value}\n"
    batch_id = finished.batches["alice"][0]["_id"]
    bad_request(server.get(f"/batches/{batch_id}/stdout.txt", "alice"), 'Could not transfer "stdout.txt". Use "stdout" or "stderr" as filename.')
    bad_request(server.get("/batches/651e/stdout", "alice"), "Not a valid batch ID.")
    missing = error_object(server.get(f"/batches/{UNKNOWN}/stdout", "alice"), 404)
    assert missing["msg"] == f'Could not find batch with id "{UNKNOWN}".'


@pytest.mark.docker
def test_cancelling_a_final_batch_changes_nothing(server: Server, finished: Finished) -> None:
    batch = finished.batches["alice"][1]
    response = server.delete(f"/batches/{batch['_id']}", "alice")
    assert response.status_code == 200
    assert response.headers["X-Faice-Cancelled"] == "false"
    after = response.json()
    assert after["state"] == "succeeded" and after["history"] == batch["history"]
    assert server.get(f"/batches/{batch['_id']}", "alice").json()["state"] == "succeeded"


@pytest.mark.docker
def test_ids_are_accepted_in_upper_case(server: Server, finished: Finished) -> None:
    batch_id = finished.batches["bob"][0]["_id"]
    response = server.get(f"/batches/{batch_id.upper()}", "bob")
    assert response.status_code == 200 and response.json()["_id"] == batch_id
    assert server.get(f"/experiments/{finished.bob.upper()}", "bob").json()["_id"] == finished.bob


@pytest.mark.docker
def test_nodes(server: Server) -> None:
    response = server.get("/nodes", "bob")
    assert response.status_code == 200
    [node] = response.json()
    assert isinstance(node["nodeName"], str) and node["nodeName"]
    assert node["state"] == "online"
    assert node["nodeName"] == os.uname().nodename
    assert node["cpus"] == len(os.sched_getaffinity(0))  # what this machine gives faice, not a made-up count
    assert node["ram"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)  # MiB, as CC-Agency counts it
    assert node["gpus"] is None or isinstance(node["gpus"], list)
    assert node["history"] and node["history"][-1]["state"] == "online"
    assert isinstance(node["currentBatches"], list)


@pytest.mark.docker
def test_running_batch_on_nodes_and_cancelled_through_the_api(server: Server, docker_image: str) -> None:
    experiment_id = post_red(server, red("echo started; sleep 30"), "alice")
    [listed] = server.get("/batches", "alice", params={"experimentId": experiment_id}).json()
    batch_id = listed["_id"]
    wait_state(server, batch_id, ("processing",), "alice")
    wait_until(lambda: containers_of("faice.batch", batch_id), 20, "the batch's container runs")

    def current(user: str) -> list[dict[str, Any]]:
        return server.get("/nodes", user).json()[0]["currentBatches"]

    assert {"batchId": batch_id, "ram": 256} in current("alice")
    assert {"batchId": batch_id, "ram": 256} in current("admin")
    assert batch_id not in [b["batchId"] for b in current("bob")]  # non-admins see only their own

    error_object(server.delete(f"/batches/{batch_id}", "bob"), 404)  # not bob's
    error_object(server.delete(f"/experiments/{experiment_id}", "bob"), 404)
    assert server.get(f"/batches/{batch_id}", "alice").json()["state"] == "processing"

    response = server.delete(f"/batches/{batch_id}", "alice")
    assert response.status_code == 200, response.text
    assert response.headers["X-Faice-Cancelled"] == "true"
    assert response.json()["state"] == "cancelled" and response.json()["_id"] == batch_id
    wait_until(lambda: not containers_of("faice.batch", batch_id), 15, "the cancelled batch's container is gone")
    time.sleep(0.5)  # the runner notices the killed container: the cancel must stay
    document = server.get(f"/batches/{batch_id}", "alice").json()
    assert document["state"] == "cancelled" and document["history"][-1]["state"] == "cancelled"
    assert batch_id not in [b["batchId"] for b in current("admin")]
    again = server.delete(f"/batches/{batch_id}", "alice")
    assert again.status_code == 200 and again.headers["X-Faice-Cancelled"] == "false"
    assert again.json()["history"] == document["history"]


@pytest.mark.docker
def test_delete_experiment_cancels_its_unfinished_batches(server: Server, docker_image: str) -> None:
    data = red("sleep 30", ["0", "1"], execution={"engine": "ccagency", "settings": {"batchConcurrencyLimit": 1}})
    experiment_id = post_red(server, data, "alice")
    listing = server.get("/batches", "alice", params={"experimentId": experiment_id, "ascending": "1"}).json()
    first, second = (b["_id"] for b in listing)
    wait_state(server, first, ("processing",), "alice")
    assert server.get(f"/batches/{second}", "alice").json()["state"] == "registered"  # batchConcurrencyLimit 1
    response = server.delete(f"/experiments/{experiment_id}", "alice")
    assert response.status_code == 200, response.text
    assert response.json() == {"experimentId": experiment_id, "cancelled": 2}
    wait_until(lambda: not containers_of("faice.experiment", experiment_id), 15, "the experiment's containers are gone")
    time.sleep(1.2)  # more than the dispatcher's tick: the registered batch must not start now
    documents = wait_final(server, experiment_id, "alice", timeout=5)
    assert [d["state"] for d in documents] == ["cancelled", "cancelled"]
    assert "processing" not in [h["state"] for h in documents[1]["history"]]
    assert server.delete(f"/experiments/{experiment_id}", "alice").json() == {"experimentId": experiment_id, "cancelled": 0}
    assert not containers_of("faice.experiment", experiment_id)


@pytest.mark.docker
def test_failed_batch_is_retried_once_unless_disabled(server: Server, docker_image: str) -> None:
    failing = red("echo oops >&2; exit 3", execution={"engine": "ccagency", "settings": {}})
    retried = wait_final(server, post_red(server, failing, "bob"), "bob")[0]
    assert retried["state"] == "failed" and retried["attempts"] == 2 and retried["exitCode"] == 3
    assert [h["state"] for h in retried["history"]].count("processing") == 2
    assert "oops" in retried["history"][-1]["debugInfo"] and "3" in retried["error"]
    experiment_id = post_red(server, failing, "bob", disableRetry="true")
    once = wait_final(server, experiment_id, "bob")[0]
    assert once["state"] == "failed" and once["attempts"] == 1
    settings = server.get(f"/experiments/{experiment_id}", "bob").json()["execution"]["settings"]
    assert settings["retryIfFailed"] is False


@pytest.mark.docker
def test_a_batch_whose_image_cannot_be_pulled_fails_and_counts_its_attempt(server: Server, docker_image: str) -> None:
    """CC-Agency counts an attempt on every registered -> scheduled move (reference §3.2 ``attempts``)."""
    data = red("true")
    data["container"]["settings"]["image"]["url"] = "127.0.0.1:9/faice-no-such-image:latest"
    batch = wait_final(server, post_red(server, data, "admin"))[0]  # an admin: a registry on this machine is refused for others
    assert batch["state"] == "failed"
    assert "faice-no-such-image" in batch["error"] and "faice-no-such-image" in batch["history"][-1]["debugInfo"]
    assert "scheduled" in [h["state"] for h in batch["history"]]
    assert batch["attempts"] == 1, f"scheduled once, but attempts is {batch['attempts']}"


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/experiments/{UNKNOWN}", f"/batches/{UNKNOWN}"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_ids_are_404(server: Server, method: str, path: str) -> None:
    body = error_object(server.request(method, path), 404)
    assert body["msg"] == "Could not find Object."


@pytest.mark.parametrize("path", ["/experiments/651e", "/batches/651e", "/experiments/" + "g" * 24, "/batches/" + "0" * 25])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_malformed_ids_are_400(server: Server, method: str, path: str) -> None:
    bad_request(server.request(method, path), "Not a valid BSON ObjectId.")


STATES_MESSAGE = "Given state is not valid. Must be one of ['registered', 'scheduled', 'processing', 'succeeded', 'failed', 'cancelled']."


@pytest.mark.parametrize(("path", "query", "message"), [
    ("/experiments", "skip=-1", "skip cannot be lower than 0."),
    ("/batches", "skip=-1", "skip cannot be lower than 0."),
    ("/experiments", "limit=0", "limit cannot be lower than 1."),
    ("/batches", "limit=0", "limit cannot be lower than 1."),
    ("/experiments", "limit=abc", "limit must be an integer."),
    ("/batches", "skip=abc", "skip must be an integer."),
    ("/batches", "state=bogus", STATES_MESSAGE),
    ("/batches/count", "state=bogus", STATES_MESSAGE),
    ("/batches", "experimentId=651e", "Experiment is not a valid BSON ObjectId."),
    ("/batches/count", "experimentId=651e", "Experiment is not a valid BSON ObjectId."),
])
def test_bad_query_parameters_are_400(server: Server, path: str, query: str, message: str) -> None:
    bad_request(server.get(f"{path}?{query}", "alice"), message)


@pytest.mark.parametrize("query", ["limit=99999999999999999999", "skip=99999999999999999999"])
@pytest.mark.parametrize("path", ["/experiments", "/batches"])
def test_huge_skip_or_limit_is_no_server_error(server: Server, path: str, query: str) -> None:
    """An integer beyond SQLite's 64 bits is refused (400), never a 500."""
    bad_request(server.get(f"{path}?{query}", "alice"), f"{query.split('=')[0]} cannot be greater than 9223372036854775807.")


def post_problems(server: Server, data: Any, user: str = "alice") -> dict[str, Any]:
    """POST /red that must be refused; the 400 body (message, problems, msg, status)."""
    body = error_object(server.post("/red", user, json=data), 400)
    assert isinstance(body["problems"], list) and body["message"] == body["msg"]
    for problem in body["problems"]:
        assert set(problem) >= {"path", "line", "column", "message"}, problem
        assert isinstance(problem["line"], int) and isinstance(problem["column"], int) and problem["message"]
    return body


NOT_RED = {
    "empty": b"", "blank": b"   ", "list": b"[]", "empty-object": b"{}", "null": b"null", "number": b"42", "string": b'"red"',
    "broken": b"{", "not-utf8": b"\xff\xfe\x00",
    # values nothing after the door could store or answer with (they were 500s, one for good)
    "5001-digit-int": b'{"redVersion": ' + b"9" * 5001 + b"}", "ram-2**63": b'{"redVersion": "9", "container": {"settings": {"ram": 9223372036854775808}}}',
    "ram-10**30-yaml": b'redVersion: "9"\ncontainer: {settings: {ram: 1000000000000000000000000000000}}\n', "lone-surrogate": b'{"redVersion": "9", "doc": "\\ud800"}',
}
TOO_DEEP = {  # a nesting no RED document has: refused like any other bad document, not a 500
    "deep-json-list": b"[" * 100_000,
    "deep-json-object": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "deep-yaml": b'redVersion: "9"\ndoc: ' + b"[" * 3000 + b"]" * 3000 + b"\n",
}


@pytest.mark.parametrize("name", [*NOT_RED, *TOO_DEEP])
def test_post_red_refuses_what_is_no_red_document(server: Server, name: str) -> None:
    body = NOT_RED.get(name, TOO_DEEP.get(name))
    response = server.post("/red", "alice", data=body, headers={"Content-Type": "application/json"})
    error = error_object(response, 400)
    if name in NOT_RED:
        assert error["msg"].startswith("Did not send RED data as JSON"), error


def test_post_red_refuses_a_yaml_alias_bomb_at_once(server: Server) -> None:
    from tests.test_load import _alias_bomb

    started = time.monotonic()
    response = server.post("/red", "alice", data=("redVersion: '9'\nx-bomb:\n" + _alias_bomb(9, "  ")).encode(), headers={"Content-Type": "application/json"})
    error = error_object(response, 400)
    assert "aliases expand the document to more than" in error["msg"] and ":8:" in error["msg"], error
    assert time.monotonic() - started < 5  # it tied the server up for a minute before
    assert server.get("/", user=None).status_code == 200


def test_post_red_lists_every_problem_with_its_location(server: Server) -> None:
    data = red("true", ["x"])
    data["batches"][0]["inputs"]["value"] = 5  # the cli declares a string
    data["container"]["settings"]["ram"] = 100  # below 256
    data["bogus"] = True
    text = json.dumps(data, indent=2)
    response = server.post("/red", "alice", data=text.encode(), headers={"Content-Type": "application/json"})
    body = error_object(response, 400)
    assert body["msg"].startswith("Given RED data is invalid.")
    paths = {p["path"]: p for p in body["problems"]}
    assert len(body["problems"]) >= 3, body
    lines = text.splitlines()
    for path, needle in (("batches[0].inputs.value", '"value": 5'), ("container.settings.ram", '"ram": 100'), ("bogus", '"bogus": true')):
        assert path in paths, (path, list(paths))
        line = next(i for i, line in enumerate(lines, 1) if needle in line)
        assert paths[path]["line"] == line, (path, paths[path])
        assert paths[path]["column"] == lines[line - 1].index(needle) + 1, (path, paths[path], lines[line - 1])


def test_post_red_requires_outputs(server: Server) -> None:
    data = red("true")
    del data["outputs"]
    assert any("outputs" in p["message"] for p in post_problems(server, data)["problems"])
    several = red("true", ["a", "b"])
    del several["batches"][1]["outputs"]
    problems = post_problems(server, several)["problems"]
    assert [p["path"] for p in problems if "outputs" in p["message"]] == ["batches[1]"], problems


def test_post_red_requires_ram(server: Server) -> None:
    data = red("true")
    del data["container"]["settings"]["ram"]
    problems = post_problems(server, data)["problems"]
    assert any(p["path"].startswith("container.settings") and "ram" in p["message"] for p in problems), problems


def test_post_red_refuses_variables(server: Server) -> None:
    data = shell_red("cat $1", cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "{{file_url}}"}}}})
    data["outputs"] = {}
    problems = post_problems(server, data)["problems"]
    assert any(p["path"] == "inputs.f.connector.access.url" and "{{file_url}}" in p["message"] for p in problems), problems


def test_post_red_refuses_the_ccfaice_engine(server: Server) -> None:
    problems = post_problems(server, red("true", execution={"engine": "ccfaice", "settings": {}}))["problems"]
    assert any(p["path"] == "execution.engine" and "ccfaice" in p["message"] for p in problems), problems


def test_post_red_refuses_an_unknown_connector(server: Server) -> None:
    data = shell_red("cat $1", cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-nonexistent", "access": {}}}})
    data["outputs"] = {}
    body = post_problems(server, data)
    assert "red-connector-nonexistent" in json.dumps(body), body


def local_input(path: Path) -> dict[str, Any]:
    data = shell_red('cat "$1"', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(path)}}}})
    data["outputs"] = {}
    return data


def test_post_red_local_connector_is_for_admins_only(server: Server, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host file\n")
    before = server.get("/experiments/count", "bob").json()["count"]
    problems = post_problems(server, local_input(secret), "bob")["problems"]
    assert any(p["path"] == "inputs.f.connector.command" and "red-connector-local" in p["message"] for p in problems), problems
    assert server.get("/experiments/count", "bob").json()["count"] == before  # nothing registered


@pytest.mark.docker
def test_post_red_local_connector_as_admin_runs(server: Server, tmp_path: Path, docker_image: str) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from the host\n")
    source.chmod(0o644)
    tmp_path.chmod(0o755)
    batch = wait_final(server, post_red(server, local_input(source), "admin"))[0]
    assert batch["state"] == "succeeded", batch["error"]
    assert server.get(f"/batches/{batch['_id']}/stdout").text == "from the host\n"


@pytest.mark.docker
def test_post_red_8_with_retry_if_failed_is_migrated(server: Server, docker_image: str) -> None:
    data = red("true", execution={"engine": "ccagency", "settings": {"retryIfFailed": True, "batchConcurrencyLimit": 8}})
    data["redVersion"] = "8"
    response = server.post("/red", "bob", json=data)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["experimentId"] and HEX24.match(response.json()["experimentId"])
    experiment_id = response.json()["experimentId"]
    document = server.get(f"/experiments/{experiment_id}", "bob").json()
    assert document["redVersion"] == "9"
    assert document["execution"]["engine"] == "ccagency"
    assert document["execution"]["settings"]["retryIfFailed"] is True and document["execution"]["settings"]["batchConcurrencyLimit"] == 8
    assert wait_final(server, experiment_id, "bob")[0]["state"] == "succeeded"


# --- filters, paging, order ------------------------------------------------------------------


def indices(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [b["batchesListIndex"] for b in response.json()]


@pytest.mark.docker
def test_batches_filters_paging_and_order(server: Server, finished: Finished, node_name: str) -> None:
    def batches(**params: str) -> requests.Response:
        return server.get("/batches", params={"experimentId": finished.admin, **params})

    def count(**params: str) -> int:
        return server.get("/batches/count", params={"experimentId": finished.admin, **params}).json()["count"]

    assert indices(batches()) == [2, 1, 0]  # newest first; ties in reverse registration order
    assert indices(batches(ascending="true")) == [0, 1, 2]
    assert indices(batches(ascending="1", skip="1", limit="1")) == [1]
    assert indices(batches(skip="1", limit="1")) == [1]
    assert indices(batches(skip="2", limit="5")) == [0]
    assert indices(batches(skip="3")) == []
    assert indices(batches(ascending="no")) == [2, 1, 0]
    assert batches(skip="1", limit="1").headers["X-Total-Count"] == "3"
    assert count() == 3
    assert count(state="succeeded") == 3 and indices(batches(state="succeeded")) == [2, 1, 0]
    assert count(state="failed") == 0 and batches(state="failed").json() == [] and batches(state="failed").headers["X-Total-Count"] == "0"
    assert count(node=node_name) == 3 and count(node="no-such-node") == 0 and batches(node="no-such-node").json() == []
    assert count(username="admin") == 3 and count(username="alice") == 0
    assert server.get("/batches/count", params={"experimentId": finished.alice.upper()}).json()["count"] == 2
    everything = server.get("/batches", params={"ascending": "true"}).json()
    times = [b["registrationTime"] for b in everything]
    assert times == sorted(times) and len(everything) == server.get("/batches/count").json()["count"]
    assert [b["registrationTime"] for b in server.get("/batches").json()] == sorted(times, reverse=True)


@pytest.mark.docker
def test_experiments_paging_and_order(server: Server, docker_image: str) -> None:
    posted = [post_red(server, red(f"echo {i}"), "bob") for i in range(3)]
    total = server.get("/experiments/count", "bob").json()["count"]
    newest = server.get("/experiments", "bob", params={"limit": "3"})
    assert [e["_id"] for e in newest.json()] == posted[::-1]
    assert newest.headers["X-Total-Count"] == str(total)
    oldest_first = server.get("/experiments", "bob", params={"ascending": "true", "skip": str(total - 3)}).json()
    assert [e["_id"] for e in oldest_first] == posted
    assert [e["_id"] for e in server.get("/experiments", "bob", params={"skip": "1", "limit": "1"}).json()] == [posted[1]]
    as_admin = server.get("/experiments", params={"username": "bob", "limit": "3"}).json()
    assert [e["_id"] for e in as_admin] == posted[::-1] and {e["username"] for e in as_admin} == {"bob"}
    assert server.get("/experiments/count", params={"username": "bob"}).json() == {"count": total}
    for experiment_id in posted:
        wait_final(server, experiment_id, "bob")


# --- users ---------------------------------------------------------------------------------------


@pytest.mark.docker
def test_alice_cannot_see_bobs_work(server: Server, finished: Finished) -> None:
    bob_batch = finished.batches["bob"][0]["_id"]
    for method, path in (("GET", f"/experiments/{finished.bob}"), ("DELETE", f"/experiments/{finished.bob}"),
                         ("GET", f"/batches/{bob_batch}"), ("DELETE", f"/batches/{bob_batch}")):
        assert error_object(server.request(method, path, "alice"), 404)["msg"] == "Could not find Object."
    error_object(server.get(f"/batches/{bob_batch}/stdout", "alice"), 404)
    error_object(server.get(f"/batches/{bob_batch}/stderr", "alice"), 404)
    assert server.get("/experiments/count", "alice", params={"username": "bob"}).json() == {"count": 0}
    assert server.get("/batches/count", "alice", params={"username": "bob"}).json() == {"count": 0}
    assert server.get("/batches/count", "alice", params={"experimentId": finished.bob}).json() == {"count": 0}
    hidden = server.get("/batches", "alice", params={"experimentId": finished.bob})
    assert hidden.json() == [] and hidden.headers["X-Total-Count"] == "0"
    assert server.get("/experiments", "alice", params={"username": "bob"}).json() == []
    experiments = server.get("/experiments", "alice").json()
    assert finished.alice in {e["_id"] for e in experiments} and {e["username"] for e in experiments} == {"alice"}
    batches = server.get("/batches", "alice").json()
    assert {b["username"] for b in batches} == {"alice"} and bob_batch not in {b["_id"] for b in batches}
    assert len(batches) == server.get("/batches/count", "alice").json()["count"]
    # the batch is untouched by alice's attempt to cancel it
    assert server.get(f"/batches/{bob_batch}", "bob").json()["history"] == finished.batches["bob"][0]["history"]


@pytest.mark.docker
def test_admin_sees_everyone_and_filters_by_user(server: Server, finished: Finished) -> None:
    bob_batch = finished.batches["bob"][0]["_id"]
    assert server.get(f"/experiments/{finished.bob}").json()["username"] == "bob"
    assert server.get(f"/batches/{bob_batch}").json()["username"] == "bob"
    assert server.get(f"/batches/{bob_batch}/stdout").text == "bob-secret\n"
    assert server.get(f"/batches/{bob_batch}/stderr").text == "bob-err\n"
    for route in ("/experiments", "/batches"):
        own = server.get(f"{route}/count", "bob").json()["count"]
        assert own > 0 and server.get(f"{route}/count", params={"username": "bob"}).json()["count"] == own
        listed = server.get(route, params={"username": "bob"})
        assert len(listed.json()) == own and listed.headers["X-Total-Count"] == str(own)
        assert {item["username"] for item in listed.json()} == {"bob"}
        users = {item["username"] for item in server.get(route).json()}
        assert {"alice", "bob", "admin"} <= users


# --- separate servers: tokens that expire, throttling, a relative state file -------------------


def test_tokens_expire(tmp_path: Path) -> None:
    with serving(tmp_path, "--token-seconds", "4") as short:
        tokens = login(short, "alice")
        password_token = short.get("/token", "alice").json()
        assert password_token["validForSeconds"] == 4
        assert short.get("/version", headers=bearer(tokens["access_token"])).status_code == 200
        assert short.get("/version", auth=("alice", password_token["token"])).status_code == 200
        time.sleep(5)
        expired = unauthorized(short.get("/version", headers=bearer(tokens["access_token"])))
        assert expired["msg"] == "Token has expired"
        unauthorized(short.get("/version", auth=("alice", password_token["token"])))
        # the refresh token lives longer (12 h) and gives a fresh access token
        fresh = short.post("/refreshtoken", headers=bearer(tokens["refresh_token"]))
        assert fresh.status_code == 200
        assert short.get("/version", headers=bearer(fresh.json()["access_token"])).status_code == 200


class SourceAddress(HTTPAdapter):
    """Connect from a chosen local address (another loopback address: another client)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddress(address))
    return session


def test_failed_logins_block_a_user_from_that_address_only(tmp_path: Path) -> None:
    with serving(tmp_path) as fresh:
        for _ in range(5):
            assert unauthorized(fresh.get("/version", auth=("alice", "wrong-password")))["msg"] == SAME_FAILURE
        blocked = unauthorized(fresh.get("/version", "alice"))
        assert blocked["msg"] != SAME_FAILURE  # it says why, and that it is temporary
        unauthorized(fresh.post("/login", "alice"))
        unauthorized(fresh.get("/token", "alice"))
        assert fresh.get("/version", "bob").status_code == 200  # another user is not affected
        with from_address("127.0.0.2") as elsewhere:  # alice on another machine is not affected either
            response = elsewhere.get(fresh.url + "/version", auth=fresh.auth("alice"), timeout=30)
            assert response.status_code == 200, response.text
            assert elsewhere.post(fresh.url + "/login", auth=fresh.auth("alice"), timeout=30).status_code == 200
        unauthorized(fresh.get("/version", "alice"))  # still blocked here


def test_parallel_guesses_get_no_more_password_checks_than_sequential_ones(tmp_path: Path) -> None:
    """Each check is counted as failed before the slow hash runs: in-flight guesses cannot all pass."""
    from concurrent.futures import ThreadPoolExecutor

    with serving(tmp_path) as fresh, ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda i: fresh.get("/version", auth=("alice", f"wrong-password-{i}")), range(40)))
        checked = [a for a in answers if unauthorized(a)["msg"] == SAME_FAILURE]
        assert len(checked) == 5, f"{len(checked)} of 40 parallel guesses were checked against the password"
        assert fresh.get("/version", "bob").status_code == 200


def test_a_forwarded_for_header_does_not_escape_throttling(tmp_path: Path) -> None:
    """The client address that throttling counts must not be chosen by the client itself."""
    with serving(tmp_path) as fresh:
        for i in range(5):
            unauthorized(fresh.get("/version", auth=("bob", "wrong-password"), headers={"X-Forwarded-For": f"10.1.2.{i}"}))
        guess = fresh.get("/version", auth=("bob", "wrong-password"), headers={"X-Forwarded-For": "10.1.2.99"})
        right = fresh.get("/version", "bob")
        assert right.status_code == 401, "5 failed logins from 127.0.0.1 (with made-up X-Forwarded-For headers) did not block bob there"
        assert unauthorized(guess)["msg"] != SAME_FAILURE, "a 6th password guess was checked"


@pytest.mark.docker
def test_a_relative_state_file_runs_batches(tmp_path: Path, docker_image: str) -> None:
    """``faice --db faice.db serve`` (a path relative to the working directory) runs batches like an absolute one."""
    with serving(tmp_path, db="relative.db", cwd=tmp_path) as relative:
        batch = wait_final(relative, post_red(relative, red("echo relative"), "alice"), "alice")[0]
        assert batch["state"] == "succeeded", batch["error"]
        assert relative.get(f"/batches/{batch['_id']}/stdout", "alice").text == "relative\n"


# --- the customer's document: its own requests examples ----------------------------------------


@dataclass
class Example:
    code: str
    method: str
    path: str
    response: Any  # the JSON the document shows, or None


def seed_examples(text: str) -> tuple[str, str, list[Example]]:
    """The import block, the red.yml block and every request example (with its documented response)."""
    blocks = list(re.finditer(r"```(\w+)\n(.*?)```", text, re.S))
    setup, examples = "", []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        code = block.group(2)
        call = re.search(r"requests\.(get|post|delete)\(\s*'https://example\.com([^']*)'", code)
        if call is None:
            setup += code
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        shown = None
        if following is not None and following.group(1) == "json" and "Response" in text[block.end():following.start()]:
            shown = json.loads(following.group(2))
        examples.append(Example(code, call.group(1).upper(), call.group(2), shown))
    red_yml = re.search(r"File red\.yml:\s*```yaml\n(.*?)```", text, re.S)
    assert red_yml, "the document's red.yml block"
    return setup, red_yml.group(1), examples


def run_example(code: str, namespace: dict[str, Any]) -> Any:
    """Execute an example; the value of its last expression (the requests call)."""
    tree = ast.parse(code)
    last = tree.body[-1]
    assert isinstance(last, ast.Expr), code
    exec(compile(ast.Module(body=tree.body[:-1], type_ignores=[]), "<seed example>", "exec"), namespace)
    return eval(compile(ast.Expression(body=last.value), "<seed example>", "eval"), namespace)


def same_shape(shown: Any, actual: Any) -> bool:
    """Every key the document shows is there, with a value of the same JSON type."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(k in actual and same_shape(v, actual[k]) for k, v in shown.items())
    if isinstance(shown, bool) or isinstance(actual, bool):
        return isinstance(shown, bool) and isinstance(actual, bool)
    if isinstance(shown, (int, float)):
        return isinstance(actual, (int, float))
    return type(shown) is type(actual)


@pytest.mark.docker
def test_seed_document_examples_work_unchanged(server: Server, finished: Finished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ruamel.yaml import YAML

    setup, red_yml, examples = seed_examples(SEED_DOC.read_text())
    (tmp_path / "red.yml").write_text(red_yml)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"requests": requests, "YAML": YAML, "yaml": YAML(typ="safe")}
    exec(setup, namespace)
    user, password = server.auth("alice")
    doc_token = next(e.response["token"] for e in examples if e.path == "/token")
    alice_batch = finished.batches["alice"][0]["_id"]
    real_ids = {"5b7b2c98aafce967d9e2709b": finished.alice, "5b7b2c98aafce967d9e2709c": alice_batch}
    token = ""
    seen: dict[tuple[str, str], int] = {}
    seed_experiment = ""

    def adapt(code: str, ids: dict[str, str]) -> str:
        code = code.replace("https://example.com", server.url).replace(doc_token, token or doc_token)
        code = re.sub(r"auth=\(\s*'?guest'?\s*,\s*'?guest'?\s*\)", f"auth=({user!r}, {password!r})", code)
        code = re.sub(r"auth=\(\s*'guest'\s*,", f"auth=({user!r},", code)
        for doc_id, real in ids.items():
            code = code.replace(doc_id, real)
        return code

    for example in examples:
        key = (example.method, re.sub(r"[0-9a-f]{24}", "ID", example.path.split("?")[0]))
        documented_ids = [i for i in real_ids if i in example.code]
        if documented_ids:  # the document's ids do not exist here ...
            response = run_example(adapt(example.code, {}), namespace)
            assert response.status_code == 404, (example.code, response.status_code, response.text)
        response = run_example(adapt(example.code, real_ids), namespace)  # ... ours do
        assert isinstance(response, requests.Response)
        assert response.status_code == 200, (example.code, response.status_code, response.text)
        if example.response is not None:
            assert same_shape(example.response, response.json()), (example.code, example.response, response.json())
        seen[key] = seen.get(key, 0) + 1
        if key == ("GET", "/token"):
            token = response.json()["token"]
        if key == ("POST", "/red"):
            seed_experiment = response.json()["experimentId"]
            assert HEX24.match(seed_experiment)
        if key == ("GET", "/batches/ID/stdout"):
            assert response.text == "out-a\n"
        if key == ("DELETE", "/batches/ID"):
            assert response.json()["state"] == "succeeded" and response.headers["X-Faice-Cancelled"] == "false"
        if key == ("GET", "/"):
            assert response.json() == example.response
    assert seen == {
        ("GET", "/"): 1, ("GET", "/token"): 1, ("GET", "/version"): 2, ("POST", "/red"): 1, ("GET", "/experiments/count"): 1,
        ("GET", "/experiments"): 1, ("GET", "/experiments/ID"): 1, ("GET", "/batches/count"): 1, ("GET", "/batches"): 1,
        ("GET", "/batches/ID"): 1, ("DELETE", "/batches/ID"): 1, ("GET", "/batches/ID/stdout"): 1, ("GET", "/nodes"): 1,
    }
    # the document's experiment: its image cannot be pulled here, which the batch says
    batch = wait_final(server, seed_experiment, "alice")[0]
    assert batch["state"] == "failed"
    assert "docker.io/copla/grepwrap" in batch["error"] and "docker.io/copla/grepwrap" in batch["history"][-1]["debugInfo"]
    experiment = server.get(f"/experiments/{seed_experiment}", "alice").json()
    assert experiment["redVersion"] == "9" and experiment["execution"]["settings"]["retryIfFailed"] is True
    assert "raw.githubusercontent.com" not in json.dumps(batch)  # access data is never shown


# --- schemathesis --------------------------------------------------------------------------------


def test_no_operation_answers_a_server_error(server: Server) -> None:
    """Generated requests for every operation of /openapi.json, as admin: never a 5xx, and only
    status codes and content types that the document declares."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    session = requests.Session()
    session.auth = server.auth("admin")
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}

    def fuzz(operation: Any, mode: GenerationMode, seen: set[int]) -> Any:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def check(case: Any) -> None:
            response = case.call(base_url=server.url, session=session, timeout=30)
            seen.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance])

        return check

    for result in schema.get_all_operations():
        operation = result.ok()
        has_input = bool(operation.query) or bool(operation.body)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if has_input else (GenerationMode.POSITIVE,):
            try:
                fuzz(operation, mode, statuses.setdefault(operation.label, set()))()
            except Unsatisfiable:
                pass
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    with contextlib.suppress(Exception):
        session.close()
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= 16 and all(statuses.values()), statuses
    assert 200 in statuses["GET /batches"] and 400 in statuses["POST /red"], statuses


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_one_request_cannot_make_the_server_take_more_than_its_limits(tmp_path: Path) -> None:
    """A chunked body is counted as it arrives (413 at 64 MiB, 300 MiB sent), and --max-batches caps an experiment."""
    with serving(tmp_path, "--max-batches", "3") as fresh:
        peak_before = peak_rss_mib(fresh.process.pid)
        sent = 0

        def chunks() -> Any:
            nonlocal sent
            while sent < 300 * 2**20:
                sent += 2**20
                yield b" " * 2**20

        with contextlib.suppress(requests.ConnectionError):  # the server may close the connection before all is sent
            response = fresh.post("/red", data=chunks(), headers={"Content-Type": "application/json"})
            error = error_object(response, 413)
            assert "larger than 67108864 bytes" in error["msg"]
        assert fresh.get("/version").status_code == 200
        # at most the 64 MiB it may take (and a copy), never the 300 MiB that were sent
        assert peak_rss_mib(fresh.process.pid) - peak_before < 160, "the server kept reading past its 64 MiB limit"
        too_many = fresh.post("/red", json=red("true", values=["a", "b", "c", "d"]))
        assert error_object(too_many, 400)["msg"].startswith("4 batches are more than this server takes in one experiment (3;")
        assert fresh.get("/batches/count").json() == {"count": 0}


@pytest.mark.docker
def test_only_admins_connectors_reach_this_machine(server: Server, http_server: Any, docker_image: str) -> None:
    """Connectors run on the server's machine: a non-admin's may reach only the public internet."""
    (http_server.root / "in.txt").write_text("local data\n")
    data = shell_red("cat \"$1\"", cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}}, inputs={"f": {
        "class": "File", "connector": {"command": "red-connector-http", "access": {"url": http_server.url + "/in.txt"}}}})
    data["outputs"] = {}
    refused = wait_final(server, post_red(server, data, "alice"), "alice")[0]
    assert refused["state"] == "failed"
    assert "private network; through faice serve only admins may reach those" in refused["error"]
    assert http_server.received == []
    allowed = wait_final(server, post_red(server, data, "admin"))[0]
    assert allowed["state"] == "succeeded", allowed["error"]
    assert server.get(f"/batches/{allowed['_id']}/stdout").text == "local data\n"


def test_openapi_lists_every_cc_agency_route_and_docs_are_served(server: Server) -> None:
    schema = server.get("/openapi.json", user=None).json()
    routes = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    expected = {("GET", "/"), ("GET", "/version"), ("GET", "/token"), ("POST", "/login"), ("POST", "/refreshtoken"), ("POST", "/red"),
                ("GET", "/experiments/count"), ("GET", "/experiments"), ("GET", "/experiments/{experiment_id}"), ("DELETE", "/experiments/{experiment_id}"),
                ("GET", "/batches/count"), ("GET", "/batches"), ("GET", "/batches/{batch_id}"), ("DELETE", "/batches/{batch_id}"),
                ("GET", "/batches/{batch_id}/{filename}"), ("GET", "/nodes"), ("GET", "/schema/red"), ("GET", "/schema/engines/container")}
    assert expected <= routes, expected - routes
    docs = server.get("/docs", user=None)
    assert docs.status_code == 200 and "/openapi.json" in docs.text


@pytest.mark.parametrize("image", ["127.0.0.1:18099/evil:latest", "localhost:5000/x", "10.1.2.3/team/tool:1", "169.254.169.254/metadata:1"])
def test_a_non_admins_image_may_not_come_from_this_machine_or_a_private_registry(server: Server, image: str) -> None:
    data = red("true", ["x"])
    data["container"]["settings"]["image"]["url"] = image
    refused = error_object(server.post("/red", "alice", json=data), 400)
    problem = next(p for p in refused["problems"] if p["path"] == "container.settings.image.url")
    assert "this machine or on a private network; through faice serve only admins may reach those" in problem["message"]
    assert server.post("/red", "admin", json=data).status_code == 200  # an admin's registry is the admin's business


@pytest.mark.docker
def test_a_non_admins_container_has_no_network_to_reach_this_machine(server: Server, docker_image: str) -> None:
    """Docker's bridge would let a user's tool reach the host's services and private networks."""
    data = red("ls /sys/class/net", ["x"])
    user = wait_final(server, post_red(server, data, "alice"), "alice")[0]
    admin = wait_final(server, post_red(server, data, "admin"))[0]
    assert user["state"] == admin["state"] == "succeeded", (user["error"], admin["error"])
    assert server.get(f"/batches/{user['_id']}/stdout", "alice").text.split() == ["lo"]
    assert "eth0" in server.get(f"/batches/{admin['_id']}/stdout").text.split()


def test_a_device_that_signed_in_before_is_never_locked_out_and_guesses_stay_bounded_from_any_address(tmp_path: Path) -> None:
    """On a loopback server every client is 127.0.0.1: guessing must not keep the real user out,
    and binding to other loopback addresses must not buy more guesses."""
    with serving(tmp_path) as fresh:
        alice = requests.Session()
        assert alice.get(fresh.url + "/version", auth=fresh.auth("alice"), timeout=30).status_code == 200
        assert alice.cookies.get("faice_device"), "signing in with a password gives a device cookie"
        checked = 0
        for i in range(30):  # from 30 addresses: as many clients as an attacker likes
            with from_address(f"127.1.0.{i + 1}") as attacker:
                answer = attacker.get(fresh.url + "/version", auth=("alice", f"guess-{i}"), timeout=30)
                checked += unauthorized(answer)["msg"] == SAME_FAILURE
        assert checked == 20, f"{checked} guesses were checked against the password"
        refused = unauthorized(fresh.get("/version", "alice"))  # a client that never signed in waits now
        assert "too many failed logins for this user" in refused["msg"] and "a device that signed in before is not held back" in refused["msg"]
        assert alice.get(fresh.url + "/version", auth=fresh.auth("alice"), timeout=30).status_code == 200  # the real alice is not locked out
        assert alice.post(fresh.url + "/login", auth=fresh.auth("alice"), timeout=30).status_code == 200
        assert unauthorized(alice.get(fresh.url + "/version", auth=("alice", "a-wrong-one"), timeout=30))["msg"] == SAME_FAILURE  # the device still gets its own 5
        assert fresh.get("/version", "bob").status_code == 200


def test_a_body_of_millions_of_values_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """30 million values in 60 MiB took the server to 955 MB (three at once 1.46 GB) before a 400."""
    from concurrent.futures import ThreadPoolExecutor

    body = b"[" + b"0," * 30_000_000 + b"0]"
    with serving(tmp_path) as fresh:
        peak_before = peak_rss_mib(fresh.process.pid)
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: fresh.post("/red", data=body, headers={"Content-Type": "application/json"}), range(3)))
        for answer in answers:
            error = error_object(answer, 400)
            assert "values in" in error["msg"] and "no RED document is that dense" in error["msg"] and "the rest of it was not read" in error["msg"], error
        assert peak_rss_mib(fresh.process.pid) - peak_before < 400, "the server parsed what it should have refused"
        assert time.monotonic() - started < 60
        assert fresh.get("/", user=None).status_code == 200


def test_the_openapi_document_says_what_the_server_answers(server: Server) -> None:
    schema = server.get("/openapi.json", user=None).json()
    operations = {(m.upper(), p): o for p, ops in schema["paths"].items() for m, o in ops.items()}
    assert not any("422" in o["responses"] for o in operations.values())  # FastAPI's validation error: never answered
    assert set(operations[("POST", "/red")]["responses"]) == {"200", "400", "401", "413"}
    assert set(operations[("DELETE", "/batches/{batch_id}")]["responses"]) == {"200", "400", "401", "404"}
    assert set(operations[("GET", "/")]["responses"]) == {"200"}
    for declared, (method, path) in ((400, ("GET", "/batches?limit=abc")), (401, ("GET", "/version")), (404, ("GET", f"/batches/{UNKNOWN}"))):
        assert server.request(method, path, None if declared == 401 else "admin").status_code == declared
    not_allowed = server.request("PUT", f"/batches/{UNKNOWN}")
    assert not_allowed.status_code == 405 and not_allowed.headers["Allow"] == "DELETE, GET"


def test_a_remembered_password_ends_with_faice_users_passwd(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import faice_command

    with serving(tmp_path) as fresh:
        old = fresh.auth("alice")
        assert fresh.get("/version", auth=old).status_code == 200  # checked once: remembered from now on
        changed = subprocess.run([*faice_command(), "--db", str(fresh.db), "users", "passwd", "alice", "--password-stdin"],
                                 input="a-brand-new-pw\n", capture_output=True, text=True, timeout=30)
        assert changed.returncode == 0, changed.stderr
        assert unauthorized(fresh.get("/version", auth=old))["msg"] == SAME_FAILURE  # not the remembered answer
        assert fresh.get("/version", auth=("alice", "a-brand-new-pw")).status_code == 200


def test_the_value_count_takes_real_documents_and_every_line_break(server: Server) -> None:
    """70,000 batches of two inputs with auth and an output (58 values each) are fine; a YAML body
    of \\r-separated items is counted like any other."""
    from faice.server.submission import ValueCounter

    batch = {"inputs": {"a": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "https://example.org/a", "auth": {"username": "u", "password": "p"}}}},
                        "b": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "https://example.org/b", "auth": {"username": "u", "password": "p"}}}}},
             "outputs": {"o": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "https://example.org/o"}}}}}
    counter = ValueCounter()
    text = json.dumps({"redVersion": "9", "batches": [batch] * 70_000}).encode()
    for i in range(0, len(text), 65536):
        counter.add(text[i:i + 65536])
    dense = server.post("/red", data=b"-\r" * 4_000_000, headers={"Content-Type": "application/x-yaml"})  # YAML nulls, a value per 2 bytes, no \n at all
    assert "no RED document is that dense" in error_object(dense, 400)["msg"]


def test_device_cookies_come_only_from_a_password_check(tmp_path: Path) -> None:
    import sqlite3

    with serving(tmp_path) as fresh:
        token = fresh.get("/token", "alice").json()["token"]
        by_token = requests.get(fresh.url + "/version", auth=("alice", token), timeout=30)
        assert by_token.status_code == 200 and "faice_device" not in by_token.cookies  # a token mints no cookie
        for _ in range(5):  # a client that keeps no cookies, with the password remembered after the first check
            assert requests.get(fresh.url + "/version", auth=fresh.auth("alice"), timeout=30).status_code == 200
        with sqlite3.connect(fresh.db) as conn:
            devices = conn.execute("SELECT COUNT(*) FROM tokens WHERE username = 'alice' AND kind = 'device'").fetchone()[0]
        assert devices <= 2, devices  # /token's own check, and the first remembered one: not one per request
