"""faice serve's routes in this process (Starlette's TestClient against ``create_app``), over a real
state file and a fake worker: every route, every documented error, paging and filters, user
isolation, tokens and their expiry, failed-login throttling, cancel semantics, the OpenAPI document
and a schemathesis run. Facts come from /work/shared/reference/cc-agency-api.md (sections 1-3).

What needs a real server or real containers (batches that run, a container killed by a cancel,
the customer's ``requests`` examples, body limits in uvicorn) is in test_serve_api.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from faice.runner.docker_engine import LABEL_BATCH, LABEL_EXPERIMENT
from faice.server.settings import Settings
from tests.conftest import faice_command
from tests.redfiles import shell_red
from tests.serve_app import Api, Output, make_api, run_batches
from tests.serve_fixture import HEX24, SAME_FAILURE, Finished, error_object, unauthorized
from tests.serve_fixture import agency_red as red

UNKNOWN = "0123456789abcdef01234567"  # well-formed, never issued
PROTECTED = [
    ("GET", "/version"), ("GET", "/token"), ("POST", "/login"), ("POST", "/red"),
    ("GET", "/experiments/count"), ("GET", "/experiments"), ("GET", f"/experiments/{UNKNOWN}"), ("DELETE", f"/experiments/{UNKNOWN}"),
    ("GET", "/batches/count"), ("GET", "/batches"), ("GET", f"/batches/{UNKNOWN}"), ("DELETE", f"/batches/{UNKNOWN}"),
    ("GET", f"/batches/{UNKNOWN}/stdout"), ("GET", "/nodes"),
]


def bad_request(response: httpx.Response, message: str) -> None:
    """CC-Agency's 400 about a parameter: the body is the JSON string "400 Bad Request: MESSAGE"."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == f"400 Bad Request: {message}"




def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(api: Api, user: str) -> dict[str, Any]:
    response = api.post("/login", user)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Api:
    """One app per module: users admin, alice and bob; experiments of theirs in ``finished``."""
    return make_api(tmp_path_factory.mktemp("routes"))


@pytest.fixture
def fresh(tmp_path: Path) -> Api:
    """An app of the test's own (throttling, tokens: state no other test may share)."""
    return make_api(tmp_path)


@pytest.fixture(scope="module")
def finished(api: Api) -> Finished:
    """Three experiments of alice, bob and admin (posted in that order) whose batches succeeded."""
    red_alice = red('echo "out-$1"; echo "err-$1" >&2', ["a", "b"])
    ids = {"alice": api.post_red(red_alice, "alice"), "bob": api.post_red(red("echo bob-secret; echo bob-err >&2"), "bob"),
           "admin": api.post_red(red('echo "x$1"', ["0", "1", "2"]), "admin")}
    batches = {
        "alice": run_batches(api, ids["alice"], [Output("out-a\n", "err-a\n"), Output("out-b\n", "err-b\n")]),
        "bob": run_batches(api, ids["bob"], [Output("bob-secret\n", "bob-err\n")]),
        "admin": run_batches(api, ids["admin"], [Output(f"x{i}\n") for i in range(3)]),
    }
    return Finished(ids["alice"], ids["bob"], ids["admin"], red_alice, batches)


# --- the error table --------------------------------------------------------------------------


def test_each_error_class_has_its_status_once() -> None:
    import sqlite3

    from faice.errors import EnvironmentUnusable, InvalidInput, LoadError
    from faice.server.auth import Unauthorized
    from faice.server.errors import BadParameter, NoRoom, NotFound, TooLarge, no_room, status_of
    from faice.server.submission import Rejected

    assert [status_of(e) for e in (BadParameter("x"), Rejected("x"), InvalidInput("x"), LoadError("f", "x"), Unauthorized("x"), NotFound(), TooLarge("x"), NoRoom("x"))] == [
        400, 400, 400, 400, 401, 404, 413, 507]
    from faice.server.errors import Changed, Gone, Refused, Unsatisfiable

    assert [status_of(e) for e in (Refused("x"), Changed("x"), Gone("x"), Unsatisfiable("x", 10))] == [403, 409, 410, 416]
    assert Unsatisfiable("x", 10).headers == {"Content-Range": "bytes */10"}  # answered with the error (answer_error)
    assert status_of(EnvironmentUnusable("x")) is None and status_of(ValueError("x")) is None  # a 500: a bug, not an answer
    assert status_of(no_room(sqlite3.OperationalError("database or disk is full"))) == 507
    assert no_room(sqlite3.OperationalError("no such table: x")) is None


# --- public routes -----------------------------------------------------------------------------


def test_hello_world_and_schemas_need_no_credentials(api: Api) -> None:
    response = api.get("/", None)
    assert response.status_code == 200 and response.json() == {"Hello": "World"}
    red_schema = api.get("/schema/red", None)
    assert red_schema.status_code == 200
    assert {"redVersion", "cli", "inputs", "outputs", "batches", "container", "execution"} <= set(red_schema.json()["properties"])
    engines = api.get("/schema/engines/container", None)
    assert engines.status_code == 200 and list(engines.json()) == ["docker"]
    assert {"image", "ram"} <= set(engines.json()["docker"]["properties"])


def test_version(api: Api) -> None:
    from faice import __version__

    response = api.get("/version", "alice")
    assert response.status_code == 200
    assert response.json() == {"agencyVersion": "9.3.0", "coreVersion": "9.3.0", "faiceVersion": __version__}


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_route_without_credentials_is_401(api: Api, method: str, path: str) -> None:
    unauthorized(api.request(method, path, None, json={} if method == "POST" else None))


def test_wrong_password_and_unknown_user_get_the_same_401(api: Api) -> None:
    wrong = unauthorized(api.get("/version", auth=("bob", "not-the-password")))
    unknown = unauthorized(api.get("/version", auth=(f"nobody{time.monotonic_ns()}", "not-the-password")))
    assert wrong["msg"] == unknown["msg"] == SAME_FAILURE


@pytest.mark.parametrize("header", ["Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer not-a-token", "Digest abc", "Basic"])
def test_malformed_or_unknown_credentials_are_401(api: Api, header: str) -> None:
    unauthorized(api.get("/version", headers={"Authorization": header}))


def test_password_token_of_cc_agency_8(api: Api) -> None:
    response = api.get("/token", "alice")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "validForSeconds"}
    assert re.fullmatch(r"[0-9a-f]{48}", body["token"]) and body["validForSeconds"] == 86400
    token = body["token"]
    # the token replaces the password in Basic auth ...
    assert api.get("/version", auth=("alice", token)).status_code == 200
    assert api.get("/experiments/count", auth=("alice", token)).json() == api.get("/experiments/count", "alice").json()
    # ... of its own user only, and never to get another token or a login
    unauthorized(api.get("/version", auth=("bob", token)))
    unauthorized(api.get("/token", auth=("alice", token)))
    unauthorized(api.post("/login", auth=("alice", token)))


def test_login_gives_tokens_and_bearer_works_on_every_protected_route(api: Api, finished: Finished) -> None:
    tokens = login(api, "alice")
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
        response = api.request(method, path, headers=bearer(tokens["access_token"]), json={} if method == "POST" else None)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    # the token stands for alice: she sees her own counts, bob's are hidden
    mine = api.get("/batches/count", headers=bearer(tokens["access_token"])).json()
    assert mine == api.get("/batches/count", "alice").json() == {"count": 2}
    assert api.get("/batches/count", headers=bearer(tokens["access_token"]), params={"username": "bob"}).json() == {"count": 0}


def test_refresh_token(api: Api) -> None:
    tokens = login(api, "bob")
    response = api.post("/refreshtoken", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["access_token"]
    fresh = response.json()["access_token"]
    assert fresh not in (tokens["access_token"], tokens["refresh_token"])
    assert api.get("/version", headers=bearer(fresh)).status_code == 200
    # a refresh token is no access token, and the other way round
    unauthorized(api.get("/version", headers=bearer(tokens["refresh_token"])))
    unauthorized(api.post("/refreshtoken", headers=bearer(tokens["access_token"])))
    unauthorized(api.post("/refreshtoken", headers=bearer(fresh)))
    unauthorized(api.post("/refreshtoken", "bob"))  # Basic credentials are not a refresh token
    unauthorized(api.post("/refreshtoken", None))


def test_tokens_expire(tmp_path: Path) -> None:
    short = make_api(tmp_path, Settings(access_seconds=1, password_token_seconds=1))
    tokens = login(short, "alice")
    password_token = short.get("/token", "alice").json()
    assert password_token["validForSeconds"] == 1
    assert short.get("/version", headers=bearer(tokens["access_token"])).status_code == 200
    assert short.get("/version", auth=("alice", password_token["token"])).status_code == 200
    time.sleep(1.2)
    expired = unauthorized(short.get("/version", headers=bearer(tokens["access_token"])))
    assert expired["msg"] == "Token has expired"
    unauthorized(short.get("/version", auth=("alice", password_token["token"])))
    # the refresh token lives longer (12 h) and gives a fresh access token
    fresh = short.post("/refreshtoken", headers=bearer(tokens["refresh_token"]))
    assert fresh.status_code == 200
    assert short.get("/version", headers=bearer(fresh.json()["access_token"])).status_code == 200


def test_token_seconds_of_faice_serve_reach_both_kinds_of_token() -> None:
    from faice.server.run import ServeOptions, settings_for

    assert settings_for(ServeOptions()) == Settings()
    settings = settings_for(ServeOptions(token_seconds=4, max_batches=3))
    assert (settings.access_seconds, settings.password_token_seconds, settings.refresh_seconds, settings.max_batches) == (4, 4, Settings().refresh_seconds, 3)


def test_failed_logins_block_a_user_from_that_address_only(fresh: Api) -> None:
    for _ in range(5):
        assert unauthorized(fresh.get("/version", auth=("alice", "wrong-password")))["msg"] == SAME_FAILURE
    blocked = unauthorized(fresh.get("/version", "alice"))
    assert blocked["msg"] != SAME_FAILURE  # it says why, and that it is temporary
    unauthorized(fresh.post("/login", "alice"))
    unauthorized(fresh.get("/token", "alice"))
    assert fresh.get("/version", "bob").status_code == 200  # another user is not affected
    elsewhere = fresh.client("127.0.0.2")  # alice on another machine is not affected either
    assert elsewhere.get("/version", auth=fresh.auth("alice")).status_code == 200
    assert elsewhere.post("/login", auth=fresh.auth("alice")).status_code == 200
    unauthorized(fresh.get("/version", "alice"))  # still blocked here


def test_parallel_guesses_get_no_more_password_checks_than_sequential_ones(fresh: Api) -> None:
    """Each check is counted as failed before the slow hash runs: in-flight guesses cannot all pass."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda i: fresh.client().get("/version", auth=("alice", f"wrong-password-{i}")), range(40)))
    checked = [a for a in answers if unauthorized(a)["msg"] == SAME_FAILURE]
    assert len(checked) == 5, f"{len(checked)} of 40 parallel guesses were checked against the password"
    assert fresh.get("/version", "bob").status_code == 200


def test_a_device_that_signed_in_before_is_never_locked_out_and_guesses_stay_bounded_from_any_address(fresh: Api) -> None:
    """Every loopback client is 127.0.0.1 to a loopback server: guessing must not keep the real
    user out, and other addresses must not buy more guesses."""
    alice = fresh.client()  # keeps its cookies
    assert alice.get("/version", auth=fresh.auth("alice")).status_code == 200
    assert alice.cookies.get("faice_device"), "signing in with a password gives a device cookie"
    checked = 0
    for i in range(30):  # from 30 addresses: as many clients as an attacker likes
        answer = fresh.client(f"127.1.0.{i + 1}").get("/version", auth=("alice", f"guess-{i}"))
        checked += unauthorized(answer)["msg"] == SAME_FAILURE
    assert checked == 20, f"{checked} guesses were checked against the password"
    refused = unauthorized(fresh.get("/version", "alice"))  # a client that never signed in waits now
    assert "too many failed logins for this user" in refused["msg"] and "a device that signed in before is not held back" in refused["msg"]
    assert alice.get("/version", auth=fresh.auth("alice")).status_code == 200  # the real alice is not locked out
    assert alice.post("/login", auth=fresh.auth("alice")).status_code == 200
    assert unauthorized(alice.get("/version", auth=("alice", "a-wrong-one")))["msg"] == SAME_FAILURE  # the device still gets its own 5
    assert fresh.get("/version", "bob").status_code == 200


def test_device_cookies_come_only_from_a_password_check(fresh: Api) -> None:
    import sqlite3

    token = fresh.get("/token", "alice").json()["token"]
    by_token = fresh.get("/version", auth=("alice", token))
    assert by_token.status_code == 200 and "faice_device" not in by_token.cookies  # a token mints no cookie
    for _ in range(5):  # a client that keeps no cookies, with the password remembered after the first check
        assert fresh.get("/version", "alice").status_code == 200
    with sqlite3.connect(fresh.store.path) as conn:
        devices = conn.execute("SELECT COUNT(*) FROM tokens WHERE username = 'alice' AND kind = 'device'").fetchone()[0]
    assert devices <= 2, devices  # /token's own check, and the first remembered one: not one per request


def test_a_remembered_password_ends_with_faice_users_passwd(fresh: Api) -> None:
    import subprocess

    old = fresh.auth("alice")
    assert fresh.get("/version", auth=old).status_code == 200  # checked once: remembered from now on
    changed = subprocess.run([*faice_command(), "--db", str(fresh.store.path), "users", "passwd", "alice", "--password-stdin"],
                             input="a-brand-new-pw\n", capture_output=True, text=True, timeout=30)
    assert changed.returncode == 0, changed.stderr
    assert unauthorized(fresh.get("/version", auth=old))["msg"] == SAME_FAILURE  # not the remembered answer
    assert fresh.get("/version", auth=("alice", "a-brand-new-pw")).status_code == 200


# --- POST /red: what is registered -------------------------------------------------------------


def test_posted_experiment_is_registered_and_handed_to_the_worker(fresh: Api) -> None:
    experiment_id = fresh.post_red(red('echo "$1"', ["a", "b"]), "alice")
    assert HEX24.match(experiment_id)
    [active] = fresh.worker.added
    assert (active.id, active.username, active.admin, active.retries, active.connector_validation) == (experiment_id, "alice", False, 1, True)
    listing = fresh.get("/batches", "alice", params={"experimentId": experiment_id, "ascending": "1"}).json()
    assert [(b["batchesListIndex"], b["state"], b["username"], b["node"]) for b in listing] == [(0, "registered", "alice", None), (1, "registered", "alice", None)]
    document = fresh.get(f"/batches/{listing[1]['_id']}", "alice").json()
    assert document["argv"][-1] == "b" and document["inputs"] == {"value": "b"} and document["outputs"] == {}
    assert [h["state"] for h in document["history"]] == ["registered"] and document["registrationTime"] == document["history"][0]["time"]
    fresh.post_red(red("false"), "admin", disableRetry="true", disableConnectorValidation="1")
    assert (fresh.worker.added[1].retries, fresh.worker.added[1].connector_validation, fresh.worker.added[1].admin) == (0, False, True)


def test_post_red_8_with_retry_if_failed_is_migrated(fresh: Api) -> None:
    data = red("true", execution={"engine": "ccagency", "settings": {"retryIfFailed": True, "batchConcurrencyLimit": 8}})
    data["redVersion"] = "8"
    response = fresh.post("/red", "bob", json=data)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["experimentId"] and HEX24.match(response.json()["experimentId"])
    document = fresh.get(f"/experiments/{response.json()['experimentId']}", "bob").json()
    assert document["redVersion"] == "9"
    assert document["execution"]["engine"] == "ccagency"
    assert document["execution"]["settings"]["retryIfFailed"] is True and document["execution"]["settings"]["batchConcurrencyLimit"] == 8
    assert fresh.worker.added[0].limit == 8


def test_disable_retry_is_kept_in_the_experiments_settings(fresh: Api) -> None:
    experiment_id = fresh.post_red(red("exit 3", execution={"engine": "ccagency", "settings": {}}), "bob", disableRetry="true")
    assert fresh.get(f"/experiments/{experiment_id}", "bob").json()["execution"]["settings"]["retryIfFailed"] is False
    assert fresh.worker.added[0].retries == 0


def test_max_batches_caps_an_experiment(tmp_path: Path) -> None:
    capped = make_api(tmp_path, Settings(max_batches=3))
    too_many = capped.post("/red", json=red("true", values=["a", "b", "c", "d"]))
    assert error_object(too_many, 400)["msg"].startswith("4 batches are more than this server takes in one experiment (3;")
    assert capped.get("/batches/count").json() == {"count": 0} and capped.worker.added == []


def test_a_body_declared_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    small = make_api(tmp_path, Settings(max_body_bytes=1000))
    error = error_object(small.post("/red", content=b" " * 1001, headers={"Content-Type": "application/json"}), 413)
    assert error["msg"] == "the RED data is larger than 1000 bytes"

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(4):
            yield b" " * 400

    assert error_object(small.post("/red", content=chunks(), headers={"Content-Type": "application/json"}), 413)["msg"] == error["msg"]


# --- POST /red: what is refused ----------------------------------------------------------------


def post_problems(api: Api, data: Any, user: str = "alice") -> dict[str, Any]:
    """POST /red that must be refused; the 400 body (message, problems, msg, status)."""
    before = len(api.worker.added)
    body = error_object(api.post("/red", user, json=data), 400)
    assert list(body) == ["message", "problems", "msg", "status"] and body["message"] == body["msg"]
    for problem in body["problems"]:
        assert set(problem) >= {"path", "line", "column", "message"}, problem
        assert isinstance(problem["line"], int) and isinstance(problem["column"], int) and problem["message"]
    assert len(api.worker.added) == before  # nothing was registered
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
def test_post_red_refuses_what_is_no_red_document(api: Api, name: str) -> None:
    body = NOT_RED.get(name, TOO_DEEP.get(name))
    error = error_object(api.post("/red", "alice", content=body, headers={"Content-Type": "application/json"}), 400)
    if name in NOT_RED:
        assert error["msg"].startswith("Did not send RED data as JSON"), error


def test_post_red_locates_a_syntax_error_of_a_yaml_body(api: Api) -> None:
    """What /ui shows beside the file's lines: the parser's line and column, as a problem."""
    error = error_object(api.post("/red", "alice", content=b'redVersion: "9"\ncli:\n  inputs: [1\ncontainer: {}\n', headers={"Content-Type": "application/yaml"}), 400)
    assert error["msg"].startswith("Did not send RED data as JSON") and len(error["problems"]) == 1
    assert {k: error["problems"][0][k] for k in ("line", "column")} == {"line": 4, "column": 10} and "not valid YAML" in error["problems"][0]["message"]


def test_post_red_refuses_a_yaml_alias_bomb_at_once(api: Api) -> None:
    from tests.test_load import _alias_bomb

    started = time.monotonic()
    response = api.post("/red", "alice", content=("redVersion: '9'\nx-bomb:\n" + _alias_bomb(9, "  ")).encode(), headers={"Content-Type": "application/json"})
    error = error_object(response, 400)
    assert "aliases expand the document to more than" in error["msg"] and ":8:" in error["msg"], error
    assert time.monotonic() - started < 5  # it tied the server up for a minute before


def test_post_red_lists_every_problem_with_its_location(api: Api) -> None:
    data = red("true", ["x"])
    data["batches"][0]["inputs"]["value"] = 5  # the cli declares a string
    data["container"]["settings"]["ram"] = 100  # below 256
    data["bogus"] = True
    text = json.dumps(data, indent=2)
    body = error_object(api.post("/red", "alice", content=text.encode(), headers={"Content-Type": "application/json"}), 400)
    assert body["msg"].startswith("Given RED data is invalid.")
    paths = {p["path"]: p for p in body["problems"]}
    assert len(body["problems"]) >= 3, body
    lines = text.splitlines()
    for path, needle in (("batches[0].inputs.value", '"value": 5'), ("container.settings.ram", '"ram": 100'), ("bogus", '"bogus": true')):
        assert path in paths, (path, list(paths))
        line = next(i for i, line in enumerate(lines, 1) if needle in line)
        assert paths[path]["line"] == line, (path, paths[path])
        assert paths[path]["column"] == lines[line - 1].index(needle) + 1, (path, paths[path], lines[line - 1])


def test_post_red_requires_outputs_and_ram(api: Api) -> None:
    data = red("true")
    del data["outputs"]
    assert any("outputs" in p["message"] for p in post_problems(api, data)["problems"])
    several = red("true", ["a", "b"])
    del several["batches"][1]["outputs"]
    problems = post_problems(api, several)["problems"]
    assert [p["path"] for p in problems if "outputs" in p["message"]] == ["batches[1]"], problems
    no_ram = red("true")
    del no_ram["container"]["settings"]["ram"]
    problems = post_problems(api, no_ram)["problems"]
    assert any(p["path"].startswith("container.settings") and "ram" in p["message"] for p in problems), problems


def test_post_red_refuses_variables_the_ccfaice_engine_and_unknown_connectors(api: Api) -> None:
    data = shell_red("cat $1", cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "{{file_url}}"}}}})
    data["outputs"] = {}
    problems = post_problems(api, data)["problems"]
    assert any(p["path"] == "inputs.f.connector.access.url" and "{{file_url}}" in p["message"] for p in problems), problems
    problems = post_problems(api, red("true", execution={"engine": "ccfaice", "settings": {}}))["problems"]
    assert any(p["path"] == "execution.engine" and "ccfaice" in p["message"] for p in problems), problems
    unknown = shell_red("cat $1", cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                        inputs={"f": {"class": "File", "connector": {"command": "red-connector-nonexistent", "access": {}}}})
    unknown["outputs"] = {}
    assert "red-connector-nonexistent" in json.dumps(post_problems(api, unknown))


def local_input(path: Path) -> dict[str, Any]:
    data = shell_red('cat "$1"', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(path)}}}})
    data["outputs"] = {}
    return data


def test_post_red_local_connector_is_for_admins_only(fresh: Api, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host file\n")
    problems = post_problems(fresh, local_input(secret), "bob")["problems"]
    assert any(p["path"] == "inputs.f.connector.command" and "red-connector-local" in p["message"] for p in problems), problems
    assert fresh.get("/experiments/count", "bob").json()["count"] == 0
    fresh.post_red(local_input(secret), "admin")
    missing = post_problems(fresh, local_input(tmp_path / "no-such-file.txt"), "admin")  # checked when registering: a message, no located problem
    assert "no-such-file.txt" in missing["msg"] and missing["problems"] == [], missing


@pytest.mark.parametrize("image", ["127.0.0.1:18099/evil:latest", "localhost:5000/x", "10.1.2.3/team/tool:1", "169.254.169.254/metadata:1"])
def test_a_non_admins_image_may_not_come_from_this_machine_or_a_private_registry(api: Api, image: str) -> None:
    data = red("true", ["x"])
    data["container"]["settings"]["image"]["url"] = image
    refused = post_problems(api, data)
    problem = next(p for p in refused["problems"] if p["path"] == "container.settings.image.url")
    assert "this machine or on a private network; through faice serve only admins may reach those" in problem["message"]
    assert api.post("/red", "admin", json=data).status_code == 200  # an admin's registry is the admin's business


def test_the_value_count_takes_real_documents_and_every_line_break(api: Api) -> None:
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
    dense = api.post("/red", content=b"-\r" * 4_000_000, headers={"Content-Type": "application/x-yaml"})  # YAML nulls, a value per 2 bytes, no \n at all
    assert "no RED document is that dense" in error_object(dense, 400)["msg"]


# --- reading -----------------------------------------------------------------------------------


def test_experiment_document(api: Api, finished: Finished) -> None:
    response = api.get(f"/experiments/{finished.alice}", "alice")
    assert response.status_code == 200
    doc = response.json()
    assert doc["_id"] == finished.alice and doc["username"] == "alice" and isinstance(doc["registrationTime"], float)
    assert doc["redVersion"] == "9" and doc["batchCount"] == 2
    assert doc["batchStates"] == {"registered": 0, "scheduled": 0, "processing": 0, "succeeded": 2, "failed": 0, "cancelled": 0} and doc["finished"] is True
    assert doc["cli"] == finished.red_alice["cli"] and doc["container"] == finished.red_alice["container"]
    assert doc["registrationTime"] == api.get(f"/batches/{finished.batches['alice'][0]}", "alice").json()["registrationTime"]


def test_a_full_batch_carries_what_its_container_used(api: Api, finished: Finished) -> None:
    """faice's extension: peakMemory (bytes) and cpuSeconds as recorded, null where not measured."""
    measured, unmeasured = finished.batches["admin"][0], finished.batches["admin"][1]
    api.store.update(measured, peak_memory=55_574_528, cpu_seconds=1.25)
    shown = api.get(f"/batches/{measured}", "admin").json()
    assert (shown["peakMemory"], shown["cpuSeconds"]) == (55_574_528, 1.25)
    other = api.get(f"/batches/{unmeasured}", "admin").json()
    assert (other["peakMemory"], other["cpuSeconds"]) == (None, None)


def test_a_finished_batch_document(api: Api, finished: Finished) -> None:
    batch = api.get(f"/batches/{finished.batches['alice'][1]}", "alice").json()
    assert batch["_id"] == finished.batches["alice"][1] and batch["experimentId"] == finished.alice and batch["username"] == "alice"
    assert batch["state"] == "succeeded" and batch["attempts"] == 1 and batch["exitCode"] == 0 and batch["node"] == api.worker.node
    assert batch["batchesListIndex"] == 1 and batch["argv"][-1] == "b" and batch["protectedKeysVoided"] is True
    assert [h["state"] for h in batch["history"]] == ["registered", "scheduled", "processing", "succeeded"]
    assert all({"state", "time", "node", "debugInfo", "ccagent"} <= set(h) for h in batch["history"])
    times = [h["time"] for h in batch["history"]]
    assert times == sorted(times) and batch["registrationTime"] == times[0]


def test_list_projections_and_total_count(api: Api, finished: Finished) -> None:
    experiments = api.get("/experiments")
    assert experiments.status_code == 200
    assert experiments.json() and all(set(e) == {"_id", "username", "registrationTime"} for e in experiments.json())
    assert int(experiments.headers["X-Total-Count"]) == len(experiments.json()) == api.get("/experiments/count").json()["count"]
    assert {finished.alice, finished.bob, finished.admin} <= {e["_id"] for e in experiments.json()}
    batches = api.get("/batches", params={"experimentId": finished.alice})
    assert batches.status_code == 200
    keys = {"_id", "username", "registrationTime", "state", "experimentId", "node", "batchesListIndex", "history"}
    assert [set(b) for b in batches.json()] == [keys, keys]
    assert all(set(h) == {"state", "time", "node"} for b in batches.json() for h in b["history"])
    every = api.get("/batches", params={"limit": "1"})
    assert len(every.json()) == 1 and int(every.headers["X-Total-Count"]) == api.get("/batches/count").json()["count"] >= 6


def test_stdout_and_stderr_of_a_batch(api: Api, finished: Finished) -> None:
    for batch_id, value in zip(finished.batches["alice"], ["a", "b"], strict=True):
        for stream in ("stdout", "stderr"):
            response = api.get(f"/batches/{batch_id}/{stream}", "alice")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text == f"{'out' if stream == 'stdout' else 'err'}-{value}\n"
            assert response.headers["content-length"] == "6"
    batch_id = finished.batches["alice"][0]
    bad_request(api.get(f"/batches/{batch_id}/stdout.txt", "alice"), 'Could not transfer "stdout.txt". Use "stdout" or "stderr" as filename.')
    bad_request(api.get("/batches/651e/stdout", "alice"), "Not a valid batch ID.")
    missing = error_object(api.get(f"/batches/{UNKNOWN}/stdout", "alice"), 404)
    assert missing["msg"] == f'Could not find batch with id "{UNKNOWN}".'


def test_stdout_of_a_batch_that_never_started_is_404(fresh: Api) -> None:
    batch_id = fresh.batch_ids(fresh.post_red(red("true"), "alice"))[0]
    assert error_object(fresh.get(f"/batches/{batch_id}/stdout", "alice"), 404)["msg"] == f'Could not find "stdout" of batch "{batch_id}"'


def test_ids_are_accepted_in_upper_case(api: Api, finished: Finished) -> None:
    batch_id = finished.batches["bob"][0]
    response = api.get(f"/batches/{batch_id.upper()}", "bob")
    assert response.status_code == 200 and response.json()["_id"] == batch_id
    assert api.get(f"/experiments/{finished.bob.upper()}", "bob").json()["_id"] == finished.bob


def test_nodes(fresh: Api) -> None:
    response = fresh.get("/nodes", "bob")
    assert response.status_code == 200
    [node] = response.json()
    assert node["nodeName"] == os.uname().nodename and node["state"] == "online"
    assert node["cpus"] == len(os.sched_getaffinity(0))  # what this machine gives faice, not a made-up count
    assert node["ram"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)  # MiB, as CC-Agency counts it
    assert node["gpus"] is None or isinstance(node["gpus"], list)
    assert node["history"][-1]["state"] == "online" and node["currentBatches"] == []
    fresh.worker.problem = "Docker is not reachable: no such socket"
    offline = fresh.get("/nodes").json()[0]
    assert offline["state"] == "offline" and offline["history"][-1]["debugInfo"] == "Docker is not reachable: no such socket"
    assert [h["state"] for h in offline["history"]] == ["online", "offline"]


def test_running_batches_on_nodes_are_the_callers_own(fresh: Api) -> None:
    [batch_id] = run_batches(fresh, fresh.post_red(red("sleep 30"), "alice"), state="processing")

    def current(user: str) -> list[dict[str, Any]]:
        return fresh.get("/nodes", user).json()[0]["currentBatches"]

    assert current("alice") == current("admin") == [{"batchId": batch_id, "ram": 256}]
    assert current("bob") == []  # non-admins see only their own


# --- cancelling --------------------------------------------------------------------------------


def test_cancelling_a_batch_once(fresh: Api) -> None:
    [batch_id] = run_batches(fresh, fresh.post_red(red("sleep 30"), "alice"), state="processing")
    error_object(fresh.delete(f"/batches/{batch_id}", "bob"), 404)  # not bob's
    assert fresh.get(f"/batches/{batch_id}", "alice").json()["state"] == "processing" and fresh.worker.killed == []
    response = fresh.delete(f"/batches/{batch_id}", "alice")
    assert response.status_code == 200, response.text
    assert response.headers["X-Faice-Cancelled"] == "true"
    document = response.json()
    assert document["state"] == "cancelled" and document["_id"] == batch_id
    assert document["history"][-1]["state"] == "cancelled" and document["history"][-1]["reason"] == "cancelled through the API by alice"
    assert fresh.worker.killed == [(LABEL_BATCH, batch_id)]
    again = fresh.delete(f"/batches/{batch_id}", "alice")
    assert again.status_code == 200 and again.headers["X-Faice-Cancelled"] == "false"
    assert again.json()["history"] == document["history"] and fresh.worker.killed == [(LABEL_BATCH, batch_id)]  # nothing more to kill


def test_cancelling_a_final_batch_changes_nothing(api: Api, finished: Finished) -> None:
    batch_id = finished.batches["alice"][1]
    before = api.get(f"/batches/{batch_id}", "alice").json()
    response = api.delete(f"/batches/{batch_id}", "alice")
    assert response.status_code == 200
    assert response.headers["X-Faice-Cancelled"] == "false"
    assert response.json()["state"] == "succeeded" and response.json()["history"] == before["history"]
    assert (LABEL_BATCH, batch_id) not in api.worker.killed


def test_delete_experiment_cancels_its_unfinished_batches(fresh: Api) -> None:
    experiment_id = fresh.post_red(red("sleep 30", ["0", "1", "2"]), "alice")
    first, second, third = fresh.batch_ids(experiment_id)
    fresh.store.set_state(first, "succeeded", "done")
    fresh.store.set_state(second, "processing", "attempt 1")
    error_object(fresh.delete(f"/experiments/{experiment_id}", "bob"), 404)
    response = fresh.delete(f"/experiments/{experiment_id}", "alice")
    assert response.status_code == 200, response.text
    assert response.json() == {"experimentId": experiment_id, "cancelled": 2}
    assert [fresh.store.batch(b).state for b in (first, second, third)] == ["succeeded", "cancelled", "cancelled"]
    assert fresh.worker.killed == [(LABEL_EXPERIMENT, experiment_id)]
    assert fresh.delete(f"/experiments/{experiment_id}", "alice").json() == {"experimentId": experiment_id, "cancelled": 0}


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/experiments/{UNKNOWN}", f"/batches/{UNKNOWN}"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_ids_are_404(api: Api, method: str, path: str) -> None:
    assert error_object(api.request(method, path), 404)["msg"] == "Could not find Object."


@pytest.mark.parametrize("path", ["/experiments/651e", "/batches/651e", "/experiments/" + "g" * 24, "/batches/" + "0" * 25])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_malformed_ids_are_400(api: Api, method: str, path: str) -> None:
    bad_request(api.request(method, path), "Not a valid BSON ObjectId.")


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
    ("/batches", "state=bogus&skip=-1", STATES_MESSAGE),  # the filters are checked before the paging
])
def test_bad_query_parameters_are_400(api: Api, path: str, query: str, message: str) -> None:
    bad_request(api.get(f"{path}?{query}", "alice"), message)


def test_credentials_are_checked_before_parameters(api: Api) -> None:
    unauthorized(api.get("/batches?skip=-1", None))
    unauthorized(api.get("/experiments/651e", None))


@pytest.mark.parametrize("query", ["limit=99999999999999999999", "skip=99999999999999999999"])
@pytest.mark.parametrize("path", ["/experiments", "/batches"])
def test_huge_skip_or_limit_is_no_server_error(api: Api, path: str, query: str) -> None:
    """An integer beyond SQLite's 64 bits is refused (400), never a 500."""
    bad_request(api.get(f"{path}?{query}", "alice"), f"{query.split('=')[0]} cannot be greater than 9223372036854775807.")


def test_a_full_disk_answers_507_and_reads_go_on(tiny_disk: Path, tmp_path: Path) -> None:
    from tests.conftest import fill_up

    full_api = make_api(tmp_path, db=tiny_disk / "faice.db")
    assert full_api.get("/experiments", "alice").status_code == 200  # alice's password is remembered from now on
    filler = fill_up(tiny_disk)
    big = red("true", values=[f"v{i}" for i in range(400)])
    full = full_api.post("/red", "alice", json=big)
    assert full.status_code == 507, full.text
    assert full.json()["msg"].startswith("the server's disk is full") and full.json()["status"] == 507
    assert full_api.get("/experiments", "alice").json() == []  # reading needs no room
    filler.unlink()
    assert full_api.post("/red", "alice", json=big).status_code == 200  # room again: it takes it


# --- filters, paging, order ------------------------------------------------------------------


def indices(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [b["batchesListIndex"] for b in response.json()]


def test_batches_filters_paging_and_order(api: Api, finished: Finished) -> None:
    def batches(**params: str) -> httpx.Response:
        return api.get("/batches", params={"experimentId": finished.admin, **params})

    def count(**params: str) -> int:
        return api.get("/batches/count", params={"experimentId": finished.admin, **params}).json()["count"]

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
    assert count(node=api.worker.node) == 3 and count(node="no-such-node") == 0 and batches(node="no-such-node").json() == []
    assert count(username="admin") == 3 and count(username="alice") == 0
    assert api.get("/batches/count", params={"experimentId": finished.alice.upper()}).json()["count"] == 2
    everything = api.get("/batches", params={"ascending": "true"}).json()
    times = [b["registrationTime"] for b in everything]
    assert times == sorted(times) and len(everything) == api.get("/batches/count").json()["count"]
    assert [b["registrationTime"] for b in api.get("/batches").json()] == sorted(times, reverse=True)


def test_a_long_list_is_answered_like_a_short_page(api: Api, finished: Finished) -> None:
    """Without a limit (or above 1,000) the list is built off the event loop: the same answer."""
    short = api.get("/batches", params={"limit": "1000"})
    long = api.get("/batches", params={"limit": "1001"})
    assert short.json() == long.json() == api.get("/batches").json() and short.headers["X-Total-Count"] == long.headers["X-Total-Count"]


def test_experiments_paging_and_order(fresh: Api) -> None:
    posted = [fresh.post_red(red(f"echo {i}"), "bob") for i in range(3)]
    fresh.post_red(red("echo alice"), "alice")
    newest = fresh.get("/experiments", "bob", params={"limit": "3"})
    assert [e["_id"] for e in newest.json()] == posted[::-1]
    assert newest.headers["X-Total-Count"] == "3"
    assert [e["_id"] for e in fresh.get("/experiments", "bob", params={"ascending": "true"}).json()] == posted
    assert [e["_id"] for e in fresh.get("/experiments", "bob", params={"skip": "1", "limit": "1"}).json()] == [posted[1]]
    as_admin = fresh.get("/experiments", params={"username": "bob", "limit": "3"}).json()
    assert [e["_id"] for e in as_admin] == posted[::-1] and {e["username"] for e in as_admin} == {"bob"}
    assert fresh.get("/experiments/count", params={"username": "bob"}).json() == {"count": 3}
    assert fresh.get("/experiments/count").json() == {"count": 4}


# --- users ---------------------------------------------------------------------------------------


def test_alice_cannot_see_bobs_work(api: Api, finished: Finished) -> None:
    bob_batch = finished.batches["bob"][0]
    history = api.get(f"/batches/{bob_batch}", "bob").json()["history"]
    for method, path in (("GET", f"/experiments/{finished.bob}"), ("DELETE", f"/experiments/{finished.bob}"),
                         ("GET", f"/batches/{bob_batch}"), ("DELETE", f"/batches/{bob_batch}")):
        assert error_object(api.request(method, path, "alice"), 404)["msg"] == "Could not find Object."
    error_object(api.get(f"/batches/{bob_batch}/stdout", "alice"), 404)
    error_object(api.get(f"/batches/{bob_batch}/stderr", "alice"), 404)
    assert api.get("/experiments/count", "alice", params={"username": "bob"}).json() == {"count": 0}
    assert api.get("/batches/count", "alice", params={"username": "bob"}).json() == {"count": 0}
    assert api.get("/batches/count", "alice", params={"experimentId": finished.bob}).json() == {"count": 0}
    hidden = api.get("/batches", "alice", params={"experimentId": finished.bob})
    assert hidden.json() == [] and hidden.headers["X-Total-Count"] == "0"
    assert api.get("/experiments", "alice", params={"username": "bob"}).json() == []
    experiments = api.get("/experiments", "alice").json()
    assert finished.alice in {e["_id"] for e in experiments} and {e["username"] for e in experiments} == {"alice"}
    batches = api.get("/batches", "alice").json()
    assert {b["username"] for b in batches} == {"alice"} and bob_batch not in {b["_id"] for b in batches}
    assert len(batches) == api.get("/batches/count", "alice").json()["count"]
    # the batch is untouched by alice's attempt to cancel it
    assert api.get(f"/batches/{bob_batch}", "bob").json()["history"] == history


def test_admin_sees_everyone_and_filters_by_user(api: Api, finished: Finished) -> None:
    bob_batch = finished.batches["bob"][0]
    assert api.get(f"/experiments/{finished.bob}").json()["username"] == "bob"
    assert api.get(f"/batches/{bob_batch}").json()["username"] == "bob"
    assert api.get(f"/batches/{bob_batch}/stdout").text == "bob-secret\n"
    assert api.get(f"/batches/{bob_batch}/stderr").text == "bob-err\n"
    for route in ("/experiments", "/batches"):
        own = api.get(f"{route}/count", "bob").json()["count"]
        assert own > 0 and api.get(f"{route}/count", params={"username": "bob"}).json()["count"] == own
        listed = api.get(route, params={"username": "bob"})
        assert len(listed.json()) == own and listed.headers["X-Total-Count"] == str(own)
        assert {item["username"] for item in listed.json()} == {"bob"}
        users = {item["username"] for item in api.get(route).json()}
        assert {"alice", "bob", "admin"} <= users


def test_a_user_created_again_under_a_removed_name_inherits_nothing(fresh: Api) -> None:
    import subprocess

    old = fresh.post_red(red("echo the first alice results"), "alice")
    [batch] = run_batches(fresh, old, [Output("the first alice results\n")])
    removed = subprocess.run([*faice_command(), "--db", str(fresh.store.path), "users", "remove", "alice"], capture_output=True, text=True, timeout=30)
    assert removed.returncode == 0, removed.stderr
    added = subprocess.run([*faice_command(), "--db", str(fresh.store.path), "users", "add", "alice", "--password-stdin"], input="a-new-alice-pw\n",
                           capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    fresh.passwords["alice"] = "a-new-alice-pw"
    assert fresh.get("/experiments", "alice").json() == []
    assert fresh.get("/batches/count", "alice").json() == {"count": 0}
    assert fresh.get(f"/batches/{batch}/stdout", "alice").status_code == 404
    kept = fresh.get(f"/experiments/{old}").json()  # nothing lost: the admin still sees it
    assert kept["username"].startswith("alice#removed-")
    assert fresh.get(f"/batches/{batch}/stdout").text == "the first alice results\n"


# --- the OpenAPI document, and generated requests against it ------------------------------------


def test_openapi_lists_every_cc_agency_route_and_docs_are_served(api: Api) -> None:
    schema = api.get("/openapi.json", user=None).json()
    routes = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    expected = {("GET", "/"), ("GET", "/version"), ("GET", "/token"), ("POST", "/login"), ("POST", "/refreshtoken"), ("POST", "/red"),
                ("GET", "/experiments/count"), ("GET", "/experiments"), ("GET", "/experiments/{experiment_id}"), ("DELETE", "/experiments/{experiment_id}"),
                ("GET", "/batches/count"), ("GET", "/batches"), ("GET", "/batches/{batch_id}"), ("DELETE", "/batches/{batch_id}"),
                ("GET", "/batches/{batch_id}/{filename}"), ("GET", "/nodes"), ("GET", "/schema/red"), ("GET", "/schema/engines/container"),
                # faice extensions: outputs over the API
                ("GET", "/batches/{batch_id}/outputs"), ("GET", "/batches/{batch_id}/outputs/{key}"), ("GET", "/batches/{batch_id}/outputs/{key}/{index}"),
                ("GET", "/experiments/{experiment_id}/outputs.zip"),
                # faice extensions: the event stream
                ("GET", "/events"), ("GET", "/events/clients"), ("GET", "/webhooks/secret")}
    assert expected == routes, routes ^ expected
    docs = api.get("/docs", user=None)
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # /ui, the web page, and its files: no credentials (the page signs in), no API, so not in the document
    from faice.server.webui import FILES

    assert all(api.get(f"/ui/{name}", user=None).status_code == 200 for name in FILES) and api.get("/ui", user=None).status_code == 200
    assert not [path for path in schema["paths"] if path.startswith("/ui")]


def test_the_openapi_document_says_what_the_server_answers(api: Api) -> None:
    schema = api.get("/openapi.json", user=None).json()
    operations = {(m.upper(), p): o for p, ops in schema["paths"].items() for m, o in ops.items()}
    assert not any("422" in o["responses"] for o in operations.values())  # FastAPI's validation error: never answered
    assert set(operations[("POST", "/red")]["responses"]) == {"200", "400", "401", "413"}
    assert set(operations[("DELETE", "/batches/{batch_id}")]["responses"]) == {"200", "400", "401", "404"}
    assert set(operations[("GET", "/")]["responses"]) == {"200"}
    assert {p["name"] for p in operations[("GET", "/batches")]["parameters"]} == {"skip", "limit", "ascending", "username", "node", "state", "experimentId"}
    for declared, (method, path) in ((400, ("GET", "/batches?limit=abc")), (401, ("GET", "/version")), (404, ("GET", f"/batches/{UNKNOWN}"))):
        assert api.request(method, path, None if declared == 401 else "admin").status_code == declared
    not_allowed = api.request("PUT", f"/batches/{UNKNOWN}")
    assert not_allowed.status_code == 405 and not_allowed.headers["Allow"] == "DELETE, GET"
    assert error_object(not_allowed, 405)["msg"] == "Method Not Allowed"
    assert error_object(api.get("/no-such-route"), 404)["msg"] == "Not Found"


def test_no_operation_answers_a_server_error(api: Api, finished: Finished) -> None:
    """Generated requests for every operation of /openapi.json, as admin: never a 5xx, and only
    status codes and content types that the document declares."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    auth = "Basic " + base64.b64encode(":".join(api.auth("admin")).encode()).decode()

    def fuzz(operation: Any, mode: GenerationMode, seen: set[int]) -> Any:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": auth})
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
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= 16 and all(statuses.values()), statuses
    assert 200 in statuses["GET /batches"] and 400 in statuses["POST /red"], statuses


def test_stopping_the_app_stops_the_worker(tmp_path: Path) -> None:
    stopping = make_api(tmp_path)
    with stopping.client() as client:
        assert client.get("/").status_code == 200
        assert not stopping.worker.stopped
    assert stopping.worker.stopped  # the lifespan's end: before uvicorn returns, nothing is left running


def test_the_worker_is_a_dependency_a_test_can_override(fresh: Api) -> None:
    from faice.server.dependencies import get_worker
    from tests.serve_app import FakeWorker

    other = FakeWorker()
    fresh.app.dependency_overrides[get_worker] = lambda: other
    try:
        experiment_id = fresh.post_red(red("true"), "alice")
    finally:
        fresh.app.dependency_overrides.clear()
    assert [a.id for a in other.added] == [experiment_id] and fresh.worker.added == []
