"""An experiment's run as a Workflow Run RO-Crate (Process Run Crate 0.5 on RO-Crate 1.1), built
from plain data: no store, no file system, so every rule of the profile is in one place.

One ``CreateAction`` per batch (its tool, container image, inputs, results, times, state, exit
code and attempts), an ``OrganizeAction`` for faice's run of them all (faice and its version, the
user, the host). RO-Crate has no terms for a batch's exit code and attempts: faice's own,
``exitCode`` and ``attempts``, are mapped in the crate's context and defined in its graph, as
RO-Crate 1.1 says ad-hoc terms are. docs/research/ro-crate/README.md has what the validator checks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple

RO_CRATE = "https://w3id.org/ro/crate/1.1"
PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
FAICE_TERMS = "https://w3id.org/ro/terms/faice#"
CONTEXT = [f"{RO_CRATE}/context", "https://w3id.org/ro/terms/workflow-run/context",
           {"exitCode": f"{FAICE_TERMS}exitCode", "attempts": f"{FAICE_TERMS}attempts"}]
TERMS = {"exitCode": "Exit code of the batch's last container process.",
         "attempts": "How many times faice started the batch (1: it was not retried)."}
STATUS = {"succeeded": "http://schema.org/CompletedActionStatus"}
FAILED_STATUS = "http://schema.org/FailedActionStatus"
CWL = "https://w3id.org/workflowhub/workflow-ro-crate#cwl"
DOCKER_IMAGE = "https://w3id.org/ro/terms/workflow-run#DockerImage"
RED_FILE = "experiment.red.json"
TOOL_FILE = "tool.cwl"


class DataEntity(NamedTuple):
    """A file or directory the crate describes: inside it (a relative ``id``) or by reference (an
    absolute URI), or where the source cannot be named, a ``CreativeWork`` saying why."""

    id: str
    kind: str  # File, Dataset or CreativeWork
    name: str
    description: str | None = None
    size: int | None = None
    sha256: str | None = None
    encoding: str | None = None
    alternate: str | None = None  # where it was on the host, for a copy
    parts: tuple[DataEntity, ...] = ()  # a directory's files


class Parameter(NamedTuple):
    """A batch input that is a value, not a file."""

    key: str
    value: Any


class BatchRun(NamedTuple):
    """One batch as it ran."""

    index: int
    id: str
    state: str
    attempts: int
    exit_code: int | None
    error: str | None
    command: str  # the argv, masked, as one shell line
    start: float | None
    end: float | None
    inputs: tuple[str, ...]  # ids of data entities
    parameters: tuple[Parameter, ...]
    results: tuple[str, ...]
    #: a cache hit: the batch whose result it reused (no container ran for it)
    cached_from: str | None = None


class ExperimentRun(NamedTuple):
    """Everything the crate tells about an experiment, gathered from the state file."""

    id: str
    username: str | None
    host: str | None
    faice_version: str | None
    container_engine: str | None
    image: str
    image_id: str | None
    tool_name: str
    cwl_version: str | None
    batches: tuple[BatchRun, ...]
    red: DataEntity  # the RED file as faice keeps it (credentials removed, secrets masked)
    tool: DataEntity  # its cli, the CWL CommandLineTool: every batch's instrument
    files: tuple[DataEntity, ...]  # the inputs, outputs and logs, once each
    exported_by: str  # the faice version that writes the crate
    published: float
    #: what ran: a RED experiment, or a CWL tool's jobs (faice exec tool.cwl)
    what: str = "RED experiment"


def iso(seconds: float) -> str:
    """ISO 8601 in UTC with whole seconds and a ``+00:00`` offset: what the validator recommends."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def ref(ids: list[str] | tuple[str, ...]) -> Any:
    """References to entities; one as a single value (the JSON-LD form RO-Crate prefers)."""
    refs = [{"@id": i} for i in ids]
    return refs[0] if len(refs) == 1 else refs


def image_parts(image: str) -> tuple[str, str, str]:
    """(registry, name, tag) of an image reference, as the engine reads it (docker.io when the
    first component names no host)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = "latest" if digest or ":" not in last else last.rsplit(":", 1)[1]
    if ":" in last:
        name = name[: -len(tag) - 1]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "docker.io", name, tag


def metadata(run: ExperimentRun) -> dict[str, Any]:
    """The crate's ``ro-crate-metadata.json``."""
    short = run.id[:8]
    agent = f"#user-{run.username or 'unknown'}"
    host = f"#host-{run.host or 'unknown'}"
    faice = f"#faice-{run.faice_version or 'unknown'}"
    actions = [f"#batch-{b.index}" for b in run.batches]
    failed = any(b.state != "succeeded" for b in run.batches)
    starts = [b.start for b in run.batches if b.start is not None]
    ends = [b.end for b in run.batches if b.end is not None]
    graph: list[dict[str, Any]] = [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "conformsTo": {"@id": RO_CRATE}, "about": {"@id": "./"}},
        {"@id": "./", "@type": "Dataset", "conformsTo": {"@id": PROFILE}, "name": f"faice experiment {run.id}",
         "description": f"Run record of {run.what} {run.id} ({len(run.batches)} batch{'es' if len(run.batches) != 1 else ''}), "
                        f"exported by faice {run.exported_by}. Secrets are masked (********) or left out.",
         "datePublished": iso(run.published), "license": {"@id": "#license"}, "author": {"@id": agent},
         "hasPart": ref([f.id for f in (run.red, run.tool, *run.files) if f.kind != "CreativeWork"]), "mentions": ref([f"#experiment-{short}", *actions])},
        {"@id": PROFILE, "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"},
        {"@id": "#license", "@type": "CreativeWork", "name": "No license specified",
         "description": "faice export states no license: the reuse terms of this record are its owner's to give."},
        {"@id": agent, "@type": "Person", "name": run.username or "unknown"},
        {"@id": faice, "@type": "SoftwareApplication", "name": "faice", "softwareVersion": run.faice_version or "unknown",
         "description": "Runs RED experiments of the Curious Containers project on one machine."
                        + ("" if run.faice_version else " Its version was not recorded (a run before faice recorded it).")},
        {"@id": host, "@type": "Place", "name": run.host or "unknown",
         "description": f"The machine faice ran the batches on, with the {run.container_engine or 'docker'} container engine."},
        {"@id": f"#experiment-{short}", "@type": "OrganizeAction", "name": f"faice run of experiment {run.id}",
         "instrument": {"@id": faice}, "agent": {"@id": agent}, "location": {"@id": host}, "object": {"@id": run.red.id},
         "result": ref(actions), "actionStatus": FAILED_STATUS if failed else STATUS["succeeded"],
         **({"startTime": iso(min(starts))} if starts else {}), **({"endTime": iso(max(ends))} if ends else {})},
        {"@id": CWL, "@type": "ComputerLanguage", "name": "Common Workflow Language", "alternateName": "CWL",
         "url": {"@id": "https://www.commonwl.org/"}, **({"version": run.cwl_version} if run.cwl_version else {})},
        _image(run),
    ]
    graph += [_action(run, b, agent, host) for b in run.batches]
    graph += _entities(run.red)
    tool = _entities(run.tool)[0]
    graph.append({**tool, "@type": ["File", "SoftwareSourceCode"], "programmingLanguage": {"@id": CWL}})
    for f in run.files:
        graph += _entities(f)
    graph += parameters(run)
    graph += [{"@id": f"{FAICE_TERMS}{term}", "@type": "rdf:Property", "rdfs:label": term, "rdfs:comment": comment} for term, comment in TERMS.items()]
    return {"@context": CONTEXT, "@graph": graph}


def _image(run: ExperimentRun) -> dict[str, Any]:
    registry, name, tag = image_parts(run.image)
    entity = {"@id": "#image", "@type": "ContainerImage", "additionalType": {"@id": DOCKER_IMAGE}, "name": name, "registry": registry, "tag": tag}
    if run.image_id and run.image_id.startswith("sha256:"):
        entity["sha256"] = run.image_id.removeprefix("sha256:")
        entity["description"] = f"{run.image}: the image ID the tag resolved to when the batches ran."
    else:
        entity["description"] = f"{run.image}: its image ID was not recorded (a run before faice recorded it)."
    return entity


def _action(run: ExperimentRun, batch: BatchRun, agent: str, host: str) -> dict[str, Any]:
    succeeded = batch.state == "succeeded"
    action: dict[str, Any] = {
        "@id": f"#batch-{batch.index}", "@type": "CreateAction", "name": f"Batch {batch.index} ({batch.id}) of experiment {run.id}: {batch.state}",
        "description": batch.command if not batch.cached_from else
        f"{batch.command} -- not run: a cache hit, the result of batch {batch.cached_from} (same image ID, argv, environment and input contents)",
        "instrument": {"@id": run.tool.id}, "containerImage": {"@id": "#image"},
        "agent": {"@id": agent}, "location": {"@id": host},
        "object": ref([*batch.inputs, *(f"#batch-{batch.index}-{p.key}" for p in batch.parameters), run.red.id]),
        "actionStatus": STATUS.get(batch.state, FAILED_STATUS), "attempts": batch.attempts,
    }
    if batch.results:
        action["result"] = ref(batch.results)
    if batch.start is not None:
        action["startTime"] = iso(batch.start)
    if batch.end is not None:
        action["endTime"] = iso(batch.end)
    if batch.exit_code is not None:
        action["exitCode"] = batch.exit_code
    if not succeeded:
        action["error"] = batch.error or batch.state
    return action


def parameters(run: ExperimentRun) -> list[dict[str, Any]]:
    """Every batch's value inputs, as ``PropertyValue`` entities."""
    return [{"@id": f"#batch-{b.index}-{p.key}", "@type": "PropertyValue", "name": p.key, "value": p.value}
            for b in run.batches for p in b.parameters]


def _entities(f: DataEntity) -> list[dict[str, Any]]:
    entity: dict[str, Any] = {"@id": f.id, "@type": f.kind, "name": f.name}
    for key, value in (("description", f.description), ("alternateName", f.alternate), ("encodingFormat", f.encoding), ("sha256", f.sha256)):
        if value is not None:
            entity[key] = value
    if f.size is not None:
        entity["contentSize"] = str(f.size)
    if f.parts:
        entity["hasPart"] = ref([p.id for p in f.parts])
    found = [entity]
    for part in f.parts:
        found += _entities(part)
    return found
