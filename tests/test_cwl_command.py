"""Differential test: ``faice.cwl.command.evaluate`` against cwltool, for CWL CommandLineTools.

Each tool (hand-written, then generated with a fixed seed) is written as a ``.cwl`` file and its job
as YAML text (floats as ``repr()``), and cwltool builds the job in-process, as ``cwltool tool.cwl
job.yml`` would (``toplevel``, so it looks for secondary files; no container). Its argv, streams,
EnvVarRequirement variables, resources, evaluated globs and completed job must equal faice's.

cwltool stages each input into a directory of its own (``.../stg<uuid>/``); faice is given
``/cc/in/<basename>/<basename>`` (a container path, as its caller would give). Both directories
become the token ``<D:basename>`` before comparing; a File's ``size`` is given to faice as cwltool
measures it (the caller knows the host file). ``runtime.outdir``/``tmpdir`` are cwltool's own.
"""

from __future__ import annotations

import io
import json
import logging
import random
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.load_tool import load_tool
from cwltool.utils import aslist
from cwltool.workflow import default_make_tool
from schema_salad.exceptions import ValidationException
from schema_salad.utils import yaml_no_ts

from faice.cwl.command import ExpressionError, JobError, Runtime, evaluate, substitute
from faice.cwl.references import JavaScriptRequired
from tests.test_cmdline_cwltool import ITEM_SEPARATORS, PREFIXES, random_scalar, yaml_flow

FIELDS = ("argv", "stdin", "stdout", "stderr", "environment", "resources", "globs", "files")


class Outcome(NamedTuple):
    """What one side made of a tool and job, comparable after normalisation."""

    argv: list[str]
    stdin: str | None
    stdout: str | None
    stderr: str | None
    environment: dict[str, str]
    resources: tuple[Any, Any]
    globs: dict[str, list[str]]
    files: dict[str, Any]  # input id -> File/Directory fields, with secondary file paths


def file_entries(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [e for v in value for e in file_entries(v)]
    if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
        return [value]
    return []


def file_fields(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("class", "path", "basename", "dirname", "nameroot", "nameext", "size")
    return {
        name: [
            {k: e.get(k) for k in keys} | {"secondary": sorted(s["path"] for s in e.get("secondaryFiles") or [])}
            for e in file_entries(value)
        ]
        for name, value in sorted(job.items())
        if file_entries(value)
    }


def normalise(value: Any, dirs: dict[str, str]) -> Any:
    if isinstance(value, str):
        for path in sorted(dirs, key=len, reverse=True):
            value = value.replace(path, dirs[path])
        return value
    if isinstance(value, list):
        return [normalise(v, dirs) for v in value]
    if isinstance(value, tuple):
        items = [normalise(v, dirs) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: normalise(v, dirs) for k, v in value.items()}
    return value


def map_files(value: Any, fn) -> Any:
    if isinstance(value, list):
        return [map_files(v, fn) for v in value]
    if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
        return fn(value)
    return value


class Cwltool:
    """cwltool in-process, one working directory per case."""

    def __init__(self, root: Path):
        self.root = root
        self.tools: dict[str, Any] = {}
        logging.getLogger("cwltool").setLevel(logging.CRITICAL)
        logging.getLogger("salad").setLevel(logging.CRITICAL)

    def load(self, tool: dict[str, Any], work: Path) -> Any:
        """The loaded tool, once per tool: loading is most of cwltool's time."""
        text = json.dumps(tool, ensure_ascii=False)  # ruamel reads an escaped surrogate pair as two lone surrogates
        if text not in self.tools:
            path = work / "tool.cwl"
            path.write_text(text, encoding="utf-8")
            self.tools[text] = load_tool(str(path), LoadingContext({"strict": False, "construct_tool_object": default_make_tool}))
        return self.tools[text]

    def run(self, name: str, tool: dict[str, Any], job: dict[str, Any], extra_files: tuple[str, ...] = ()) -> tuple[Outcome | Exception, Runtime]:
        work = self.root / name
        files = work / "files"
        files.mkdir(parents=True)
        (work / "tmp").mkdir()
        for extra in extra_files:
            (files / extra).write_text(extra, encoding="utf-8")

        def to_cwl(entry: dict[str, Any]) -> dict[str, Any]:
            path = files / entry["basename"]
            if entry["class"] == "File":
                path.write_text(entry["basename"], encoding="utf-8")
            else:
                path.mkdir(exist_ok=True)
            return {"class": entry["class"], "location": path.as_uri()}

        text = "".join(f"{k}: {yaml_flow(map_files(v, to_cwl))}\n" for k, v in job.items())
        loaded = self.load(tool, work)
        context = RuntimeContext({"no_container": True, "toplevel": True, "outdir": str(work / "out"), "tmpdir_prefix": str(work / "tmp") + "/"})
        runtime = Runtime(str(work / "out"), "")
        try:
            j = next(iter(loaded.job(yaml_no_ts().load(io.StringIO(text)) or {}, lambda *a: None, context)))
            builder = j.builder
            runtime = Runtime(builder.outdir, builder.tmpdir)
            dirs = {}
            for _location, ent in j.pathmapper.items():
                if ent.type in ("File", "Directory") and Path(ent.resolved).parent == files:
                    dirs.setdefault(str(Path(ent.target).parent), f"<D:{Path(ent.target).name}>")  # a primary comes before its secondaries
            globs = {}
            for output in loaded.tool["outputs"]:
                patterns: list[str] = []
                for glob in aslist(output.get("outputBinding", {}).get("glob", [])):
                    value = builder.do_eval(glob)
                    if value:
                        patterns.extend(aslist(value))
                globs[output["id"].split("#")[-1].split("/")[-1]] = patterns
            env_names = {e["envName"] for r in loaded.requirements + loaded.hints if r["class"] == "EnvVarRequirement" for e in r["envDef"]}
            outcome = Outcome(
                list(j.command_line),
                j.stdin,
                j.stdout,
                j.stderr,
                {k: v for k, v in j.environment.items() if k in env_names},
                (builder.resources["cores"], builder.resources["ram"]),
                globs,
                file_fields(builder.job),
            )
            return normalise(outcome, dirs), runtime
        except (WorkflowException, ValidationException) as error:
            return error, runtime


def faice_outcome(tool: dict[str, Any], job: dict[str, Any], runtime: Runtime) -> Outcome:
    dirs = {}

    def to_faice(entry: dict[str, Any]) -> dict[str, Any]:
        directory = f"/cc/in/{entry['basename']}"
        dirs[directory] = f"<D:{entry['basename']}>"
        out = {"class": entry["class"], "path": f"{directory}/{entry['basename']}"}
        if entry["class"] == "File":
            out["size"] = len(entry["basename"].encode())
        return out

    invocation = evaluate(tool, {k: map_files(v, to_faice) for k, v in job.items()}, runtime)
    files = file_fields(invocation.job)
    for name, secondaries in invocation.secondary_files.items():
        for entry in files[name]:
            entry["secondary"] = sorted(s.path for s in secondaries if s.primary == entry["path"])
    outcome = Outcome(
        invocation.argv,
        invocation.stdin,
        invocation.stdout,
        invocation.stderr,
        invocation.environment,
        (invocation.resources.cores, invocation.resources.ram),
        invocation.globs,
        files,
    )
    return normalise(outcome, dirs)


@pytest.fixture(scope="module")
def cwltool(tmp_path_factory) -> Cwltool:
    return Cwltool(tmp_path_factory.mktemp("cwltool"))


def check(cwltool: Cwltool, name: str, tool: dict[str, Any], job: dict[str, Any], extra_files: tuple[str, ...] = ()) -> Outcome:
    expected, runtime = cwltool.run(name, tool, job, extra_files)
    if isinstance(expected, Exception):
        with pytest.raises((ExpressionError, JobError)):
            faice_outcome(tool, job, runtime)
        assert name.startswith("fails-"), f"cwltool failed (faice too): {expected}"
        return Outcome([], None, None, None, {}, (0, 0), {}, {})
    actual = faice_outcome(tool, job, runtime)
    for field in FIELDS:
        assert getattr(actual, field) == getattr(expected, field), (
            f"{name}: {field} differs\ntool: {json.dumps(tool)}\njob: {json.dumps(job)}\ncwltool: {getattr(expected, field)!r}\nfaice:   {getattr(actual, field)!r}"
        )
    return actual


def tool(version: str = "v1.2", **fields: Any) -> dict[str, Any]:
    return {"cwlVersion": version, "class": "CommandLineTool", "inputs": {}, "outputs": {}} | fields


F = {"class": "File", "basename": "reads.sorted.bam"}
HAND_WRITTEN: list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...]]] = [
    (
        "arguments-with-references",
        tool(
            "v1.0",
            baseCommand=["samtools", "index"],
            arguments=[
                "-o",
                "$(runtime.outdir)/$(inputs.f.nameroot).out",
                {"valueFrom": "$(inputs.n)", "prefix": "-n", "position": 2},
                {"valueFrom": "$(inputs.f.basename)", "position": -1},
                {"prefix": "--dangling"},
                {"valueFrom": "literal text", "prefix": "-t", "separate": False},
                "$(runtime.tmpdir)",
                "$(inputs.f.dirname) $(inputs.f.nameext) $(inputs.f.size)",
            ],
            inputs={"f": {"type": "File", "inputBinding": {"position": 1}}, "n": {"type": "int", "default": 4}},
        ),
        {"f": F},
        (),
    ),
    (
        "shell-quote",
        tool(
            baseCommand="cat",
            requirements=[{"class": "ShellCommandRequirement"}],
            arguments=[{"valueFrom": "|", "shellQuote": False, "position": 5}, {"valueFrom": "wc -l", "shellQuote": False, "position": 6}],
            inputs={
                "s": {"type": "string", "inputBinding": {"position": 1}},
                "t": {"type": "string[]", "inputBinding": {"position": 2, "prefix": "-t"}},
                "u": {"type": "string", "inputBinding": {"position": 3, "shellQuote": False}},
                "f": {"type": "File", "inputBinding": {"position": 4}},
            },
        ),
        {"s": "it's a \"test\" $HOME", "t": ["ünï", "", "a b", "plain", "x=1,y@2%"], "u": "> out.txt", "f": F},
        (),
    ),
    (
        "environment",
        tool(
            "v1.1",
            baseCommand="env",
            requirements={"EnvVarRequirement": {"envDef": {"FILE": "$(inputs.f.path)", "N": "n-$(inputs.n)", "PLAIN": "as is", "CORES": "$(runtime.cores) cores"}}},
            hints=[{"class": "EnvVarRequirement", "envDef": [{"envName": "IGNORED", "envValue": "hint"}]}],
            inputs={"f": "File", "n": "int"},
        ),
        {"f": F, "n": 7},
        (),
    ),
    (
        "environment-from-a-hint",
        tool(baseCommand="env", hints=[{"class": "EnvVarRequirement", "envDef": [{"envName": "NAME", "envValue": "$(inputs.s)"}]}], inputs={"s": "string"}),
        {"s": "value with spaces"},
        (),
    ),
    (
        "streams",
        tool(
            baseCommand="sort",
            stdin="$(inputs.f.path)",
            stdout="$(inputs.f.nameroot).txt",
            stderr="err-$(inputs.s).log",
            inputs={"f": "File", "s": "string"},
            outputs={"out": "stdout", "err": "stderr"},
        ),
        {"f": F, "s": "x"},
        (),
    ),
    (
        "stdin-shortcut",
        tool(baseCommand="wc", inputs={"text": "stdin", "n": {"type": "int", "inputBinding": {"prefix": "-n"}}}, outputs={"out": "stdout"}, stdout="count.txt"),
        {"text": F, "n": 2},
        (),
    ),
    (
        "globs",
        tool(
            baseCommand="touch",
            inputs=[{"id": "#s", "type": "string"}, {"id": "arr", "type": "string[]"}, {"id": "f", "type": "File"}],
            outputs=[
                {"id": "#one", "type": "File", "outputBinding": {"glob": "$(inputs.s).txt"}},
                {"id": "many", "type": "File[]", "outputBinding": {"glob": ["$(inputs.s).*", "*.log", "$(inputs.arr)", "$(inputs.f.nameroot).bai"]}},
                {"id": "whole", "type": "File[]", "outputBinding": {"glob": "$(inputs.arr)"}},
                {"id": "none", "type": "File?"},
                {"id": "dot", "type": "Directory", "outputBinding": {"glob": "$(runtime.outdir)/sub"}},
            ],
        ),
        {"s": "result", "arr": ["a.txt", "b.txt"], "f": F},
        (),
    ),
    (
        "defaults-and-optional-inputs",
        tool(
            baseCommand="run",
            inputs={
                "n": {"type": "int", "default": 3, "inputBinding": {"prefix": "-n"}},
                "x": {"type": "float?", "default": 2.5, "inputBinding": {"prefix": "-x"}},
                "s": {"type": "string?", "inputBinding": {"prefix": "-s"}},
                "null_given": {"type": "string?", "default": "filled", "inputBinding": {"prefix": "-d"}},
                "arr": {"type": "int[]", "default": [1, 2], "inputBinding": {"prefix": "-a", "itemSeparator": ","}},
                "flag": {"type": "boolean", "default": True, "inputBinding": {"prefix": "--flag"}},
                "off": {"type": "boolean?", "inputBinding": {"prefix": "--off"}},
            },
        ),
        {"null_given": None},
        (),
    ),
    (
        "arrays",
        tool(
            baseCommand="run",
            inputs={
                "joined": {"type": "string[]", "inputBinding": {"prefix": "-j", "itemSeparator": ";", "position": 1}},
                "glued": {"type": "int[]", "inputBinding": {"prefix": "-g=", "separate": False, "itemSeparator": ",", "position": 2}},
                "each": {"type": {"type": "array", "items": "string", "inputBinding": {"prefix": "-e"}}, "inputBinding": {"position": 3}},
                "items_only": {"type": {"type": "array", "items": "File", "inputBinding": {"prefix": "--file", "separate": False}}},
                "bare": {"type": "string[]", "inputBinding": {"position": 4, "prefix": "--bare"}},
                "empty": {"type": "string[]", "inputBinding": {"position": 5, "prefix": "--empty"}},
                "counted": {"type": "string[]", "inputBinding": {"position": 6, "prefix": "--count", "valueFrom": "$(self.length)"}},
                "mapped": {"type": "string[]", "inputBinding": {"position": 7, "prefix": "--first", "valueFrom": "$(self[0])"}},
                "listed": {"type": "string[]", "inputBinding": {"position": 8, "prefix": "--all", "valueFrom": "$(self)"}},
            },
        ),
        {
            "joined": ["a", "b c"],
            "glued": [1, 2, 3],
            "each": ["x", "y"],
            "items_only": [{"class": "File", "basename": "one.txt"}, {"class": "File", "basename": "two.txt"}],
            "bare": ["p", "q"],
            "empty": [],
            "counted": ["u", "v", "w"],
            "mapped": ["first", "second"],
            "listed": ["l1", "l2"],
        },
        (),
    ),
    (
        "secondary-files",
        tool(
            baseCommand="samtools",
            inputs={
                "bam": {"type": "File", "secondaryFiles": [".bai", "^.bai", "^^.idx?", "$(self.nameroot).csi"], "inputBinding": {"position": 1}},
                "more": {"type": "File[]", "secondaryFiles": "^.crai", "inputBinding": {"position": 2}},
            },
        ),
        {"bam": F, "more": [{"class": "File", "basename": "c1.cram"}, {"class": "File", "basename": "c2.cram"}]},
        ("reads.sorted.bam.bai", "reads.sorted.bai", "reads.idx", "reads.sorted.csi", "c1.crai", "c2.crai"),
    ),
    (
        "secondary-files-v1.0",
        tool("v1.0", baseCommand="index", inputs={"fa": {"type": "File", "secondaryFiles": [".fai", "^.dict"], "inputBinding": {}}}),
        {"fa": {"class": "File", "basename": "ref.fa"}},
        ("ref.fa.fai", "ref.dict"),
    ),
    (
        "resources-v1.0-defaults",
        tool("v1.0", baseCommand="run", arguments=["$(runtime.cores)", "$(runtime.ram)", "$(runtime.outdirSize)"]),
        {},
        (),
    ),
    (
        "resources-from-references",
        tool(
            baseCommand="run",
            requirements={"ResourceRequirement": {"coresMin": "$(inputs.n)", "ramMin": 100, "ramMax": 2000}},
            arguments=["-t", "$(runtime.cores)", "-m", "$(runtime.ram)"],
            inputs={"n": "int"},
        ),
        {"n": 3},
        (),
    ),
    (
        "resources-zero-is-absent-and-max-alone",
        tool("v1.1", baseCommand="run", hints={"ResourceRequirement": {"coresMin": 0, "ramMax": 512}}, arguments=["$(runtime.cores)", "$(runtime.ram)"]),
        {},
        (),
    ),
    (
        "resources-float-cores-v1.2",
        tool(baseCommand="run", requirements={"ResourceRequirement": {"coresMin": 1.5, "ramMin": 100.2}}, arguments=["$(runtime.cores)", "$(runtime.ram)"]),
        {},
        (),
    ),
    (
        "whole-string-references-keep-their-type",
        tool(
            baseCommand="run",
            arguments=[
                {"valueFrom": "$(inputs.flag)", "prefix": "--flag"},
                {"valueFrom": "$(inputs.off)", "prefix": "--off"},
                {"valueFrom": "  $(inputs.n)  ", "prefix": "-n"},
                {"valueFrom": "$(inputs.arr)", "prefix": "-a"},
                {"valueFrom": "$(inputs.arr)", "prefix": "-j", "itemSeparator": "+"},
                {"valueFrom": "$(inputs.x)", "prefix": "-x"},
                {"valueFrom": "$(inputs.f)", "prefix": "-f"},
                {"valueFrom": "$(null)", "prefix": "--null"},
                "n=$(inputs.n) b=$(inputs.flag) x=$(inputs.x) a=$(inputs.arr) z=$(null) s=$(inputs.s)",
            ],
            inputs={"flag": "boolean", "off": "boolean", "n": "int", "arr": "int[]", "x": "double", "f": "File", "s": "string"},
        ),
        {"flag": True, "off": False, "n": 5, "arr": [1, 2], "x": 1e-07, "f": F, "s": 'ü "q"'},
        (),
    ),
    (
        "reference-syntax",
        tool(
            baseCommand="run",
            arguments=["$(inputs['s'])", '$(inputs["s"])', "$(inputs.f['basename'])", "$(inputs.arr[1])", "$(inputs.arr.length)", "$(inputs.d.basename)", "$(inputs.d.path)"],
            inputs={"s": "string", "f": "File", "arr": "string[]", "d": "Directory", "e": {"type": {"type": "enum", "symbols": ["fast", "slow"]}, "inputBinding": {"prefix": "--mode"}}},
        ),
        {"s": "str", "f": F, "arr": ["zero", "one"], "d": {"class": "Directory", "basename": "refs"}, "e": "slow"},
        (),
    ),
    (
        "position-expressions",
        tool(
            baseCommand="run",
            arguments=[{"valueFrom": "arg", "position": "$(inputs.n)"}],
            inputs={"n": "int", "s": {"type": "string", "inputBinding": {"position": "$(inputs.n)", "prefix": "-s"}}, "t": {"type": "string", "inputBinding": {"position": 2}}},
        ),
        {"n": 1, "s": "a", "t": "b"},
        (),
    ),
    (
        "positions-compare-like-cwltool",
        tool(
            baseCommand="run",
            arguments=[{"valueFrom": "arg0", "position": 1}, {"valueFrom": "arg1", "position": 1}, "zero", {"valueFrom": "neg", "position": -1}],
            inputs={"a": {"type": "string", "inputBinding": {"position": 1}}, "1st": {"type": "string", "inputBinding": {"position": 1}}, "b": {"type": "string", "inputBinding": {}}},
        ),
        {"a": "A", "1st": "FIRST", "b": "B"},
        (),
    ),
    *[
        (
            f"escapes-{version}",
            tool(version, baseCommand="echo", arguments=["\\$(inputs.s)", "a\\b $(inputs.s)", "\\\\$(inputs.s)", "no refs \\ here", "$(inputs.s)\\${x}"], inputs={"s": "string"}),
            {"s": "S"},
            (),
        )
        for version in ("v1.0", "v1.1", "v1.2")
    ],
    ("fails-missing-required-input", tool(baseCommand="run", inputs={"s": {"type": "string", "inputBinding": {}}}), {}, ()),
    ("fails-missing-key", tool(baseCommand="run", arguments=["$(inputs.f.nothing)"], inputs={"f": "File"}), {"f": F}, ()),
    ("fails-index-out-of-range", tool(baseCommand="run", arguments=["$(inputs.a[2])"], inputs={"a": "string[]"}), {"a": ["x"]}, ()),
    ("fails-wrong-type", tool(baseCommand="run", inputs={"n": {"type": "int", "inputBinding": {}}}), {"n": "five"}, ()),
    ("fails-env-not-a-string", tool(baseCommand="run", requirements={"EnvVarRequirement": {"envDef": {"N": "$(inputs.n)"}}}, inputs={"n": "int"}), {"n": 1}, ()),
    ("fails-absolute-stdout", tool(baseCommand="run", stdout="/$(inputs.s)"), {}, ()),
]


@pytest.mark.parametrize("name,cwl,job,extra", HAND_WRITTEN, ids=[case[0] for case in HAND_WRITTEN])
def test_hand_written_tool_matches_cwltool(cwltool: Cwltool, name: str, cwl: dict[str, Any], job: dict[str, Any], extra: tuple[str, ...]):
    check(cwltool, name, cwl, job, extra)


JAVASCRIPT = [
    ("inputs.s.inputBinding.valueFrom", {"inputs": {"s": {"type": "string", "inputBinding": {"valueFrom": "$(inputs.s.toUpperCase())"}}}}),
    ("inputs.s.inputBinding.valueFrom", {"inputs": {"s": {"type": "string?", "inputBinding": {"valueFrom": "${return 1}"}}}}),
    ("inputs.a.type.inputBinding.valueFrom", {"inputs": {"a": {"type": {"type": "array", "items": "string", "inputBinding": {"valueFrom": "$(self + 1)"}}}}}),
    ("inputs.f.secondaryFiles[1]", {"inputs": {"f": {"type": "File", "secondaryFiles": [".bai", "${return self.basename}"]}}}),
    ("arguments[1]", {"arguments": ["ok $(inputs.s)", "$(inputs.s.length + 1)"]}),
    ("arguments[0].valueFrom", {"arguments": [{"valueFrom": "$(runtime.cores * 2)"}]}),
    ("arguments[0].position", {"arguments": [{"valueFrom": "x", "position": "$(1+1)"}]}),
    ("stdout", {"stdout": "$(inputs.s).$('txt')"}),
    ("stdin", {"stdin": "${return inputs.f.path}"}),
    ("requirements.EnvVarRequirement.envDef.X", {"requirements": {"EnvVarRequirement": {"envDef": {"OK": "$(inputs.s)", "X": "$(inputs.s + 'x')"}}}}),
    ("requirements.ResourceRequirement.ramMin", {"hints": {"ResourceRequirement": {"ramMin": "$(inputs.n * 1024)"}}}),
    ("outputs.o.outputBinding.glob[1]", {"outputs": {"o": {"type": "File", "outputBinding": {"glob": ["a", "$(Math.max(1, 2))"]}}}}),
    ("arguments[0]", {"arguments": ["$(unknown.x)"]}),
    ("arguments[0]", {"arguments": ["unfinished $(inputs.s"]}),
]


@pytest.mark.parametrize("field,fields", JAVASCRIPT, ids=[f"{n}-{field}" for n, (field, _) in enumerate(JAVASCRIPT)])
def test_javascript_is_refused_naming_the_field(field: str, fields: dict[str, Any]):
    """Refused whatever the job holds: a field that this job never evaluates still names the tool as one faice cannot run."""
    with pytest.raises(JavaScriptRequired) as raised:
        evaluate(tool(baseCommand="run", **fields), {"s": "x", "n": 1}, Runtime("/out", "/tmp"))
    assert raised.value.field == field
    assert str(raised.value).startswith(field + ": ")


def test_ids_of_list_forms_and_graph_documents():
    cwl = tool(
        baseCommand="run",
        inputs=[{"id": "file.cwl#main/x", "type": "string", "inputBinding": {"prefix": "-x"}}, {"id": "#y", "type": "int", "inputBinding": {"position": -1}}],
        outputs=[{"id": "file.cwl#main/o", "type": "File", "outputBinding": {"glob": "$(inputs.x).txt"}}],
        requirements=[{"class": "EnvVarRequirement", "envDef": [{"envName": "Y", "envValue": "$(inputs.y)!"}]}],
    )
    invocation = evaluate(cwl, {"x": "a", "y": 2}, Runtime("/out", "/tmp"))
    assert invocation.argv == ["run", "2", "-x", "a"]
    assert invocation.globs == {"o": ["a.txt"]}
    assert invocation.environment == {"Y": "2!"}


def test_a_stdout_output_without_a_name_gets_the_tools_sha1():
    """cwltool names it by the SHA-1 of the document as it holds it after loading (which faice does
    not have): faice's name is the SHA-1 of the tool it is given, the same for every job."""
    cwl = tool("v1.0", baseCommand="date", outputs=[{"id": "#now", "type": "stdout"}])
    first = evaluate(cwl, {}, Runtime("/out", "/tmp"))
    assert first.stdout is not None and len(first.stdout) == 40 and first.globs == {"now": [first.stdout]}
    assert evaluate(cwl, {}, Runtime("/o", "/t")).stdout == first.stdout


def test_the_callers_job_is_not_changed_and_defaults_are_returned():
    cwl = tool(baseCommand="run", inputs={"f": {"type": "File", "secondaryFiles": ".bai"}, "n": {"type": "int", "default": 2}})
    job = {"f": {"class": "File", "location": "file:///cc/in/a%20b.bam"}}
    invocation = evaluate(cwl, job, Runtime("/out", "/tmp"))
    assert job == {"f": {"class": "File", "location": "file:///cc/in/a%20b.bam"}}
    assert invocation.job["n"] == 2
    assert invocation.job["f"] | {"secondaryFiles": None} == {
        "class": "File",
        "location": "file:///cc/in/a%20b.bam",
        "path": "/cc/in/a b.bam",
        "basename": "a b.bam",
        "dirname": "/cc/in",
        "nameroot": "a b",
        "nameext": ".bam",
        "secondaryFiles": None,
    }
    assert [s["path"] for s in invocation.job["f"]["secondaryFiles"]] == ["/cc/in/a b.bam.bai"]


# Generated tools: every feature of the subset at random, with references only to what the job
# surely holds (a File by its fields, since cwltool's File objects carry more fields than faice's:
# a whole File inside text is JSON that differs; see the module docstring of faice.cwl.command).
SEED = 20261203
N_TOOLS = 100
JOBS_PER_TOOL = 2
NAMES = ["a", "b", "x1", "in_file", "n", "s", "arr", "Z", "long_name", "m9"]
BASES = ["string", "int", "long", "float", "double", "boolean", "File", "Directory", "enum"]
BASE_WEIGHTS = [5, 3, 1, 2, 1, 3, 4, 1, 1]
SYMBOLS = ["fast", "slow", "two words"]
SECONDARY = [".idx", "^.bai", "^^.gz.tbi"]


def reference(rnd: random.Random, name: str, spec: dict[str, Any], whole: bool) -> str:
    """A reference to input ``name`` that resolves for every job, as text or (``whole``) alone."""
    base, array, optional = spec["_base"], spec["_array"], spec["_optional"] and "default" not in spec
    root = rnd.choice([f"inputs.{name}", f"inputs['{name}']", f'inputs["{name}"]'])
    if base in ("File", "Directory") and not (whole and rnd.random() < 0.3):
        if array or optional:
            return f"$({root})" if whole else "$(runtime.outdir)"
        fields = ["path", "basename"] + (["nameroot", "nameext", "dirname", "size"] if base == "File" else [])
        return f"$({root}.{rnd.choice(fields)})"
    if array and not optional and rnd.random() < 0.5:
        return f"$({root}.length)"
    return f"$({root})"


def random_text(rnd: random.Random, inputs: dict[str, Any], strings_only: bool = False) -> str:
    """Text with zero to three references (inputs and runtime) and, at times, an escape."""
    pieces = [rnd.choice(["pre-", "x=", "a,b"] + ([] if strings_only else ["", " spaced "]))]
    for _ in range(rnd.randint(0 if not strings_only else 1, 3)):
        roll = rnd.random()
        if roll < 0.2 or not inputs:
            pieces.append(rnd.choice(["$(runtime.outdir)", "$(runtime.tmpdir)", "$(runtime.cores)", "$(runtime.ram)"]))
        else:
            name = rnd.choice(sorted(inputs))
            pieces.append(reference(rnd, name, inputs[name], whole=False))
        pieces.append(rnd.choice(["", "/", ".txt", " ", "\\$(not)", "-", "\\\\"]))
    return "".join(pieces)


def random_input(rnd: random.Random, shell: bool) -> dict[str, Any]:
    base = rnd.choices(BASES, BASE_WEIGHTS)[0]
    array, optional = rnd.random() < 0.35, rnd.random() < 0.3
    # cwltool fails on some arrays of an anonymous enum ("The name ... is already in use")
    array = array and base != "enum"
    kind: Any = {"type": "enum", "symbols": SYMBOLS} if base == "enum" else base
    if array:
        kind = {"type": "array", "items": kind}
        if rnd.random() < 0.2:
            kind["inputBinding"] = {"prefix": rnd.choice(PREFIXES)} if rnd.random() < 0.7 else {}
    if optional:
        kind = ["null", kind] if rnd.random() < 0.5 or not isinstance(kind, str) else kind + "?"
    elif base != "enum" and rnd.random() < 0.3:
        kind = [kind]
    spec: dict[str, Any] = {"type": kind, "_base": base, "_array": array, "_optional": optional}
    if rnd.random() < 0.75:
        binding: dict[str, Any] = {}
        if rnd.random() < 0.6:
            binding["position"] = rnd.choice([-1, 0, 0, 1, 2, 3])
        if rnd.random() < 0.6:
            binding["prefix"] = rnd.choice(PREFIXES)
            if rnd.random() < 0.3:
                binding["separate"] = rnd.random() < 0.5
        if array and rnd.random() < 0.4:
            binding["itemSeparator"] = rnd.choice(ITEM_SEPARATORS)
        if shell and rnd.random() < 0.3:
            binding["shellQuote"] = False
        spec["inputBinding"] = binding
    if base == "File" and rnd.random() < 0.3:
        spec["secondaryFiles"] = rnd.sample(SECONDARY, rnd.randint(1, 2))
    if base not in ("File", "Directory") and rnd.random() < 0.2:
        spec["default"] = random_scalar(rnd, "string" if base == "enum" else base, "dflt", 0)
        if base == "enum":
            spec["default"] = rnd.choice(SYMBOLS)
        if array:
            spec["default"] = [spec["default"]]
    return spec


def random_tool(rnd: random.Random) -> dict[str, Any]:
    version = rnd.choice(["v1.0", "v1.1", "v1.2"])
    shell = rnd.random() < 0.3
    inputs = {name: random_input(rnd, shell) for name in rnd.sample(NAMES, rnd.randint(1, 5))}
    # valueFrom, after all inputs exist: a reference to self or to another input
    for name, spec in inputs.items():
        if "inputBinding" in spec and rnd.random() < 0.25:
            spec["inputBinding"]["valueFrom"] = reference(rnd, name, spec, whole=True).replace(f"inputs.{name}", "self").replace(f"inputs['{name}']", "self").replace(f'inputs["{name}"]', "self") if rnd.random() < 0.6 else random_text(rnd, inputs)
    cwl: dict[str, Any] = {"cwlVersion": version, "class": "CommandLineTool"}
    if rnd.random() < 0.85:
        cwl["baseCommand"] = rnd.choice(["echo", ["python3", "-m", "mod"], ["run"], "my tool"])
    arguments: list[Any] = []
    for index in range(rnd.choices([0, 1, 2, 3], [3, 3, 2, 1])[0]):
        roll = rnd.random()
        if roll < 0.25:
            arguments.append(rnd.choice(["-v", "--flag=1", "two words", "", "it's"]))
        elif roll < 0.5:
            arguments.append(random_text(rnd, inputs, strings_only=True))
        else:
            other = rnd.choice(sorted(inputs))
            argument: dict[str, Any] = {"valueFrom": random_text(rnd, inputs) if rnd.random() < 0.7 else reference(rnd, other, inputs[other], whole=True)}
            if rnd.random() < 0.5:
                argument["position"] = rnd.choice([-1, 0, 1, 2, index])
            if rnd.random() < 0.4:
                argument["prefix"] = rnd.choice(PREFIXES)
                if rnd.random() < 0.3:
                    argument["separate"] = False
            if shell and rnd.random() < 0.4:
                argument["shellQuote"] = False
            arguments.append(argument)
    if arguments:
        cwl["arguments"] = arguments
    requirements: list[dict[str, Any]] = []
    if shell:
        requirements.append({"class": "ShellCommandRequirement"})
    if rnd.random() < 0.3:
        requirements.append({"class": "EnvVarRequirement", "envDef": [{"envName": f"V{i}", "envValue": random_text(rnd, inputs, True)} for i in range(rnd.randint(1, 3))]})
    if rnd.random() < 0.25:
        ints = [n for n, s in inputs.items() if s["_base"] == "int" and not s["_array"] and not s["_optional"]]
        cores: Any = rnd.choice([2, 4, 16]) if not ints or rnd.random() < 0.5 else f"$(inputs.{ints[0]})"
        requirements.append({"class": "ResourceRequirement", "coresMin": cores, "ramMin": rnd.choice([100, 2048])})
    if requirements:
        cwl["requirements" if rnd.random() < 0.7 else "hints"] = requirements
    for stream in ("stdout", "stderr"):
        if rnd.random() < 0.25:
            cwl[stream] = "out" + random_text(rnd, {k: v for k, v in inputs.items() if v["_base"] in ("string", "int", "enum") and not v["_array"]}).replace("/", "_") + ".txt"
    cwl["inputs"] = {name: {k: v for k, v in spec.items() if not k.startswith("_")} for name, spec in inputs.items()}
    cwl["outputs"] = {}
    if rnd.random() < 0.5:
        cwl["outputs"]["o"] = {"type": "File[]", "outputBinding": {"glob": [random_text(rnd, inputs, True).replace("/", "_"), "*.txt"]}}
    cwl["_inputs"] = inputs
    return cwl


def random_job(rnd: random.Random, inputs: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {}
    for key, spec in inputs.items():
        if spec["_optional"] or "default" in spec:
            roll = rnd.random()
            if roll < 0.3:
                continue
            if roll < 0.4:
                job[key] = None
                continue
        count = rnd.choice([0, 1, 2, 3]) if spec["_array"] else 1
        values = [rnd.choice(SYMBOLS) if spec["_base"] == "enum" else random_scalar(rnd, spec["_base"], key, i) for i in range(count)]
        job[key] = values if spec["_array"] else values[0]
    return job


def secondary_names(cwl: dict[str, Any], job: dict[str, Any]) -> tuple[str, ...]:
    names = []
    for key, spec in cwl["inputs"].items():
        for entry in file_entries(job.get(key)):
            names.extend(substitute(entry["basename"], pattern) for pattern in spec.get("secondaryFiles", []))
    return tuple(names)


def generate_cases() -> list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...]]]:
    rnd = random.Random(SEED)
    cases = []
    for t in range(N_TOOLS):
        cwl = random_tool(rnd)
        inputs = cwl.pop("_inputs")
        for j in range(JOBS_PER_TOOL):
            job = random_job(rnd, inputs)
            cases.append((f"tool{t:03d}-job{j}", cwl, job, secondary_names(cwl, job)))
    return cases


GENERATED = generate_cases()


@pytest.mark.parametrize("name,cwl,job,extra", GENERATED, ids=[case[0] for case in GENERATED])
def test_generated_tool_matches_cwltool(cwltool: Cwltool, name: str, cwl: dict[str, Any], job: dict[str, Any], extra: tuple[str, ...]):
    check(cwltool, "fails-" + name if name in EXPECTED_FAILURES else name, cwl, job, extra)


#: generated cases that cwltool refuses (faice must refuse them too); none with this seed
EXPECTED_FAILURES: set[str] = set()


def test_generated_tools_cover_the_subset():
    texts = [json.dumps(cwl) + json.dumps(job) for _, cwl, job, _ in GENERATED]
    wanted = {
        "v1.0": '"v1.0"', "v1.1": '"v1.1"', "v1.2": '"v1.2"',
        "valueFrom on self": "$(self", "valueFrom as text": '"valueFrom": "pre-', "File fields": ".nameext)", "dirname": ".dirname)", "size": ".size)", "Directory": '"Directory"',
        "array length": ".length)", "quoted keys": "$(inputs['", "runtime": "$(runtime.cores)", "escape": "\\\\$(not)",
        "ShellCommandRequirement": "ShellCommandRequirement", "shellQuote": '"shellQuote": false', "EnvVarRequirement": "EnvVarRequirement",
        "ResourceRequirement reference": '"coresMin": "$(inputs.', "stdout": '"stdout"', "stderr": '"stderr"', "glob": '"glob"',
        "secondaryFiles": '"secondaryFiles"', "default": '"default"', "enum": '"enum"', "union": '"type": ["null"',
        "optional shorthand": '?"', "item binding": '"items": "', "itemSeparator": "itemSeparator", "hints": '"hints"',
        "arguments": '"arguments"', "null value": ": null",
    }
    missing = sorted(feature for feature, text in wanted.items() if not any(text in t for t in texts))
    assert missing == []


REFERENCE_PIECES = [
    "$(inputs.s)", "$(inputs['s'])", '$(inputs["a b"])', "$(inputs.arr[1])", "$(inputs.arr.length)", "$(inputs.n)", "$(inputs.x)",
    "$(inputs.flag)", "$(inputs.none)", "$(inputs.f.basename)", "$(self)", "$(self[0])", "$(runtime.outdir)", "$(null)",
    "\\", "\\\\", "$", "(", ")", "'", '"', " ", "x", "é", "\\$(inputs.s)", "\\${", "$(inputs.missing)", "$(inputs.arr[5])",
]


def test_references_match_cwl_utils_on_random_text():
    """``faice.cwl.references.evaluate`` against cwl_utils' ``interpolate`` (cwltool's evaluator,
    without JavaScript) on 3000 random texts of references, escapes and punctuation, both escaping
    behaviours: the same value, or an error on both sides."""
    from cwl_utils.expression import interpolate, needs_parsing

    rnd = random.Random(SEED)
    context = {
        "inputs": {"s": "str", "a b": "spaced", "arr": ["zero", "one"], "n": 42, "x": 0.5, "flag": True, "none": None, "f": {"class": "File", "basename": "b.txt"}},
        "self": ["item", 2],
        "runtime": {"outdir": "/out", "tmpdir": "/tmp", "cores": 1, "ram": 256},
    }
    compared = 0
    for _ in range(3000):
        text = "".join(rnd.choice(REFERENCE_PIECES) for _ in range(rnd.randint(1, 6)))
        if not needs_parsing(text):
            continue  # cwltool's do_eval returns it unchanged, as faice does
        for version, behaviour in (("v1.0", 1), ("v1.2", 2)):
            try:
                expected: Any = interpolate(text, context, escaping_behavior=behaviour)
            except Exception as error:  # noqa: BLE001 (any failure of cwl_utils must be one of faice's too)
                expected = error
            if isinstance(expected, Exception):
                with pytest.raises(ExpressionError):
                    evaluate_reference(text, context, version)
            else:
                assert evaluate_reference(text, context, version) == expected, (text, version)
                compared += 1
    assert compared > 3500, compared  # the rest fail on both sides


def evaluate_reference(text: str, context: dict[str, Any], version: str) -> Any:
    from faice.cwl import references

    return references.evaluate(text, context, "field", version)
