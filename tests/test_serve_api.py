"""faice serve's CC-Agency REST API end to end: a real ``faice serve`` process, real HTTP, real containers.

What only the whole server shows: posted batches run and their stdout/stderr is served, a cancel
kills a running container, retries, connectors and networks of admins and others, a relative state
file, the customer's own ``requests`` examples from the CC-Agency API document
(cc-agency-api-seed.md), and the limits that live in uvicorn (a chunked body, the memory a body
may take, no X-Forwarded-For). The routes' own logic (auth, tokens, throttling, paging, filters,
visibility, validation, errors, the OpenAPI document) is tested in-process in test_serve_routes.py.
Facts checked come from /work/shared/reference/cc-agency-api.md (sections 1-3).
"""

from __future__ import annotations

import ast
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
from tests.conftest import ROOT, eventually, labelled_containers
from tests.redfiles import shell_red
from tests.serve_fixture import HEX24, SAME_FAILURE, Finished, Server, error_object, post_red, serving, unauthorized, wait_final, wait_state
from tests.serve_fixture import agency_red as red

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)

# The customer's copy of the CC-Agency API document, kept in the repository so that its examples
# run wherever the tests run (FAICE_REFERENCE_DOCS points at another copy).
SEED_DOC = Path(os.environ.get("FAICE_REFERENCE_DOCS", ROOT / "tests" / "data")) / "cc-agency-api-seed.md"




def containers_of(label: str, value: str) -> list[str]:
    return labelled_containers(f"{label}={value}")


# --- experiments shared by the module --------------------------------------------------------


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
        for stream, text in (("stdout", f"out-{value}\n"), ("stderr", f"err-{value}\n")):  # what the container wrote, served as text
            response = server.get(f"/batches/{batch['_id']}/{stream}", "alice")
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain") and response.text == text
    assert [b["state"] for b in finished.batches["admin"]] == ["succeeded"] * 3


@pytest.mark.docker
def test_running_batch_on_nodes_and_cancelled_through_the_api(server: Server, docker_image: str) -> None:
    experiment_id = post_red(server, red("echo started; sleep 30"), "alice")
    [listed] = server.get("/batches", "alice", params={"experimentId": experiment_id}).json()
    batch_id = listed["_id"]
    wait_state(server, batch_id, ("processing",), "alice")
    eventually(lambda: containers_of("faice.batch", batch_id), timeout=20, what="the batch's container runs")

    def current(user: str) -> list[dict[str, Any]]:
        return server.get("/nodes", user).json()[0]["currentBatches"]

    assert server.get("/nodes", "alice").json()[0]["state"] == "online"  # the real worker reaches Docker
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
    eventually(lambda: not containers_of("faice.batch", batch_id), timeout=15, what="the cancelled batch's container is gone")
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
    eventually(lambda: not containers_of("faice.experiment", experiment_id), timeout=15, what="the experiment's containers are gone")
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


def local_input(path: Path) -> dict[str, Any]:
    data = shell_red('cat "$1"', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(path)}}}})
    data["outputs"] = {}
    return data


@pytest.mark.docker
def test_post_red_local_connector_as_admin_runs(server: Server, tmp_path: Path, docker_image: str) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from the host\n")
    source.chmod(0o644)
    tmp_path.chmod(0o755)
    batch = wait_final(server, post_red(server, local_input(source), "admin"))[0]
    assert batch["state"] == "succeeded", batch["error"]
    assert server.get(f"/batches/{batch['_id']}/stdout").text == "from the host\n"


# --- separate servers: throttling behind uvicorn, a relative state file, body limits -----------


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


@pytest.mark.docker
def test_a_non_admins_container_has_no_network_to_reach_this_machine(server: Server, docker_image: str) -> None:
    """Docker's bridge would let a user's tool reach the host's services and private networks."""
    data = red("ls /sys/class/net", ["x"])
    user = wait_final(server, post_red(server, data, "alice"), "alice")[0]
    admin = wait_final(server, post_red(server, data, "admin"))[0]
    assert user["state"] == admin["state"] == "succeeded", (user["error"], admin["error"])
    assert server.get(f"/batches/{user['_id']}/stdout", "alice").text.split() == ["lo"]
    assert "eth0" in server.get(f"/batches/{admin['_id']}/stdout").text.split()


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


