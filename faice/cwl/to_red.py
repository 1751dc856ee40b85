"""A CWL CommandLineTool and its jobs as a RED 9 file that runs as ``cwltool TOOL JOB`` would.

Pure: the tool must be valid CWL that a RED file can hold (no ``run`` or ``embed`` feature of
:func:`faice.cwl.support.unsupported`; the caller checks). The ``cli`` is the tool spelled as RED
spells it (:mod:`faice.cwl.support` says what is rewritten); each job becomes the RED inputs of
one batch, with the tool's defaults filled in, since a RED ``cli`` has no ``default``. A File or
Directory becomes a connector: a local path (relative to its job file's directory, a tool
default's to the tool's) or ``file://`` URI by ``red-connector-local`` with the absolute path,
an ``http(s)://`` location by ``red-connector-http``. No ``outputs`` section: ``faice exec``
keeps outputs without a connector in its output directory, as cwltool does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from faice.cwl.command import JobError, input_ids, parameters, with_defaults
from faice.cwl.plan import CwlPlanError, docker_image, source_of
from faice.cwl.support import RED_BINDING_FIELDS, Unsupported, main_process, type_shape

CHECKSUM = re.compile(r"^sha1\$[0-9a-f]{40}$")


class ConvertError(ValueError):
    """A job faice cannot put into a RED file (a missing input, a File literal, an odd location)."""


def to_red(tool_data: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], base_dirs: Sequence[str], tool_dir: str, image: str | None) -> dict[str, Any]:
    """The RED 9 document of ``tool_data`` (a CommandLineTool, or a ``$graph`` holding one) and
    ``jobs`` (none: the defaults only). ``base_dirs[i]`` is where job ``i``'s relative locations
    are (a directory or an http(s) URL), ``tool_dir`` where the tool's are; ``image`` overrides the
    DockerRequirement. Raises :class:`ConvertError`."""
    found = main_process(dict(tool_data))
    if isinstance(found, Unsupported):
        raise ConvertError(found.message)
    tool = found[1]
    chosen = image or docker_image(tool)
    if not chosen:
        raise ConvertError("the tool has no DockerRequirement (dockerPull or dockerImageId): pass --image IMAGE")
    if len(base_dirs) != len(jobs):
        raise ValueError("one base directory per job")
    inputs = [_job_inputs(tool, job, base, tool_dir, i if len(jobs) > 1 else None) for i, (job, base) in enumerate(zip(jobs, base_dirs, strict=True))] \
        or [_job_inputs(tool, {}, tool_dir, tool_dir, None)]
    red: dict[str, Any] = {"redVersion": "9", "cli": red_cli(tool),
                           "container": {"engine": "docker", "settings": {"image": {"url": chosen}}}}
    if len(inputs) == 1:
        red["inputs"] = inputs[0]
    else:
        red["batches"] = [{"inputs": one} for one in inputs]
    red["execution"] = {"engine": "ccfaice", "settings": {}}
    return red


def unknown_inputs(tool_data: Mapping[str, Any], job: Mapping[str, Any]) -> list[str]:
    """The job's keys the tool does not declare: cwltool ignores them, and so does the RED file."""
    found = main_process(dict(tool_data))
    if isinstance(found, Unsupported):
        return []
    declared = set(input_ids(found[1]))
    return [key for key in job if key not in declared]


# --- the cli ---------------------------------------------------------------------------------


def red_cli(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The tool as a RED ``cli``: cwlVersion v1.0, map forms, ``T[]``/``T?`` types, only the
    fields RED holds (metadata but ``doc``, hints and the DockerRequirement left out)."""
    cli: dict[str, Any] = {"cwlVersion": "v1.0", "class": "CommandLineTool"}
    if tool.get("baseCommand") is not None:
        cli["baseCommand"] = tool["baseCommand"]
    _doc(cli, tool)
    cli["inputs"] = {spec["id"]: _cli_input(spec) for spec in parameters(tool.get("inputs"))}
    cli["outputs"] = {spec["id"]: _cli_output(spec) for spec in parameters(tool.get("outputs"))}
    for stream in ("stdout", "stderr"):
        if isinstance(tool.get(stream), str):
            cli[stream] = tool[stream]
    return cli


def _doc(target: dict[str, Any], spec: Mapping[str, Any]) -> None:
    doc = spec.get("doc")
    if isinstance(doc, list):  # CWL v1.1+ allows a list of strings
        doc = "\n".join(str(d) for d in doc)
    if isinstance(doc, str):
        target["doc"] = doc


def red_type(cwl_type: Any) -> str:
    """``T``, ``T[]``, ``T?`` or ``T[]?`` of a type RED can spell (support has refused the rest)."""
    shape = type_shape(cwl_type)
    if shape is None:
        raise ConvertError(f"a RED file cannot hold the type {cwl_type!r}")
    base, array, _ = shape
    optional = (isinstance(cwl_type, str) and cwl_type.endswith("?")) or (isinstance(cwl_type, list) and "null" in cwl_type)
    return base + ("[]" if array else "") + ("?" if optional else "")


def _cli_input(spec: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"type": red_type(spec.get("type"))}
    binding = spec.get("inputBinding") if isinstance(spec.get("inputBinding"), Mapping) else {}
    item["inputBinding"] = {k: v for k, v in binding.items() if k in RED_BINDING_FIELDS}
    _doc(item, spec)
    return item


def _cli_output(spec: Mapping[str, Any]) -> dict[str, Any]:
    kind = red_type(spec.get("type"))
    item: dict[str, Any] = {"type": kind}
    if kind.rstrip("?") in ("File", "Directory"):
        item["outputBinding"] = {"glob": spec["outputBinding"]["glob"]}
    _doc(item, spec)
    return item


# --- the job -----------------------------------------------------------------------------------


def _job_inputs(tool: Mapping[str, Any], job: Mapping[str, Any], base: str, tool_dir: str, index: int | None) -> dict[str, Any]:
    """A job's RED inputs: its values for declared inputs, the tool's defaults for the rest,
    nulls left out (RED has no null: an optional input is left out)."""
    which = f"job {index + 1}: " if index is not None else ""
    declared = input_ids(tool)
    known = {k: v for k, v in job.items() if k in declared}
    try:
        filled = with_defaults(tool, known)
    except JobError as exc:
        raise ConvertError(f"{which}{exc}") from None
    inputs: dict[str, Any] = {}
    for name in declared:
        value = filled.get(name)
        if value is None:
            continue
        where = base if known.get(name) is not None else tool_dir
        try:
            inputs[name] = _value(name, value, where)
        except ConvertError as exc:
            raise ConvertError(f"{which}{exc}") from None
    return inputs


def _value(key: str, value: Any, base: str) -> Any:
    if isinstance(value, list):
        return [_value(key, item, base) for item in value]
    if isinstance(value, Mapping) and value.get("class") in ("File", "Directory"):
        return _file(key, value, base)
    return value


def _file(key: str, value: Mapping[str, Any], base: str) -> dict[str, Any]:
    """A File or Directory with the connector that fetches it, and what RED keeps of it."""
    try:
        source = source_of(key, value, base)
    except CwlPlanError as exc:
        raise ConvertError(str(exc)) from None
    red: dict[str, Any] = {"class": value["class"], "connector": {"command": source.connector, "access": source.access()}}
    if isinstance(value.get("basename"), str) and value["basename"]:
        red["basename"] = value["basename"]
    if value["class"] == "File":
        if isinstance(value.get("checksum"), str) and CHECKSUM.match(value["checksum"]):
            red["checksum"] = value["checksum"]
        if isinstance(value.get("size"), int) and not isinstance(value.get("size"), bool):
            red["size"] = value["size"]
    return red
