"""faice serve's app in this process, for route tests: no server process, no Docker.

``make_api(tmp_path)`` gives an :class:`Api`: ``create_app`` over a real :class:`Store` on a
temporary SQLite file, with the users admin (admin), alice and bob, and a :class:`FakeWorker`
that records what the routes hand it (registered experiments, containers to kill) and runs
nothing. ``api.get/post/delete(path, user="admin", **kwargs)`` send that user's Basic
credentials (``user=None``: none) through Starlette's TestClient from 127.0.0.1, keeping no
cookies between requests (like ``requests.get``); ``api.client(address)`` is a client of its own
that keeps its cookies, from another address.

``run_batches(api, experiment_id, outputs)`` moves the experiment's batches through
registered -> scheduled -> processing -> succeeded in the store (as the worker would) and writes
their stdout/stderr where the worker writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from faice.host import node_name
from faice.runner.batch import RunOptions
from faice.server.app import create_app
from faice.server.settings import Settings
from faice.server.worker import Active
from faice.state.store import Store, log_path, logs_dir
from tests.serve_fixture import DEFAULT_USERS, AsUser, add_users


@dataclass
class FakeWorker:
    """What the routes use of :class:`faice.server.worker.Worker`, recorded instead of run."""

    node: str = field(default_factory=node_name)
    mount: bool = True
    options: RunOptions = field(default_factory=lambda: RunOptions(outdir=Path("outputs"), jobs=1))
    problem: str | None = None  # what docker_problem() answers (None: Docker answers)
    added: list[Active] = field(default_factory=list)
    killed: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False

    def add(self, active: Active) -> None:
        self.added.append(active)

    def engine_for(self, name: str | None) -> FakeWorker:
        """The fake is its own engine: one container per label asked for, whose kill is recorded."""
        return self

    def containers(self, **labels: str) -> list[tuple[str, str]]:
        return list(labels.items())

    def kill(self, container: tuple[str, str]) -> None:
        self.killed.append(container)

    def docker_problem(self) -> str | None:
        return self.problem

    def stop(self) -> None:
        self.stopped = True


class Api(AsUser):
    """The app, its store and fake worker, and requests as a user."""

    def __init__(self, store: Store, worker: FakeWorker, settings: Settings, passwords: dict[str, str]) -> None:
        self.store = store
        self.worker = worker
        self.passwords = passwords
        self.app = create_app(store, worker, settings)  # type: ignore[arg-type]
        self.http = self.client()

    def client(self, address: str = "127.0.0.1") -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", client=(address, 50000))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        finally:
            self.http.cookies.clear()

    def post_red(self, red: dict[str, Any], user: str = "admin", **params: str) -> str:
        response = self.post("/red", user, json=red, params=params)
        assert response.status_code == 200, f"POST /red: {response.status_code} {response.text}"
        return response.json()["experimentId"]

    def batch_ids(self, experiment_id: str) -> list[str]:
        return [b.id for b in self.store.batches(experiment_id)]


def make_api(directory: Path, settings: Settings | None = None, users: dict[str, tuple[str, bool]] | None = None, db: Path | None = None) -> Api:
    directory.mkdir(parents=True, exist_ok=True)
    users = DEFAULT_USERS if users is None else users
    db = db or directory / "faice.db"
    add_users(db, users)
    store = Store(db)
    return Api(store, FakeWorker(), settings or Settings(), {name: password for name, (password, _admin) in users.items()})


@dataclass
class Output:
    stdout: str = ""
    stderr: str = ""


def run_batches(api: Api, experiment_id: str, outputs: list[Output] | None = None, state: str = "succeeded") -> list[str]:
    """Every batch of the experiment through the states the worker gives a run; their ids."""
    ids = api.batch_ids(experiment_id)
    logs_dir(api.store.path).mkdir(mode=0o700, parents=True, exist_ok=True)
    for i, batch_id in enumerate(ids):
        api.store.set_state(batch_id, "scheduled", f"scheduled on node {api.worker.node}", node=api.worker.node, attempts=1)
        api.store.set_state(batch_id, "processing", "attempt 1")
        output = outputs[i] if outputs else Output()
        log_path(api.store.path, batch_id, "stdout").write_text(output.stdout)
        log_path(api.store.path, batch_id, "stderr").write_text(output.stderr)
        if state != "processing":
            api.store.set_state(batch_id, state, "exit code 0" if state == "succeeded" else state, exit_code=0 if state == "succeeded" else 1)
    return ids
