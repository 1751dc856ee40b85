"""faice export --ro-crate: a real run's provenance, checked by recomputing its hashes and by
roc-validator (Process Run Crate 0.5), offline, in a venv of its own (make test-deps makes it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from faice.provenance.ro_crate import image_parts
from faice.provenance.sources import without_credentials
from tests.conftest import run_inprocess
from tests.redfiles import TEST_IMAGE, as_batches, shell_red, write

CONTEXTS = Path(__file__).parent / "data" / "ro-crate"
VALIDATOR = Path(os.environ.get("FAICE_ROC_VALIDATOR", Path(sys.prefix) / "rocrate-validator" / "bin" / "rocrate-validator"))


class Validator(NamedTuple):
    """roc-validator's command with an HTTP cache that answers the two JSON-LD contexts offline."""

    command: Path
    cache: Path

    def __call__(self, crate: Path, report: Path) -> tuple[bool, list[str]]:
        """(valid, the identifiers of the failed checks) at REQUIRED level. A zip's verdict is read
        from the exit code and text: 0.13.0's JSON report of a zip fails ("URI is not JSON serializable")."""
        zipped = crate.suffix == ".zip"
        result = subprocess.run([str(self.command), "-y", "--disable-color", "validate", "--offline", "--cache-path", str(self.cache), "-p", "process-run-crate",
                                 *([] if zipped else ["-f", "json", "-o", str(report)]), str(crate)], capture_output=True, text=True, timeout=120)
        assert result.returncode in (0, 1), result.stdout + result.stderr
        if zipped:
            passed = result.returncode == 0 and "RO-Crate is a valid process-run-crate-0.5" in result.stdout
            return passed, [] if passed else [result.stdout]
        found = json.loads(report.read_text())
        return found["passed"], sorted({issue["check"]["identifier"] for issue in found["issues"]})


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Validator:
    if not VALIDATOR.exists():
        pytest.fail(f"roc-validator missing at {VALIDATOR}: run `make test-deps` (or set FAICE_ROC_VALIDATOR)")
    cache = tmp_path_factory.mktemp("roc-cache") / "contexts"
    subprocess.run([str(VALIDATOR.with_name("python")), str(CONTEXTS / "make_offline_cache.py"), str(cache), str(CONTEXTS)], check=True, timeout=60)
    return Validator(VALIDATOR, cache.with_suffix(".sqlite"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def graph(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entity["@id"]: entity for entity in metadata["@graph"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Exported(NamedTuple):
    """One run of two batches (one failing after a retry) and its crates."""

    tmp: Path
    db: Path
    doc: dict[str, Any]
    input: Path
    directory: Path
    zipped: Path


def faice(db: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_inprocess("--db", str(db), *args, cwd=cwd)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, docker_image: str) -> Exported:
    tmp = tmp_path_factory.mktemp("export")
    (tmp / "data").mkdir()
    source = tmp / "data" / "words.txt"
    source.write_text("alpha\nbeta\ngamma\n")
    data = as_batches(
        shell_red('grep -c a "$1" > count.txt; echo "counted $2"; [ "$2" != bad ] || { echo "broke on $2" >&2; exit 5; }',
                  cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "word": {"type": "string", "inputBinding": {"position": 1}}},
                  outputs={"count": {"type": "File", "outputBinding": {"glob": "count.txt"}}}),
        [{"f": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": "data/words.txt"}}}, "word": w} for w in ("good", "bad")],
    )
    red = write(tmp / "red.yml", data)
    db = tmp / "state" / "faice.db"
    result = faice(db, "exec", str(red), "--json", "--outdir", str(tmp / "out"), "--retries", "1", cwd=tmp)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    into_dir = faice(db, "export", doc["experimentId"][:12], "--ro-crate", str(tmp / "crate"))
    assert into_dir.returncode == 0, into_dir.stderr
    assert into_dir.stdout.startswith(f"wrote {tmp / 'crate'}: ")
    into_zip = faice(db, "export", doc["experimentId"], "--ro-crate", str(tmp / "crate.zip"), "--include-inputs")
    assert into_zip.returncode == 0, into_zip.stderr
    return Exported(tmp, db, doc, source, tmp / "crate", tmp / "crate.zip")


pytestmark = pytest.mark.xdist_group("export")


@pytest.mark.docker
def test_a_run_exports_as_a_process_run_crate_with_every_batch_file_and_hash(exported: Exported, validator: Validator):
    assert validator(exported.directory, exported.tmp / "dir-report.json") == (True, [])
    assert validator(exported.zipped, exported.tmp / "zip-report.json") == (True, [])
    metadata = json.loads((exported.directory / "ro-crate-metadata.json").read_text())
    entities = graph(metadata)
    actions = [e for e in metadata["@graph"] if e["@type"] == "CreateAction"]
    good, bad = exported.doc["batches"]
    assert [(a["actionStatus"], a.get("exitCode"), a["attempts"]) for a in actions] == [
        ("http://schema.org/CompletedActionStatus", 0, 1), ("http://schema.org/FailedActionStatus", 5, 2)]
    assert (good["attempts"], bad["attempts"], bad["exitCode"]) == (1, 2, 5)
    assert "error" not in actions[0] and "exit code 5" in actions[1]["error"]
    assert all(a["startTime"] <= a["endTime"] and a["endTime"].endswith("+00:00") for a in actions)
    # the tool, the image by the ID its tag resolved to, faice and the host
    assert all(a["instrument"] == {"@id": "tool.cwl"} for a in actions)
    assert json.loads((exported.directory / "tool.cwl").read_text())["class"] == "CommandLineTool"
    image_id = subprocess.run(["docker", "image", "inspect", TEST_IMAGE, "--format", "{{.Id}}"], capture_output=True, text=True, check=True).stdout.strip()
    assert entities["#image"]["sha256"] == image_id.removeprefix("sha256:") and entities["#image"]["tag"] == "latest"
    organize = next(e for e in metadata["@graph"] if e["@type"] == "OrganizeAction")
    assert entities[organize["instrument"]["@id"]]["softwareVersion"] == faice(exported.db, "--version").stdout.split()[1]
    assert entities[organize["location"]["@id"]]["name"] == os.uname().nodename
    # the input by reference, with the size and sha256 of its bytes
    uri = exported.input.resolve().as_uri()
    content = exported.input.read_bytes()
    assert entities[uri]["sha256"] == sha256(content) and entities[uri]["contentSize"] == str(len(content))
    assert all({"@id": uri} in as_list(a["object"]) for a in actions)
    assert {"@id": "#batch-1-word"} in as_list(actions[1]["object"]) and entities["#batch-1-word"]["value"] == "bad"
    # the outputs and logs inside the crate, each file's hash its own
    output = Path(good["outputs"]["count"]["path"])
    assert entities["outputs/batch_0/count.txt"]["sha256"] == sha256(output.read_bytes())
    assert {"@id": "outputs/batch_0/count.txt"} in as_list(actions[0]["result"])
    assert (exported.directory / "logs" / "batch_1.stderr").read_text() == "broke on bad\n"
    for path in exported.directory.rglob("*"):
        relative = path.relative_to(exported.directory).as_posix()
        if path.is_file() and relative != "ro-crate-metadata.json":
            assert entities[relative]["sha256"] == sha256(path.read_bytes()), relative
            assert entities[relative]["contentSize"] == str(path.stat().st_size), relative
            assert {"@id": relative} in metadata["@graph"][1]["hasPart"], relative
    # the zip: the same record, the input copied in (once, though both batches read it)
    with zipfile.ZipFile(exported.zipped) as archive:
        zipped = graph(json.loads(archive.read("ro-crate-metadata.json")))
        copies = [n for n in archive.namelist() if n.startswith("inputs/")]
        assert copies == ["inputs/batch_0/f/words.txt"] and archive.read(copies[0]) == content
    assert zipped[copies[0]]["sha256"] == sha256(content) and zipped[copies[0]]["alternateName"] == uri
    # what the state file recorded: where the input came from, shown by faice show
    shown = json.loads(faice(exported.db, "show", bad["batchId"], "--json").stdout)
    assert shown["inputSources"] == [{"key": "f", "index": None, "class": "File", "connector": "red-connector-local", "uri": uri}]
    # --outputs-by-reference: the outputs named where they are, not copied
    target = exported.tmp / "by-reference"
    assert faice(exported.db, "export", exported.doc["experimentId"], "--ro-crate", str(target), "--outputs-by-reference").returncode == 0
    assert graph(json.loads((target / "ro-crate-metadata.json").read_text()))[output.as_uri()]["sha256"] == sha256(output.read_bytes())
    assert not (target / "outputs").exists()


def test_the_validator_rejects_a_crate_whose_action_has_no_instrument(validator: Validator, tmp_path: Path):
    """The negative control: the validator's verdicts above can fail. The crate is the research's
    hand-made example (valid with its payload files present), with the instrument taken away."""
    metadata = json.loads((CONTEXTS / "example-ro-crate-metadata.json").read_text())
    for entity in metadata["@graph"]:
        if entity["@type"] == "File" and not entity["@id"].startswith("file:"):
            (tmp_path / "crate" / entity["@id"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "crate" / entity["@id"]).write_text("payload")
        if entity["@type"] == "CreateAction":
            del entity["instrument"]
    (tmp_path / "crate" / "ro-crate-metadata.json").write_text(json.dumps(metadata))
    valid, failed = validator(tmp_path / "crate", tmp_path / "report.json")
    assert not valid and failed and all(check.startswith("process-run-crate-0.5_1.") for check in failed), failed


@pytest.mark.docker
def test_secrets_never_reach_the_crate(tmp_path: Path, docker_image: str, http_server):
    http_server.expected_auth = ("alice", "pa55-w0rd-xyz")
    (http_server.root / "in.txt").write_text("over http\n")
    access = {"url": f"{http_server.url}/in.txt?sig={{{{sig}}}}", "auth": {"username": "alice", "password": "pa55-w0rd-xyz"}}  # a protected key, a variable
    data = shell_red('wc -c < "$1" > n.txt', cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}},
                     inputs={"f": {"class": "File", "connector": {"command": "red-connector-http", "access": access}}},
                     outputs={"n": {"type": "File", "outputBinding": {"glob": "n.txt"}}})
    db = tmp_path / "faice.db"
    env = {"FAICE_VAR_sig": "s1gnature-secret-99"}
    result = run_inprocess("--db", str(db), "exec", str(write(tmp_path / "red.yml", data)), "--json", "--outdir", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    experiment_id = json.loads(result.stdout)["experimentId"]
    assert faice(db, "export", experiment_id, "--ro-crate", str(tmp_path / "crate")).returncode == 0
    assert faice(db, "export", experiment_id, "--ro-crate", str(tmp_path / "crate.zip")).returncode == 0
    files = [p for p in (tmp_path / "crate").rglob("*") if p.is_file()]
    with zipfile.ZipFile(tmp_path / "crate.zip") as archive:
        contents = [p.read_bytes() for p in files] + [archive.read(n) for n in archive.namelist()]
    assert len(files) >= 5
    for secret in (b"pa55-w0rd-xyz", b"s1gnature-secret-99", b"alice:"):
        assert not any(secret in content for content in contents), secret
    entities = graph(json.loads((tmp_path / "crate" / "ro-crate-metadata.json").read_text()))
    assert f"{http_server.url}/in.txt" in entities  # by its URL, without the query that held a secret


@pytest.mark.docker
def test_outputs_a_later_run_set_aside_are_followed_and_gone_ones_refused(tmp_path: Path, docker_image: str):
    red = write(tmp_path / "red.yml", shell_red("echo one > o.txt", outputs={"o": {"type": "File", "outputBinding": {"glob": "o.txt"}}}))
    db, out = tmp_path / "faice.db", str(tmp_path / "out")
    first = json.loads(faice(db, "exec", str(red), "--json", "--outdir", out).stdout)["experimentId"]
    assert faice(db, "exec", str(red), "--json", "--outdir", out).returncode == 0  # moves the first run's set to out.old-...
    assert faice(db, "export", first, "--ro-crate", str(tmp_path / "a")).returncode == 0
    assert (tmp_path / "a" / "outputs" / "o.txt").read_text() == "one\n"
    for moved in tmp_path.glob("out.old-*"):
        shutil.rmtree(moved)
    gone = faice(db, "export", first, "--ro-crate", str(tmp_path / "b"))
    assert gone.returncode == 3 and f"the outputs of experiment {first} are gone" in gone.stderr
    assert not (tmp_path / "b").exists()


def test_what_cannot_be_exported_is_refused_in_one_line(tmp_path: Path):
    from faice.state.store import Store

    db = tmp_path / "faice.db"
    experiment_id, (batch_id,) = Store(db).create_experiment(source="x", red={}, argvs=[["true"]], image="i", engine=None, username="u")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    (tmp_path / "there.zip").write_text("keep")
    for args, message in [
        ((experiment_id, str(tmp_path / "c")), "has batches that have not finished"),
        ((batch_id, str(tmp_path / "c")), "is a batch"),
        (("ffffffff", str(tmp_path / "c")), "no experiment or batch"),
    ]:
        result = faice(db, "export", args[0], "--ro-crate", args[1])
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    Store(db).set_states([batch_id], "failed", "test")
    for target in ("full", "there.zip"):
        result = faice(db, "export", experiment_id, "--ro-crate", str(tmp_path / target))
        assert result.returncode == 2 and "exists" in result.stderr, result.stderr
    assert (tmp_path / "full" / "mine.txt").read_text() == (tmp_path / "there.zip").read_text() == "keep"


def test_image_references_and_urls_are_read_as_the_engine_and_a_reader_would():
    assert image_parts("faice-test-busybox:latest") == ("docker.io", "faice-test-busybox", "latest")
    assert image_parts("ghcr.io/org/tool:1.2") == ("ghcr.io", "org/tool", "1.2")
    assert image_parts("localhost:5000/tool") == ("localhost:5000", "tool", "latest")
    assert without_credentials("https://u:p@example.org:8443/a/b.txt?token=x#f") == "https://example.org:8443/a/b.txt"
    assert without_credentials("not a url") is None


def test_a_secret_in_an_input_location_is_masked_before_the_location_is_made_a_uri(tmp_path: Path):
    """Percent-encoding a path or lower-casing a host would carry a secret past the mask."""
    from faice.provenance.sources import input_sources
    from faice.red.model import Connector
    from faice.red.secrets import Masker
    from faice.runner.plan import StagedInput

    mask = Masker(["sec ret dir", "Data.Example.ORG"])
    staged = [StagedInput("f", None, "File", Connector.from_data({"command": "red-connector-local", "access": {"path": "sec ret dir/in.txt"}}), "/cc/x"),
              StagedInput("g", None, "File", Connector.from_data({"command": "red-connector-http", "access": {"url": "https://Data.Example.ORG/f.txt"}}), "/cc/y")]
    uris = [s["uri"] for s in input_sources(staged, tmp_path, mask)]
    text = json.dumps(uris).lower()
    assert "sec%20ret" not in text and "sec ret" not in text and "data.example.org" not in text, uris
    assert uris[0].startswith(tmp_path.as_uri()) and uris[0].endswith("/in.txt") and uris[1].endswith("/f.txt")


def test_a_cache_hit_is_exported_as_one_and_an_output_changed_in_place_is_refused(tmp_path: Path, docker_image: str):
    red = write(tmp_path / "red.yml", shell_red("echo result > o.txt", outputs={"o": {"type": "File", "outputBinding": {"glob": "o.txt"}}}))
    db = tmp_path / "faice.db"
    first = json.loads(faice(db, "exec", str(red), "--json", "--cache", "--outdir", str(tmp_path / "one")).stdout)
    time.sleep(1.05)  # ids start with their second: two experiments of one second share 8 characters
    second = json.loads(faice(db, "exec", str(red), "--json", "--cache", "--outdir", str(tmp_path / "two")).stdout)
    assert second["batches"][0]["cachedFrom"] == first["batches"][0]["batchId"]
    crate = tmp_path / "crate"
    assert faice(db, "export", second["experimentId"][:8], "--ro-crate", str(crate)).returncode == 0  # 8 characters: the experiment, not its batch
    action = graph(json.loads((crate / "ro-crate-metadata.json").read_text()))["#batch-0"]
    assert f"not run: a cache hit, the result of batch {first['batches'][0]['batchId']}" in action["description"]

    output = tmp_path / "two" / "o.txt"
    os.chmod(output, 0o644)
    output.write_text("edited\n")  # as many bytes: only the checksum tells
    changed = faice(db, "export", second["experimentId"], "--ro-crate", str(tmp_path / "crate2"))
    assert changed.returncode == 3 and "changed since the run (its content: sha1$" in changed.stderr, changed.stderr
    unwritable = faice(db, "export", first["experimentId"], "--ro-crate", "/proc/crate")
    assert unwritable.returncode == 2 and "cannot write the crate /proc/crate" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_a_cwl_run_exports_its_tool_jobs_and_array_outputs(tmp_path: Path, docker_image: str, validator: Validator):
    import yaml

    (tmp_path / "in.txt").write_text("x\n")
    tool = {"cwlVersion": "v1.2", "class": "CommandLineTool", "hints": {"DockerRequirement": {"dockerPull": docker_image}},
            "baseCommand": ["sh", "-c", 'cat "$0" > a.txt; echo b > b.txt'], "inputs": {"f": {"type": "File", "inputBinding": {}}},
            "outputs": {"texts": {"type": "File[]", "outputBinding": {"glob": "*.txt"}}}}
    (tmp_path / "tool.cwl").write_text(yaml.safe_dump(tool))
    (tmp_path / "job.yml").write_text(yaml.safe_dump([{"f": {"class": "File", "path": "in.txt"}}] * 2))
    db = tmp_path / "faice.db"
    ran = faice(db, "exec", "tool.cwl", "job.yml", "--outdir", "out", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    experiment = json.loads(ran.stdout)["experimentId"]
    assert faice(db, "export", experiment, "--ro-crate", str(tmp_path / "crate"), cwd=tmp_path).returncode == 0
    assert validator(tmp_path / "crate", tmp_path / "report.json") == (True, [])
    entities = graph(json.loads((tmp_path / "crate" / "ro-crate-metadata.json").read_text()))
    assert "CWL tool's jobs" in entities["./"]["description"]
    assert json.loads((tmp_path / "crate" / "tool.cwl").read_text())["baseCommand"][0] == "sh"
    assert {f"outputs/batch_{i}/{n}.txt" for i in (0, 1) for n in "ab"} <= set(entities)
