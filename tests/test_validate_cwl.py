"""``faice validate`` of CWL documents: cwltool's verdict (checked against ``cwltool --validate``
itself), every problem located, and faice's own verdict on what it runs and a RED file holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faice.cwl.support import unsupported
from tests.conftest import ROOT, run_inprocess

DATA = ROOT / "tests" / "data" / "cwl"
VALID = ["grepwrap-v1_0.cwl", "echo-v1_1.cwl", "copy-v1_2.json", "graph-main.cwl", "graph-no-main.cwl", "workflow.cwl", "javascript.cwl"]
INVALID = ["no-class.cwl", "wrong-types.cwl", "bad-graph.cwl", "bad-graph-process.cwl", "unknown-requirement.cwl", "malformed.cwl"]
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?:(?P<path>[^ ]+): )?(?P<message>.+)$")


def validate(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_inprocess("validate", *args, input=input, cwd=DATA)


def lines(stderr: str) -> list[dict[str, str]]:
    """Every stderr line, parsed as FILE:LINE:COL: path: message (a line that is not fails)."""
    parsed = []
    for line in stderr.splitlines():
        match = LOCATED.match(line)
        assert match, f"not a located line: {line!r}"
        parsed.append(match.groupdict())
    return parsed


@pytest.mark.parametrize("name", VALID + INVALID)
def test_the_verdict_is_cwltools_own(name: str):
    """The oracle: cwltool --validate, run as its own program, on the same file."""
    oracle = subprocess.run([sys.executable, "-c", "import sys; from cwltool.main import main; sys.exit(main(sys.argv[1:]))", "--validate", name],
                            cwd=DATA, capture_output=True, text=True, timeout=120)  # (python -m cwltool exits 0 whatever it found)
    result = validate(name)
    assert (result.returncode == 0) == (oracle.returncode == 0), (result.stderr, oracle.stderr)
    assert (name in VALID) == (oracle.returncode == 0)


@pytest.mark.parametrize("name", ["grepwrap-v1_0.cwl", "echo-v1_1.cwl", "copy-v1_2.json"])
def test_a_valid_tool_of_each_version_is_one_faice_runs_and_embeds(name: str):
    result = validate(name)
    assert result.returncode == 0, result.stderr
    version = {"grepwrap-v1_0.cwl": "v1.0", "echo-v1_1.cwl": "v1.1", "copy-v1_2.json": "v1.2"}[name]
    assert result.stdout.startswith(f"{name}: valid CWL {version} CommandLineTool; faice exec runs it and a RED file can hold it")


def test_a_hint_faice_does_not_use_is_a_located_notice_only():
    result = validate("echo-v1_1.cwl")
    assert lines(result.stderr) == [{"file": "echo-v1_1.cwl", "line": "7", "column": "5", "path": "hints[1]",
                                     "message": "notice: faice ignores the hint SoftwareRequirement"}]


def test_a_graph_is_judged_by_its_main_process():
    result = validate("graph-main.cwl")
    assert result.returncode == 0
    found = lines(result.stderr)
    assert [(f["line"], f["path"]) for f in found] == [("11", "$graph[1].arguments"), ("13", "$graph[1].requirements.EnvVarRequirement")]
    assert all("a RED file cannot hold" in f["message"] and "(faice exec runs it)" in f["message"] for f in found)
    assert "faice exec runs it, a RED file cannot hold it (2 notices above)" in result.stdout


def test_a_graph_without_main_is_valid_but_not_one_process_to_run():
    result = validate("graph-no-main.cwl")
    assert result.returncode == 0
    assert lines(result.stderr)[0]["path"] == "$graph" and "faice exec runs one process" in result.stderr


def test_a_workflow_is_valid_cwl_that_faice_does_not_run():
    result = validate("workflow.cwl")
    assert result.returncode == 0, result.stderr
    assert "workflow.cwl:2:1: class: notice: faice exec runs CommandLineTools, not workflows (cwltool runs it)" in result.stderr.splitlines()
    assert "valid CWL v1.2 Workflow; faice exec cannot run it, cwltool can" in result.stdout


def test_javascript_and_initial_work_dir_are_refused_where_they_stand():
    result = validate("javascript.cwl")
    assert result.returncode == 0
    run_level = {(f["line"], f["column"], f["path"]) for f in lines(result.stderr) if "faice exec does not run" in f["message"] or "not JavaScript" in f["message"]}
    assert run_level == {("4", "3", "requirements.InlineJavascriptRequirement"), ("5", "3", "requirements.InitialWorkDirRequirement"),
                         ("11", "5", "arguments[0].valueFrom")}


@pytest.mark.parametrize(("name", "expected"), [
    ("no-class.cwl", [("1", "1", None, "Missing 'class' field")]),
    ("wrong-types.cwl", [("8", "7", "inputs.message.inputBinding.position", "\"'first'\" is not int"),
                         ("9", "7", "inputs.message.inputBinding.prefix", "value is a CommentedSeq, expected null or string")]),
    ("bad-graph.cwl", [("2", "1", "$graph", "must be a list of processes (mappings with an id and a class)")]),
    ("bad-graph-process.cwl", [("9", "5", "$graph[1].class", "Field 'class' contains undefined reference to 'CommandLine'")]),
    ("unknown-requirement.cwl", [("7", "5", "requirements[1].class", "Field 'class' contains undefined reference to 'TeleportRequirement'"),
                                 ("10", "5", "inputs.message.type", "Field 'type' references unknown identifier 'strng', tried unknown-requirement.cwl#strng")]),
    ("malformed.cwl", [("5", "1", None, "not valid YAML: did not find expected ',' or ']'")]),
])
def test_invalid_documents_get_every_problem_located_and_exit_2(name: str, expected: list[tuple[str, ...]]):
    result = validate(name)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout and result.stdout == ""
    assert [(f["line"], f["column"], f["path"], f["message"]) for f in lines(result.stderr)] == expected
    assert all(f["file"] == name for f in lines(result.stderr))


def test_json_has_the_verdicts_and_each_feature_with_its_place():
    result = validate("javascript.cwl", "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and result.stderr == ""
    from tests.test_exec import _documented_shapes

    assert set(doc) == _documented_shapes()["validate --json (CWL)"]
    assert (doc["valid"], doc["runs"], doc["embeddable"], doc["cwlVersion"], doc["class"]) == (True, False, False, "v1.2", "CommandLineTool")
    first = doc["unsupported"][0]
    assert first == {"path": "requirements.InlineJavascriptRequirement", "line": 4, "column": 3, "feature": "InlineJavascriptRequirement", "level": "run",
                     "message": "faice exec does not run InlineJavascriptRequirement (cwltool does)"}
    assert {u["level"] for u in doc["unsupported"]} == {"run", "embed"}


def test_json_of_an_invalid_document_has_no_verdict_of_faice():
    doc = json.loads(validate("unknown-requirement.cwl", "--json").stdout)
    assert (doc["valid"], doc["runs"], doc["embeddable"], doc["unsupported"]) == (False, None, None, [])
    assert [(e["line"], e["path"]) for e in doc["errors"]] == [(7, "requirements[1].class"), (10, "inputs.message.type")]


def test_red_files_and_cwl_documents_together():
    red = str(ROOT / "examples" / "grepwrap" / "red.yml")
    doc = json.loads(validate(red, "grepwrap-v1_0.cwl", "no-class.cwl", "--json").stdout)
    assert [f["valid"] for f in doc["files"]] == [True, True, False] and doc["valid"] is False
    assert "runs" not in doc["files"][0] and doc["files"][1]["runs"] is True


def test_a_cwl_document_on_standard_input():
    result = validate("-", input=(DATA / "wrong-types.cwl").read_text())
    assert result.returncode == 2
    assert [(f["file"], f["line"], f["path"]) for f in lines(result.stderr)] == [("<stdin>", "8", "inputs.message.inputBinding.position"),
                                                                                  ("<stdin>", "9", "inputs.message.inputBinding.prefix")]
    assert validate("-", input=(DATA / "copy-v1_2.json").read_text()).returncode == 0


def test_a_damaged_schema_cache_is_built_again(tmp_path: Path):
    """A fresh process, an unreadable cache: cwltool loads its schemas itself and faice stores them."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "faice", "validate", "grepwrap-v1_0.cwl"]
    first = subprocess.run(command, cwd=DATA, env=env, capture_output=True, text=True, timeout=120)
    cached = sorted((tmp_path / "faice" / "cwl").glob("*.pickle"))
    assert first.returncode == 0 and len(cached) == 3, first.stderr  # schema-salad's metaschema, v1.0 and cwltool's internal version
    for path in cached:
        path.write_bytes(b"not a pickle")
    again = subprocess.run(command, cwd=DATA, env=env, capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stdout, again.stderr) == (first.returncode, first.stdout, first.stderr)
    assert all(path.read_bytes() != b"not a pickle" for path in cached)


def test_validating_a_red_file_imports_no_cwl_tooling():
    red = str(ROOT / "examples" / "grepwrap" / "red.yml")
    code = ("import sys; from faice.cli import main\ntry: main(['validate', sys.argv[1]])\nexcept SystemExit: pass\n"
            "print('imported:', *(m for m in ('cwltool', 'schema_salad', 'cwl_utils', 'faice.cwl.check') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, red], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == [f"{red}: valid RED 9 (1 batch)", "imported:"], result.stdout + result.stderr


def _tool(**fields: Any) -> dict[str, Any]:
    return {"cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": "echo", "inputs": {}, "outputs": {}, **fields}


def _found(data: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(".".join(map(str, u.path)), u.feature, u.level) for u in unsupported(data)}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"requirements": {"DockerRequirement": {"dockerFile": "FROM x"}}},
     {("requirements.DockerRequirement.dockerFile", "DockerRequirement.dockerFile", "run")}),
    ({"requirements": [{"class": "ShellCommandRequirement"}, {"class": "ResourceRequirement", "ramMin": "$(inputs.n * 2)"}]},
     {("requirements.0", "ShellCommandRequirement", "embed"), ("requirements.1", "ResourceRequirement", "embed"),
      ("requirements.1.ramMin", "JavaScript expressions", "run")}),
    ({"hints": {"ResourceRequirement": {"coresMin": 2}, "InitialWorkDirRequirement": {"listing": []}, "WorkReuse": {"enableReuse": False}}},
     {("hints.InitialWorkDirRequirement", "InitialWorkDirRequirement", "run"), ("hints.WorkReuse", "WorkReuse", "ignored")}),
    ({"hints": [{"class": "EnvVarRequirement", "envDef": {"A": "b"}}, {"class": "ShellCommandRequirement"}]},
     {("hints.0", "the hint EnvVarRequirement", "embed")}),
    ({"inputs": [{"id": "#main/n.x", "type": {"type": "enum", "symbols": ["a"]}, "inputBinding": {"valueFrom": "$(self)", "shellQuote": False}}]},
     {("inputs.0", 'the input name "n.x"', "embed"), ("inputs.0.type", "the type enum", "embed"),
      ("inputs.0.inputBinding.valueFrom", "inputBinding.valueFrom", "embed"), ("inputs.0.inputBinding.shellQuote", "inputBinding.shellQuote", "embed")}),
    ({"inputs": {"r": {"type": {"type": "record", "fields": []}, "inputBinding": {}}, "m": {"type": ["int", "string"], "inputBinding": {},
                                                                                         "loadContents": True}}},
     {("inputs.r.type", "this type", "run"), ("inputs.m.type", "this type", "run"), ("inputs.m.loadContents", "loadContents", "run")}),
    ({"inputs": {"f": {"type": "File", "secondaryFiles": [".bai"], "default": {"class": "File", "location": "a"}, "inputBinding": {"position": 1}}}},
     {("inputs.f.secondaryFiles", "secondaryFiles", "embed")}),
    ({"outputs": {"n": {"type": "int", "outputBinding": {"outputEval": "$(self)"}}, "fs": {"type": "File[]", "outputBinding": {"glob": ["*.a", "*.b"]}},
                  "d": {"type": "Directory", "outputBinding": {"glob": "$(inputs.name).d"}}}},
     {("outputs.n.type", "int outputs", "run"), ("outputs.n.outputBinding.outputEval", "outputEval", "run"),
      ("outputs.fs.type", "array outputs", "embed"), ("outputs.fs.outputBinding.glob", "a glob other than one string", "embed")}),
    ({"outputs": {"f": {"type": "File", "secondaryFiles": [".idx"], "outputBinding": {"glob": "a"}}, "g": {"type": "File?"}}},
     {("outputs.f.secondaryFiles", "secondaryFiles of outputs", "run"), ("outputs.g", "an output without outputBinding.glob", "run")}),
    ({"stdout": "$(inputs.name).txt", "stdin": "$(inputs.f.path)", "successCodes": [0, 1], "s:author": "x"},
     {("stdout", "parameter references in stdout", "embed"), ("stdin", "stdin", "embed"), ("successCodes", "successCodes", "embed")}),
    ({"arguments": ["-v", {"valueFrom": "$(runtime.cores)", "position": 1}, "$(inputs['a b'])", "\\$(not an expression)"]},
     {("arguments", "arguments", "embed")}),
])
def test_what_faice_runs_and_a_red_file_holds(fields: dict[str, Any], expected: set[tuple[str, str, str]]):
    assert _found(_tool(**fields)) == expected


def test_only_a_command_line_tool_runs():
    assert _found({"class": "ExpressionTool", "cwlVersion": "v1.2"}) == {("class", "ExpressionTool", "run")}
    assert _found({"cwlVersion": "v1.2", "$graph": [_tool(id="tool"), {"id": "#main", "class": "Operation"}]}) == {("$graph.1.class", "Operation", "run")}
