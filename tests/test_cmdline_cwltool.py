"""Differential test: faice's command-line builder against cwltool, the CWL v1.0 reference runner.

Random RED ``cli`` sections and jobs (fixed seed, so every run checks the same cases) are given to
cwltool in-process, exactly as a user would: the tool as a ``.cwl`` file, the job as YAML text
(floats written with ``repr()``, so cwltool sees ruamel ``ScalarFloat`` values as it does for a job
file). The argv cwltool builds must equal ``faice.red.cmdline.build_argv`` for the same values.

cwltool stages input files and directories to paths of its own, so both argvs are normalised:
every path of a generated File/Directory (also inside itemSeparator-joined strings) becomes a
token ``<F:basename>`` / ``<D:basename>``. faice gets ``/cc/inputs/<key>/<basename>`` as the path.

Deliberately not generated:
* ``separate: false`` without a prefix: cwltool rejects it ("'separate' option can not be specified
  without prefix"); faice's validation reports it as an error too.
* ``itemSeparator: ""``: cwltool treats the empty separator as absent for joining but still keeps the
  items from being bound, so the array contributes only its prefix; faice joins the items with "" as
  the CWL text says. See ``test_empty_item_separator_differs_from_cwltool`` (both argvs pinned).
"""

from __future__ import annotations

import io
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.load_tool import load_tool
from cwltool.workflow import default_make_tool
from schema_salad.utils import yaml_no_ts

from faice.red.cmdline import build_argv
from faice.red.model import Cli

SEED = 20240611
N_TOOLS = 130
JOBS_PER_TOOL = 3
MIN_CASES = 300

BASE_TYPES = ["string", "int", "long", "float", "double", "boolean", "File", "Directory"]
BASE_WEIGHTS = [5, 3, 2, 4, 3, 4, 4, 1]
# Names cover the code-point order of the allowed characters: "-" < digits < upper case < "_" < lower case.
NAMES = ["a", "b", "B", "a1", "a10", "a2", "a_b", "a-b", "A2", "zz", "in_file", "x", "X", "_u", "n-1", "m9", "1st", "Z"]
PREFIXES = ["-a", "-b", "-a", "-b", "--alpha", "--beta", "-x", "--out=", "-o", "--long-name", "-"]
ITEM_SEPARATORS = [",", ";", " ", "|", ", ", "::"]
BASE_COMMANDS: list[Any] = [
    "echo",
    "python3",
    "my tool",
    "/usr/bin/env",
    ["python3", "-m", "mod"],
    ["sh", "-c", "echo hi"],
    ["run"],
    [],
]
STRINGS = [
    "hello",
    "two words",
    "  padded  ",
    "",
    "ünïcödé",
    "日本語 テキスト",
    "emoji 😀",
    "-dash",
    "--opt=1",
    "a,b",
    "semi;colon",
    "pipe|x",
    "1e5",
    "true",
    "null",
    "42",
    'quote"d',
    "back\\slash",
    "tab\there",
    "new\nline",
    "$HOME",
    "*.txt",
]


@dataclass
class Case:
    id: str
    tool_index: int
    cli: dict[str, Any]
    job: dict[str, Any]  # File/Directory values as {"class": ..., "basename": ...}


def random_float(rnd: random.Random) -> float:
    kind = rnd.randrange(6)
    sign = rnd.choice([1.0, -1.0])
    exponent = rnd.randint(-7, 21)
    if kind == 0:  # full precision, many magnitudes
        return sign * rnd.random() * 10.0**exponent
    if kind == 1:  # a few significant digits
        return sign * round(rnd.uniform(1, 10), rnd.randint(0, 3)) * 10.0**exponent
    if kind == 2:  # integers as floats
        return sign * float(rnd.choice([0, 1, 2, 10, 100, 12345, 10**15, 10**16, 10**20]))
    if kind == 3:  # plain decimals
        return sign * round(rnd.uniform(0, 1000), rnd.randint(1, 6))
    return rnd.choice(
        [
            0.00001,
            1e20,
            1.5,
            2.0,
            1e-7,
            1e21,
            0.1,
            1 / 3,
            -0.0,
            0.0,
            123456789.123,
            1e16,
            1e-5,
            5e-324,
            1.7976931348623157e308,
        ]
    )


def random_scalar(rnd: random.Random, base: str, key: str, index: int) -> Any:
    if base == "string":
        if rnd.random() < 0.2:
            return "".join(rnd.choice("abcXYZ09 -_.,é日") for _ in range(rnd.randint(1, 8)))
        return rnd.choice(STRINGS)
    if base == "int":
        return rnd.choice([0, 1, -1, 42, -17, 2**31 - 1, -(2**31), rnd.randint(-1000, 1000)])
    if base == "long":
        return rnd.choice([0, -5, 2**40, -(2**40), 2**62, rnd.randint(-(10**12), 10**12)])
    if base in ("float", "double"):
        if rnd.random() < 0.1:
            return rnd.randint(-50, 50)  # an int where a float is expected
        return random_float(rnd)
    if base == "boolean":
        return rnd.random() < 0.5
    prefix = "f" if base == "File" else "d"
    return {"class": base, "basename": f"{prefix}_{key}_{index}" + (".txt" if base == "File" else "")}


def random_binding(rnd: random.Random, array: bool) -> dict[str, Any]:
    binding: dict[str, Any] = {}
    if rnd.random() < 0.65:
        binding["position"] = rnd.choice([0, 0, 1, 1, 2, 3, 4])
    if rnd.random() < 0.6:
        binding["prefix"] = "" if rnd.random() < 0.05 else rnd.choice(PREFIXES)
        roll = rnd.random()
        if roll < 0.35:
            binding["separate"] = False
        elif roll < 0.55:
            binding["separate"] = True
    elif rnd.random() < 0.1:
        binding["separate"] = True
    if (array and rnd.random() < 0.5) or (not array and rnd.random() < 0.05):
        binding["itemSeparator"] = rnd.choice(ITEM_SEPARATORS)
    return binding


def random_cli(rnd: random.Random) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for key in rnd.sample(NAMES, rnd.randint(1, 6)):
        base = rnd.choices(BASE_TYPES, BASE_WEIGHTS)[0]
        array = rnd.random() < 0.4
        optional = rnd.random() < 0.35
        inputs[key] = {
            "type": base + ("[]" if array else "") + ("?" if optional else ""),
            "inputBinding": random_binding(rnd, array),
        }
    cli: dict[str, Any] = {"cwlVersion": "v1.0", "class": "CommandLineTool"}
    roll = rnd.random()
    if roll < 0.75:
        cli["baseCommand"] = rnd.choice(BASE_COMMANDS)
    elif roll < 0.85:
        cli["baseCommand"] = None
    cli["inputs"] = inputs
    cli["outputs"] = {}
    return cli


def random_job(rnd: random.Random, cli: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {}
    for key, spec in cli["inputs"].items():
        text = spec["type"]
        optional = text.endswith("?")
        core = text.rstrip("?")
        array = core.endswith("[]")
        base = core[:-2] if array else core
        if optional:
            roll = rnd.random()
            if roll < 0.25:
                continue  # missing
            if roll < 0.33:
                job[key] = None  # explicit null
                continue
        if array:
            length = rnd.choices([0, 1, 2, 3, 4], [2, 3, 3, 2, 1])[0]
            job[key] = [random_scalar(rnd, base, key, i) for i in range(length)]
        else:
            job[key] = random_scalar(rnd, base, key, 0)
    return job


def generate_cases() -> list[Case]:
    rnd = random.Random(SEED)
    cases = []
    for t in range(N_TOOLS):
        cli = random_cli(rnd)
        for j in range(JOBS_PER_TOOL):
            cases.append(Case(f"tool{t:03d}-job{j}", t, cli, random_job(rnd, cli)))
    return cases


CASES = generate_cases()


def yaml_flow(value: Any) -> str:
    """A value as YAML flow text; floats with repr() like a hand-written job file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"


def map_files(value: Any, fn) -> Any:
    if isinstance(value, list):
        return [map_files(v, fn) for v in value]
    if isinstance(value, dict):
        return fn(value)
    return value


def token(entry: dict[str, Any]) -> str:
    return f"<{entry['class'][0]}:{entry['basename']}>"


def normalise(argv: list[str], paths: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        for path in sorted(paths, key=len, reverse=True):
            arg = arg.replace(path, paths[path])
        out.append(arg)
    return out


def faice_argv(case: Case) -> list[str]:
    paths: dict[str, str] = {}

    def to_faice(entry: dict[str, Any]) -> dict[str, Any]:
        key = entry["basename"].split("_", 1)[1].rsplit("_", 1)[0]
        path = f"/cc/inputs/{key}/{entry['basename']}"
        paths[path] = token(entry)
        return {"class": entry["class"], "path": path}

    values = {k: map_files(v, to_faice) for k, v in case.job.items()}
    return normalise(build_argv(Cli.from_data(case.cli), values), paths)


class CwltoolOracle:
    """cwltool in-process: one loaded tool per generated cli, one job per case."""

    def __init__(self, root: Path):
        self.root = root
        self.tools: dict[int, Any] = {}
        logging.getLogger("cwltool").setLevel(logging.ERROR)
        logging.getLogger("salad").setLevel(logging.ERROR)

    def tool(self, case: Case) -> Any:
        if case.tool_index not in self.tools:
            path = self.root / f"tool{case.tool_index:03d}.cwl"
            path.write_text(json.dumps(case.cli), encoding="utf-8")
            context = LoadingContext({"strict": False, "construct_tool_object": default_make_tool})
            self.tools[case.tool_index] = load_tool(str(path), context)
        return self.tools[case.tool_index]

    def job_text(self, case: Case, files_dir: Path) -> str:
        def to_cwl(entry: dict[str, Any]) -> dict[str, Any]:
            path = files_dir / entry["basename"]
            if entry["class"] == "File":
                path.write_text(entry["basename"], encoding="utf-8")
            else:
                path.mkdir(exist_ok=True)
            return {"class": entry["class"], "location": path.as_uri()}

        return "".join(f"{k}: {yaml_flow(map_files(v, to_cwl))}\n" for k, v in case.job.items())

    def argv(self, case: Case) -> tuple[str, list[str]]:
        work = self.root / case.id
        files_dir = work / "files"
        files_dir.mkdir(parents=True)
        text = self.job_text(case, files_dir)
        job = yaml_no_ts().load(io.StringIO(text)) or {}
        runtime = RuntimeContext(
            {"no_container": True, "outdir": str(work / "out"), "tmpdir_prefix": str(work / "tmp") + "/"}
        )
        (work / "tmp").mkdir()
        command_line = None
        for j in self.tool(case).job(job, lambda *a: None, runtime):
            command_line = list(j.command_line)
            staged: dict[str, str] = {}
            for _location, ent in j.pathmapper.items():
                name = Path(ent.target).name
                if ent.type in ("File", "Directory") and (name.startswith("f_") or name.startswith("d_")):
                    staged[ent.target] = f"<{ent.type[0]}:{name}>"
            break
        assert command_line is not None, "cwltool produced no job"
        return text, normalise(command_line, staged)


@pytest.fixture(scope="module")
def cwltool_oracle(tmp_path_factory) -> CwltoolOracle:
    return CwltoolOracle(tmp_path_factory.mktemp("cwltool"))


def test_enough_generated_cases():
    assert len(CASES) >= MIN_CASES


def case_features(case: Case) -> set[str]:
    base = case.cli.get("baseCommand", "absent")
    features = {"baseCommand " + ("absent" if base == "absent" else "null" if base is None else type(base).__name__)}
    positions = [spec["inputBinding"].get("position") for spec in case.cli["inputs"].values()]
    if len(set(positions)) < len(positions):
        features.add("position tie")
    for key, spec in case.cli["inputs"].items():
        binding, value = spec["inputBinding"], case.job.get(key, "<missing>")
        features |= {f"binding {name}" for name in binding}
        if binding.get("separate") is False:
            features.add("separate false")
        if value == "<missing>" or value is None:
            features.add("optional missing" if value == "<missing>" else "optional null")
        elif isinstance(value, list):
            kinds = {type(v).__name__ for v in value}
            features.add("empty array" if not value else f"array of {'/'.join(sorted(kinds))}")
            if "bool" in kinds:
                features.add("boolean array" + (" joined" if "itemSeparator" in binding else ""))
        else:
            features.add(
                type(value).__name__ + (" with prefix" if isinstance(value, bool) and binding.get("prefix") else "")
            )
            if isinstance(value, float) and (abs(value) < 1e-4 or abs(value) >= 1e16) and value:
                features.add("float in exponent form")
    return features


def test_generated_cases_cover_every_rule():
    seen = set().union(*(case_features(case) for case in CASES))
    wanted = {
        "baseCommand absent",
        "baseCommand null",
        "baseCommand str",
        "baseCommand list",
        "position tie",
        "binding position",
        "binding prefix",
        "binding separate",
        "binding itemSeparator",
        "separate false",
        "optional missing",
        "optional null",
        "empty array",
        "boolean array",
        "boolean array joined",
        "array of dict",
        "bool",
        "bool with prefix",
        "int",
        "float",
        "float in exponent form",
        "str",
        "dict",
    }
    assert wanted <= seen, f"not generated: {sorted(wanted - seen)}"


def test_generated_tools_are_valid_red_cli():
    import jsonschema

    from faice.red.schema import load_schema

    schema = load_schema("red")
    validator = jsonschema.Draft7Validator({"$ref": "#/definitions/cli", "definitions": schema["definitions"]})
    for case in CASES[::JOBS_PER_TOOL]:
        errors = [e.message for e in validator.iter_errors(case.cli)]
        assert not errors, f"{case.id}: {errors}\n{json.dumps(case.cli, indent=1)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_argv_matches_cwltool(case: Case, cwltool_oracle: CwltoolOracle):
    job_text, expected = cwltool_oracle.argv(case)
    actual = faice_argv(case)
    assert actual == expected, (
        f"faice and cwltool disagree for {case.id}\n"
        f"cli: {json.dumps(case.cli, ensure_ascii=False)}\n"
        f"job:\n{job_text}"
        f"cwltool: {expected!r}\n"
        f"faice:   {actual!r}"
    )


def test_empty_item_separator_differs_from_cwltool(cwltool_oracle: CwltoolOracle):
    """cwltool ignores itemSeparator '' and drops the items; faice joins them with '' as CWL says.
    Both argvs are pinned: a change on either side (or faice treating '' as absent) fails here."""
    cli = {
        "cwlVersion": "v1.0",
        "class": "CommandLineTool",
        "baseCommand": "echo",
        "inputs": {"a": {"type": "string[]", "inputBinding": {"prefix": "-a", "itemSeparator": ""}}},
        "outputs": {},
    }
    case = Case("empty-item-separator", -1, cli, {"a": ["p", "q"]})
    _, cwltool_argv = cwltool_oracle.argv(case)
    assert cwltool_argv == ["echo", "-a"]
    assert faice_argv(case) == ["echo", "-a", "pq"]
