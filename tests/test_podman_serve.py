"""faice serve --engine podman, for real: a posted experiment runs in podman's containers, its
output is served, an API cancel kills the podman container, and the record names the engine.

The test image is loaded into podman's store by `make images`; without podman this fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.serve_fixture import agency_red, post_red, serving, wait_final, wait_state
from tests.test_podman import podman_containers, podman_image  # noqa: F401 - the fixture, for usefixtures

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("podman-and-example-images"), pytest.mark.usefixtures("podman_image")]


def test_faice_serve_runs_posted_batches_on_podman_and_cancels_them_there(tmp_path: Path):
    from faice.state.store import Store

    with serving(tmp_path, "--engine", "podman") as server:
        done = post_red(server, agency_red('echo "hello $1"', values=["a", "b"]))
        batches = wait_final(server, done)
        assert [b["state"] for b in batches] == ["succeeded", "succeeded"], [b.get("error") for b in batches]
        assert server.get(f"/batches/{batches[1]['_id']}/stdout", "admin").text == "hello b\n"
        assert podman_containers(f"faice.experiment={done}") == []

        running = post_red(server, agency_red("sleep 120"))
        batch_id = server.get("/batches", "admin", params={"experimentId": running}).json()[0]["_id"]
        wait_state(server, batch_id, ("processing",))
        eventually(lambda: podman_containers(f"faice.experiment={running}"), what="the batch's podman container")
        assert server.delete(f"/experiments/{running}", "admin").json()["cancelled"] == 1
        eventually(lambda: podman_containers(f"faice.experiment={running}") == [], timeout=30, what="the podman container killed and removed")
        assert server.get(f"/batches/{batch_id}", "admin").json()["state"] == "cancelled"
    store = Store(server.db)
    assert {store.experiment(e, red=False)["container_engine"] for e in (done, running)} == {"podman"}
