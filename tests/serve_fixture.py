"""A real ``faice serve`` for tests: a subprocess on a free loopback port, with a temporary state file.

Use it from a test module::

    from tests import serve_fixture
    from tests.serve_fixture import Server, start_server, wait_final

    server = serve_fixture.server  # the module-scoped fixture (an assignment keeps ruff quiet)

    def test_version(server: Server) -> None:
        assert server.get("/version", user="alice").status_code == 200

The ``server`` fixture (module scope: one server per test module that uses it) has the users
``admin`` (admin), ``alice`` and ``bob`` (not admins), passwords in ``server.passwords``.

``Server`` (an ``AsUser``) gives:

* ``url`` (``http://127.0.0.1:PORT``), ``db`` (the state file's path), ``process`` (the Popen);
* ``auth(name)``: ``(name, password)`` for requests' ``auth=``;
* ``get/post/delete(path, user="admin", **kwargs)``: a request with that user's Basic credentials
  (``user=None``: no credentials); ``request(method, path, user, **kwargs)`` for others;
* ``stderr()``: what the server printed so far; ``stop()``: SIGTERM, then wait (at most 15 s)
  and return the exit code (``stop()`` twice is harmless).

For a server of your own (other options, other users, a function scope)::

    with serving(tmp_path, "--token-seconds", "2") as server:   # stops it and asserts exit 0
        ...
    server = start_server(tmp_path, "--jobs", "1", users={"carol": ("carol-pass-1", False)})
    ...
    finish(server)   # stop, assert exit code 0 (stderr in the failure message)

``wait_final(server, experiment_id, user="admin", timeout=60)`` waits until every batch of the
experiment is succeeded, failed or cancelled and returns the full batch documents
(``GET /batches/ID``), ordered by ``batchesListIndex``. ``wait_state(server, batch_id, states)``
waits until one batch reaches one of ``states`` and returns its document.

Batches run in real Docker containers (image ``faice-test-busybox:latest``, built by make test):
mark such tests ``@pytest.mark.docker``. ``post_red(server, red, user)`` posts a RED document
and returns its experimentId (asserting 200).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import eventually, faice_command
from tests.redfiles import as_batches, shell_red

#: name -> (password, is_admin); passwords have at least 8 characters
DEFAULT_USERS: dict[str, tuple[str, bool]] = {
    "admin": ("admin-password-1", True),
    "alice": ("alice-password-1", False),
    "bob": ("bob-password-1", False),
}
FINAL_STATES = ("succeeded", "failed", "cancelled")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
REALM = 'Basic realm="Please fill in username and password"'
SAME_FAILURE = "invalid user name or password"  # a wrong password and an unknown user alike
START_SECONDS = 20
STOP_SECONDS = 15
LISTENING = re.compile(r"faice serve: CC-Agency API on (https?://\S+?:\d+) ")


class AsUser:
    """Requests as a user: ``request(method, path, user="admin", **kwargs)`` and ``get/post/delete``
    send that user's Basic credentials (``user=None``: none) unless ``kwargs`` bring their own."""

    passwords: dict[str, str]

    def auth(self, name: str = "admin") -> tuple[str, str]:
        return (name, self.passwords[name])

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def request(self, method: str, path: str, user: str | None = "admin", **kwargs: Any) -> Any:
        sends_own = "auth" in kwargs or any(k.lower() == "authorization" for k in kwargs.get("headers") or {})
        if user is not None and not sends_own:
            kwargs["auth"] = self.auth(user)
        return self.send(method, path, **kwargs)

    def get(self, path: str, user: str | None = "admin", **kwargs: Any) -> Any:
        return self.request("GET", path, user, **kwargs)

    def post(self, path: str, user: str | None = "admin", **kwargs: Any) -> Any:
        return self.request("POST", path, user, **kwargs)

    def delete(self, path: str, user: str | None = "admin", **kwargs: Any) -> Any:
        return self.request("DELETE", path, user, **kwargs)


def error_object(response: Any, status: int) -> dict[str, Any]:
    """An error answer other than a parameter's 400: the JSON object {"msg", "status"} (and more)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("msg"), str) and body["msg"] and body.get("status") == status, body
    return body


def unauthorized(response: Any) -> dict[str, Any]:
    """A 401 with CC-Agency's realm."""
    body = error_object(response, 401)
    assert response.headers.get("WWW-Authenticate") == REALM
    return body


class Server(AsUser):
    """A running ``faice serve`` process and the users it knows."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, db: Path, stderr_path: Path, passwords: dict[str, str]) -> None:
        self.process = process
        self.url = url
        self.db = db
        self.stderr_path = stderr_path
        self.passwords = passwords
        self.exit_code: int | None = None

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, **kwargs)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM, then wait; the exit code (-9 when it had to be killed after STOP_SECONDS).

        The containers of this server's experiments go too, whatever became of the server: a
        test that failed half-way leaves none running."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                self.exit_code = -9
        if self.exit_code is None:
            self.exit_code = self.process.returncode
        remove_containers_of(self.db)
        return self.exit_code


def add_users(db: Path, users: dict[str, tuple[str, bool]]) -> None:
    """Create users in the state file, in this process (a ``faice users add`` each cost a start-up;
    test_users.py runs that command)."""
    from faice.state.store import Store
    from faice.state.users import Users

    store = Store(db)
    try:
        for name, (password, admin) in users.items():
            Users(store).add(name, password, admin=admin)
    finally:
        store.close()


def start_server(directory: Path, *args: str, users: dict[str, tuple[str, bool]] | None = None, db: Path | str | None = None,
                 host: str = "127.0.0.1", jobs: int = 2, cwd: Path | None = None, env: dict[str, str] | None = None) -> Server:
    """Start ``faice --db DB serve --host HOST --port 0 --jobs N ARGS...`` and wait until ``GET /`` answers.

    ``users`` default to :data:`DEFAULT_USERS` (``{}``: none, so the server creates ``admin``
    itself); ``db`` defaults to ``directory/faice.db`` (a relative ``db`` is relative to ``cwd``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    users = DEFAULT_USERS if users is None else users
    db_arg = str(db) if db is not None else str(directory / "faice.db")
    db_path = Path(db_arg) if Path(db_arg).is_absolute() else Path(cwd or os.getcwd()) / db_arg
    if users:
        add_users(db_path, users)
    stderr_path = directory / f"serve-{time.monotonic_ns()}.stderr"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAICE_VAR_")}
    full_env.update(env or {})
    command = [*faice_command(), "--db", db_arg, "serve", "--host", host, "--port", "0", "--jobs", str(jobs), *args]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd, env=full_env)
    server = Server(process, "", db_path, stderr_path, {name: password for name, (password, _admin) in users.items()})

    def answering() -> bool:
        if process.poll() is not None:
            pytest.fail(f"faice serve exited with {process.returncode} before answering:\n{server.stderr()}")
        if not server.url:
            found = LISTENING.search(server.stderr())
            if found:
                server.url = found.group(1).replace("0.0.0.0", "127.0.0.1")
        with contextlib.suppress(requests.RequestException):
            return bool(server.url) and requests.get(server.url + "/", timeout=2).status_code == 200
        return False

    try:
        eventually(answering, START_SECONDS, what=lambda: f"faice serve answering GET /:\n{server.stderr()}")
    except pytest.fail.Exception:
        server.stop()
        raise
    created = re.search(r'created the admin user "admin" with the password (\S+)', server.stderr())
    if created:
        server.passwords.setdefault("admin", created.group(1))
    return server


def finish(server: Server) -> None:
    """Stop the server; fail (showing its stderr) unless it exits 0 within STOP_SECONDS."""
    code = server.stop()
    assert code == 0, f"faice serve exited with {code} after SIGTERM (-9: killed after {STOP_SECONDS} s):\n{server.stderr()}"


@contextlib.contextmanager
def serving(directory: Path, *args: str, **kwargs: Any) -> Iterator[Server]:
    """A server for the ``with`` block; stopped afterwards, and it must exit 0."""
    server = start_server(directory, *args, **kwargs)
    try:
        yield server
    except BaseException:
        server.stop()
        raise
    finish(server)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``faice serve`` per test module: users admin (admin), alice and bob, ``--jobs 2``."""
    with serving(tmp_path_factory.mktemp("serve")) as running:
        yield running


# --- experiments ------------------------------------------------------------------------------


@dataclass
class Finished:
    """The experiments of alice, bob and admin that a test module shares, with their batches
    (ids, or full documents) by user."""

    alice: str  # 2 batches: out-a/err-a, out-b/err-b
    bob: str  # 1 batch: bob-secret / bob-err
    admin: str  # 3 batches: x0, x1, x2
    red_alice: dict[str, Any]
    batches: dict[str, list[Any]]


def agency_red(script: str, values: list[str] | None = None, **top: Any) -> dict[str, Any]:
    """``sh -c SCRIPT sh VALUE`` in the test image: one batch, or one batch per value; ``outputs: {}`` everywhere."""
    if values is None:
        data = shell_red(script)
        data["outputs"] = {}
    else:
        data = as_batches(shell_red(script, cli_inputs={"value": {"type": "string", "inputBinding": {"position": 0}}}), [{"value": v} for v in values])
        for batch in data["batches"]:
            batch["outputs"] = {}
    data.update(top)
    return data


def post_red(server: Server, red: dict[str, Any], user: str = "admin", **params: str) -> str:
    """POST /red as ``user``; the new experimentId."""
    response = server.post("/red", user, json=red, params=params)
    assert response.status_code == 200, f"POST /red: {response.status_code} {response.text}"
    return response.json()["experimentId"]


def wait_final(server: Server, experiment_id: str, user: str = "admin", timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until every batch of the experiment is final; their full documents by batchesListIndex."""
    listing: list[dict[str, Any]] = []

    def final() -> list[dict[str, Any]] | None:
        nonlocal listing
        response = server.get("/batches", user, params={"experimentId": experiment_id, "ascending": "true"})
        assert response.status_code == 200, response.text
        listing = response.json()
        if listing and all(b["state"] in FINAL_STATES for b in listing):
            documents = [server.get(f"/batches/{b['_id']}", user).json() for b in listing]
            return sorted(documents, key=lambda b: b["batchesListIndex"])
        return None

    return eventually(final, timeout, what=lambda: f"batches of {experiment_id} final: {[(b['_id'], b['state']) for b in listing]}\n{server.stderr()}")


def wait_state(server: Server, batch_id: str, states: tuple[str, ...], user: str = "admin", timeout: float = 30) -> dict[str, Any]:
    """Wait until a batch is in one of ``states``; its full document."""
    document: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal document
        document = server.get(f"/batches/{batch_id}", user).json()
        return document if document.get("state") in states else None

    return eventually(reached, timeout, 0.05, what=lambda: f"batch {batch_id} {states}: {document.get('state')}\n{server.stderr()}")


def experiment_ids(*dbs: Path) -> set[str]:
    """The ids of the experiments in these state files (those that are state files)."""
    import sqlite3

    ids: set[str] = set()
    for db in dbs:
        if not db.exists():
            continue
        with contextlib.closing(sqlite3.connect(db)) as conn:
            try:
                ids.update(row[0] for row in conn.execute("SELECT id FROM experiments"))
            except sqlite3.Error:
                continue
    return ids


def remove_containers_of(*dbs: Path) -> None:
    """``docker rm -f`` every container of the experiments in these state files (one ``docker ps``
    for all of them)."""
    ids = experiment_ids(*dbs)
    if not ids:
        return
    listed = subprocess.run(["docker", "ps", "-a", "--filter", "label=faice.experiment", "--format", '{{.ID}} {{.Label "faice.experiment"}}'],
                            capture_output=True, text=True).stdout
    found = [line.split()[0] for line in listed.splitlines() if len(line.split()) == 2 and line.split()[1] in ids]
    if found:
        subprocess.run(["docker", "rm", "-f", *found], capture_output=True)
