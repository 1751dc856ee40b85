"""Planning a CWL CommandLineTool's jobs into the batch plans the runner runs, before anything runs.

The RED planner's layout is kept, so one runner serves both: an input ``KEY`` is at
``/cc/inputs/KEY/BASENAME`` (array items at ``/cc/inputs/KEY/INDEX/BASENAME``), the output
directory is ``/cc/outputs``, and each File or Directory is staged by a connector: a local path
(relative to the job file's directory, or a ``file://`` URI) by ``red-connector-local``, mounted
where it is; an ``http(s)://`` location by ``red-connector-http``. A secondary file is staged
beside its primary, from beside the primary's source. The command line is
:func:`faice.cwl.command.evaluate`'s for those container paths: cwltool's.

Not yet (refused, naming the output or value): File and Directory outputs without a glob,
File literals (``contents`` without a location), locations of other schemes. An optional secondary file is staged when it exists
locally; over http it is not (faice does not probe URLs while planning).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urljoin, urlsplit

from faice.cwl.command import Invocation, Runtime, evaluate, input_ids, normalize_type, parameters, requirement, with_defaults
from faice.cwl.support import Unsupported, main_process, unsupported
from faice.red.model import Cli, CliOutput, Connector
from faice.red.paths import OUTPUTS_DIR, complete_file_value
from faice.runner.plan import BatchPlan, ExitCodes, StagedInput

#: the smallest memory limit Docker takes (MiB): a tool that asks for less gets this
MIN_RAM_MIB = 6
#: the container's runtime.outdir and runtime.tmpdir, also its HOME and TMPDIR (as CWL asks)
RUNTIME = Runtime(OUTPUTS_DIR, "/tmp")
LOCAL, HTTP = "red-connector-local", "red-connector-http"
#: fields of a job's File/Directory that name where it is on the host (the container path replaces
#: them); and its checksum, which cwltool does not check (a size it passes on as given)
_PLACE_FIELDS = ("location", "path", "basename", "dirname", "nameroot", "nameext", "secondaryFiles", "checksum")


class CwlPlanError(ValueError):
    """The tool or a job cannot be planned: a feature faice does not run, no image, a value it cannot stage."""


class CwlPlan(NamedTuple):
    """One job's batch plan, and its invocation for what a ``BatchPlan`` cannot hold yet
    (``environment``, ``stdin``, ``resources``): the next step wires those into the run."""

    plan: BatchPlan
    invocation: Invocation


class _Source(NamedTuple):
    """Where a File or Directory is on the host: an absolute local path or an http(s) URL."""

    connector: str
    where: str

    def sibling(self, name: str) -> _Source:
        """The file ``name`` beside this one: where a secondary file's source is."""
        if self.connector == LOCAL:
            return _Source(LOCAL, os.path.join(os.path.dirname(self.where), name))
        return _Source(HTTP, urljoin(self.where, quote(name)))

    def basename(self) -> str:
        path = self.where if self.connector == LOCAL else unquote(urlsplit(self.where).path)
        return posixpath.basename(path.rstrip("/"))

    def access(self) -> dict[str, str]:
        """The connector's access data: a local file's path, a URL."""
        return {"path": self.where} if self.connector == LOCAL else {"url": self.where}

    def staged(self, key: str, index: int | None, kind: str, container_path: str, listing: list[Any] | None) -> StagedInput:
        return StagedInput(key, index, kind, Connector(self.connector, self.access()), container_path, listing)


def plan_jobs(tool: Mapping[str, Any], jobs: list[Mapping[str, Any]], base_dir: Path | str, *, image: str | None = None,
              tool_dir: Path | str | None = None) -> list[CwlPlan]:
    """A plan per job, in order; raises :class:`CwlPlanError` for everything faice would refuse to run.

    ``tool`` is the loaded, valid CWL document (a CommandLineTool, or a ``$graph`` holding one);
    local paths of the jobs are relative to ``base_dir`` (a directory, or the http(s) URL of a
    job file's folder), those of the tool's default Files to ``tool_dir`` (default ``base_dir``);
    ``image`` overrides the DockerRequirement.
    """
    process = runnable(tool)
    chosen = image_of(process, image)
    return [plan_job(process, job, i, chosen, base_dir, tool_dir or base_dir) for i, job in enumerate(jobs)]


def runnable(document: Mapping[str, Any]) -> dict[str, Any]:
    """The CommandLineTool to run, after refusing every feature faice exec does not run."""
    refused = [u for u in unsupported(dict(document)) if u.level == "run"]
    if refused:
        lines = "\n".join(f"  {_where(u)}{u.feature}: {u.message}" for u in refused)
        raise CwlPlanError(f"faice exec does not run this tool (cwltool does):\n{lines}")
    found = main_process(dict(document))
    assert not isinstance(found, Unsupported)
    return found[1]


def _where(refusal: Unsupported) -> str:
    return ".".join(str(p) for p in refusal.path) + ": " if refusal.path else ""


def image_of(process: Mapping[str, Any], image: str | None) -> str:
    """``image`` (``--image``), else the DockerRequirement's."""
    chosen = image or docker_image(process)
    if not chosen:
        raise CwlPlanError("the tool has no DockerRequirement (dockerPull or dockerImageId): pass --image IMAGE")
    return chosen


def docker_image(process: Mapping[str, Any]) -> str | None:
    """dockerPull, else dockerImageId, of the DockerRequirement (a requirement before a hint)."""
    docker = requirement(process, "DockerRequirement") or {}
    return docker.get("dockerPull") or docker.get("dockerImageId")


def plan_job(process: dict[str, Any], job: Mapping[str, Any], index: int, image: str, base_dir: Path | str, tool_dir: Path | str) -> CwlPlan:
    """One job's plan, for the :func:`runnable` process of the tool."""
    declared = input_ids(process)
    filled = {k: v for k, v in with_defaults(process, job).items() if k in declared}  # cwltool ignores other keys
    staged: list[StagedInput] = []
    sources: dict[str, _Source] = {}  # container path -> host source, of primaries and secondaries
    container_job: dict[str, Any] = {}
    for key, value in filled.items():
        base = base_dir if job.get(key) is not None else tool_dir
        if isinstance(value, list):
            container_job[key] = [_stage(key, i, item, base, staged, sources) for i, item in enumerate(value)]
        else:
            container_job[key] = _stage(key, None, value, base, staged, sources)
    invocation = evaluate(process, container_job, RUNTIME)
    _stage_secondary(invocation, staged, sources)
    cli = Cli(_base_command(process), (), _outputs(process, invocation), invocation.stdout, invocation.stderr)
    resources = invocation.resources
    plan = BatchPlan(index, image, invocation.argv, _unchecked(invocation.job), staged, cli,
                     ram_mib=None if resources.ram_limit is None else max(resources.ram_limit, MIN_RAM_MIB),
                     cores=None if resources.cores_limit is None else _cores(resources.cores_limit),
                     exit_codes=ExitCodes(*(tuple(process.get(f) or ()) for f in ("successCodes", "temporaryFailCodes", "permanentFailCodes"))),
                     environment={"HOME": RUNTIME.outdir, "TMPDIR": RUNTIME.tmpdir, **invocation.environment}, stdin=_stdin(invocation.stdin, sources))
    return CwlPlan(plan, invocation)


def _unchecked(job: dict[str, Any]) -> dict[str, Any]:
    """The job's values for the runner, without the sizes it would check each staged File against:
    cwltool passes a job's size on to the tool's expressions but does not hold the file to it."""
    def strip(value: Any) -> Any:
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, Mapping) and value.get("class") == "File":
            return {k: v for k, v in value.items() if k != "size"}
        return value

    return {key: strip(value) for key, value in job.items()}


def _cores(cores: float) -> float:
    """The cores a container may use: what the tool asks, at most this machine's (Docker refuses more)."""
    from faice.host import cpu_count

    return min(float(cores), float(cpu_count()))


def _stdin(path: str | None, sources: dict[str, _Source]) -> str | None:
    """The container path the tool reads as its standard input: a staged input, or a file in a
    staged Directory (the runner finds its host file)."""
    if path is None:
        return None
    normal = posixpath.normpath(path)
    if normal not in sources and not any(normal.startswith(staged.rstrip("/") + "/") for staged in sources):
        raise CwlPlanError(f"stdin: {path} is not one of the job's Files or inside its Directories (faice feeds a staged input as standard input)")
    return normal


def _stage(key: str, index: int | None, value: Any, base: Path | str, staged: list[StagedInput], sources: dict[str, _Source]) -> Any:
    """A File or Directory value with its container path (staging it and the secondary files the
    job gives); other values unchanged."""
    if not (isinstance(value, Mapping) and value.get("class") in ("File", "Directory")):
        return value
    source = source_of(key, value, base)
    if key in (".", "..") or "/" in key:
        raise CwlPlanError(f'input "{key}": faice stages a File or Directory at /cc/inputs/ID/...: this id is not a directory name')
    basename = value.get("basename") or source.basename()
    if not isinstance(basename, str) or "/" in basename or basename in ("", ".", ".."):
        raise CwlPlanError(f'input "{key}": {basename!r} is not a file name (basename)')
    completed = complete_file_value(key, {"class": value["class"], "basename": basename}, index, None)
    path = completed["path"]
    staged.append(source.staged(key, index, value["class"], path, value.get("listing")))
    sources[path] = source
    placed = {**{k: v for k, v in value.items() if k not in _PLACE_FIELDS}, "class": value["class"], "path": path}
    if value["class"] == "File" and "size" not in placed and source.connector == LOCAL and os.path.isfile(source.where):
        placed["size"] = os.path.getsize(source.where)  # $(inputs.f.size), as cwltool gives it
    secondaries = []
    given = value.get("secondaryFiles") or []
    if not isinstance(given, list) or not all(isinstance(f, Mapping) and f.get("class") in ("File", "Directory") for f in given):
        raise CwlPlanError(f'input "{key}": secondaryFiles must be a list of Files and Directories')
    for secondary in given:
        secondary_source = source_of(key, secondary, base)
        name = secondary.get("basename") or secondary_source.basename()
        secondary_path = posixpath.join(posixpath.dirname(path), name)
        staged.append(secondary_source.staged(_secondary_key(key), _count(staged, key), secondary["class"], secondary_path, secondary.get("listing")))
        sources[secondary_path] = secondary_source
        secondaries.append({"class": secondary["class"], "path": secondary_path})
    if secondaries:
        placed["secondaryFiles"] = secondaries
    return placed


def _secondary_key(key: str) -> str:
    """The staged key of a secondary file: not the primary's, whose size and checksum it does not have."""
    return f"{key}.secondaryFiles"


def _count(staged: list[StagedInput], key: str) -> int:
    """The next index of ``key``'s secondary files, so that each has a label of its own."""
    return sum(1 for s in staged if s.key == _secondary_key(key))


def source_of(key: str, value: Mapping[str, Any], base: Path | str) -> _Source:
    """Where a job's File or Directory is: ``path`` (local), or ``location`` (a local path,
    ``file://`` URI or ``http(s)://`` URL); relative ones are relative to ``base``, a directory
    or the URL of a job file's folder."""
    kind = value.get("class")
    if isinstance(value.get("path"), str):
        reference, is_path = value["path"], True
    elif isinstance(value.get("location"), str):
        reference, is_path = value["location"], False
    elif "contents" in value:
        raise CwlPlanError(f'input "{key}": a {kind} literal (contents without a location) cannot be fetched by a connector; write it to a file')
    else:
        raise CwlPlanError(f'input "{key}": a {kind} without path or location')
    try:
        scheme = "" if is_path else urlsplit(reference).scheme.lower()
        if scheme in ("http", "https"):
            urlsplit(reference).port  # noqa: B018 - raises on a malformed host or port
    except ValueError as exc:
        raise CwlPlanError(f'input "{key}": {reference!r} is not a usable location ({exc})') from None
    if scheme in ("http", "https"):
        return _Source(HTTP, reference)
    if scheme == "file":
        return _Source(LOCAL, os.path.abspath(unquote(urlsplit(reference).path)))
    if scheme:
        raise CwlPlanError(f'input "{key}": faice stages local paths, file:// and http(s):// locations, not {reference}')
    if urlsplit(str(base)).scheme.lower() in ("http", "https"):
        return _Source(HTTP, urljoin(str(base).rstrip("/") + "/", reference))
    local = reference if is_path else unquote(reference)
    return _Source(LOCAL, os.path.abspath(os.path.join(base, os.path.expanduser(local))))


def _stage_secondary(invocation: Invocation, staged: list[StagedInput], sources: dict[str, _Source]) -> None:
    """Stage the secondary files the tool's patterns name that the job did not give, from beside
    their primary's source; an optional one only if it exists locally."""
    for key, files in invocation.secondary_files.items():
        for secondary in files:
            if secondary.path in sources:
                continue
            if posixpath.dirname(secondary.path) != posixpath.dirname(secondary.primary):
                raise CwlPlanError(f'input "{key}": the secondary file {secondary.path} is not beside {secondary.primary}')
            source = sources[secondary.primary].sibling(posixpath.basename(secondary.path))
            if not secondary.required and (source.connector != LOCAL or not os.path.exists(source.where)):
                continue
            staged.append(source.staged(_secondary_key(key), _count(staged, key), "File", secondary.path, None))
            sources[secondary.path] = source


def _base_command(process: Mapping[str, Any]) -> tuple[str, ...]:
    base = process.get("baseCommand")
    return () if base is None else (base,) if isinstance(base, str) else tuple(base)


def _outputs(process: Mapping[str, Any], invocation: Invocation) -> tuple[CliOutput, ...]:
    """Each output with its evaluated glob patterns, relative to the output directory as the runner globs."""
    outputs = []
    for item in parameters(process.get("outputs")):
        key = item["id"]
        kind = normalize_type(item.get("type"))
        members = kind if isinstance(kind, list) else [kind]
        rest = [m for m in members if m != "null"]
        one = rest[0] if len(rest) == 1 else None
        array = isinstance(one, Mapping) and one.get("type") == "array" and one.get("items") in ("File", "Directory")
        base = one["items"] if array else one
        if base not in ("File", "Directory", "stdout", "stderr"):
            raise CwlPlanError(f'output "{key}": faice exec collects File and Directory outputs (arrays of them too), stdout and stderr (cwltool runs the others)')
        globs: tuple[str, ...] = ()
        if base in ("File", "Directory"):
            globs = tuple(_glob(key, pattern) for pattern in invocation.globs.get(key) or [])
            if not globs:
                raise CwlPlanError(f'output "{key}": a {base} output without outputBinding.glob (faice exec finds outputs by glob; cwltool also reads cwl.output.json)')
        outputs.append(CliOutput(key, base, "null" in members, globs[0] if len(globs) == 1 else None, array, globs))
    return tuple(outputs)


def _glob(key: str, pattern: str) -> str:
    if pattern.rstrip("/") == OUTPUTS_DIR:
        return "."
    if pattern.startswith(OUTPUTS_DIR + "/"):
        pattern = pattern[len(OUTPUTS_DIR) + 1:]
    if pattern.startswith("/") or "$(" in pattern:
        raise CwlPlanError(f'output "{key}": the glob {pattern!r} must be relative to the output directory, without "$("')
    return pattern
