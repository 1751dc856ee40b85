"""faice convert red: a CWL CommandLineTool and its jobs as a RED 9 file that runs as cwltool runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, run_inprocess

GUIDE_TOOL = "red-guide-vagrant__red-beginners-guide__grepwrap.cwl.yml"
GUIDE_JOB = "red-guide-vagrant__red-beginners-guide__job.yml"
TEXT = "QUICK brown fox\nline two\nline three\nQUESTION four\nfive\nsix\n"
LOCATED = re.compile(r"^\S+:\d+:\d+: ", re.MULTILINE)


@pytest.fixture
def guide(tmp_path: Path, reference_examples: Path) -> Path:
    """The beginners' guide tool and job in a folder of their own, with the in.txt the job names."""
    shutil.copy(reference_examples / GUIDE_TOOL, tmp_path / "grepwrap.cwl.yml")
    shutil.copy(reference_examples / GUIDE_JOB, tmp_path / "job.yml")
    assert yaml.safe_load((tmp_path / "job.yml").read_text())["text_file"]["path"] == "in.txt"
    (tmp_path / "in.txt").write_text(TEXT)
    return tmp_path


def convert(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """faice convert red ARGS --format json: the result, and the RED document it printed."""
    result = run_inprocess("convert", "red", *args, "--format", "json", cwd=cwd)
    return result, json.loads(result.stdout) if result.returncode == 0 else None


def write_tool(path: Path, tool: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(tool, sort_keys=False))
    return path


def echo_tool(**more: Any) -> dict[str, Any]:
    return {"cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": "cat",
            "requirements": {"DockerRequirement": {"dockerPull": "faice-test-busybox:latest"}},
            "inputs": {"word": {"type": "string", "default": "hello", "inputBinding": {"prefix": "-w"}},
                       "file": {"type": "File?", "inputBinding": {"position": 1}}},
            "outputs": {"out": {"type": "stdout"}}, "stdout": "out.txt", **more}


# --- the guide pair, run for real --------------------------------------------------------------


def test_guide_pair_converts_to_the_guides_red_file(guide: Path):
    result, red = convert("grepwrap.cwl.yml", "job.yml", cwd=guide)
    assert result.returncode == 0, result.stderr
    assert red is not None
    guide_red = yaml.safe_load((Path(__file__).parent / "data" / "reference-examples" / "red-guide-vagrant__red-beginners-guide__grepwrap.red.yml").read_text())
    assert red["cli"] == guide_red["cli"]  # the guide's own RED file holds the same tool
    assert red["container"] == {"engine": "docker", "settings": {"image": {"url": "grepwrap"}}}
    assert red["inputs"] == {"query_term": "QU", "before_context": 1,
                             "text_file": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(guide / "in.txt")}}}}
    assert red["execution"] == {"engine": "ccfaice", "settings": {}}
    assert "outputs" not in red and "batches" not in red


@pytest.mark.docker
def test_the_red_file_runs_as_cwltool_runs_the_tool(guide: Path, docker_image: str):
    red_path = guide / "red.yml"
    result = run_inprocess("convert", "red", "grepwrap.cwl.yml", "job.yml", "--image", "faice-example-grepwrap:latest", "-o", str(red_path), cwd=guide)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "wrote" in result.stderr
    assert run_inprocess("validate", str(red_path), cwd=guide).returncode == 0

    outdir = guide / "faice-out"
    ran = run_inprocess("--db", str(guide / "faice.db"), "exec", str(red_path), "--outdir", str(outdir), cwd=guide, timeout=180)
    assert ran.returncode == 0, ran.stderr

    # cwltool on the host: grepwrap (the image's script) on PATH, and the DockerRequirement as a
    # hint, since cwltool --no-container refuses a tool that requires Docker
    tool = yaml.safe_load((guide / "grepwrap.cwl.yml").read_text())
    tool["hints"] = tool.pop("requirements")
    write_tool(guide / "host.cwl", tool)
    cwl_out = guide / "cwltool-out"
    cwl_out.mkdir()
    cwltool = Path(sys.executable).with_name("cwltool")
    bin_dir = guide / "bin"
    bin_dir.mkdir()
    shutil.copy(EXAMPLES / "images" / "grepwrap" / "grepwrap", bin_dir / "grepwrap")
    (bin_dir / "grepwrap").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(cwltool), "--quiet", "--no-container", "--outdir", str(cwl_out), str(guide / "host.cwl"), str(guide / "job.yml")],
                          cwd=cwl_out, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = (cwl_out / "out.txt").read_text()
    assert "line three\nQUESTION four\n" in expected and "six" not in expected  # before_context: 1 of the job
    assert (outdir / "out.txt").read_text() == expected


# --- jobs ----------------------------------------------------------------------------------------


def test_a_job_file_with_a_list_of_jobs_becomes_batches(guide: Path):
    (guide / "jobs.yml").write_text(yaml.safe_dump([
        {"query_term": "QU", "text_file": {"class": "File", "path": "in.txt"}},
        {"query_term": "fox", "text_file": {"class": "File", "location": "in.txt"}, "after_context": 2},
    ]))
    result, red = convert("grepwrap.cwl.yml", "jobs.yml", cwd=guide)
    assert result.returncode == 0, result.stderr
    assert red is not None and "inputs" not in red
    local = {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(guide / "in.txt")}}}
    assert red["batches"] == [{"inputs": {"query_term": "QU", "text_file": local}},
                              {"inputs": {"query_term": "fox", "text_file": local, "after_context": 2}}]
    (guide / "red.json").write_text(json.dumps(red))
    assert run_inprocess("validate", str(guide / "red.json")).returncode == 0


def test_several_job_files_become_batches_each_relative_to_its_folder(guide: Path):
    other = guide / "other"
    other.mkdir()
    (other / "data.txt").write_text("x\n")
    (other / "job.yml").write_text("query_term: x\ntext_file: {class: File, path: data.txt}\nunknown_key: 3\n")
    result, red = convert("grepwrap.cwl.yml", "job.yml", "other/job.yml", cwd=guide)
    assert result.returncode == 0, result.stderr
    assert red is not None
    paths = [b["inputs"]["text_file"]["connector"]["access"]["path"] for b in red["batches"]]
    assert paths == [str(guide / "in.txt"), str(other / "data.txt")]
    assert "unknown_key" not in red["batches"][1]["inputs"] and "unknown_key" in result.stderr


def test_no_job_gives_the_defaults_only(tmp_path: Path):
    (tmp_path / "default.txt").write_text("d\n")
    tool = echo_tool()
    tool["inputs"]["file"]["default"] = {"class": "File", "location": "default.txt"}
    write_tool(tmp_path / "tool.cwl", tool)
    result, red = convert(str(tmp_path / "tool.cwl"), cwd=Path("/"))  # the default is beside the tool, not here
    assert result.returncode == 0, result.stderr
    assert red is not None
    assert red["inputs"] == {"word": "hello", "file": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": str(tmp_path / "default.txt")}}}}
    assert red["cli"] == {"cwlVersion": "v1.0", "class": "CommandLineTool", "baseCommand": "cat",
                          "inputs": {"word": {"type": "string", "inputBinding": {"prefix": "-w"}}, "file": {"type": "File?", "inputBinding": {"position": 1}}},
                          "outputs": {"out": {"type": "stdout"}}, "stdout": "out.txt"}


def test_a_missing_required_input_without_default_is_refused(tmp_path: Path):
    tool = echo_tool()
    del tool["inputs"]["word"]["default"]
    write_tool(tmp_path / "tool.cwl", tool)
    result, _ = convert("tool.cwl", cwd=tmp_path)
    assert result.returncode == 2 and "word" in result.stderr


def test_image_option_overrides_the_docker_requirement(guide: Path):
    result, red = convert("grepwrap.cwl.yml", "job.yml", "--image", "faice-test-busybox:latest", cwd=guide)
    assert result.returncode == 0, result.stderr
    assert red is not None and red["container"]["settings"]["image"]["url"] == "faice-test-busybox:latest"


def test_http_inputs_get_the_http_connector(guide: Path):
    (guide / "http.yml").write_text("query_term: QU\ntext_file: {class: File, location: 'https://example.org/data/in.txt'}\n")
    result, red = convert("grepwrap.cwl.yml", "http.yml", cwd=guide)
    assert result.returncode == 0, result.stderr
    assert red is not None
    assert red["inputs"]["text_file"] == {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": "https://example.org/data/in.txt"}}}


def test_list_forms_and_long_types_become_red_spelling(tmp_path: Path):
    tool = {"cwlVersion": "v1.1", "class": "CommandLineTool", "id": "lister", "label": "a label", "baseCommand": ["ls", "-l"],
            "hints": [{"class": "DockerRequirement", "dockerImageId": "faice-test-busybox:latest"}],
            "inputs": [{"id": "#dirs", "type": {"type": "array", "items": "Directory"}, "inputBinding": {"position": 0}, "doc": ["two", "lines"]},
                       {"id": "depth", "type": ["null", "int"], "inputBinding": {"prefix": "-d", "separate": False}}],
            "outputs": [{"id": "listing", "type": "File", "outputBinding": {"glob": "$(inputs.dirs[0].basename).txt"}}]}
    write_tool(tmp_path / "tool.cwl", tool)
    (tmp_path / "job.yml").write_text("dirs: [{class: Directory, path: a}, {class: Directory, location: 'file:///srv/b'}]\n")
    result, red = convert("tool.cwl", "job.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert red is not None
    assert red["cli"]["inputs"] == {"dirs": {"type": "Directory[]", "inputBinding": {"position": 0}, "doc": "two\nlines"},
                                    "depth": {"type": "int?", "inputBinding": {"prefix": "-d", "separate": False}}}
    assert red["cli"]["outputs"] == {"listing": {"type": "File", "outputBinding": {"glob": "$(inputs.dirs[0].basename).txt"}}}
    assert "id" not in red["cli"] and "label" not in red["cli"] and "hints" not in red["cli"]
    assert [d["connector"]["access"]["path"] for d in red["inputs"]["dirs"]] == [str(tmp_path / "a"), "/srv/b"]
    assert red["container"]["settings"]["image"]["url"] == "faice-test-busybox:latest"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("more, feature", [
    ({"requirements": {"InlineJavascriptRequirement": {}, "DockerRequirement": {"dockerPull": "faice-test-busybox:latest"}}}, "InlineJavascriptRequirement"),
    ({"arguments": ["-n"]}, "arguments"),
    ({"stdin": "$(inputs.file.path)"}, "stdin"),
])
def test_what_a_red_file_cannot_hold_is_refused_located(tmp_path: Path, more: dict[str, Any], feature: str):
    write_tool(tmp_path / "tool.cwl", echo_tool(**more))
    result, _ = convert("tool.cwl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if feature in line and LOCATED.match(line)]
    assert lines, result.stderr
    assert all(line.startswith("tool.cwl:") for line in lines)
    if feature != "InlineJavascriptRequirement":  # faice exec runs arguments and stdin itself
        assert "faice exec runs it directly" in result.stderr


def test_javascript_is_refused_as_not_run_by_faice(tmp_path: Path):
    tool = echo_tool(requirements={"InlineJavascriptRequirement": {}})
    tool["stdout"] = "${return 'x'}"
    write_tool(tmp_path / "tool.cwl", tool)
    result, _ = convert("tool.cwl", cwd=tmp_path)
    assert result.returncode == 2
    assert "JavaScript" in result.stderr and "faice exec runs it directly" not in result.stderr
    assert LOCATED.search(result.stderr)


def test_invalid_cwl_is_refused_located(tmp_path: Path):
    tool = echo_tool()
    del tool["class"]
    write_tool(tmp_path / "tool.cwl", tool)
    result, _ = convert("tool.cwl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert LOCATED.search(result.stderr) and result.stderr.startswith("tool.cwl:"), result.stderr
    assert "class" in result.stderr


def test_a_tool_without_image_needs_the_image_option(tmp_path: Path):
    tool = echo_tool()
    del tool["requirements"]
    write_tool(tmp_path / "tool.cwl", tool)
    result, _ = convert("tool.cwl", cwd=tmp_path)
    assert result.returncode == 2 and "--image" in result.stderr
    result, red = convert("tool.cwl", "--image", "faice-test-busybox:latest", cwd=tmp_path)
    assert result.returncode == 0 and red is not None


def test_a_red_file_is_not_a_tool(guide: Path, reference_examples: Path):
    result, _ = convert(str(reference_examples / "red-guide-vagrant__red-beginners-guide__grepwrap.red.yml"), cwd=guide)
    assert result.returncode == 2 and "not a CWL document" in result.stderr


def test_a_file_literal_is_refused(guide: Path):
    (guide / "literal.yml").write_text("query_term: QU\ntext_file: {class: File, contents: 'QU'}\n")
    result, _ = convert("grepwrap.cwl.yml", "literal.yml", cwd=guide)
    assert result.returncode == 2 and "literal" in result.stderr


def test_values_that_do_not_fit_the_tool_are_refused(guide: Path):
    (guide / "bad.yml").write_text("query_term: QU\ntext_file: {class: File, path: in.txt}\nbefore_context: many\n")
    result, _ = convert("grepwrap.cwl.yml", "bad.yml", cwd=guide)
    assert result.returncode == 2 and "before_context" in result.stderr
