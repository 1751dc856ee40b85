"""Everything that can be checked about a RED document without running it.

Structure comes from the published JSON Schemas (:mod:`faice.red.schema`); meaning from the
checks here: job values against ``cli`` types, required inputs in every batch, output globs,
variables and protected keys only in credential blocks, engines and their settings, and
connectors (unresolvable commands are warnings: the file may be meant for another machine).
All problems are collected; none stops the others from being found.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from faice.host import memory_mib
from faice.red.model import OUTPUT_TYPES, CwlType, job_sections
from faice.red.problems import Problem
from faice.red.schema import schema_problems
from faice.red.secrets import CREDENTIAL_BLOCKS, is_protected_key
from faice.red.variables import AGENCY_ACCESS, VariableSyntaxError, has_brackets, split_template

CONTAINER_ENGINES = ("docker",)
EXECUTION_ENGINES = ("ccfaice", "ccagency")
CHECKSUM = re.compile(r"^sha1\$[0-9a-f]{40}$")
# $(inputs.KEY) followed by .attr, ["attr"] or [index] selectors: the only expressions RED allows.
REFERENCE = re.compile(r"\$\(inputs\.([A-Za-z0-9_-]+)((?:\.[A-Za-z_]+|\[\"[A-Za-z_]+\"\]|\['[A-Za-z_]+'\]|\[[0-9]+\])*)\)")
FILE_ATTRIBUTES = ("basename", "nameroot", "nameext", "dirname", "path", "size", "checksum")
IMAGE_REFERENCE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$")


ConnectorPolicy = Callable[[str], "str | None"]


class _Use(NamedTuple):
    """A connector used somewhere in the job: checked once per command and per access."""

    path: tuple[Any, ...]
    connector: Any
    direction: str
    kind: str
    listing: Any


def validate_data(data: dict[str, Any], *, check_connectors: bool = True, connectors_required: bool = False, filled: bool = False,
                  connector_policy: ConnectorPolicy | None = None, for_agency: bool = False) -> list[Problem]:
    """All problems of a RED 9 document (errors and warnings), unlocated.

    A connector that cannot be resolved here is a warning, or an error with ``connectors_required``.
    ``connector_policy`` may refuse a connector command: it returns why, or None (faice serve).
    ``filled`` marks a document whose variables were filled in (checked again for the connectors).
    Problems of ``execution.settings.access`` (a CC-Agency's URL and login, which templates leave
    empty) are errors only ``for_agency`` (faice submit): no local run uses them.
    """
    problems = _problems(data, check_connectors, connectors_required, filled, connector_policy)
    execution = data.get("execution")
    if for_agency or not isinstance(execution, dict) or execution.get("engine") != "ccagency":
        return problems
    return [Problem(p.path, f"{p.message} (only faice submit uses it)", "warning") if p.path[:3] == AGENCY_ACCESS and p.severity == "error" else p
            for p in problems]


def _problems(data: dict[str, Any], check_connectors: bool, connectors_required: bool, filled: bool, connector_policy: ConnectorPolicy | None) -> list[Problem]:
    if _looks_like_cwl(data):
        return [Problem((), "this is a CWL CommandLineTool, not a RED file: a RED file embeds it under cli: (faice convert cwl goes the other way)")]
    # Filled values may contain anything, braces included: key and bracket rules were checked before filling.
    problems = [] if filled else _key_problems(data)
    semantic: list[Problem] = []
    cli = data.get("cli") if isinstance(data.get("cli"), dict) else {}
    cli_inputs, cli_outputs = _cli_types(cli)
    semantic += _cli_problems(cli, cli_inputs, cli_outputs)
    semantic += _engine_problems(data)
    uses: list[_Use] = []
    cli_known = isinstance(cli.get("inputs"), dict) and isinstance(cli.get("outputs"), dict)
    if cli_known and ("batches" in data or "inputs" in data):
        for path, inputs, outputs in job_sections(data):
            semantic += _job_problems(path, inputs, outputs, cli_inputs, cli_outputs, uses)
    if check_connectors:
        semantic += _connector_problems(uses, connectors_required, connector_policy)
    owned = {p.path for p in semantic if p.severity == "error"}
    structural = [p for p in schema_problems("red", data) if not _owned(p.path, owned)]
    return _unique(problems + structural + semantic)


def _looks_like_cwl(data: dict[str, Any]) -> bool:
    return "redVersion" not in data and data.get("class") == "CommandLineTool"


def _owned(path: tuple[Any, ...], owned: set[tuple[Any, ...]]) -> bool:
    return any(path[:i] in owned for i in range(len(path), 0, -1))


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.path, p.message, p.severity)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _key_problems(data: Any) -> list[Problem]:
    """Non-string keys, protected keys and ``{{variables}}`` outside access/auth blocks."""
    problems: list[Problem] = []
    stack: list[tuple[tuple[Any, ...], Any, bool]] = [((), data, False)]
    while stack:
        path, node, in_block = stack.pop()
        if type(node) is dict:
            for key, value in node.items():
                if not isinstance(key, str):
                    problems.append(Problem(path + (key,), f"keys must be strings; quote {key!r}"))
                    continue
                if is_protected_key(key) and not in_block:
                    problems.append(Problem(path + (key,), f'protected key "{key}" is only allowed inside an access or auth block'))
                if type(value) is str:
                    if "{{" in value or "}}" in value:
                        problems.extend(_bracket_problems(path + (key,), value, in_block or key in CREDENTIAL_BLOCKS))
                elif type(value) in (dict, list):
                    stack.append((path + (key,), value, in_block or key in CREDENTIAL_BLOCKS))
        elif type(node) is list:
            for i, value in enumerate(node):
                if type(value) is str:
                    if "{{" in value or "}}" in value:
                        problems.extend(_bracket_problems(path + (i,), value, in_block))
                elif type(value) in (dict, list):
                    stack.append((path + (i,), value, in_block))
    return problems


def _bracket_problems(path: tuple[Any, ...], value: str, allowed: bool) -> list[Problem]:
    if not allowed:
        return [Problem(path, "{{variables}} are only allowed inside an access or auth block")]
    try:
        split_template(value)
    except VariableSyntaxError as exc:
        return [Problem(path, f"malformed variable: {exc}")]
    return []


def _cli_types(cli: dict[str, Any]) -> tuple[dict[str, CwlType | None], dict[str, str | None]]:
    inputs: dict[str, CwlType | None] = {}
    for key, spec in (cli.get("inputs") or {}).items() if isinstance(cli.get("inputs"), dict) else ():
        inputs[key] = CwlType.parse(spec.get("type")) if isinstance(spec, dict) else None
    outputs: dict[str, str | None] = {}
    for key, spec in (cli.get("outputs") or {}).items() if isinstance(cli.get("outputs"), dict) else ():
        kind = spec.get("type") if isinstance(spec, dict) else None
        outputs[key] = kind.rstrip("?") if isinstance(kind, str) and kind.rstrip("?") in OUTPUT_TYPES else None
    return inputs, outputs


def _cli_problems(cli: dict[str, Any], inputs: dict[str, CwlType | None], outputs: dict[str, str | None]) -> list[Problem]:
    problems: list[Problem] = []
    base = cli.get("baseCommand")
    if (base is None or base == []) and not inputs and cli:
        problems.append(Problem(("cli",), "nothing to run: no baseCommand and no inputs"))
    for key, spec in (cli.get("inputs") or {}).items() if isinstance(cli.get("inputs"), dict) else ():
        binding = spec.get("inputBinding") if isinstance(spec, dict) else None
        if not isinstance(binding, dict):
            continue
        path = ("cli", "inputs", key, "inputBinding")
        if binding.get("separate") is False and "prefix" not in binding:
            problems.append(Problem(path + ("separate",), "separate: false needs a prefix (CWL joins the prefix and the value)"))
        cwl_type = inputs.get(key)
        if binding.get("itemSeparator") == "":
            problems.append(Problem(path + ("itemSeparator",), 'an empty itemSeparator joins the items with nothing between them (cwltool drops them instead)', "warning"))
        elif "itemSeparator" in binding and cwl_type is not None and not cwl_type.array:
            problems.append(Problem(path + ("itemSeparator",), f"itemSeparator has no effect on the non-array type {cwl_type}", "warning"))
    for key, spec in (cli.get("outputs") or {}).items() if isinstance(cli.get("outputs"), dict) else ():
        glob = (spec.get("outputBinding") or {}).get("glob") if isinstance(spec, dict) and isinstance(spec.get("outputBinding"), dict) else None
        if isinstance(glob, str):
            problems += _glob_problems(("cli", "outputs", key, "outputBinding", "glob"), glob, inputs)
    for stream in ("stdout", "stderr"):
        name = cli.get(stream)
        if isinstance(name, str) and name:
            message = _relative_path_problem(name, "file name")
            if message:
                problems.append(Problem(("cli", stream), message))
    return problems


def _relative_path_problem(text: str, what: str) -> str | None:
    if text.startswith("/"):
        return f"{what} must be relative to the output directory, not absolute"
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        return f"{what} must stay inside the output directory (no leading ..)"
    if normal == ".":
        return f"{what} must name something inside the output directory"
    return None


def _glob_problems(path: tuple[Any, ...], glob: str, inputs: dict[str, CwlType | None]) -> list[Problem]:
    problems = []
    rest = REFERENCE.sub("x", glob)
    if "$(" in rest or "${" in rest:
        problems.append(Problem(path, "only $(inputs.KEY) references (with .basename, .nameroot, ... or [index]) are supported in globs, no JavaScript"))
    for match in REFERENCE.finditer(glob):
        key, selectors = match.group(1), match.group(2)
        if key not in inputs:
            problems.append(Problem(path, f'$(inputs.{key}) refers to an input that the cli does not declare'))
            continue
        cwl_type = inputs[key]
        attribute = re.match(r"\.?\[?[\"']?([A-Za-z_]+)", selectors or "")
        if cwl_type is not None and attribute and not cwl_type.is_file_like:
            problems.append(Problem(path, f"$(inputs.{key}{selectors}): {key} is a {cwl_type}, which has no attributes"))
        elif attribute and attribute.group(1) not in FILE_ATTRIBUTES:
            problems.append(Problem(path, f'$(inputs.{key}{selectors}): unknown attribute "{attribute.group(1)}"; known: {", ".join(FILE_ATTRIBUTES)}'))
        if cwl_type is not None and cwl_type.optional:
            problems.append(Problem(path, f"$(inputs.{key}) refers to an optional input: a batch without it cannot resolve this glob", "warning"))
    message = _relative_path_problem(rest, "glob")
    if message:
        problems.append(Problem(path, message))
    return problems


def _engine_problems(data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    container = data.get("container")
    if isinstance(container, dict) and isinstance(container.get("engine"), str):
        engine = container["engine"]
        if engine == "nvidia-docker":
            problems.append(Problem(("container", "engine"), 'the "nvidia-docker" engine was replaced by "docker" with settings.gpus (RED 8)'))
        elif engine not in CONTAINER_ENGINES:
            problems.append(Problem(("container", "engine"), f'unknown container engine "{engine}"; faice runs "docker"'))
        elif isinstance(container.get("settings"), dict):
            settings = container["settings"]
            problems += schema_problems("red-engine-container-docker", settings, ("container", "settings"))
            url = (settings.get("image") or {}).get("url") if isinstance(settings.get("image"), dict) else None
            if isinstance(url, str) and url and not IMAGE_REFERENCE.match(url):
                problems.append(Problem(("container", "settings", "image", "url"), f'"{url}" is not a valid image reference (like "name", "name:tag" or "registry/name:tag")'))
            ram = settings.get("ram")
            total = memory_mib()
            if isinstance(ram, int) and not isinstance(ram, bool) and total and ram > total:
                problems.append(Problem(("container", "settings", "ram"), f"{ram} MiB is more than this machine's {total} MiB: faice exec runs such a batch with no other "
                                        "beside it, and its tool is killed only if it really needs more memory than there is", "warning"))
    execution = data.get("execution")
    if isinstance(execution, dict) and isinstance(execution.get("engine"), str):
        engine = execution["engine"]
        if engine not in EXECUTION_ENGINES:
            problems.append(Problem(("execution", "engine"), f'unknown execution engine "{engine}"; known: {", ".join(EXECUTION_ENGINES)}'))
        elif isinstance(execution.get("settings"), dict):
            problems += schema_problems(f"red-engine-execution-{engine}", execution["settings"], ("execution", "settings"))
    if "cloud" in data or any(isinstance(b, dict) and "cloud" in b for b in data.get("batches") or [] if isinstance(data.get("batches"), list)):
        problems.append(Problem(("cloud",) if "cloud" in data else ("batches",), "cloud mounts are a CC-Agency feature; faice ignores them", "warning"))
    return problems


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "int": (int,), "long": (int,), "float": (int, float), "double": (int, float), "boolean": (bool,),
}


def _value_problem(cwl_name: str, value: Any) -> str | None:
    """Why ``value`` is not a ``cwl_name`` (a base type), or None when it is."""
    if cwl_name in ("File", "Directory"):
        if not isinstance(value, dict):
            return f"must be a {cwl_name} object with class and connector, not {_describe(value)}"
        if "class" not in value and (near := difflib.get_close_matches("class", [k for k in value if isinstance(k, str)], n=1, cutoff=0.6)):
            return f'has no "class" (is "{near[0]}" meant to be "class"?); it must have class "{cwl_name}"'
        if value.get("class") != cwl_name:
            return f'must have class "{cwl_name}", not {_describe(value.get("class"))}'
        return None
    expected = _PY_TYPES[cwl_name]
    if isinstance(value, bool) and cwl_name != "boolean":
        return f"must be {_article(cwl_name)}, not the boolean {str(value).lower()}"
    if not isinstance(value, expected):
        return f"must be {_article(cwl_name)}, not {_describe(value)}"
    return None


def _article(name: str) -> str:
    return {"int": "an int", "long": "a long (integer)", "float": "a float (number)", "double": "a double (number)", "boolean": "a boolean (true/false)", "string": "a string"}[name]


def _undeclared(path: tuple[Any, ...], kind: str, declared: dict[str, Any]) -> Problem:
    """An input or output the file gives that the cli does not declare."""
    return Problem(path, f'unknown {kind} "{path[-1]}"; the cli declares: {", ".join(declared) or "none"}')

def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping" + (f' of class "{value["class"]}"' if isinstance(value.get("class"), str) else "")
    return type(value).__name__


def _job_problems(
    path: tuple[Any, ...],
    inputs: Any,
    outputs: Any,
    cli_inputs: dict[str, CwlType | None],
    cli_outputs: dict[str, str | None],
    uses: list[_Use],
) -> list[Problem]:
    problems: list[Problem] = []
    in_path = path + ("inputs",)
    if isinstance(inputs, dict):
        for key, cwl_type in cli_inputs.items():
            if cwl_type is not None and not cwl_type.optional and key not in inputs:
                problems.append(Problem(in_path, f'required input "{key}" ({cwl_type}) is missing'))
        for key, value in inputs.items():
            if key not in cli_inputs:
                problems.append(_undeclared(in_path + (key,), "input", cli_inputs))
                continue
            cwl_type = cli_inputs[key]
            if cwl_type is not None and value is not None:
                problems += _input_value_problems(in_path + (key,), cwl_type, value, uses)
    out_path = path + ("outputs",)
    if isinstance(outputs, dict):
        for key, value in outputs.items():
            if key not in cli_outputs:
                problems.append(_undeclared(out_path + (key,), "output", cli_outputs))
                continue
            expected = cli_outputs[key]
            if not isinstance(value, dict) or expected is None:
                continue
            if value.get("class") != expected:
                problems.append(Problem(out_path + (key, "class"), f'must be "{expected}" (the cli output type), not {_describe(value.get("class"))}'))
                continue
            kind = "Directory" if expected == "Directory" else "File"
            if isinstance(value.get("connector"), dict):
                uses.append(_Use(out_path + (key, "connector"), value["connector"], "send", kind, value.get("listing")))
            problems += _object_problems(out_path + (key,), value, kind, sending=True)
    return problems


def _input_value_problems(path: tuple[Any, ...], cwl_type: CwlType, value: Any, uses: list[_Use]) -> list[Problem]:
    if cwl_type.array:
        if not isinstance(value, list):
            return [Problem(path, f"must be a list ({cwl_type}), not {_describe(value)}")]
        problems = []
        for i, item in enumerate(value):
            message = _value_problem(cwl_type.name, item)
            if message:
                problems.append(Problem(path + (i,), message))
            elif cwl_type.is_file_like:
                problems += _file_input_problems(path + (i,), cwl_type.name, item, uses)
        return problems
    message = _value_problem(cwl_type.name, value)
    if message:
        return [Problem(path, message)]
    if cwl_type.is_file_like:
        return _file_input_problems(path, cwl_type.name, value, uses)
    return []


def _file_input_problems(path: tuple[Any, ...], kind: str, value: dict[str, Any], uses: list[_Use]) -> list[Problem]:
    connector = value.get("connector")
    if isinstance(connector, dict):
        direction = "mount" if connector.get("mount") is True and kind == "Directory" else "receive"
        uses.append(_Use(path + ("connector",), connector, direction, kind, value.get("listing")))
    return _object_problems(path, value, kind, sending=False)


def _object_problems(path: tuple[Any, ...], value: dict[str, Any], kind: str, *, sending: bool) -> list[Problem]:
    problems = []
    basename = value.get("basename")
    if isinstance(basename, str) and (not basename or "/" in basename or basename in (".", "..")):
        problems.append(Problem(path + ("basename",), "must be a plain file name (no /, not . or ..)"))
    dirname = value.get("dirname")
    if isinstance(dirname, str) and not dirname.startswith("/"):
        problems.append(Problem(path + ("dirname",), "must be an absolute path inside the container"))
    checksum = value.get("checksum")
    if isinstance(checksum, str) and not CHECKSUM.match(checksum):
        problems.append(Problem(path + ("checksum",), 'must look like "sha1$" followed by 40 lowercase hex digits'))
    connector = value.get("connector")
    if isinstance(connector, dict) and connector.get("mount") is True:
        if sending:
            problems.append(Problem(path + ("connector", "mount"), "outputs cannot be mounted"))
        elif kind != "Directory":
            problems.append(Problem(path + ("connector", "mount"), "only Directory inputs can be mounted"))
    listing = value.get("listing")
    if listing is not None and kind != "Directory":
        problems.append(Problem(path + ("listing",), "only Directory values have a listing"))
    elif isinstance(listing, list):
        problems += _listing_problems(path + ("listing",), listing)
    return problems


def _listing_problems(path: tuple[Any, ...], listing: list[Any]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, entry in enumerate(listing):
        if not isinstance(entry, dict):
            continue
        name = entry.get("basename")
        if isinstance(name, str):
            if not name or "/" in name or name in (".", ".."):
                problems.append(Problem(path + (i, "basename"), "must be a plain file name (no /, not . or ..)"))
            elif name in seen:
                problems.append(Problem(path + (i, "basename"), f'"{name}" is listed twice'))
            seen.add(name)
        checksum = entry.get("checksum")
        if isinstance(checksum, str) and not CHECKSUM.match(checksum):
            problems.append(Problem(path + (i, "checksum"), 'must look like "sha1$" followed by 40 lowercase hex digits'))
        if isinstance(entry.get("listing"), list):
            problems += _listing_problems(path + (i, "listing"), entry["listing"])
    return problems


def _meant_connector(command: str, known: list[str]) -> str | None:
    """The installed connector a misspelt command most likely means: close as a whole, and close
    in what follows ``red-connector-`` (all share that start: red-connector-xnat is not ftp)."""
    def tail(name: str) -> str:
        return name.split("-", 2)[-1]

    near = difflib.get_close_matches(command, known, n=1, cutoff=0.8)
    if near and difflib.SequenceMatcher(None, tail(command), tail(near[0])).ratio() >= 0.6:
        return near[0]
    return None


def _connector_problems(uses: list[_Use], required: bool, policy: ConnectorPolicy | None = None) -> list[Problem]:
    """Refused and unresolvable commands (one warning each) and built-in plugins' access checks."""
    from faice.connectors import registry
    from faice.red.secrets import strip_protection

    problems: list[Problem] = []
    warned: set[Any] = set()
    checked: dict[tuple[str, str, str, str, bool], list[str]] = {}
    for use in uses:
        command = use.connector.get("command")
        if not isinstance(command, str) or not command:
            continue
        refused = policy(command) if policy is not None else None
        if refused:
            problems.append(Problem(use.path + ("command",), refused))
            continue
        if not registry.resolve(command).found:
            if command not in warned:
                warned.add(command)
                consequence = "install it to run this file" if required else "faice exec will refuse to run"
                near = _meant_connector(command, list(registry.plugin_entry_points()))
                hint = f' (did you mean "{near}"?)' if near else ""
                problems.append(Problem(use.path + ("command",), f'connector "{command}" is not installed here (no faice plugin, not on PATH){hint}; {consequence}',
                                        "error" if required else "warning"))
            continue
        plugin = registry.plugin(command)
        direction = use.direction
        if plugin is not None and direction == "mount" and not plugin.supports("mount", "Directory"):
            if (command, "mount") not in warned:
                warned.add((command, "mount"))
                problems.append(Problem(use.path + ("mount",), f"{command} cannot mount directories; faice exec --no-mount copies the directory instead", "warning"))
            direction = "receive"
        access = use.connector.get("access")
        if plugin is None or not isinstance(access, dict) or _has_variables(access):
            continue
        key = (command, direction, use.kind, repr(sorted(access.items(), key=str)), use.listing is None)
        if key not in checked:
            checked[key] = plugin.validate(strip_protection(access), direction, use.kind, use.listing)  # type: ignore[arg-type]
        problems += [Problem(use.path + ("access",), f"{command}: {message}") for message in checked[key]]
    return problems


def _has_variables(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_has_variables(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_variables(v) for v in node)
    return isinstance(node, str) and has_brackets(node)
