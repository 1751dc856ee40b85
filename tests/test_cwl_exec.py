"""``faice exec tool.cwl job.yml``: CWL CommandLineTools run by faice's engine, differential against cwltool.

Each tool runs twice on the same job: by cwltool without a container (the host's coreutils), and
by faice in the busybox test image. The output objects must be equal but for where the files are
(``location`` and ``path``), which makes the output files' contents equal too (their checksums);
tools that print their arguments make argv part of that comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, TEST_IMAGE, run_inprocess

CWLTOOL = str(Path(sys.executable).with_name("cwltool"))


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tool(**fields: Any) -> dict[str, Any]:
    """A tool in the busybox test image (a hint: cwltool --no-container refuses a required one)."""
    return {"cwlVersion": "v1.2", "class": "CommandLineTool", "hints": {"DockerRequirement": {"dockerPull": TEST_IMAGE}},
            "inputs": {}, "outputs": {}, **fields}


def placeless(value: Any) -> Any:
    """An output object without where its files are (cwltool's and faice's directories differ)."""
    if isinstance(value, dict):
        return {k: placeless(v) for k, v in value.items() if k not in ("location", "path")}
    if isinstance(value, list):
        return sorted((placeless(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


class Pair:
    """One tool run by cwltool and by faice, in a directory of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "state" / "faice.db"

    def cwltool(self, tool_file: Path, *jobs: Path) -> Any:
        outdir = self.tmp / "cwltool-out"
        done = subprocess.run([CWLTOOL, "--quiet", "--no-container", "--outdir", str(outdir), str(tool_file), *map(str, jobs)],
                              capture_output=True, text=True, cwd=self.tmp, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def faice(self, tool_file: Path | str, *args: str, outdir: str = "faice-out") -> subprocess.CompletedProcess[str]:
        return run_inprocess("--db", str(self.db), "exec", str(tool_file), *args, "--outdir", str(self.tmp / outdir), cwd=self.tmp, timeout=180)

    def same(self, tool_data: dict[str, Any], job: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run both on ``job``; assert their output objects are equal but for places; faice's object."""
        tool_file = write_yaml(self.tmp / "tool.cwl", tool_data)
        jobs = [write_yaml(self.tmp / "job.yml", job)] if job is not None else []
        expected = self.cwltool(tool_file, *jobs)
        done = self.faice(tool_file, *map(str, jobs))
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert placeless(got) == placeless(expected)
        assert got.keys() == expected.keys()
        for key, value in got.items():
            ours, theirs = (v if isinstance(v, list) else [] if v is None else [v] for v in (value, expected[key]))
            assert [o["basename"] for o in ours] == [t["basename"] for t in theirs], "an array in cwltool's order"
            for one, other in zip(ours, theirs, strict=True):
                assert list(one) == list(other), "the keys in cwltool's order"
                assert Path(one["path"]).is_absolute() and one["location"] == Path(one["path"]).as_uri()
                assert Path(one["path"]).exists()
        return got


@pytest.fixture
def pair(tmp_path: Path, docker_image: str) -> Pair:
    return Pair(tmp_path)


def test_bindings_and_argv(pair: Pair):
    """Prefixes, separate, itemSeparator, per-item bindings, booleans, positions, arguments: the argv echoed."""
    spec = tool(
        baseCommand="echo",
        arguments=[{"valueFrom": "first", "position": -1}, "last", {"prefix": "--k=", "separate": False, "valueFrom": "$(inputs.word)", "position": 9}],
        inputs={
            "word": {"type": "string", "inputBinding": {"position": 2, "prefix": "-w"}},
            "count": {"type": "int", "inputBinding": {"position": 1}},
            "flag": {"type": "boolean", "inputBinding": {"prefix": "--flag"}},
            "off": {"type": "boolean", "inputBinding": {"prefix": "--off"}},
            "joined": {"type": {"type": "array", "items": "string"}, "inputBinding": {"itemSeparator": ",", "prefix": "-j"}},
            "each": {"type": {"type": "array", "items": "int", "inputBinding": {"prefix": "-e"}}, "inputBinding": {"position": 3}},
            "maybe": {"type": "string?", "inputBinding": {"prefix": "-m"}},
            "ratio": {"type": "float", "default": 0.5, "inputBinding": {"prefix": "-r"}},
        },
        stdout="out.txt",
        outputs={"out": "stdout"},
    )
    got = pair.same(spec, {"word": "a b", "count": 3, "flag": True, "off": False, "joined": ["x", "y"], "each": [1, 2]})
    assert Path(got["out"]["path"]).read_text() == "first last --flag -j x,y -r 0.5 3 -w a b -e 1 -e 2 --k=a b\n"


def test_file_inputs_secondary_files_and_defaults(pair: Pair):
    (pair.tmp / "data").mkdir()
    (pair.tmp / "data" / "table.txt").write_text("alpha\nbeta\n")
    (pair.tmp / "data" / "table.txt.idx").write_text("index\n")
    (pair.tmp / "default.txt").write_text("from the default\n")
    spec = tool(
        baseCommand="cat",
        inputs={
            "table": {"type": "File", "secondaryFiles": [".idx"], "inputBinding": {"position": 1}},
            "extra": {"type": "File", "default": {"class": "File", "location": "default.txt"}, "inputBinding": {"position": 3}},
        },
        arguments=[{"valueFrom": "$(inputs.table.path).idx", "position": 2}],
        stdout="$(inputs.table.nameroot).out",
        outputs={"all": {"type": "File", "outputBinding": {"glob": "*.out"}}, "log": "stdout"},
    )
    got = pair.same(spec, {"table": {"class": "File", "path": "data/table.txt"}})
    assert Path(got["all"]["path"]).read_text() == "alpha\nbeta\nindex\nfrom the default\n"


def test_directory_input_and_output(pair: Pair):
    (pair.tmp / "in" / "sub").mkdir(parents=True)
    for name in ("b.txt", "a.txt", "sub/c.txt"):
        (pair.tmp / "in" / name).write_text(name.upper())
    spec = tool(
        requirements={"ShellCommandRequirement": {}},
        arguments=[{"shellQuote": False, "valueFrom": "mkdir -p made/deep && cp -r $(inputs.src.path)/. made/ && echo new > made/deep/n.txt && ls $(inputs.src.path) > names.txt"}],
        inputs={"src": {"type": "Directory"}},
        outputs={"made": {"type": "Directory", "outputBinding": {"glob": "made"}}, "names": {"type": "File", "outputBinding": {"glob": "names.txt"}}},
    )
    got = pair.same(spec, {"src": {"class": "Directory", "path": "in"}})
    assert Path(got["names"]["path"]).read_text() == "a.txt\nb.txt\nsub\n"
    assert sorted(e["basename"] for e in got["made"]["listing"]) == ["a.txt", "b.txt", "deep", "sub"]


def test_shell_environment_runtime_and_optional_outputs(pair: Pair):
    spec = tool(
        requirements={"ShellCommandRequirement": {},
                      "EnvVarRequirement": {"envDef": {"GREETING": "hello $(inputs.name)", "PLAIN": "plain"}}},
        arguments=[{"shellQuote": False, "valueFrom": 'echo "$GREETING/$PLAIN" | tr a-z A-Z > $(runtime.outdir)/$(inputs.name).txt; echo err >&2'}],
        inputs={"name": {"type": "string", "default": "world"}},
        stderr="err.log",
        outputs={"shout": {"type": "File", "outputBinding": {"glob": "$(inputs.name).txt"}}, "missing": {"type": "File?", "outputBinding": {"glob": "none.*"}},
                 "err": "stderr"},
    )
    got = pair.same(spec)
    assert Path(got["shout"]["path"]).read_text() == "HELLO WORLD/PLAIN\n" and got["missing"] is None
    assert Path(got["err"]["path"]).read_text() == "err\n"


def test_job_list_and_several_job_files_are_batches(pair: Pair):
    spec = tool(baseCommand="echo", inputs={"n": {"type": "int", "inputBinding": {}}}, stdout="n.txt", outputs={"out": "stdout"})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    listed = write_yaml(pair.tmp / "jobs.yml", [{"n": 1}, {"n": 2}])
    third = write_yaml(pair.tmp / "three.yml", {"n": 3})
    done = pair.faice(tool_file, str(listed), str(third))
    assert done.returncode == 0, done.stderr
    objects = json.loads(done.stdout)
    assert [Path(o["out"]["path"]).read_text() for o in objects] == ["1\n", "2\n", "3\n"]
    assert [Path(o["out"]["path"]).parent.name for o in objects] == ["batch_0", "batch_1", "batch_2"]
    expected = [pair.cwltool(tool_file, write_yaml(pair.tmp / f"j{n}.yml", {"n": n}))["out"] for n in (1, 2, 3)]
    assert [placeless(o["out"]) for o in objects] == [placeless(e) for e in expected]
    listing = run_inprocess("--db", str(pair.db), "list", "--json")
    assert json.loads(listing.stdout)[0]["batchCount"] == 3


def test_http_input(pair: Pair, http_server: Any):
    (http_server.root / "remote-text.txt").write_text("over http\n")
    spec = tool(baseCommand="cat", inputs={"f": {"type": "File", "inputBinding": {}}}, stdout="copy.txt", outputs={"copy": "stdout"})
    got = pair.same(spec, {"f": {"class": "File", "location": f"{http_server.url}/remote-text.txt"}})
    assert Path(got["copy"]["path"]).read_text() == "over http\n"


def test_the_guides_grepwrap_pair(pair: Pair, reference_examples: Path):
    """The Curious Containers guide's grepwrap.cwl.yml and job.yml, in the grepwrap image, and by cwltool in the same image (Docker)."""
    tool_file = pair.tmp / "grepwrap.cwl.yml"
    tool_file.write_text((reference_examples / "red-guide-vagrant__red-beginners-guide__grepwrap.cwl.yml").read_text())
    job = pair.tmp / "job.yml"
    job.write_text((reference_examples / "red-guide-vagrant__red-beginners-guide__job.yml").read_text())
    (pair.tmp / "in.txt").write_text("one\nQUERY two\nthree\nfour\nQU five\n")
    image = "faice-example-grepwrap:latest"
    subprocess.run(["docker", "tag", image, "grepwrap:latest"], check=True)  # the guide's dockerPull, which cwltool finds here
    try:
        done = subprocess.run([CWLTOOL, "--quiet", "--outdir", str(pair.tmp / "cwltool-out"), str(tool_file), str(job)], capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["docker", "rmi", "grepwrap:latest"], capture_output=True)
    assert done.returncode == 0, done.stderr
    expected = json.loads(done.stdout)
    ours = pair.faice(tool_file, str(job), "--image", image)
    assert ours.returncode == 0, ours.stderr
    got = json.loads(ours.stdout)
    assert placeless(got) == placeless(expected)
    assert Path(got["out_file"]["path"]).read_text() == "one\nQUERY two\n--\nfour\nQU five\n"
    converted = run_inprocess("convert", "red", str(tool_file), str(job), "--image", image, "-o", str(pair.tmp / "red.yml"), cwd=pair.tmp)
    assert converted.returncode == 0, converted.stderr
    as_red = run_inprocess("--db", str(pair.db), "exec", str(pair.tmp / "red.yml"), "--json", "--outdir", str(pair.tmp / "red-out"), cwd=pair.tmp)
    assert as_red.returncode == 0, as_red.stderr
    red_output = json.loads(as_red.stdout)["batches"][0]["outputs"]["out_file"]
    assert (red_output["checksum"], red_output["size"]) == (got["out_file"]["checksum"], got["out_file"]["size"])


def test_resource_requirement_limits_the_container(pair: Pair):
    spec = tool(
        requirements={"ResourceRequirement": {"ramMin": 96, "coresMin": 1}},
        baseCommand=["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"],
        stdout="limits.txt", outputs={"limits": "stdout"},
    )
    done = pair.faice(write_yaml(pair.tmp / "tool.cwl", spec))
    assert done.returncode == 0, done.stderr
    limits = Path(json.loads(done.stdout)["limits"]["path"]).read_text().split()
    assert limits[0] == str(96 * 1024 * 1024)
    assert limits[1] in ("100000", "100000 100000")  # one core: a full period of quota


def test_image_option_overrides_the_docker_requirement(pair: Pair):
    spec = tool(baseCommand="echo", arguments=["hi"], stdout="o.txt", outputs={"o": "stdout"})
    spec["hints"]["DockerRequirement"]["dockerPull"] = "no-such-image-here:1"
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    done = pair.faice(tool_file, "--image", TEST_IMAGE)
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["o"]["path"]).read_text() == "hi\n"
    missing = pair.faice(tool_file, "--disable-pull", outdir="again")
    assert missing.returncode == 3 and "no-such-image-here:1" in missing.stderr


def test_a_failed_job_prints_null_and_exits_1(pair: Pair):
    spec = tool(baseCommand=["sh", "-c", "exit $0"], inputs={"code": {"type": "int", "inputBinding": {}}}, outputs={})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    jobs = write_yaml(pair.tmp / "jobs.yml", [{"code": 0}, {"code": 4}])
    done = pair.faice(tool_file, str(jobs))
    assert done.returncode == 1
    assert json.loads(done.stdout) == [{}, None]
    assert "job 1 failed: exit code 4" in done.stderr


@pytest.mark.parametrize(("text", "located", "said"), [
    ("cwlVersion: v1.2\ninputs: []\noutputs: []\n", "tool.cwl:1:1", "class"),
    ("cwlVersion: v1.2\nclass: CommandLineTool\ninputs:\n  x: {type: Flie}\noutputs: []\n", "tool.cwl:4:", "Flie"),
    ("cwlVersion: v1.2\n$graph: {a: 1}\n", "tool.cwl:2:", "$graph"),
    ("cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n  NoSuchRequirement: {}\ninputs: []\noutputs: []\n", "tool.cwl:4:", "NoSuchRequirement"),
])
def test_invalid_cwl_is_located_exit_2(pair: Pair, text: str, located: str, said: str):
    tool_file = pair.tmp / "tool.cwl"
    tool_file.write_text(text)
    done = pair.faice(tool_file, "--image", TEST_IMAGE)
    assert done.returncode == 2, done.stderr
    assert located in done.stderr and said in done.stderr
    assert "Traceback" not in done.stderr and not (pair.tmp / "faice-out").exists()


@pytest.mark.parametrize(("extra", "feature"), [
    ({"requirements": {"InlineJavascriptRequirement": {}}}, "InlineJavascriptRequirement"),
    ({"requirements": {"InitialWorkDirRequirement": {"listing": []}}}, "InitialWorkDirRequirement"),
    ({"arguments": ["${ return 1; }"]}, "JavaScript"),
])
def test_what_faice_does_not_run_is_refused_before_anything_runs(pair: Pair, extra: dict[str, Any], feature: str):
    spec = {"cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": "echo", "inputs": {}, "outputs": {}}
    spec.update(extra)
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    done = pair.faice(tool_file, "--image", TEST_IMAGE)
    assert done.returncode == 33  # cwltool's code for an unsupported feature
    assert feature in done.stderr and "cwltool" in done.stderr and "Traceback" not in done.stderr
    line = next(n for n, text in enumerate(tool_file.read_text().splitlines(), 1) if next(iter(extra)) in text)
    assert f"tool.cwl:{line}:" in done.stderr or f"tool.cwl:{line + 1}:" in done.stderr
    assert not pair.db.exists() or json.loads(run_inprocess("--db", str(pair.db), "list", "--json").stdout) == []


def test_a_workflow_is_refused(pair: Pair):
    tool_file = write_yaml(pair.tmp / "wf.cwl", {"cwlVersion": "v1.2", "class": "Workflow", "inputs": {}, "outputs": {}, "steps": {}})
    done = pair.faice(tool_file, "--image", TEST_IMAGE)
    assert done.returncode == 33 and "workflows" in done.stderr and "cwltool" in done.stderr


def test_mistakes_of_the_command_line(pair: Pair):
    spec = tool(baseCommand="echo", inputs={"n": {"type": "int", "inputBinding": {}}})
    del spec["hints"]
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    job = write_yaml(pair.tmp / "job.yml", {"n": 1})
    no_image = pair.faice(tool_file, str(job))
    assert no_image.returncode == 2 and "--image" in no_image.stderr
    no_job = pair.faice(tool_file, "--image", TEST_IMAGE)
    assert no_job.returncode == 2 and "Missing required input parameter 'n'" in no_job.stderr
    wrong = pair.faice(tool_file, str(write_yaml(pair.tmp / "wrong.yml", {"n": "x"})), "--image", TEST_IMAGE)
    assert wrong.returncode == 2 and "wrong.yml" in wrong.stderr
    with_job = pair.faice(ROOT / "examples" / "grepwrap" / "red.yml", str(job))
    assert with_job.returncode == 2 and "CWL" in with_job.stderr


def test_dry_run_shows_the_argv_and_staging(pair: Pair):
    (pair.tmp / "a.txt").write_text("x")
    spec = tool(baseCommand="cat", inputs={"f": {"type": "File", "inputBinding": {"prefix": "-"}}})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    job = write_yaml(pair.tmp / "job.yml", {"f": {"class": "File", "path": "a.txt"}})
    done = run_inprocess("exec", str(tool_file), str(job), "--dry-run", "--json", cwd=pair.tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["batches"] == [{"index": 0, "image": TEST_IMAGE, "argv": ["cat", "-", "/cc/inputs/f/a.txt"]}]
    assert not (pair.tmp / "faice-out").exists() and not pair.db.exists()


def test_resume_runs_again_only_the_jobs_that_failed(pair: Pair):
    spec = tool(baseCommand=["sh", "-c", 'grep ok "$0" > found.txt'], inputs={"f": {"type": "File", "inputBinding": {}}},
                outputs={"found": {"type": "File", "outputBinding": {"glob": "found.txt"}}})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    (pair.tmp / "good.txt").write_text("ok\n")
    (pair.tmp / "bad.txt").write_text("not yet\n")
    jobs = write_yaml(pair.tmp / "jobs.yml", [{"f": {"class": "File", "path": "good.txt"}}, {"f": {"class": "File", "path": "bad.txt"}}])
    first = pair.faice(tool_file, str(jobs))
    assert first.returncode == 1 and json.loads(first.stdout)[1] is None
    kept = Path(json.loads(first.stdout)[0]["found"]["path"])
    before = kept.stat().st_mtime_ns
    (pair.tmp / "bad.txt").write_text("ok now\n")
    again = pair.faice(tool_file, str(jobs), "--resume")
    assert again.returncode == 0, again.stderr
    objects = json.loads(again.stdout)
    assert [Path(o["found"]["path"]).read_text() for o in objects] == ["ok\n", "ok now\n"]
    assert kept.stat().st_mtime_ns == before, "the job that succeeded did not run again"
    experiments = json.loads(run_inprocess("--db", str(pair.db), "list", "--json").stdout)
    assert len(experiments) == 1
    refused = run_inprocess("--db", str(pair.db), "resume", experiments[0]["experimentId"])
    assert refused.returncode == 2 and "JOB... --resume" in refused.stderr


def test_cached_jobs_reuse_their_results(pair: Pair):
    spec = tool(requirements={"EnvVarRequirement": {"envDef": {"WORD": "$(inputs.word)"}}}, baseCommand=["sh", "-c", 'echo "$WORD"'],
                inputs={"word": "string"}, stdout="w.txt", outputs={"w": "stdout"})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    one, two = (write_yaml(pair.tmp / f"{w}.yml", {"word": w}) for w in ("one", "two"))
    assert pair.faice(tool_file, str(one), "--cache").returncode == 0
    hit = pair.faice(tool_file, str(one), "--cache", outdir="again")
    assert hit.returncode == 0 and Path(json.loads(hit.stdout)["w"]["path"]).read_text() == "one\n"
    assert "from the cache" in hit.stderr
    miss = pair.faice(tool_file, str(two), "--cache", outdir="third")  # only the environment differs
    assert miss.returncode == 0 and Path(json.loads(miss.stdout)["w"]["path"]).read_text() == "two\n"
    assert "from the cache" not in miss.stderr


def test_array_outputs_and_several_glob_patterns(pair: Pair):
    spec = tool(
        requirements={"ShellCommandRequirement": {}},
        arguments=[{"shellQuote": False, "valueFrom": "echo b > b.txt; echo a > a.txt; echo l > run.log; mkdir d1 d2; echo x > d2/x"}],
        outputs={"texts": {"type": "File[]", "outputBinding": {"glob": "*.txt"}},
                 "both": {"type": "File[]", "outputBinding": {"glob": ["*.log", "a.*"]}},
                 "dirs": {"type": "Directory[]", "outputBinding": {"glob": "d*"}},
                 "none": {"type": "File[]", "outputBinding": {"glob": "*.nothing"}},
                 "one": {"type": "File", "outputBinding": {"glob": ["nope", "run.*"]}}},
    )
    got = pair.same(spec)
    assert [f["basename"] for f in got["texts"]] == ["a.txt", "b.txt"] and got["none"] == []
    assert [f["basename"] for f in got["both"]] == ["run.log", "a.txt"] and got["one"]["basename"] == "run.log"
    assert [d["basename"] for d in got["dirs"]] == ["d1", "d2"]
    experiment = json.loads(run_inprocess("--db", str(pair.db), "list", "--json").stdout)[0]["experimentId"]
    batch = json.loads(run_inprocess("--db", str(pair.db), "show", experiment, "--json").stdout)["batches"][0]["batchId"]
    shown = run_inprocess("--db", str(pair.db), "show", batch).stdout
    assert f"output texts[1]: {got['texts'][1]['path']} (2 bytes, {got['texts'][1]['checksum']})" in shown


@pytest.mark.parametrize("shortcut", [False, True])
def test_stdin_is_the_file_the_tool_names(pair: Pair, shortcut: bool):
    (pair.tmp / "numbers.txt").write_bytes(b"".join(b"%d\n" % n for n in range(200_000, 0, -1)))
    inputs = {"f": "stdin"} if shortcut else {"f": {"type": "File"}}
    spec = tool(baseCommand=["sort", "-n"], inputs=inputs, stdout="sorted.txt", outputs={"sorted": "stdout"},
                **({} if shortcut else {"stdin": "$(inputs.f.path)"}))
    got = pair.same(spec, {"f": {"class": "File", "path": "numbers.txt"}})
    assert Path(got["sorted"]["path"]).read_bytes() == b"".join(b"%d\n" % n for n in range(1, 200_001))


def test_home_and_tmpdir_are_what_cwl_asks(pair: Pair):
    spec = tool(requirements={"EnvVarRequirement": {"envDef": {"OWN": "$(runtime.tmpdir)"}}},
                baseCommand=["sh", "-c", 'echo "$HOME $TMPDIR $OWN" && touch "$TMPDIR/t" "$HOME/dot"'], stdout="env.txt",
                outputs={"env": "stdout", "dot": {"type": "File", "outputBinding": {"glob": "dot"}}})
    done = pair.faice(write_yaml(pair.tmp / "tool.cwl", spec))
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["env"]["path"]).read_text() == "/cc/outputs /tmp /tmp\n"


def test_exit_code_lists(pair: Pair):
    success = tool(baseCommand=["sh", "-c", "echo ran; exit 3"], successCodes=[3], stdout="o.txt", outputs={"o": "stdout"})
    got = pair.same(success)
    assert Path(got["o"]["path"]).read_text() == "ran\n"
    failing = tool(baseCommand="true", permanentFailCodes=[0], outputs={})
    tool_file = write_yaml(pair.tmp / "fails.cwl", failing)
    theirs = subprocess.run([CWLTOOL, "--quiet", "--no-container", str(tool_file)], capture_output=True, text=True, cwd=pair.tmp, timeout=120)
    ours = pair.faice(tool_file, "--retries", "2", outdir="fails")
    assert theirs.returncode == 1 and ours.returncode == 1 and json.loads(ours.stdout) is None
    assert "exit code 0" in ours.stderr
    batch = json.loads(run_inprocess("--db", str(pair.db), "list", "--json").stdout)[0]
    shown = json.loads(run_inprocess("--db", str(pair.db), "show", batch["experimentId"], "--json").stdout)["batches"][0]
    assert shown["attempts"] == 1, "a permanent failure is not tried again"


@pytest.mark.parametrize("glob", [".", "$(runtime.outdir)"])
def test_the_output_directory_itself_as_a_directory_output(pair: Pair, glob: str):
    spec = tool(baseCommand=["sh", "-c", "mkdir sub && echo a > sub/a.txt && echo b > b.txt"],
                outputs={"all": {"type": "Directory", "outputBinding": {"glob": glob}}})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    expected = pair.cwltool(tool_file)["all"]
    done = pair.faice(tool_file)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)["all"]
    assert got["path"] == str(pair.tmp / "faice-out") and got["basename"] == "faice-out"  # cwltool's: a random staging directory's name
    assert placeless(got["listing"]) == placeless(expected["listing"])
    assert sorted(e["basename"] for e in got["listing"]) == ["b.txt", "sub"]


def test_memory_and_cpu_limits_only_where_the_tool_gives_them(pair: Pair):
    probe = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"

    def limits(resources: dict[str, Any], name: str) -> list[str]:
        spec = tool(requirements={"ResourceRequirement": resources}, baseCommand=["sh", "-c", probe], stdout="l.txt", outputs={"l": "stdout"})
        done = pair.faice(write_yaml(pair.tmp / f"{name}.cwl", spec), outdir=name)
        assert done.returncode == 0, done.stderr
        return Path(json.loads(done.stdout)["l"]["path"]).read_text().split()

    cores_only = limits({"coresMin": 1}, "cores")
    assert int(cores_only[0]) > 1 << 40 or cores_only[0] == "max", "no memory limit the tool did not ask for"
    assert limits({"ramMin": 64, "ramMax": 128}, "ram")[0] == str(128 * 1024 * 1024)
    assert limits({"ramMin": 1}, "tiny")[0] == str(6 * 1024 * 1024)  # Docker's smallest


@pytest.mark.parametrize(("job", "said"), [
    ({1: "a", "n": 1}, None),  # a key that is no input id: ignored, as cwltool does
    ({"n": 1, "f": {"class": "File", "path": "x.txt", "secondaryFiles": [7]}}, "secondaryFiles must be a list"),
    ({"n": 1, "f": {"class": "File", "location": "http://[::1"}}, "not a usable location"),
    ({"n": 1, "f": {"class": "File", "path": "x.txt", "basename": "../x"}}, "is not a file name"),
    ({"n": 1, "f": {"class": "File", "contents": "literal"}}, "File literal"),
])
def test_odd_job_values_are_located_errors(pair: Pair, job: dict[Any, Any], said: str | None):
    (pair.tmp / "x.txt").write_text("x\n")
    spec = tool(baseCommand="echo", inputs={"n": {"type": "int", "inputBinding": {}}, "f": {"type": "File?", "inputBinding": {}}}, stdout="o.txt",
                outputs={"o": "stdout"})
    done = pair.faice(write_yaml(pair.tmp / "tool.cwl", spec), str(write_yaml(pair.tmp / "job.yml", job)))
    if said is None:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2 and said in done.stderr and "job.yml" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_jobs_size_and_checksum_are_taken_as_cwltool_takes_them(pair: Pair):
    """cwltool gives the tool a job's size as it is, and checks neither it nor a checksum; without one, the file's size."""
    (pair.tmp / "in.txt").write_text("fifteen bytes!\n")
    spec = tool(baseCommand="echo", arguments=["$(inputs.f.size)", "$(inputs.g.size)"], inputs={"f": "File", "g": "File"}, stdout="o.txt",
                outputs={"o": "stdout"})
    got = pair.same(spec, {"f": {"class": "File", "location": "in.txt", "size": 3, "checksum": "sha1$" + "0" * 40},
                           "g": {"class": "File", "location": "in.txt"}})
    assert Path(got["o"]["path"]).read_text() == "3 15\n"


def test_ignored_hints_are_said_and_file_uris_taken(pair: Pair):
    spec = tool(baseCommand=["echo", "hi"], stdout="o.txt", outputs={"o": "stdout"})
    spec["hints"]["SoftwareRequirement"] = {"packages": {"busybox": {}}}
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    done = pair.faice(tool_file.as_uri())
    assert done.returncode == 0 and "faice ignores the hint SoftwareRequirement" in done.stderr, done.stderr
    quiet = pair.faice(tool_file, "--quiet", outdir="quiet")
    assert quiet.returncode == 0 and "SoftwareRequirement" not in quiet.stderr
    converted = run_inprocess("convert", "red", tool_file.as_uri(), cwd=pair.tmp)
    assert converted.returncode == 0 and "redVersion" in converted.stdout, converted.stderr


def test_only_a_temporary_failure_is_tried_again(pair: Pair):
    spec = tool(baseCommand=["sh", "-c", "exit $0"], inputs={"c": {"type": "int", "inputBinding": {}}}, temporaryFailCodes=[4],
                permanentFailCodes=[4, 6], outputs={})
    tool_file = write_yaml(pair.tmp / "tool.cwl", spec)
    jobs = write_yaml(pair.tmp / "jobs.yml", [{"c": 4}, {"c": 5}, {"c": 6}])
    done = pair.faice(tool_file, str(jobs), "--retries", "2")
    assert done.returncode == 1
    experiment = json.loads(run_inprocess("--db", str(pair.db), "list", "--json").stdout)[0]["experimentId"]
    batches = json.loads(run_inprocess("--db", str(pair.db), "show", experiment, "--json").stdout)["batches"]
    assert [b["attempts"] for b in batches] == [3, 1, 1]  # 4: temporary (cwltool's order of the lists); 5 and 6: permanent
