"""faice exec --cache on the real Docker engine: what a hit serves, what makes a miss, and that a
damaged entry is never served. "No container" is read from Docker's own event log."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from faice.runner.docker_engine import LABEL_EXPERIMENT
from tests.redfiles import TEST_IMAGE, as_batches, local_file, shell_red
from tests.test_exec import Run, _documented_shapes

pytestmark = pytest.mark.docker

#: the tool copies its input to out.txt and says something on both streams
SCRIPT = 'cat "$1" > out.txt; echo "made from $(wc -c < "$1") bytes"; echo warn >&2'


@pytest.fixture
def run(tmp_path: Path, docker_image: str) -> Run:
    return Run(tmp_path)


def tool(**extra: Any) -> dict[str, Any]:
    return shell_red(SCRIPT, cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     outputs={"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}}, **extra)


def three_batches(tmp: Path) -> dict[str, Any]:
    for i in range(3):
        (tmp / f"in{i}.txt").write_text(f"input {i}\n" * (i + 1))
    return as_batches(tool(), [{"f": local_file(f"in{i}.txt")} for i in range(3)])


def created(experiment_id: str, since: float) -> int:
    """How many containers Docker created for the experiment since then (its event log)."""
    out = subprocess.run(["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time() + 1:.3f}", "--filter", "type=container",
                          "--filter", "event=create", "--filter", f"label={LABEL_EXPERIMENT}={experiment_id}", "--format", "{{.ID}}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return len(out.split())


def ran(run: Run, data: Any, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """Run with the cache; the result document and how many containers it created."""
    since = time.time() - 1
    result, doc = run(data, "--cache", *args, env=env)
    assert doc is not None, result.stderr
    return doc, created(doc["experimentId"], since)


def outputs(outdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*")) if p.is_file() and p.name != ".faice-outputs"}


def test_a_second_run_starts_no_container_serves_the_same_bytes_and_a_changed_input_runs_alone(run: Run, tmp_path: Path):
    data = three_batches(tmp_path)
    first, containers = ran(run, data)
    assert first["state"] == "succeeded" and containers == 3
    made = outputs(run.outdir)
    assert made["batch_2/out.txt"] == b"input 2\n" * 3 and sorted(made) == [f"batch_{i}/out.txt" for i in range(3)]

    second, containers = ran(run, data)
    assert second["state"] == "succeeded" and containers == 0
    assert outputs(run.outdir) == made  # the directories, the files in them, every byte
    assert [b.get("cachedFrom") for b in second["batches"]] == [b["batchId"] for b in first["batches"]]
    assert [b["outputs"]["out"]["checksum"] for b in second["batches"]] == [b["outputs"]["out"]["checksum"] for b in first["batches"]]
    logs = run.faice("logs", second["batches"][1]["batchId"])
    assert logs.stdout == "made from 16 bytes\n"  # the streams come back too
    shown = json.loads(run.faice("show", second["batches"][1]["batchId"], "--json").stdout)
    assert shown["cachedFrom"] == first["batches"][1]["batchId"]
    assert "cache hit" in shown["history"][-1]["reason"]

    (tmp_path / "in1.txt").write_text("changed\n")
    third, containers = ran(run, data)
    assert containers == 1
    assert ["cachedFrom" in b for b in third["batches"]] == [True, False, True]
    assert (run.outdir / "batch_1" / "out.txt").read_text() == "changed\n"


def test_the_key_follows_the_image_id_and_the_environment_passed_in_but_not_ram(run: Run, tmp_path: Path):
    tag = f"faice-cache-test-{os.getpid()}-{tmp_path.name[-6:].lower()}:latest"
    subprocess.run(["docker", "tag", TEST_IMAGE, tag], check=True)
    try:
        (tmp_path / "in.txt").write_text("x\n")
        data = tool(inputs={"f": local_file("in.txt")})
        data["container"]["settings"]["image"]["url"] = tag
        env = {"FAICE_TEST_LEVEL": "1"}
        _, containers = ran(run, data, "--preserve-environment", "FAICE_TEST_LEVEL", env=env)
        assert containers == 1
        _, containers = ran(run, data, "--preserve-environment", "FAICE_TEST_LEVEL", env=env)
        assert containers == 0

        data["container"]["settings"]["ram"] = 512
        doc, containers = ran(run, data, "--preserve-environment", "FAICE_TEST_LEVEL", env=env)
        assert containers == 0 and "cachedFrom" in doc["batches"][0]  # memory decides whether a batch ends, not what it makes

        doc, containers = ran(run, data, "--preserve-environment", "FAICE_TEST_LEVEL", env={"FAICE_TEST_LEVEL": "2"})
        assert containers == 1 and "cachedFrom" not in doc["batches"][0]
        why = json.loads(run.faice("why", doc["batches"][0]["batchId"], "--json").stdout)
        assert why["differences"] == ["environment FAICE_TEST_LEVEL changed"]
        assert "2" not in json.dumps(why["differences"])

        # another image under the same tag: its ID differs, so does the key (a cache keyed on the tag would serve the old result)
        subprocess.run(["docker", "tag", "faice-example-grepwrap:latest", tag], check=True)
        doc, containers = ran(run, data, "--preserve-environment", "FAICE_TEST_LEVEL", env=env)
        assert containers == 1 and "cachedFrom" not in doc["batches"][0]
        why = json.loads(run.faice("why", doc["batches"][0]["batchId"], "--json").stdout)
        assert [d.split(":")[0] for d in why["differences"]] == ["image"]
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True)


def cache_root(run: Run) -> Path:
    return run.db.parent / "cache"


def test_a_changed_or_deleted_blob_is_found_and_its_batch_runs_again(run: Run, tmp_path: Path):
    (tmp_path / "in.txt").write_text("precious\n")
    data = tool(inputs={"f": local_file("in.txt")})
    ran(run, data)
    blob = next(p for p in (cache_root(run) / "objects").rglob("*") if p.is_file() and p.read_bytes() == b"precious\n")
    os.chmod(blob, 0o644)
    blob.write_bytes(b"poisoned\n")  # the same size would not save it either
    doc, containers = ran(run, data)
    assert containers == 1 and "cachedFrom" not in doc["batches"][0]
    assert (run.outdir / "out.txt").read_text() == "precious\n"
    history = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)["history"]
    assert "was damaged (1 file changed or missing" in history[-1]["reason"]  # said, not silently rerun

    blob = next(p for p in (cache_root(run) / "objects").rglob("*") if p.is_file() and p.read_bytes() == b"precious\n")
    blob.unlink()
    doc, containers = ran(run, data)
    assert containers == 1 and "cachedFrom" not in doc["batches"][0]
    assert (run.outdir / "out.txt").read_text() == "precious\n"
    _, containers = ran(run, data)
    assert containers == 0


def test_a_failed_batch_is_never_cached(run: Run, tmp_path: Path):
    data = shell_red("echo partial > out.txt; exit 3", outputs={"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}})
    for _ in range(2):
        doc, containers = ran(run, data)
        assert doc["state"] == "failed" and containers == 1
    assert json.loads(run.faice("cache", "ls", "--json").stdout) == []
    why = json.loads(run.faice("why", doc["batches"][0]["batchId"], "--json").stdout)
    assert "it failed, and only succeeded batches are stored" in why["summary"]


def test_a_hit_still_sends_its_outputs_and_says_so(run: Run, tmp_path: Path):
    (tmp_path / "in.txt").write_text("to send\n")
    data = tool(inputs={"f": local_file("in.txt")})
    data["outputs"] = {"out": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": "sent/out.txt"}}}}
    (tmp_path / "sent").mkdir()
    ran(run, data)
    (tmp_path / "sent" / "out.txt").unlink()
    doc, containers = ran(run, data)
    assert containers == 0 and (tmp_path / "sent" / "out.txt").read_text() == "to send\n"
    history = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)["history"]
    assert "1 output sent again" in history[-1]["reason"]


def test_why_explains_a_miss_and_the_cache_commands_list_measure_and_prune(run: Run, tmp_path: Path):
    data = three_batches(tmp_path)
    first, _ = ran(run, data)
    (tmp_path / "in0.txt").write_text("other\n")
    second, _ = ran(run, data)
    why = json.loads(run.faice("why", second["batches"][0]["batchId"], "--json").stdout)
    assert why["verdict"] == "stored" and why["comparedWith"] == first["batches"][0]["batchId"]
    assert len(why["differences"]) == 1 and why["differences"][0].startswith("input f: content ")
    hit = json.loads(run.faice("why", second["batches"][2]["batchId"], "--json").stdout)
    assert hit["verdict"] == "hit" and hit["comparedWith"] == first["batches"][2]["batchId"]
    between = json.loads(run.faice("why", second["batches"][0]["batchId"], first["batches"][1]["batchId"], "--json").stdout)
    assert between["verdict"] == "compared" and any(d.startswith("argv") for d in between["differences"])

    shapes = _documented_shapes()
    assert set(why) == set(hit) == shapes["why --json"]
    entries = json.loads(run.faice("cache", "ls", "--json").stdout)
    assert set(entries[0]) == shapes["cache ls --json"]
    assert len(entries) == 4 and {e["batchId"] for e in entries} == {*(b["batchId"] for b in first["batches"]), second["batches"][0]["batchId"]}
    usage = json.loads(run.faice("cache", "du", "--json").stdout)
    assert set(usage) == shapes["cache du --json"]
    assert usage["entries"] == 4 and usage["diskBytes"] > 0 and usage["path"] == str(cache_root(run))
    kept = json.loads(run.faice("cache", "prune", "--older-than", "1d", "--json").stdout)
    assert kept["entries"] == 0 and set(kept) == shapes["cache prune --json"]
    gone = json.loads(run.faice("cache", "prune", "--json").stdout)
    assert gone["entries"] == 4 and gone["freedBytes"] >= usage["diskBytes"] - 64
    assert not any(p.is_file() for p in (cache_root(run) / "objects").rglob("*"))
    _, containers = ran(run, data)
    assert containers == 3
    unknown = run.faice("why", "f" * 24)
    assert unknown.returncode == 2 and 'no experiment or batch with id "ffffffffffffffffffffffff"' in unknown.stderr


def test_why_refuses_a_batch_that_ran_without_the_cache(run: Run, tmp_path: Path):
    result, doc = run(shell_red("true"))
    assert doc is not None, result.stderr
    answer = run.faice("why", doc["batches"][0]["batchId"])
    assert answer.returncode == 2 and "ran without --cache" in answer.stderr and "Traceback" not in answer.stderr


def test_serve_with_the_cache_serves_a_users_repeat_from_it_and_keeps_users_apart(tmp_path: Path, docker_image: str):
    from tests.serve_fixture import agency_red, post_red, serving, wait_final

    red = agency_red('echo "$1" > out.txt', ["one", "two"])
    red["cli"]["outputs"] = {"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}}
    with serving(tmp_path / "server", "--cache") as server:
        since = time.time() - 1
        first = wait_final(server, post_red(server, red, "alice"), "alice")
        again_id = post_red(server, red, "alice")
        again = wait_final(server, again_id, "alice")
        assert [b["state"] for b in again] == ["succeeded", "succeeded"]
        assert [b["cachedFrom"] for b in again] == [b["_id"] for b in first]
        assert created(again_id, since) == 0
        assert "cache hit" in again[0]["history"][-1]["reason"]
        bobs_id = post_red(server, red, "bob")  # the same file from another user: not alice's results
        bobs = wait_final(server, bobs_id, "bob")
        assert [b.get("cachedFrom") for b in bobs] == [None, None] and created(bobs_id, since) == 2


def test_a_remote_input_is_fetched_to_be_hashed_unless_its_checksum_is_given(run: Run, tmp_path: Path, http_server):
    from tests.redfiles import http_file

    (http_server.root / "in.txt").write_text("remote\n")
    data = tool(inputs={"f": http_file(f"{http_server.url}/in.txt")})
    ran(run, data)
    doc, containers = ran(run, data)
    assert containers == 0 and "cachedFrom" in doc["batches"][0]
    assert http_server.received.count(("GET", "/in.txt")) == 2  # fetched, hashed, then served from the cache

    (http_server.root / "in.txt").write_text("remote, changed\n")
    doc, containers = ran(run, data)
    assert containers == 1 and (run.outdir / "out.txt").read_text() == "remote, changed\n"

    import hashlib

    data["inputs"]["f"]["checksum"] = "sha1$" + hashlib.sha1(b"remote, changed\n").hexdigest()
    ran(run, data)  # the checksum is the content's name now: a new key, run once
    before = len(http_server.received)
    doc, containers = ran(run, data)
    assert containers == 0 and "cachedFrom" in doc["batches"][0] and len(http_server.received) == before  # not even fetched
    assert (run.outdir / "out.txt").read_text() == "remote, changed\n"


def test_argv_that_differs_only_in_a_secret_is_another_key_and_no_secret_reaches_the_state(run: Run, tmp_path: Path):
    """A filled variable is masked wherever it is shown, but two runs that differ in it are two experiments."""
    data = shell_red('echo "label=$1" > out.txt; cat "$2" >> out.txt', cli_inputs={"label": {"type": "string", "inputBinding": {"position": 0}},
                     "f": {"type": "File", "inputBinding": {"position": 1}}}, outputs={"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}})
    for name in ("alpha1", "beta22"):
        (tmp_path / f"{name}.txt").write_text("same bytes\n")
    for name in ("alpha1", "beta22"):
        data["inputs"] = {"label": name, "f": local_file("{{sample}}.txt")}
        doc, containers = ran(run, data, "--var", f"sample={name}")
        assert containers == 1 and doc["state"] == "succeeded", doc
        assert (run.outdir / "out.txt").read_text() == f"label={name}\nsame bytes\n"
    run.faice("cache", "ls")  # opens and closes the state file: the WAL is folded in
    state = b"".join(p.read_bytes() for p in run.db.parent.glob("faice.db*"))
    assert b"alpha1" not in state and b"beta22" not in state


def test_a_local_input_changed_while_its_batch_runs_is_not_stored(run: Run, tmp_path: Path):
    import threading

    data = shell_red('sleep 3; cat "$1" > out.txt', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     outputs={"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}}, )
    data["inputs"] = {"f": local_file("in.txt")}
    source = tmp_path / "in.txt"
    source.write_text("original\n")
    editor = threading.Timer(1.5, lambda: source.write_text("edited\n"))
    editor.start()
    doc, containers = ran(run, data)
    editor.join()
    history = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)["history"]
    assert "not cached: input f changed while the batch ran" in history[-1]["reason"]
    source.write_text("original\n")
    doc, containers = ran(run, data)  # no entry holds "edited" under the key of "original"
    assert containers == 1 and (run.outdir / "out.txt").read_text() == "original\n"


def test_a_hit_keeps_the_modes_the_tool_gave(run: Run, tmp_path: Path):
    data = shell_red("mkdir ro && echo r > ro/f && chmod 555 ro && echo p > priv && chmod 600 priv && printf '#!/bin/sh\\n' > run.sh"
                     " && chmod 755 run.sh && echo s > shared.txt",
                     outputs={"p": {"type": "File", "outputBinding": {"glob": "priv"}}})
    def modes() -> dict[str, int]:
        return {p.name: p.stat().st_mode & 0o777 for p in run.outdir.rglob("*") if p.name != ".faice-outputs"}
    ran(run, data)
    made = modes()
    assert made == {"ro": 0o555, "f": 0o644, "priv": 0o600, "run.sh": 0o755, "shared.txt": 0o644}
    _, containers = ran(run, data)
    assert containers == 0
    # what everyone may read is hard-linked, read-only; the rest keeps its mode (a private file stays private)
    assert modes() == {**made, "f": 0o444, "shared.txt": 0o444}
    for path in run.outdir.rglob("*"):
        os.chmod(path, 0o755) if path.is_dir() else None


def test_an_unusable_cache_directory_runs_the_batch_without_the_cache(run: Run, tmp_path: Path):
    (tmp_path / "a-file").write_text("not a directory")
    doc, containers = ran(run, shell_red("echo hi > out.txt"), env={"FAICE_CACHE_DIR": str(tmp_path / "a-file" / "cache")})
    assert doc["state"] == "succeeded" and containers == 1
    history = json.loads(run.faice("show", doc["batches"][0]["batchId"], "--json").stdout)["history"]
    assert f"not cached: Not a directory: {tmp_path / 'a-file'}" in history[-1]["reason"]


def test_a_sweep_waits_for_saves_in_progress(tmp_path: Path):
    """faice cache prune never takes the files of a result being stored (their entry is not written yet)."""
    import threading

    from faice.cache.results import ResultCache
    from faice.state.store import Store

    cache = ResultCache(Store(tmp_path / "faice.db"))
    cache.objects.mkdir(parents=True)
    (cache.objects / "tmp-0123").write_text("a blob being written")
    swept = threading.Event()
    with cache._locked(shared=True):
        sweeper = threading.Thread(target=lambda: (cache.sweep(), swept.set()))
        sweeper.start()
        assert not swept.wait(1.0) and (cache.objects / "tmp-0123").exists()
    sweeper.join(10)
    assert swept.is_set() and not (cache.objects / "tmp-0123").exists()
