"""faice.cwl.plan: CWL jobs planned into the runner's batch plans (pure: nothing runs, nothing is fetched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from faice.cwl.command import Runtime, evaluate
from faice.cwl.plan import CwlPlanError, plan_jobs
from faice.red.model import CliOutput
from faice.runner.outputs import stream_file_name
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "cwl"
URL = "https://example.org/data/text%20one.txt"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DATA / name).read_text())


def tool(**fields: Any) -> dict[str, Any]:
    """A small tool in the grepwrap image; ``fields`` replace or add top-level fields."""
    return {"cwlVersion": "v1.2", "class": "CommandLineTool", "requirements": {"DockerRequirement": {"dockerPull": "img:1"}},
            "baseCommand": "cat", "inputs": {}, "outputs": {}, **fields}


def access(staged: Any) -> tuple[str, str, str]:
    return staged.connector.command, next(iter(staged.connector.access.values())), staged.container_path


def test_grepwrap_local_file(tmp_path: Path):
    (plan, invocation), = plan_jobs(load("grepwrap-v1_0.cwl"), [{"query_term": "x", "text_file": {"class": "File", "path": "in/a.txt"}}], tmp_path)
    assert plan.index == 0 and plan.image == "docker.io/curiouscontainers/grepwrap"
    assert plan.argv == ["grepwrap", "x", "/cc/inputs/text_file/a.txt"]
    assert [access(s) for s in plan.staged] == [("red-connector-local", str(tmp_path / "in" / "a.txt"), "/cc/inputs/text_file/a.txt")]
    assert plan.staged[0][:3] == ("text_file", None, "File")
    assert plan.values["text_file"]["path"] == "/cc/inputs/text_file/a.txt" and plan.values["text_file"]["basename"] == "a.txt"
    assert "location" not in plan.values["text_file"]
    assert plan.cli.outputs == (CliOutput("out_file", "File", False, "out.txt", False, ("out.txt",)),)
    assert plan.cli.base_command == ("grepwrap",) and invocation.environment == {}


def test_grepwrap_url_and_file_uri(tmp_path: Path):
    jobs = [{"query_term": "x", "text_file": {"class": "File", "location": URL}, "after_context": 2},
            {"query_term": "y", "text_file": {"class": "File", "location": "file:///data/b%20c.txt"}}]
    first, second = (p.plan for p in plan_jobs(load("grepwrap-v1_0.cwl"), jobs, tmp_path))
    assert [access(s) for s in first.staged] == [("red-connector-http", URL, "/cc/inputs/text_file/text one.txt")]
    assert first.argv == ["grepwrap", "-A", "2", "x", "/cc/inputs/text_file/text one.txt"]
    assert [access(s) for s in second.staged] == [("red-connector-local", "/data/b c.txt", "/cc/inputs/text_file/b c.txt")]
    assert (first.index, second.index) == (0, 1)


def test_argv_is_evaluates_for_the_container_paths(tmp_path: Path):
    cwl = load("grepwrap-v1_0.cwl")
    job = {"query_term": "x", "text_file": {"class": "File", "location": "a.txt", "size": 3}, "after_context": 1}
    (plan, invocation), = plan_jobs(cwl, [job], tmp_path)
    expected = evaluate(cwl, {**job, "text_file": {"class": "File", "path": "/cc/inputs/text_file/a.txt", "size": 3}}, Runtime("/cc/outputs", "/tmp"))
    assert plan.argv == expected.argv and invocation == expected
    assert invocation.job["text_file"]["size"] == 3  # the tool's expressions see it, as cwltool's do
    assert "size" not in plan.values["text_file"]  # but the runner does not hold the file to it (nor does cwltool)


def test_arrays_follow_red_layout(tmp_path: Path):
    cwl = tool(inputs={"files": {"type": "File[]", "inputBinding": {"position": 1}}, "n": {"type": "int[]", "inputBinding": {"prefix": "-n"}}})
    job = {"files": [{"class": "File", "path": "a.txt"}, {"class": "File", "location": URL}], "n": [1, 2]}
    (plan, _), = plan_jobs(cwl, [job], tmp_path)
    assert [(s.key, s.index) for s in plan.staged] == [("files", 0), ("files", 1)]
    assert [access(s) for s in plan.staged] == [("red-connector-local", str(tmp_path / "a.txt"), "/cc/inputs/files/0/a.txt"),
                                               ("red-connector-http", URL, "/cc/inputs/files/1/text one.txt")]
    assert plan.argv == ["cat", "-n", "1", "2", "/cc/inputs/files/0/a.txt", "/cc/inputs/files/1/text one.txt"]
    assert [v["path"] for v in plan.values["files"]] == ["/cc/inputs/files/0/a.txt", "/cc/inputs/files/1/text one.txt"]


def test_default_file_is_staged_from_the_tool_directory(tmp_path: Path):
    cwl = tool(inputs={"ref": {"type": "File", "default": {"class": "File", "location": "ref.fa"}, "inputBinding": {}}})
    (plan, _), = plan_jobs(cwl, [{}], tmp_path / "jobs", tool_dir=tmp_path / "tools")
    assert [access(s) for s in plan.staged] == [("red-connector-local", str(tmp_path / "tools" / "ref.fa"), "/cc/inputs/ref/ref.fa")]
    assert plan.argv == ["cat", "/cc/inputs/ref/ref.fa"]
    (given, _), = plan_jobs(cwl, [{"ref": {"class": "File", "path": "mine.fa"}}], tmp_path / "jobs", tool_dir=tmp_path / "tools")
    assert [access(s)[1] for s in given.staged] == [str(tmp_path / "jobs" / "mine.fa")]


def test_secondary_files_are_staged_beside_their_primary(tmp_path: Path):
    (tmp_path / "r.bam.bai").write_text("")  # the optional one that exists
    cwl = tool(inputs={"bam": {"type": "File", "inputBinding": {}, "secondaryFiles": ["^.idx", ".bai?", ".csi?"]}})
    (plan, invocation), = plan_jobs(cwl, [{"bam": {"class": "File", "path": "r.bam"}}], tmp_path)
    assert [(s.key, access(s)) for s in plan.staged] == [
        ("bam", ("red-connector-local", str(tmp_path / "r.bam"), "/cc/inputs/bam/r.bam")),
        ("bam.secondaryFiles", ("red-connector-local", str(tmp_path / "r.idx"), "/cc/inputs/bam/r.idx")),
        ("bam.secondaryFiles", ("red-connector-local", str(tmp_path / "r.bam.bai"), "/cc/inputs/bam/r.bam.bai")),
    ]
    assert [s.index for s in plan.staged] == [None, 0, 1]
    assert [f["path"] for f in plan.values["bam"]["secondaryFiles"]] == ["/cc/inputs/bam/r.idx"]
    assert [s.required for s in invocation.secondary_files["bam"]] == [True, False, False]
    (remote, _), = plan_jobs(cwl, [{"bam": {"class": "File", "location": "https://example.org/d/r.bam"}}], tmp_path)
    assert [access(s)[1:] for s in remote.staged[1:]] == [("https://example.org/d/r.idx", "/cc/inputs/bam/r.idx")]  # optional ones: not over http


def test_secondary_files_the_job_gives(tmp_path: Path):
    cwl = tool(inputs={"bam": {"type": "File", "inputBinding": {}, "secondaryFiles": [".bai"]}})
    job = {"bam": {"class": "File", "location": URL, "secondaryFiles": [{"class": "File", "path": "elsewhere/x.bai", "basename": "text one.txt.bai"}]}}
    (plan, _), = plan_jobs(cwl, [job], tmp_path)
    assert [access(s) for s in plan.staged] == [("red-connector-http", URL, "/cc/inputs/bam/text one.txt"),
                                               ("red-connector-local", str(tmp_path / "elsewhere" / "x.bai"), "/cc/inputs/bam/text one.txt.bai")]


def test_streams_and_globs_are_evaluated(tmp_path: Path):
    cwl = tool(inputs={"name": {"type": "string", "inputBinding": {}}},
               stdout="$(inputs.name).out",
               outputs={"out": "stdout", "err": "stderr", "made": {"type": "File?", "outputBinding": {"glob": "$(runtime.outdir)/$(inputs.name).txt"}},
                        "dir": {"type": "Directory", "outputBinding": {"glob": "$(inputs.name)"}}},
               requirements={"DockerRequirement": {"dockerPull": "img:1"}, "EnvVarRequirement": {"envDef": {"NAME": "$(inputs.name)"}}})
    (plan, invocation), = plan_jobs(cwl, [{"name": "run1"}], tmp_path)
    assert plan.cli.stdout == "run1.out" and stream_file_name(plan.cli, "stdout") == "run1.out"
    assert plan.cli.stderr == invocation.stderr and len(plan.cli.stderr or "") == 40  # cwltool's name: the tool's SHA-1
    assert plan.cli.outputs == (CliOutput("out", "stdout"), CliOutput("err", "stderr"), CliOutput("made", "File", True, "run1.txt", False, ("run1.txt",)), CliOutput("dir", "Directory", False, "run1", False, ("run1",)))
    assert invocation.environment == {"NAME": "run1"}


def test_image_override_and_missing_image(tmp_path: Path):
    assert plan_jobs(tool(), [{}], tmp_path, image="mine:2")[0].plan.image == "mine:2"
    assert plan_jobs(tool(requirements={}, hints=[{"class": "DockerRequirement", "dockerImageId": "id:3"}]), [{}], tmp_path)[0].plan.image == "id:3"
    with pytest.raises(CwlPlanError, match="--image"):
        plan_jobs(tool(requirements={}), [{}], tmp_path)
    assert plan_jobs(tool(requirements={}), [{}], tmp_path, image="mine:2")[0].plan.image == "mine:2"


def test_unsupported_tool_is_refused_naming_its_features(tmp_path: Path):
    with pytest.raises(CwlPlanError) as refused:
        plan_jobs(load("javascript.cwl"), [{"level": 1}], tmp_path, image="x")
    assert "InlineJavascriptRequirement" in str(refused.value) and "InitialWorkDirRequirement" in str(refused.value)
    assert "requirements.InlineJavascriptRequirement" in str(refused.value)
    with pytest.raises(CwlPlanError, match="workflows"):
        plan_jobs(load("workflow.cwl"), [{}], tmp_path, image="x")


def test_array_outputs_and_several_patterns(tmp_path: Path):
    outputs = {"many": {"type": "File[]", "outputBinding": {"glob": ["*.txt", "$(inputs.n).log"]}},
               "dirs": {"type": "Directory[]?", "outputBinding": {"glob": "$(runtime.outdir)/d*"}},
               "one": {"type": "File?", "outputBinding": {"glob": ["a", "b"]}}}
    (plan, _), = plan_jobs(tool(inputs={"n": "string"}, outputs=outputs), [{"n": "x"}], tmp_path)
    assert plan.cli.outputs == (CliOutput("many", "File", False, None, True, ("*.txt", "x.log")), CliOutput("dirs", "Directory", True, "d*", True, ("d*",)),
                                CliOutput("one", "File", True, None, False, ("a", "b")))


@pytest.mark.parametrize(("fields", "job", "message"), [
    ({"outputs": {"o": {"type": "File"}}}, {}, "without outputBinding.glob"),
    ({"outputs": {"o": {"type": "File", "secondaryFiles": [".idx"], "outputBinding": {"glob": "a"}}}}, {}, "secondaryFiles of outputs"),
    ({"inputs": {"f": {"type": "File", "inputBinding": {}}}}, {"f": {"class": "File", "contents": "hi"}}, "a File literal"),
    ({"inputs": {"f": {"type": "File", "inputBinding": {}}}}, {"f": {"class": "File", "location": "s3://b/k"}}, "s3://b/k"),
])
def test_what_the_runner_cannot_take_yet_is_refused(tmp_path: Path, fields: dict[str, Any], job: dict[str, Any], message: str):
    with pytest.raises(CwlPlanError, match=message):
        plan_jobs(tool(**fields), [job], tmp_path)
