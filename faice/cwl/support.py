"""What faice can do with a valid CWL document: the one place that says so.

Each CWL feature outside what faice does is reported at its path with a level:

* ``run`` -- ``faice exec`` does not run it (and refuses the whole document); cwltool does.
* ``embed`` -- ``faice exec`` runs it, but a RED file's ``cli`` cannot hold it, so
  ``faice convert red`` cannot make a RED file of the tool.
* ``ignored`` -- a hint faice does not use; CWL lets a runner ignore hints.

**faice exec runs** a ``CommandLineTool`` (CWL v1.0, v1.1, v1.2) with ``baseCommand``,
``arguments``, ``stdin``/``stdout``/``stderr``, exit-code lists; inputs of the types null, boolean,
int, long, float, double, string, File, Directory, enums and arrays of them (optional or not),
with ``default``, ``secondaryFiles`` and ``inputBinding`` (position, prefix, separate,
itemSeparator, valueFrom, shellQuote, also on array items); outputs of type File, Directory
(optional, arrays), ``stdout`` and ``stderr``, with ``outputBinding.glob`` and
``secondaryFiles``; the requirements DockerRequirement (``dockerPull``, ``dockerImageId``),
ResourceRequirement, EnvVarRequirement and ShellCommandRequirement, as requirements or hints;
parameter references (``$(inputs.x.path)``, ``$(runtime.outdir)``, ``$(self[0])``) wherever CWL
takes an expression, and no JavaScript. Metadata (id, label, doc, intent, ``format``,
``streamable``, ``$namespaces``, ``$schemas``, namespaced extension fields) changes nothing.

**A RED file embeds** what faice runs, less: any requirement but DockerRequirement (which becomes
the RED file's ``container.settings.image.url``), an EnvVarRequirement hint, ``arguments``, ``stdin``, exit-code lists,
``secondaryFiles``, inputs without an ``inputBinding``, bindings with more than position (a
literal integer), prefix, separate and itemSeparator, enum and ``stdin`` types, bindings on
array items, array outputs, a glob other than one string with only ``$(inputs.KEY...)``
references, parameter references in ``stdout``/``stderr``, and input or output names outside
``[a-zA-Z0-9_-]``. ``faice convert red`` rewrites what RED spells differently and is allowed to:
``cwlVersion`` becomes ``v1.0`` (RED's only; the three mean the same for this subset), list
forms become maps, ``{type: array, items: T}`` becomes ``T[]`` and ``[null, T]`` ``T?``,
defaults become the job's values, and hints and metadata but ``doc`` are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

Level = Literal["run", "embed", "ignored"]
Path = tuple[Any, ...]

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "string")
FILE_TYPES = ("File", "Directory")
#: the base types of a RED ``cli`` input (as ``T``, ``T[]``, ``T?`` or ``T[]?``)
RED_TYPES = ("File", "Directory", "string", "int", "long", "float", "double", "boolean")
#: requirements (and hints) faice exec applies, with the fields of each it does not
RUN_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "DockerRequirement": ("dockerLoad", "dockerFile", "dockerImport", "dockerOutputDirectory"),
    "ResourceRequirement": (),
    "EnvVarRequirement": (),
    "ShellCommandRequirement": (),
}
#: hints that change what the tool sees or runs, which cwltool applies: faice cannot ignore them
HONORED_HINTS = ("InlineJavascriptRequirement", "InitialWorkDirRequirement", "SchemaDefRequirement", "InplaceUpdateRequirement")
#: CommandLineTool fields faice exec runs; the second set is what a RED ``cli`` holds of them
TOOL_FIELDS = ("id", "label", "doc", "intent", "cwlVersion", "class", "inputs", "outputs", "requirements", "hints", "baseCommand", "arguments",
               "stdin", "stdout", "stderr", "successCodes", "temporaryFailCodes", "permanentFailCodes")
EMBED_LESS_FIELDS = ("arguments", "stdin", "successCodes", "temporaryFailCodes", "permanentFailCodes")
INPUT_BINDING_FIELDS = ("position", "prefix", "separate", "itemSeparator", "valueFrom", "shellQuote")
RED_BINDING_FIELDS = ("position", "prefix", "separate", "itemSeparator")
RED_KEY = re.compile(r"^[a-zA-Z0-9_-]+$")
#: a CWL parameter reference: $( inputs | self | runtime, then .name ['name'] ["name"] [0] ... )
REFERENCE = re.compile(r"""\$\((?:inputs|self|runtime)(?:\.[A-Za-z_][A-Za-z0-9_]*|\['[^'\]]*'\]|\["[^"\]]*"\]|\[[0-9]+\])*\)""")
#: a reference to inputs only, which RED resolves in a glob
INPUT_REFERENCE = re.compile(r"""\$\(inputs(?:\.[A-Za-z_][A-Za-z0-9_]*|\['[^'\]]*'\]|\["[^"\]]*"\]|\[[0-9]+\])*\)""")


class Unsupported(NamedTuple):
    """A feature of a valid CWL document outside what faice does, at its path."""

    path: Path
    feature: str
    level: Level
    message: str


def main_process(data: dict[str, Any]) -> tuple[Path, Any] | Unsupported:
    """The process faice would run: the document, ``#main`` of its ``$graph``, or the graph's only one."""
    graph = data.get("$graph")
    if graph is None:
        return (), data
    processes = [(i, p) for i, p in enumerate(graph) if isinstance(p, dict)] if isinstance(graph, list) else []
    for i, process in processes:
        if isinstance(process.get("id"), str) and process["id"].lstrip("#") == "main":
            return ("$graph", i), process
    if len(processes) == 1:
        return ("$graph", processes[0][0]), processes[0][1]
    return Unsupported(("$graph",), "$graph without #main", "run", "faice exec runs one process: name it main (id: main) or leave one in the $graph")


def unsupported(data: dict[str, Any]) -> list[Unsupported]:
    """Every feature of a valid CWL document that faice exec does not run or a RED file cannot hold."""
    found = main_process(data)
    if isinstance(found, Unsupported):
        return [found]
    base, process = found
    kind = process.get("class")
    if kind != "CommandLineTool":
        what = {"Workflow": ("workflows", "faice exec runs CommandLineTools, not workflows"),
                "ExpressionTool": ("ExpressionTool", "an ExpressionTool is JavaScript; faice exec runs CommandLineTools"),
                "Operation": ("Operation", "an Operation is abstract: there is nothing to run")}.get(kind, (str(kind), f"faice exec runs CommandLineTools, not {kind}"))
        return [Unsupported(base + ("class",), what[0], "run", f"{what[1]} (cwltool runs it)")]
    return list(_tool(base, process))


def _tool(base: Path, tool: dict[str, Any]) -> Iterator[Unsupported]:
    for key in tool:
        if key not in TOOL_FIELDS and not _metadata(key):
            yield Unsupported(base + (key,), key, "run", f"faice exec does not run {key} (cwltool does)")
        elif key in EMBED_LESS_FIELDS:
            yield _embed(base + (key,), key)
    yield from _requirements(base, tool.get("requirements"), hints=False)
    yield from _requirements(base, tool.get("hints"), hints=True)
    for key in ("stdin", "stdout", "stderr"):
        if isinstance(tool.get(key), str):
            yield from _expression(base + (key,), tool[key])
            if key != "stdin" and "$(" in tool[key]:
                yield _embed(base + (key,), f"parameter references in {key}")
    for i, argument in enumerate(tool.get("arguments") or []):
        if isinstance(argument, str):
            yield from _expression(base + ("arguments", i), argument)
        elif isinstance(argument, dict):
            yield from _binding(base + ("arguments", i), argument, red=False)
    for path, name, spec in _parameters(base + ("inputs",), tool.get("inputs")):
        yield from _input(path, name, spec)
    for path, name, spec in _parameters(base + ("outputs",), tool.get("outputs")):
        yield from _output(path, name, spec)


def _metadata(key: str) -> bool:
    return key.startswith("$") or ":" in key


def _embed(path: Path, feature: str, why: str = "") -> Unsupported:
    return Unsupported(path, feature, "embed", f"a RED file cannot hold {feature}{why} (faice exec runs it)")


def _requirements(base: Path, entries: Any, *, hints: bool) -> Iterator[Unsupported]:
    field = "hints" if hints else "requirements"
    for path, name, body in _classes(base + (field,), entries):
        if name in RUN_REQUIREMENTS:
            for key in body:
                if key in RUN_REQUIREMENTS[name]:
                    yield Unsupported(path + (key,), f"{name}.{key}", "run", f"faice exec does not run {name} with {key} (cwltool does)")
            if name == "EnvVarRequirement":
                yield from _env(path, body.get("envDef"))
            elif name == "ResourceRequirement":
                for key, value in body.items():
                    if isinstance(value, str):
                        yield from _expression(path + (key,), value)
            if name != "DockerRequirement" and not hints:
                yield _embed(path, name, " (a RED cli has no requirements; only a DockerRequirement becomes its container image)")
            elif name == "EnvVarRequirement" and hints:  # cwltool and faice exec apply it: left out, the tool would see another environment
                yield _embed(path, f"the hint {name}", " (a RED cli has no hints, and its environment changes what the tool does)")
        elif not hints or name in HONORED_HINTS or name.startswith("cwltool:"):
            yield Unsupported(path, name, "run", f"faice exec does not run {name} (cwltool does)")
        else:
            yield Unsupported(path, name, "ignored", f"faice ignores the hint {name}")


def _classes(path: Path, entries: Any) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(path, class, body) of each requirement, in list form or map form."""
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get("class"), str):
                yield path + (i,), entry["class"], entry
    elif isinstance(entries, dict):
        for name, body in entries.items():
            yield path + (name,), str(name), body if isinstance(body, dict) else {}


def _env(path: Path, definitions: Any) -> Iterator[Unsupported]:
    if isinstance(definitions, dict):
        items = [((name,), value.get("envValue") if isinstance(value, dict) else value) for name, value in definitions.items()]
    elif isinstance(definitions, list):
        items = [((i, "envValue"), d.get("envValue")) for i, d in enumerate(definitions) if isinstance(d, dict)]
    else:
        items = []
    for where, value in items:
        if isinstance(value, str):
            yield from _expression(path + ("envDef",) + where, value)


def _parameters(path: Path, entries: Any) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(path, name, spec) of each input or output, list or map form; a bare type becomes {type}."""
    if isinstance(entries, dict):
        for name, spec in entries.items():
            yield path + (name,), str(name), spec if isinstance(spec, dict) else {"type": spec}
    elif isinstance(entries, list):
        for i, spec in enumerate(entries):
            if isinstance(spec, dict):
                yield path + (i,), str(spec.get("id", "")).rsplit("#", 1)[-1].rsplit("/", 1)[-1], spec


def _expression(path: Path, text: str) -> Iterator[Unsupported]:
    """JavaScript where CWL takes an expression: ``${...}``, or ``$(...)`` that is not a parameter reference."""
    rest = REFERENCE.sub("", text.replace("\\$(", "").replace("\\${", ""))
    if "${" in rest or "$(" in rest:
        yield Unsupported(path, "JavaScript expressions", "run", "faice exec evaluates parameter references like $(inputs.x.path), not JavaScript (cwltool does, "
                                                                   "with InlineJavascriptRequirement)")


def _input(path: Path, name: str, spec: dict[str, Any]) -> Iterator[Unsupported]:
    if not RED_KEY.match(name):
        yield _embed(path, f'the input name "{name}"', " (RED names match [a-zA-Z0-9_-]+)")
    yield from _type(path + ("type",), spec.get("type"), output=False)
    for key in ("loadContents", "loadListing"):
        if key in spec and not (key == "loadListing" and spec[key] == "no_listing"):
            yield Unsupported(path + (key,), key, "run", f"faice exec does not run {key} (cwltool does)")
    yield from _secondary(path, spec)
    if isinstance(spec.get("format"), str):
        yield from _expression(path + ("format",), spec["format"])
    binding = spec.get("inputBinding")
    if isinstance(binding, dict):
        yield from _binding(path + ("inputBinding",), binding, red=True)
    elif not _is_stdin(spec.get("type")):
        yield _embed(path, "an input without inputBinding", " (RED puts every input on the command line)")


def _binding(path: Path, binding: dict[str, Any], *, red: bool) -> Iterator[Unsupported]:
    for key, value in binding.items():
        if key == "loadContents":
            yield Unsupported(path + (key,), "loadContents", "run", "faice exec does not run loadContents (cwltool does)")
        elif key not in INPUT_BINDING_FIELDS:
            continue
        elif isinstance(value, str) and key in ("valueFrom", "position"):
            yield from _expression(path + (key,), value)
        if red and key not in RED_BINDING_FIELDS + ("loadContents",):
            yield _embed(path + (key,), f"inputBinding.{key}")
        elif red and key == "position" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            yield _embed(path + (key,), "a position that is not a literal integer of at least 0")


def _is_stdin(cwl_type: Any) -> bool:
    return cwl_type == "stdin"


def _type(path: Path, cwl_type: Any, *, output: bool) -> Iterator[Unsupported]:
    """Types faice exec runs, and whether RED can spell them."""
    shape = _shape(cwl_type)
    if shape is None:
        yield Unsupported(path, "this type", "run", f"faice exec runs {'File, Directory, stdout and stderr outputs' if output else 'inputs of primitive, File, Directory and enum types and arrays of them'}, "
                                                    "not records, unions of several types, Any or arrays of arrays (cwltool does)")
        return
    base, array, item_binding = shape
    if output and base not in FILE_TYPES + ("stdout", "stderr"):
        yield Unsupported(path, f"{base} outputs", "run", f"faice exec collects File, Directory, stdout and stderr outputs, not {base} (cwltool does, with outputEval or cwl.output.json)")
        return
    if item_binding:
        yield _embed(path, "an inputBinding on array items")
    if output and array:
        yield _embed(path, "array outputs")
    elif not output and base not in RED_TYPES:
        yield _embed(path, f"the type {base}")


def type_shape(cwl_type: Any) -> tuple[str, bool, bool] | None:
    """(base type, array?, binding on the items?) of a type faice runs, or None."""
    return _shape(cwl_type)


def _shape(cwl_type: Any) -> tuple[str, bool, bool] | None:
    if isinstance(cwl_type, str):
        core = cwl_type[:-1] if cwl_type.endswith("?") else cwl_type
        array = core.endswith("[]")
        core = core[:-2] if array else core
        if core.endswith("[]"):
            return None
        return (core, array, False) if core in PRIMITIVES + FILE_TYPES + ("stdin", "stdout", "stderr") else None
    if isinstance(cwl_type, list):
        rest = [t for t in cwl_type if t != "null"]
        return _shape(rest[0]) if len(rest) == 1 else None
    if isinstance(cwl_type, dict):
        if cwl_type.get("type") == "enum":
            return "enum", False, False
        if cwl_type.get("type") == "array":
            items = _shape(cwl_type.get("items"))
            if items is None or items[1]:
                return None
            return items[0], True, isinstance(cwl_type.get("inputBinding"), dict)
    return None


def _secondary(path: Path, spec: dict[str, Any]) -> Iterator[Unsupported]:
    if "secondaryFiles" not in spec:
        return
    value = spec["secondaryFiles"]
    for item in value if isinstance(value, list) else [value]:
        pattern = item.get("pattern") if isinstance(item, dict) else item
        if isinstance(pattern, str):
            yield from _expression(path + ("secondaryFiles",), pattern)
    yield _embed(path + ("secondaryFiles",), "secondaryFiles")


def _output(path: Path, name: str, spec: dict[str, Any]) -> Iterator[Unsupported]:
    if not RED_KEY.match(name):
        yield _embed(path, f'the output name "{name}"', " (RED names match [a-zA-Z0-9_-]+)")
    yield from _type(path + ("type",), spec.get("type"), output=True)
    if "secondaryFiles" in spec:
        yield Unsupported(path + ("secondaryFiles",), "secondaryFiles of outputs", "run", "faice exec does not collect an output's secondaryFiles (cwltool does)")
    if isinstance(spec.get("format"), str):
        yield from _expression(path + ("format",), spec["format"])
    binding = spec.get("outputBinding")
    shape = _shape(spec.get("type"))
    if not isinstance(binding, dict) or binding.get("glob") is None:
        if shape is not None and shape[0] in FILE_TYPES:
            yield Unsupported(path, "an output without outputBinding.glob", "run", "faice exec finds File and Directory outputs by their glob (cwltool also reads cwl.output.json)")
        if not isinstance(binding, dict):
            return
    binding_path = path + ("outputBinding",)
    for key in ("outputEval", "loadContents", "loadListing"):
        if key in binding and not (key == "loadListing" and binding[key] == "no_listing"):
            yield Unsupported(binding_path + (key,), key, "run", f"faice exec does not run {key} (cwltool does)")
    glob = binding.get("glob")
    globs = glob if isinstance(glob, list) else [glob] if glob is not None else []
    for i, pattern in enumerate(globs):
        if isinstance(pattern, str):
            yield from _expression(binding_path + (("glob", i) if isinstance(glob, list) else ("glob",)), pattern)
    if glob is None:
        return
    if len(globs) != 1 or not isinstance(globs[0], str):
        yield _embed(binding_path + ("glob",), "a glob other than one string")
    elif REFERENCE.sub("", INPUT_REFERENCE.sub("x", globs[0])) != INPUT_REFERENCE.sub("x", globs[0]):
        yield _embed(binding_path + ("glob",), "references other than $(inputs.KEY...) in a glob")
