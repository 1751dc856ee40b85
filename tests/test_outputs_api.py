"""Outputs over the API (faice extensions, issue 13 part 3) against a real ``faice serve`` with real
containers: the list of what a batch recorded, a File's bytes with HTTP ranges, a Directory and a
whole experiment as streamed zips, visibility as for stdout, and outputs that changed, vanished or
lead out of the experiment's outputs (a planted link) refused with their reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests import serve_fixture
from tests.redfiles import as_batches, shell_red
from tests.serve_fixture import Server, error_object, post_red, wait_final, wait_state

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)

SCRIPT = (
    'mkdir -p folder/sub && printf "alpha-%s\\n" "$1" > folder/a.txt && printf beta > folder/sub/b.txt'
    " && ln -s /etc/passwd folder/passwd && seq 1 60000 > result.bin"
    ' && printf "part-%s" "$1" > part-1.txt && printf "part2" > part-2.txt && echo "hello $1"'
)
OUTPUTS = {
    "result": {"type": "File", "outputBinding": {"glob": "result.bin"}},
    "folder": {"type": "Directory", "outputBinding": {"glob": "folder"}},
    "log": {"type": "stdout"},
    "maybe": {"type": "File?", "outputBinding": {"glob": "absent.txt"}},
}
RESULT = "".join(f"{i}\n" for i in range(1, 60001)).encode()


def outputs_red(values: list[str], script: str = SCRIPT) -> dict[str, Any]:
    data = as_batches(shell_red(script, cli_inputs={"value": {"type": "string", "inputBinding": {"position": 0}}}, outputs=OUTPUTS, stdout="log.txt"),
                      [{"value": v} for v in values])
    for batch in data["batches"]:
        batch["outputs"] = {}
    return data


def sha1(data: bytes) -> str:
    return "sha1$" + hashlib.sha1(data).hexdigest()


def unzipped(response: Any) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "content-length" not in response.headers and response.headers.get("transfer-encoding") == "chunked"  # written while sent
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def record_parts(server: Server, batch: dict[str, Any], folder: Path) -> None:
    """Give the batch the array output ``parts`` a CWL tool's ``File[]`` records (a RED file
    cannot declare one): its part files, as the runner records them."""
    from faice.state.store import Store

    store = Store(server.db)
    try:
        row = store.batch(batch["_id"])
        assert row is not None
        parts = [{"class": "File", "path": str(folder / name), "size": (folder / name).stat().st_size, "checksum": sha1((folder / name).read_bytes())}
                 for name in ("part-1.txt", "part-2.txt")]
        store.update(row.id, outputs={**row.outputs, "parts": parts})
    finally:
        store.close()


@pytest.fixture(scope="module")
def done(server: Server, docker_image: str) -> dict[str, Any]:
    """alice's experiment of two batches, finished, with an array output recorded too."""
    experiment_id = post_red(server, outputs_red(["a", "b"]), "alice")
    batches = wait_final(server, experiment_id, "alice")
    assert [b["state"] for b in batches] == ["succeeded", "succeeded"], batches
    for batch in batches:
        record_parts(server, batch, server.db.parent / "outputs" / experiment_id / f"batch_{batch['batchesListIndex']}")
    return {"id": experiment_id, "batches": batches}


@pytest.mark.docker
def test_the_list_gives_class_name_size_checksum_and_url_never_a_host_path(server: Server, done: dict[str, Any]) -> None:
    batch_id = done["batches"][0]["_id"]
    response = server.get(f"/batches/{batch_id}/outputs", "alice")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["result"] == {"class": "File", "name": "result.bin", "size": len(RESULT), "checksum": sha1(RESULT), "url": f"/batches/{batch_id}/outputs/result"}
    assert listed["log"] == {"class": "File", "name": "log.txt", "size": len(b"hello a\n"), "checksum": sha1(b"hello a\n"), "url": f"/batches/{batch_id}/outputs/log"}
    assert listed["folder"]["class"] == "Directory" and listed["folder"]["name"] == "folder" and listed["folder"]["checksum"] is None
    assert listed["folder"]["url"] == f"/batches/{batch_id}/outputs/folder"
    assert [(p["name"], p["size"], p["url"]) for p in listed["parts"]] == [
        ("part-1.txt", 6, f"/batches/{batch_id}/outputs/parts/0"), ("part-2.txt", 5, f"/batches/{batch_id}/outputs/parts/1")]
    assert listed["maybe"] is None  # an optional output that matched nothing
    assert str(server.db.parent) not in response.text and "path" not in response.text


@pytest.mark.docker
def test_a_file_is_its_bytes_with_name_length_and_etag(server: Server, done: dict[str, Any]) -> None:
    batch_id = done["batches"][1]["_id"]
    response = server.get(f"/batches/{batch_id}/outputs/result", "alice")
    assert response.status_code == 200 and response.content == RESULT
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(RESULT)) and response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith(f'"{sha1(RESULT)}-') and sha1(response.content) == server.get(f"/batches/{batch_id}/outputs", "alice").json()["result"]["checksum"]
    assert 'filename="result.bin"' in response.headers["content-disposition"]
    assert server.get(f"/batches/{batch_id}/outputs/log", "alice").content == b"hello b\n"  # a stdout output
    assert server.get(f"/batches/{batch_id}/outputs/parts/0", "alice").content == b"part-b"  # an item of an array output
    assert server.get(f"/batches/{batch_id}/outputs/parts/1", "admin").content == b"part2"  # admins see everyone's


@pytest.mark.docker
def test_ranges(server: Server, done: dict[str, Any]) -> None:
    url = f"/batches/{done['batches'][0]['_id']}/outputs/result"
    size = len(RESULT)
    for header, (start, end) in (("bytes=10-19", (10, 19)), ("bytes=-5", (size - 5, size - 1)), ("bytes=100000-", (100000, size - 1)),
                                 ("bytes=0-0", (0, 0)), (f"bytes={size - 3}-{size + 100}", (size - 3, size - 1)), ("bytes=-999999999", (0, size - 1))):
        response = server.get(url, "alice", headers={"Range": header})
        assert response.status_code == 206, (header, response.text)
        assert response.content == RESULT[start:end + 1], header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}" and response.headers["content-length"] == str(end - start + 1)
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = server.get(url, "alice", headers={"Range": header})
        assert response.status_code == 416, (header, response.status_code, response.headers)
        assert error_object(response, 416)["msg"] and response.headers["content-range"] == f"bytes */{size}", header
    for header in ("bytes=0-1,5-6", "lines=1-2", "bytes=9-3", "nonsense"):  # not one byte range: the whole file (RFC 9110 lets a server ignore Range)
        response = server.get(url, "alice", headers={"Range": header})
        assert response.status_code == 200 and response.content == RESULT, header
    etag = server.get(url, "alice").headers["etag"]
    assert server.get(url, "alice", headers={"Range": "bytes=0-9", "If-Range": etag}).content == RESULT[:10]
    stale = server.get(url, "alice", headers={"Range": "bytes=0-9", "If-Range": '"sha1$0000"'})
    assert stale.status_code == 200 and stale.content == RESULT  # the range was for other content: all of it


@pytest.mark.docker
def test_a_directory_is_a_zip_of_its_files_without_links(server: Server, done: dict[str, Any]) -> None:
    response = server.get(f"/batches/{done['batches'][0]['_id']}/outputs/folder", "alice")
    assert 'filename="folder.zip"' in response.headers["content-disposition"]
    members = unzipped(response)
    assert members == {"folder/": b"", "folder/a.txt": b"alpha-a\n", "folder/sub/": b"", "folder/sub/b.txt": b"beta"}  # folder/passwd, a link: left out


@pytest.mark.docker
def test_the_experiment_zip_holds_every_batch(server: Server, done: dict[str, Any]) -> None:
    response = server.get(f"/experiments/{done['id']}/outputs.zip", "alice")
    assert response.headers["x-faice-unfinished"] == "0"
    members = unzipped(response)
    for index, value in enumerate(["a", "b"]):
        prefix = f"batch_{index}/"
        assert members[prefix + "result.bin"] == RESULT and members[prefix + "log.txt"] == f"hello {value}\n".encode()
        assert members[prefix + "folder/a.txt"] == f"alpha-{value}\n".encode() and members[prefix + "folder/sub/b.txt"] == b"beta"
        assert members[prefix + "part-1.txt"] == f"part-{value}".encode() and members[prefix + "part-2.txt"] == b"part2"
    assert not any(name.endswith("passwd") or ".faice-outputs" in name for name in members), sorted(members)
    assert unzipped(server.get(f"/experiments/{done['id']}/outputs.zip", "admin")) == members


@pytest.mark.docker
def test_another_user_sees_nothing(server: Server, done: dict[str, Any]) -> None:
    batch_id = done["batches"][0]["_id"]
    for path in (f"/batches/{batch_id}/outputs", f"/batches/{batch_id}/outputs/result", f"/batches/{batch_id}/outputs/folder",
                 f"/batches/{batch_id}/outputs/parts/0", f"/experiments/{done['id']}/outputs.zip"):
        assert error_object(server.get(path, "bob"), 404)["msg"], path  # not told apart from no such batch
        assert server.get(path, None).status_code == 401, path


@pytest.mark.docker
def test_what_was_not_recorded_is_not_found_with_its_reason(server: Server, done: dict[str, Any]) -> None:
    batch_id = done["batches"][0]["_id"]
    assert "no output" in error_object(server.get(f"/batches/{batch_id}/outputs/nothing", "alice"), 404)["msg"]
    assert "matched nothing" in error_object(server.get(f"/batches/{batch_id}/outputs/maybe", "alice"), 404)["msg"]
    assert "2 items" in error_object(server.get(f"/batches/{batch_id}/outputs/parts/2", "alice"), 404)["msg"]
    assert "not an array" in error_object(server.get(f"/batches/{batch_id}/outputs/result/0", "alice"), 404)["msg"]
    array = server.get(f"/batches/{batch_id}/outputs/parts", "alice")
    assert array.status_code == 400 and "array of 2" in array.json()
    assert server.get(f"/batches/{batch_id}/outputs/parts/x", "alice").status_code == 400


@pytest.mark.docker
def test_a_running_batch_has_recorded_nothing_yet(server: Server, docker_image: str) -> None:
    experiment_id = post_red(server, outputs_red(["a"], "sleep 30; " + SCRIPT), "alice")
    [listed] = server.get("/batches", "alice", params={"experimentId": experiment_id}).json()
    wait_state(server, listed["_id"], ("processing",), "alice")
    assert server.get(f"/batches/{listed['_id']}/outputs", "alice").json() == {}
    assert "yet" in error_object(server.get(f"/batches/{listed['_id']}/outputs/result", "alice"), 404)["msg"]
    response = server.get(f"/experiments/{experiment_id}/outputs.zip", "alice")  # what is there so far, and how many batches may add more
    assert response.headers["x-faice-unfinished"] == "1" and unzipped(response) == {"batch_0/": b""}
    assert server.delete(f"/batches/{listed['_id']}", "alice").status_code == 200


@pytest.fixture
def tampered(server: Server, docker_image: str) -> dict[str, Any]:
    """A finished experiment of one batch whose files a test may change (its outputs lie in
    outputs/ID/, no batch_N folder)."""
    experiment_id = post_red(server, outputs_red(["t"]), "alice")
    [batch] = wait_final(server, experiment_id, "alice")
    assert batch["state"] == "succeeded", batch
    return {"id": experiment_id, "batch": batch["_id"], "dir": server.db.parent / "outputs" / experiment_id}


@pytest.mark.docker
def test_a_link_planted_in_place_of_an_output_is_refused(server: Server, tampered: dict[str, Any], tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * len(RESULT))  # as long as the output: only where it leads gives it away
    result = tampered["dir"] / "result.bin"
    result.unlink()
    result.symlink_to(secret)
    response = server.get(f"/batches/{tampered['batch']}/outputs/result", "alice")
    assert "leads out" in error_object(response, 403)["msg"] and b"SSS" not in response.content
    assert "leads out" in error_object(server.get(f"/experiments/{tampered['id']}/outputs.zip", "alice"), 403)["msg"]
    folder = tampered["dir"] / "folder"
    os.rename(folder, tmp_path / "folder")
    folder.symlink_to(tmp_path / "folder")  # a link to a directory outside
    assert "leads out" in error_object(server.get(f"/batches/{tampered['batch']}/outputs/folder", "alice"), 403)["msg"]


@pytest.mark.docker
def test_a_changed_or_vanished_output_is_refused(server: Server, tampered: dict[str, Any]) -> None:
    base = f"/batches/{tampered['batch']}/outputs"
    etag = server.get(f"{base}/result", "alice").headers["etag"]
    rewritten = bytes(reversed(RESULT))  # the same size: only its ETag tells a range of the old one from the new
    (tampered["dir"] / "result.bin").write_bytes(rewritten)
    os.utime(tampered["dir"] / "result.bin", ns=(1, 1))
    resumed = server.get(f"{base}/result", "alice", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert resumed.status_code == 200 and resumed.content == rewritten and resumed.headers["etag"] != etag  # never old and new bytes mixed
    with open(tampered["dir"] / "result.bin", "ab") as handle:
        handle.write(b"more")
    response = server.get(f"{base}/result", "alice", headers={"Range": "bytes=0-9"})
    assert "changed since it was recorded" in error_object(response, 409)["msg"]
    assert "changed since it was recorded" in error_object(server.get(f"/experiments/{tampered['id']}/outputs.zip", "alice"), 409)["msg"]
    (tampered["dir"] / "folder" / "new.txt").write_text("new")
    assert "changed since it was recorded" in error_object(server.get(f"{base}/folder", "alice"), 409)["msg"]
    (tampered["dir"] / "log.txt").unlink()
    assert "no longer there" in error_object(server.get(f"{base}/log", "alice"), 410)["msg"]
    assert server.get(base, "alice").status_code == 200  # the list says what was recorded


def test_a_zip_is_written_while_it_is_sent(tmp_path: Path) -> None:
    """No chunk holds much more than one read of a file: the zip is never built whole in memory."""
    from faice.server.outputs import Member, tree_members, zip_stream
    from faice.server.streaming import CHUNK

    data = os.urandom(8 * 1024 * 1024)  # does not compress: each chunk is about as large as what was read
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "data.bin").write_bytes(data)
    (tmp_path / "big" / "empty").mkdir()
    chunks = list(zip_stream([*tree_members(str(tmp_path / "big"), "big"), Member("single.bin", str(tmp_path / "big" / "data.bin"), len(data))]))
    assert len(chunks) > 16 and max(len(c) for c in chunks) < 2 * CHUNK
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.namelist() == ["big/", "big/data.bin", "big/empty/", "single.bin"]
        assert archive.read("big/data.bin") == data and archive.read("single.bin") == data


def test_an_index_of_other_digits_is_no_index() -> None:
    from faice.server.errors import BadParameter, NotFound
    from faice.server.outputs import recorded

    class Row:
        id = "b1"
        state = "succeeded"
        outputs = {"parts": [{"class": "File", "path": "/x", "size": 1, "checksum": "sha1$0"}]}

    for index in ("²", "٣", "-1", "1.0"):
        with pytest.raises((BadParameter, NotFound)):
            recorded(Row(), "parts", index)  # type: ignore[arg-type]


def test_an_answer_given_up_closes_its_file_at_once() -> None:
    """A client that goes away: Starlette stops iterating; the generator (and the file it holds) is
    closed then, not when the garbage collector gets to it."""
    import anyio

    from faice.server.streaming import closing

    closed = []

    def chunks():
        try:
            while True:
                yield b"x" * 10
        finally:
            closed.append(True)

    held = chunks()  # referenced elsewhere too (as Starlette's machinery does): only an explicit close ends it

    async def give_up() -> None:
        stream = closing(held)
        assert await stream.__anext__() == b"x" * 10
        await stream.aclose()

    anyio.run(give_up)
    assert closed == [True]


@pytest.mark.docker
def test_a_real_array_output_of_a_cwl_run_is_served_item_by_item(server: Server, docker_image: str, tmp_path: Path) -> None:
    """A CWL ``File[]`` recorded by ``faice exec tool.cwl`` on the server's state file (no fake
    record): listed as a list, each item fetched by its index, the whole set in the experiment's zip."""
    import json

    import yaml

    from tests.conftest import run_faice

    tool = {"cwlVersion": "v1.2", "class": "CommandLineTool", "hints": {"DockerRequirement": {"dockerPull": docker_image}},
            "baseCommand": ["sh", "-c", "echo one > p1.txt; echo second > p2.txt"],
            "inputs": {}, "outputs": {"parts": {"type": "File[]", "outputBinding": {"glob": "p*.txt"}}}}
    (tmp_path / "tool.cwl").write_text(yaml.safe_dump(tool))
    ran = run_faice("--db", str(server.db), "exec", "tool.cwl", "--outdir", "out", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    done = json.loads(ran.stdout)
    batch_id = done["batches"][0]["batchId"]
    listed = server.get(f"/batches/{batch_id}/outputs", "admin").json()["parts"]
    assert [(p["name"], p["size"], p["url"]) for p in listed] == [("p1.txt", 4, f"/batches/{batch_id}/outputs/parts/0"), ("p2.txt", 7, f"/batches/{batch_id}/outputs/parts/1")]
    assert server.get(f"/batches/{batch_id}/outputs/parts/1", "admin").content == b"second\n"
    assert unzipped(server.get(f"/experiments/{done['experimentId']}/outputs.zip", "admin")) == {"batch_0/": b"", "batch_0/p1.txt": b"one\n", "batch_0/p2.txt": b"second\n"}
