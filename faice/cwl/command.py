"""What a CWL CommandLineTool runs for one job: argv, streams, environment, resources, globs.

A pure function of the tool (loaded CWL as plain data), the job and the runtime directories; no
file is read and nothing is staged. The rules are cwltool's (``Builder.bind_input``,
``generate_arg``, ``CommandLineTool.job``, ``Process.evalResources``), followed closely because
cwltool is the reference runner and the oracle of the tests:

* bindings are sorted by cwltool's position lists (``[position, input name]``; array items nest
  below their input; ``baseCommand`` first; an argument's list is ``[position, its index]``) and
  compared as cwltool compares them: an int against a str compares their texts;
* a File's ``basename``, ``dirname``, ``nameroot`` and ``nameext`` come from its (container)
  path; a Directory gets ``basename`` only;
* expressions in ``inputBinding.position``, ``secondaryFiles`` and ``ResourceRequirement`` see no
  ``runtime.cores``/``ram`` (cwltool evaluates them before the resources); everything else does,
  with ``runtime.cores`` rounded up;
* a ``ResourceRequirement`` value of 0 counts as absent (cwltool tests it for truth); the default
  is 1 core and 1024 MiB for CWL v1.0, 256 MiB for later versions.

Where faice knows less than cwltool, by design (it reads no file):

* a File's ``size`` is what the job gives (cwltool measures the file), and optional secondary
  files are listed in :attr:`Invocation.secondary_files` but not added to the job (cwltool adds
  those that exist);
* a whole File or Directory inside text (``"x=$(inputs.f)"``) is its JSON, which holds the fields
  faice's job has (cwltool's also has ``location``, ``size``, ...): use its fields instead;
* a float prints as cwltool prints a float read from a YAML job file
  (:func:`faice.red.cmdline.render`), also when the job came from JSON;
* a ``stdout``/``stderr`` output without a stream name gets the SHA-1 of the tool as given
  (cwltool hashes the document as it holds it after loading: another 40 hex digits).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import posixpath
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

from faice.cwl import references
from faice.cwl.references import ExpressionError, JavaScriptRequired


class Runtime(NamedTuple):
    """The directories a job sees as ``runtime.outdir`` and ``runtime.tmpdir`` (container paths)."""

    outdir: str
    tmpdir: str


class Resources(NamedTuple):
    """What ``ResourceRequirement`` asks for (the minimums, cwltool's defaults filled in), and the
    limits a runner may impose: the maximum, else the minimum, of what the tool gives (None when
    it gives neither: cwltool's defaults are no limit)."""

    cores: int | float
    ram: int  # MiB
    tmpdir_size: int  # MiB
    outdir_size: int  # MiB
    cores_limit: int | float | None = None
    ram_limit: int | None = None  # MiB


class SecondaryFile(NamedTuple):
    """A secondary file a tool declares for a File input: staging must put ``path`` next to ``primary``."""

    primary: str
    path: str
    required: bool


class Invocation(NamedTuple):
    """What runs for one job.

    ``argv`` is the whole command line (``["/bin/sh", "-c", text]`` under ShellCommandRequirement);
    ``stdin`` a path, ``stdout``/``stderr`` names relative to the output directory; ``environment``
    holds only what EnvVarRequirement defines; ``globs`` maps each output id to its evaluated glob
    patterns (a ``stdout``/``stderr`` output to its stream's name); ``secondary_files`` maps an
    input id to the secondary files of its File values; ``job`` is the job with defaults filled in
    and every File and Directory completed as cwltool completes them (required secondary files
    added, optional ones left to the caller, who knows which exist).
    """

    argv: list[str]
    stdin: str | None
    stdout: str | None
    stderr: str | None
    environment: dict[str, str]
    resources: Resources
    globs: dict[str, list[str]]
    secondary_files: dict[str, list[SecondaryFile]]
    job: dict[str, Any]


class JobError(ValueError):
    """The job does not fit the tool: a required input is missing or a value has the wrong type."""


def shortname(identifier: str) -> str:
    """``x`` of ``#x``, ``file.cwl#x`` or ``file.cwl#main/x`` (cwltool's ``shortname``)."""
    parsed = urlparse(identifier)
    return (parsed.fragment or parsed.path).split("/")[-1]


def _aslist(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _entries(section: Any, key: str, shorthand: str | None) -> list[dict[str, Any]]:
    """A map-form section (``{x: ...}``) as the list form CWL also allows; ids shortened."""
    if isinstance(section, Mapping):
        items = [{key: k, **v} if isinstance(v, Mapping) else {key: k, shorthand or key: v} for k, v in section.items()]
    else:
        items = [dict(v) for v in section or []]
    for item in items:
        if key == "id":
            item["id"] = shortname(str(item["id"]))
    return items


def parameters(section: Any) -> list[dict[str, Any]]:
    """An ``inputs`` or ``outputs`` section, map or list form, as a list of parameters with their
    short ``id`` (a bare type becomes ``{type}``)."""
    return _entries(section, "id", "type")


def input_ids(tool: Mapping[str, Any]) -> list[str]:
    """The ids of the tool's inputs, in order."""
    return [item["id"] for item in parameters(tool.get("inputs"))]


def normalize_type(kind: Any) -> Any:
    """A CWL type with the ``T?`` and ``T[]`` shorthands expanded, as schema-salad expands them."""
    if isinstance(kind, str):
        if kind.endswith("?"):
            return ["null", normalize_type(kind[:-1])]
        if kind.endswith("[]"):
            return {"type": "array", "items": normalize_type(kind[:-2])}
        return shortname(kind) if "#" in kind else kind
    if isinstance(kind, list):
        flat: list[Any] = []
        for member in kind:
            expanded = normalize_type(member)
            flat.extend(expanded if isinstance(expanded, list) else [expanded])
        return flat
    if isinstance(kind, Mapping):
        expanded = dict(kind)
        if expanded.get("type") == "array":
            expanded["items"] = normalize_type(expanded["items"])
        elif expanded.get("type") == "enum":
            expanded["symbols"] = [shortname(str(s)) for s in expanded["symbols"]]
        return expanded
    return kind


def _secondary_patterns(spec: Any, version: str) -> list[dict[str, Any]]:
    """``secondaryFiles`` as ``{pattern, required}`` entries; from v1.1 a trailing ``?`` makes a
    string pattern optional (schema-salad's secondaryFiles DSL), v1.0 keeps it in the pattern."""
    out = []
    for entry in _aslist(spec):
        if isinstance(entry, Mapping):
            out.append(dict(entry))
        elif version != "v1.0" and entry.endswith("?"):
            out.append({"pattern": entry[:-1], "required": False})
        else:
            out.append({"pattern": entry})
    return out


def requirement(tool: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The requirement (or else hint) of class ``name``, the last one given, as cwltool finds it."""
    for section in ("requirements", "hints"):
        for item in reversed(_entries(tool.get(section), "class", None)):
            if shortname(str(item["class"])) == name:
                return item
    return None


def matches(kind: Any, value: Any) -> bool:
    """Whether ``value`` is of CWL type ``kind`` (schema-salad's check, for this subset)."""
    if isinstance(kind, list):
        return any(matches(k, value) for k in kind)
    if isinstance(kind, Mapping):
        if kind.get("type") == "array":
            return isinstance(value, list) and all(matches(kind["items"], v) for v in value)
        if kind.get("type") == "enum":
            return isinstance(value, str) and value in kind["symbols"]
        return False
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        bits = 31 if kind == "int" else 63
        return isinstance(value, int) and not isinstance(value, bool) and -(2**bits) <= value < 2**bits
    if kind in ("float", "double"):
        return isinstance(value, (int, float))
    if kind == "string":
        return isinstance(value, str)
    if kind in ("File", "Directory"):
        return isinstance(value, Mapping) and value.get("class") == kind
    return kind == "Any" and value is not None


def _path_of(entry: Mapping[str, Any]) -> str:
    if "path" in entry:
        return str(entry["path"])
    if "location" in entry:
        location = str(entry["location"])
        return unquote(urlparse(location).path) if location.startswith("file:") else location
    raise JobError(f"{entry.get('class')} value without a path or location: {dict(entry)!r}")


def complete(entry: dict[str, Any]) -> dict[str, Any]:
    """A File or Directory with the fields cwltool derives from its path (``check_adjust``)."""
    path = _path_of(entry)
    entry["path"] = path
    dirname, basename = posixpath.split(path)
    entry["basename"] = basename
    if entry["class"] == "File":
        entry["dirname"] = dirname
        entry["nameroot"], entry["nameext"] = posixpath.splitext(basename)
    for secondary in entry.get("secondaryFiles") or []:
        complete(secondary)
    return entry


def _complete_all(value: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            _complete_all(item)
    elif isinstance(value, dict) and value.get("class") in ("File", "Directory"):
        complete(value)
    return value


def _compare(first: dict[str, Any], second: dict[str, Any]) -> int:
    """cwltool's ``cmp_like_py2`` on binding positions: a shorter list first, an int against a str
    by their texts."""
    a, b = first["position"], second["position"]
    for i, j in zip(a, b, strict=False):
        if i == j:
            continue
        if isinstance(i, str) or isinstance(j, str):
            return 1 if str(i) > str(j) else -1
        return 1 if i > j else -1
    return (len(a) > len(b)) - (len(a) < len(b))


def tostr(value: Any) -> str:
    """One value as an argument: a File/Directory as its path, a float as cwltool prints floats
    read from YAML (:func:`faice.red.cmdline.render`)."""
    if isinstance(value, Mapping) and value.get("class") in ("File", "Directory"):
        if "path" not in value:
            raise JobError(f"{value['class']} object missing path: {dict(value)!r}")
        return str(value["path"])
    if isinstance(value, float):
        from faice.red.cmdline import render

        return render(value)
    return str(value)


class _Evaluation:
    """The state of one job's evaluation: the tool's parts, the job, and the runtime so far."""

    def __init__(self, tool: Mapping[str, Any], job: dict[str, Any], runtime: Runtime):
        self.version = str(tool.get("cwlVersion", "v1.0"))
        self.job = job
        self.runtime: dict[str, Any] = {"outdir": runtime.outdir, "tmpdir": runtime.tmpdir}
        self.secondary: dict[str, list[SecondaryFile]] = {}

    def eval(self, text: Any, field: str, self_value: Any = None) -> Any:
        context = {"inputs": self.job, "self": self_value, "runtime": self.runtime}
        return references.evaluate(text, context, field, self.version)

    def bind(self, schema: dict[str, Any], datum: Any, lead: Any, tail: Any) -> list[dict[str, Any]]:
        """cwltool's ``Builder.bind_input`` for this subset (a record is refused elsewhere)."""
        where = schema["_where"]
        bindings: list[dict[str, Any]] = []
        binding: dict[str, Any] = {}
        value_from = False
        if isinstance(schema.get("inputBinding"), Mapping):
            binding = dict(schema["inputBinding"])
            binding.setdefault("_field", f"{where}.inputBinding")
            position = list(_aslist(lead))
            if "position" in binding:
                if isinstance(binding["position"], str):
                    result = self.eval(binding["position"], binding["_field"] + ".position", datum)
                    if not isinstance(result, int) or isinstance(result, bool):
                        raise ExpressionError(binding["_field"] + ".position", f"must evaluate to an int, not {result!r}")
                    position.append(result)
                else:
                    position.extend(_aslist(binding["position"]))
            else:
                position.append(0)
            position.extend(_aslist(tail))
            binding["position"] = position
            binding["datum"] = datum
            value_from = "valueFrom" in binding
        kind = schema["type"]
        if isinstance(kind, list):
            bound = False
            for member in kind:
                if matches(member, datum):
                    chosen = {**schema, "type": member}
                    if not value_from:
                        return self.bind(chosen, datum, lead, tail)
                    self.bind(chosen, datum, lead, tail)
                    bound = True
            if not bound:
                raise JobError(f"{where}: {datum!r} is not a valid {kind}")
        elif isinstance(kind, Mapping):
            inner = {**kind, "_where": where + ".type"}
            if binding and "inputBinding" not in inner and inner.get("type") == "array" and "itemSeparator" not in binding:
                inner["inputBinding"] = {"_field": binding["_field"]}
            if "secondaryFiles" in schema:
                inner["secondaryFiles"] = schema["secondaryFiles"]
            children = self.bind(inner, datum, lead, tail)
            if not value_from:
                bindings.extend(children)
        elif kind == "array":
            for n, item in enumerate(datum):
                item_binding = None
                if binding:
                    item_binding = {**copy.deepcopy(binding), "datum": item}
                item_schema = {"type": schema["items"], "inputBinding": item_binding, "_where": where + ".items"}
                if "secondaryFiles" in schema:
                    item_schema["secondaryFiles"] = schema["secondaryFiles"]
                bindings.extend(self.bind(item_schema, item, n, tail))
            binding = {}
        elif kind == "File" and "secondaryFiles" in schema:
            self.secondary_files(schema, datum)
        if binding:
            for child in bindings:
                child["position"] = binding["position"] + child["position"]
            bindings.append(binding)
        return bindings

    def secondary_files(self, schema: dict[str, Any], datum: dict[str, Any]) -> None:
        """The secondary files of one File value, by cwltool's rules (``^`` strips an extension)."""
        field = schema["_where"].split(".type")[0].split(".items")[0] + ".secondaryFiles"
        present = datum.setdefault("secondaryFiles", [])
        for entry in _secondary_patterns(schema["secondaryFiles"], self.version):
            required = entry.get("required")
            required = True if required is None else self.eval(required, field + ".required", datum)
            if not (isinstance(required, bool) or required is None):
                raise ExpressionError(field + ".required", f"must be a boolean, not {required!r}")
            pattern = entry["pattern"]
            names = self.eval(pattern, field, datum) if references.needs_parsing(pattern) else substitute(datum["basename"], pattern)
            for name in _aslist(names):
                if not name:
                    continue
                if isinstance(name, Mapping):
                    path, basename = _path_of(name), str(name.get("basename") or posixpath.basename(_path_of(name)))
                elif isinstance(name, str):
                    path, basename = posixpath.join(posixpath.dirname(datum["path"]), name), name
                else:
                    raise ExpressionError(field, f"a secondary file pattern must give a string or a File, not {name!r}")
                input_id = field.split(".")[1]
                self.secondary.setdefault(input_id, []).append(SecondaryFile(datum["path"], path, bool(required)))
                if required and not any(p.get("basename") == basename for p in present):
                    present.append(complete({"class": "File", "path": path}))

    def resources(self, tool: Mapping[str, Any]) -> Resources:
        """cwltool's ``evalResources`` without a ``select_resources`` hook: the minimums."""
        asked = requirement(tool, "ResourceRequirement") or {}
        ram = 1024 if self.version == "v1.0" else 256
        request: dict[str, int | float] = {"cores": 1, "ram": ram, "tmpdir": 1024, "outdir": 1024}
        limits: dict[str, int | float | None] = {}
        for name in request:
            low, high = (self._resource(asked, f"{name}{end}") for end in ("Min", "Max"))
            limits[name] = high if high is not None else low
            if low is None:
                low = high
            if low is not None:
                request[name] = low
        ram_limit = limits["ram"]
        return Resources(request["cores"], math.ceil(request["ram"]), math.ceil(request["tmpdir"]), math.ceil(request["outdir"]),
                         limits["cores"], None if ram_limit is None else math.ceil(ram_limit))

    def _resource(self, requirement: Mapping[str, Any], name: str) -> int | float | None:
        value = requirement.get(name)
        if not value:
            return None
        field = f"requirements.ResourceRequirement.{name}"
        value = self.eval(value, field)
        if isinstance(value, float) and self.version in ("v1.0", "v1.1"):
            raise ExpressionError(field, f"floats are not valid in resource requirement expressions before CWL v1.2: {value!r}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ExpressionError(field, f"must evaluate to a number, not {value!r}")
        return value

    def argument(self, binding: dict[str, Any]) -> list[str]:
        """cwltool's ``Builder.generate_arg``."""
        value = binding.get("datum")
        if "valueFrom" in binding:
            value = self.eval(binding["valueFrom"], binding["_field"] + ".valueFrom", value)
        prefix = binding.get("prefix")
        separate = binding.get("separate", True)
        if prefix is None and not separate:
            raise JobError(f"{binding['_field']}: 'separate' can not be false without a prefix")
        if isinstance(value, list):
            if binding.get("itemSeparator") and value:
                items = [binding["itemSeparator"].join(tostr(v) for v in value)]
            elif binding.get("valueFrom"):
                return ([prefix] if prefix else []) + [tostr(v) for v in value]
            else:
                return [prefix] if prefix and value else []
        elif isinstance(value, Mapping) and value.get("class") in ("File", "Directory"):
            items = [value]
        elif isinstance(value, Mapping):
            return [prefix] if prefix else []
        elif value is True and prefix:
            return [prefix]
        elif isinstance(value, bool) or value is None:
            return []
        else:
            items = [value]
        out: list[str] = []
        for item in items:
            if separate:
                out.extend(a for a in (prefix, tostr(item)) if a is not None)
            else:
                out.append(tostr(item) if prefix is None else prefix + tostr(item))
        return out


def substitute(basename: str, pattern: str) -> str:
    """A secondary file's name from its primary's: each leading ``^`` removes one extension."""
    if pattern.startswith("^"):
        if "." in basename:
            return substitute(basename[: basename.rindex(".")], pattern[1:])
        return basename + pattern.lstrip("^")
    return basename + pattern


def _stream_name(tool: Mapping[str, Any]) -> str:
    """The name cwltool gives a ``stdout``/``stderr`` output when the tool names no file: the
    SHA-1 of the tool document (``load_tool._convert_stdstreams_to_files``)."""
    return hashlib.sha1(json.dumps(tool, sort_keys=True).encode("utf-8")).hexdigest()


def _expression_fields(tool: Mapping[str, Any], inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Every (field, value) of the tool that may hold a parameter reference and that faice evaluates."""
    fields: list[tuple[str, Any]] = []

    def binding_fields(where: str, schema: Mapping[str, Any]) -> None:
        binding = schema.get("inputBinding")
        if isinstance(binding, Mapping):
            fields.extend((f"{where}.inputBinding.{k}", binding.get(k)) for k in ("valueFrom", "position"))
        for n, entry in enumerate(_aslist(schema.get("secondaryFiles", []))):
            fields.append((f"{where}.secondaryFiles[{n}]", entry.get("pattern") if isinstance(entry, Mapping) else entry))
            fields.append((f"{where}.secondaryFiles[{n}].required", entry.get("required") if isinstance(entry, Mapping) else None))
        for kind in _aslist(schema.get("type")):
            if isinstance(kind, Mapping):
                binding_fields(where + ".type", kind)
                if isinstance(kind.get("items"), Mapping):
                    binding_fields(where + ".type.items", kind["items"])

    for item in inputs:
        binding_fields(f"inputs.{item['id']}", item)
    for n, argument in enumerate(tool.get("arguments") or []):
        if isinstance(argument, Mapping):
            fields.extend((f"arguments[{n}].{k}", argument.get(k)) for k in ("valueFrom", "position"))
        else:
            fields.append((f"arguments[{n}]", argument))
    fields.extend((stream, tool.get(stream)) for stream in ("stdin", "stdout", "stderr"))
    env = requirement(tool, "EnvVarRequirement")
    if env:
        fields.extend((f"requirements.EnvVarRequirement.envDef.{e['envName']}", e["envValue"]) for e in _entries(env.get("envDef"), "envName", "envValue"))
    resources = requirement(tool, "ResourceRequirement") or {}
    fields.extend((f"requirements.ResourceRequirement.{k}", v) for k, v in resources.items() if k != "class")
    for item in outputs:
        for n, glob in enumerate(_aslist((item.get("outputBinding") or {}).get("glob"))):
            fields.append((f"outputs.{item['id']}.outputBinding.glob[{n}]", glob))
    return fields


def check_references(tool: Mapping[str, Any]) -> None:
    """Raise :class:`JavaScriptRequired` for the first field that holds JavaScript, whatever the job."""
    inputs, outputs = _entries(tool.get("inputs"), "id", "type"), _entries(tool.get("outputs"), "id", "type")
    for field, value in _expression_fields(tool, inputs, outputs):
        piece = references.javascript(value)
        if piece is not None:
            raise JavaScriptRequired(field, f"{piece} is JavaScript, not a parameter reference (faice runs no JavaScript; cwltool does)")


def with_defaults(tool: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """The job with each missing or null input set to its ``default`` (cwltool's ``fill_in_defaults``).

    A default File or Directory keeps the tool's ``location``: the caller stages it and gives its
    container path before :func:`evaluate`.
    """
    filled = copy.deepcopy(dict(job))
    for item in _entries(tool.get("inputs"), "id", "type"):
        name = item["id"]
        if filled.get(name) is not None:
            continue
        if "default" in item:
            filled[name] = copy.deepcopy(item["default"])
        elif "null" in _aslist(normalize_type(item.get("type"))):
            filled[name] = None
        else:
            raise JobError(f"Missing required input parameter '{name}'")
    return filled


def evaluate(tool: Mapping[str, Any], job: Mapping[str, Any], runtime: Runtime) -> Invocation:
    """The :class:`Invocation` of ``tool`` for ``job``, as cwltool would build it.

    ``tool`` is a validated CommandLineTool as plain data (map or list forms, ids ``x``, ``#x`` or
    ``file#x``); ``job`` maps input ids to values, a File or Directory as ``{class, path}`` (or
    ``location``) with its path already the one inside the container. Raises
    :class:`JavaScriptRequired` (naming the field) for a tool with JavaScript, and
    :class:`ExpressionError` or :class:`JobError` where cwltool fails too.
    """
    original, tool = tool, _stdin_shortcut(tool)
    check_references(tool)
    inputs = _entries(tool.get("inputs"), "id", "type")
    outputs = _entries(tool.get("outputs"), "id", "type")
    state = _Evaluation(tool, with_defaults(tool, job), runtime)
    for value in state.job.values():
        _complete_all(value)
    bindings: list[dict[str, Any]] = []
    for item in inputs:
        value = state.job.get(item["id"])
        schema = {**item, "type": normalize_type(item.get("type")), "_where": f"inputs.{item['id']}"}
        if value is not None and not matches(schema["type"], value):
            raise JobError(f"inputs.{item['id']}: {value!r} is not a valid {item.get('type')}")
        if value is not None:
            bindings.extend(state.bind(schema, value, [], item["id"]))
    for index, command in enumerate(_aslist(tool.get("baseCommand") or [])):
        bindings.append({"position": [-1000000, index], "datum": command})
    for index, argument in enumerate(tool.get("arguments") or []):
        field = f"arguments[{index}]"
        if isinstance(argument, Mapping):
            binding = {**argument, "_field": field}
            position = argument.get("position") or 0
            if isinstance(position, str):
                position = state.eval(position, field + ".position")
                position = 0 if position is None else position
            binding["position"] = [position, index]
        elif references.needs_parsing(argument):
            binding = {"position": [0, index], "valueFrom": argument, "_field": field}
        else:
            binding = {"position": [0, index], "datum": argument}
        bindings.append(binding)
    bindings.sort(key=functools.cmp_to_key(_compare))

    resources = state.resources(tool)
    state.runtime.update(cores=math.ceil(resources.cores), ram=resources.ram, tmpdirSize=resources.tmpdir_size, outdirSize=resources.outdir_size)
    streams = {name: _stream(state, tool, name) for name in ("stdin", "stdout", "stderr")}
    for item in outputs:
        if item.get("type") in ("stdout", "stderr") and streams[item["type"]] is None:
            streams[item["type"]] = _stream_name(original)

    if requirement(tool, "ShellCommandRequirement") is not None:
        words: list[str] = []
        for binding in bindings:
            args = state.argument(binding)
            words.extend([shell_quote(a) for a in args] if binding.get("shellQuote", True) else args)
        argv = ["/bin/sh", "-c", " ".join(words)]
    else:
        argv = [arg for binding in bindings for arg in state.argument(binding)]

    return Invocation(
        argv=argv,
        stdin=streams["stdin"],
        stdout=streams["stdout"],
        stderr=streams["stderr"],
        environment=_environment(state, tool),
        resources=resources,
        globs={item["id"]: _globs(state, item, streams) for item in outputs},
        secondary_files=state.secondary,
        job=state.job,
    )


def _stdin_shortcut(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """An input of type ``stdin`` is a File whose path is the tool's ``stdin`` (as cwltool rewrites it)."""
    inputs = _entries(tool.get("inputs"), "id", "type")
    shortcut = [item for item in inputs if item.get("type") == "stdin"]
    if not shortcut:
        return tool
    for item in shortcut:
        item["type"] = "File"
    return {**tool, "inputs": inputs, "stdin": f"$(inputs.{shortcut[-1]['id']}.path)"}


def _stream(state: _Evaluation, tool: Mapping[str, Any], name: str) -> str | None:
    if not tool.get(name):
        return None
    value = state.eval(tool[name], name)
    if not isinstance(value, str) and not (name == "stdin" and value is None):
        raise ExpressionError(name, f"must evaluate to a string, not {value!r}")
    if name != "stdin" and value and (value.startswith("/") or ".." in value):
        raise ExpressionError(name, f"must be a relative path, got {value!r}")
    return value


def _environment(state: _Evaluation, tool: Mapping[str, Any]) -> dict[str, str]:
    defined = requirement(tool, "EnvVarRequirement")
    environment: dict[str, str] = {}
    for entry in _entries((defined or {}).get("envDef"), "envName", "envValue"):
        field = f"requirements.EnvVarRequirement.envDef.{entry['envName']}"
        value = state.eval(entry["envValue"], field)
        if not isinstance(value, str):
            raise ExpressionError(field, f"must evaluate to a string, not {value!r}")
        environment[entry["envName"]] = value
    return environment


def _globs(state: _Evaluation, output: Mapping[str, Any], streams: Mapping[str, str | None]) -> list[str]:
    """The evaluated glob patterns of one output (cwltool's ``collect_output``, before globbing)."""
    if output.get("type") in ("stdout", "stderr"):
        return [str(streams[output["type"]])]
    patterns: list[str] = []
    for n, glob in enumerate(_aslist((output.get("outputBinding") or {}).get("glob", []))):
        field = f"outputs.{output['id']}.outputBinding.glob[{n}]"
        value = state.eval(glob, field)
        if not value:
            continue
        if not all(isinstance(v, str) for v in _aslist(value)):
            raise ExpressionError(field, f"glob patterns must be strings or lists of strings, not {value!r}")
        patterns.extend(_aslist(value))
    return patterns


def shell_quote(word: str) -> str:
    """``shlex.quote``, as cwltool quotes each argument under ShellCommandRequirement."""
    import shlex

    return shlex.quote(word)
