"""``faice export EXPERIMENT_ID --ro-crate DIR|FILE.zip``: gather a finished experiment's record
from the state file and its files from disk, and write them as a Workflow Run RO-Crate.

What the crate holds: the RED file as faice keeps it (credentials removed, secrets masked), its
``cli`` as ``tool.cwl``, each batch's captured stdout/stderr and declared outputs (copied; with
``outputs_by_reference`` named by ``file://`` URI instead), and its inputs by reference (copied
only with ``include_inputs``), each file with size and SHA-256. Nothing is ever overwritten: the
crate is written beside the target under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import shlex
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from faice import __version__
from faice.cache.content import file_sha256
from faice.cwl import is_cwl_run
from faice.errors import EnvironmentUnusable, InvalidInput
from faice.provenance.ro_crate import RED_FILE, TOOL_FILE, BatchRun, DataEntity, ExperimentRun, Parameter, metadata
from faice.red.model import job_sections
from faice.red.secrets import MASK
from faice.runner.outputs import each_recorded
from faice.state.cleanup import outputs_of
from faice.state.states import BatchState
from faice.state.store import BatchRow, Store, UnknownId, log_path

#: how a set of outputs is renamed when a later run takes its directory (faice.runner.batch.set_aside)
SET_ASIDE = re.compile(r"\.old-\d{8}-\d{6}(-\d+)?$")


class Exported(NamedTuple):
    """What ``export`` wrote."""

    path: Path
    files: int  # data entities with content in the crate (the metadata file not counted)
    size: int  # bytes of those


class Crate:
    """The crate being gathered: its data entities by id (once each) and what to copy into it."""

    def __init__(self) -> None:
        self.entities: dict[str, DataEntity] = {}
        self.copies: dict[str, Path] = {}  # path in the crate: the regular file it is copied from
        self.generated: dict[str, bytes] = {}
        self.included: dict[Path, str] = {}  # an input copied in: its id (several batches may read one file)

    def add(self, entity: DataEntity) -> str:
        self.entities.setdefault(entity.id, entity)
        return entity.id

    def write_text(self, path: str, name: str, content: bytes, encoding: str) -> DataEntity:
        self.generated[path] = content
        return DataEntity(path, "File", name, size=len(content), sha256=hashlib.sha256(content).hexdigest(), encoding=encoding)

    def copy(self, path: str, source: Path, name: str, description: str | None = None) -> DataEntity:
        """A file or directory copied into the crate at ``path`` (a directory: its regular files)."""
        if source.is_dir():
            parts = []
            for relative, file in regular_files(source):
                parts.append(self.copy(f"{path}/{relative}", file, relative))
            return DataEntity(f"{path}/", "Dataset", name, description, alternate=source.as_uri(), parts=tuple(parts))
        self.copies[path] = source
        return DataEntity(path, "File", name, description, source.stat().st_size, file_sha256(source), encoding_of(source.name), source.as_uri())


def regular_files(root: Path) -> list[tuple[str, Path]]:
    """A directory's regular files (relative name, path) in a fixed order; symbolic links are
    never followed, so nothing outside it is read."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                found.append((path.relative_to(root).as_posix(), path))
    return found


def encoding_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def referenced(source: Path, name: str, description: str) -> DataEntity:
    """A file or directory on this machine named by its ``file://`` URI, with size and SHA-256."""
    if source.is_dir():
        parts = tuple(referenced(file, relative, f"in {name}") for relative, file in regular_files(source))
        return DataEntity(source.as_uri() + "/", "Dataset", name, description, parts=parts)
    return DataEntity(source.as_uri(), "File", name, description, source.stat().st_size, file_sha256(source), encoding_of(source.name))


def export(store: Store, given_id: str, target: Path, *, include_inputs: bool = False, outputs_by_reference: bool = False) -> Exported:
    """Write the experiment ``given_id`` (a unique start will do) as an RO-Crate at ``target``: a
    directory, or a zip file when its name ends in ``.zip`` (any case)."""
    try:  # an experiment's first 8 characters are its batches' too: an experiment is what is meant
        kind, experiment_id = store.resolve_id(given_id, kinds=("experiment",))
    except UnknownId:
        kind, experiment_id = store.resolve_id(given_id)
    if kind != "experiment":
        raise InvalidInput(f"{experiment_id} is a batch; faice export exports whole experiments (faice show {experiment_id} names its experiment)")
    record = store.experiment(experiment_id)
    assert record is not None
    if store.has_open_batches(experiment_id):
        raise InvalidInput(f"experiment {experiment_id} has batches that have not finished: export it once they have (or faice cancel {experiment_id})")
    check_target(target)
    crate = Crate()
    red = record["red"]
    cwl_run = is_cwl_run(red)
    cli = (red["tool"] if cwl_run else red.get("cli")) or {}
    described = "the CWL tool and its jobs as faice exec was given them" if cwl_run else "RED file (credentials removed, secrets masked)"
    red_file = crate.write_text(RED_FILE, described, json.dumps(red, indent=2).encode(), "application/json")
    tool = crate.write_text(TOOL_FILE, str(cli.get("label") or _base_command(cli)), json.dumps(cli, indent=2).encode(), "application/json")
    tool = tool._replace(description="The CWL CommandLineTool every batch ran, in the container image." if cwl_run else
                         "The RED file's cli: the CWL CommandLineTool every batch ran, in the container image.")
    batches = store.batches(experiment_id)
    outputs = _OutputSet(store, record)
    sections = [((), job, {}) for job in red["jobs"]] if cwl_run else job_sections(red)
    runs = []
    for batch in batches:
        values = sections[batch.index][1] if batch.index < len(sections) else {}
        inputs = tuple(_input(crate, batch, source, store, include_inputs) for source in batch.input_sources)
        results = [*outputs.entities(crate, batch, by_reference=outputs_by_reference), *_logs(crate, store, batch)]
        history = store.history(batch.id)
        started = next((h["time"] for h in history if h["state"] == BatchState.PROCESSING), None)
        runs.append(BatchRun(batch.index, batch.id, batch.state, batch.attempts, batch.exit_code, batch.error, shlex.join(batch.argv), started,
                             history[-1]["time"] if history else batch.updated_at, inputs, _parameters(values), tuple(results), batch.cached_from))
    run = ExperimentRun(experiment_id, record.get("username"), record.get("host"), record.get("faice_version"), record.get("container_engine"),
                        record["image"], record.get("image_id"), tool.name, cli.get("cwlVersion"), tuple(runs), red_file, tool,
                        tuple(crate.entities.values()), __version__, time.time(), "experiment (a CWL tool's jobs)" if cwl_run else "RED experiment")
    crate.generated["ro-crate-metadata.json"] = json.dumps(metadata(run), indent=2).encode()
    try:
        write(crate, target)
    except OSError as exc:
        raise InvalidInput(f"cannot write the crate {target}: {exc.strerror or exc}") from None
    sizes = [len(b) for p, b in crate.generated.items() if p != "ro-crate-metadata.json"] + [p.stat().st_size for p in crate.copies.values()]
    return Exported(target, len(sizes), sum(sizes))


def check_target(target: Path) -> None:
    """A crate is never written over anything: a zip file must not exist, a directory must be
    missing or empty; the directory it goes in must exist."""
    if target.suffix.lower() == ".zip":
        if target.exists():
            raise InvalidInput(f"{target} exists already: faice export never overwrites a file")
    elif target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} exists and is {'not empty' if target.is_dir() else 'not a directory'}: faice export writes a new crate only")
    if not target.parent.is_dir():
        raise InvalidInput(f"{target.parent} is not a directory: make it first")


def write(crate: Crate, target: Path) -> None:
    """The crate at ``target``, complete or not at all."""
    if target.suffix.lower() == ".zip":
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(handle)
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path, content in crate.generated.items():
                    archive.writestr(path, content)
                for path, source in crate.copies.items():
                    archive.write(source, path)
            os.chmod(partial, 0o644 & ~_umask())
            os.replace(partial, target)
        except BaseException:
            os.unlink(partial)
            raise
        return
    partial_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for path, content in crate.generated.items():
            (partial_dir / path).write_bytes(content)
        for path, source in crate.copies.items():
            (partial_dir / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, partial_dir / path)
        os.chmod(partial_dir, 0o777 & ~_umask())
        if target.exists():
            target.rmdir()  # empty: check_target said so
        partial_dir.rename(target)
    except BaseException:
        shutil.rmtree(partial_dir, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _base_command(cli: dict[str, Any]) -> str:
    command = cli.get("baseCommand")
    return " ".join(command) if isinstance(command, list) else str(command or "tool")


def _parameters(values: Any) -> tuple[Parameter, ...]:
    """A batch's inputs that are values, not files; a masked one is left out."""
    if not isinstance(values, dict):
        return ()
    found = []
    for key, value in values.items():
        is_file = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value))
        if not is_file and MASK not in json.dumps(value):
            found.append(Parameter(str(key), value))
    return tuple(found)


def _input(crate: Crate, batch: BatchRow, source: dict[str, Any], store: Store, include: bool) -> str:
    """The data entity of one of a batch's inputs (added to the crate once); its id."""
    key = source["key"] if source.get("index") is None else f"{source['key']}[{source['index']}]"
    uri = source.get("uri")
    recorded = _cached_sha256(store, batch, source)
    if not uri or MASK in uri:
        why = "its access data names no location" if not uri else "its location holds a secret"
        return crate.add(DataEntity(f"#batch-{batch.index}-input-{key}", "CreativeWork", f"input {key} of batch {batch.index}",
                                    f"Fetched by {source.get('connector')}; not named here: {why}."
                                    + (f" sha256 of its content when it ran: {recorded}." if recorded else "")))
    if uri.startswith("file:"):
        path = Path(unquote(urlsplit(uri).path))
        if path.exists():
            if include and path in crate.included:
                return crate.included[path]
            if include:
                entity = crate.copy(f"inputs/batch_{batch.index}/{key}/{path.name}", path, path.name, f"input {key}, copied from {uri}")
            else:
                entity = referenced(path, path.name, f"input {key}, referenced where it is (faice export --include-inputs copies it)")
            if recorded and entity.sha256 and recorded != entity.sha256:
                entity = entity._replace(description=f"{entity.description}; CHANGED since the run, whose content had sha256 {recorded}")
            if include:
                crate.included[path] = entity.id
            return crate.add(entity)
        return crate.add(DataEntity(uri + ("/" if source.get("class") == "Directory" else ""), "File" if source.get("class") != "Directory" else "Dataset",
                                    path.name, f"input {key}: no longer at this path, so its size and sha256 are unknown", sha256=recorded))
    kind = "Dataset" if source.get("class") == "Directory" else "File"
    note = "sha256 as the result cache recorded it when it ran" if recorded else "remote: not fetched again, so its size and sha256 are not given"
    return crate.add(DataEntity(uri, kind, uri.rstrip("/").rsplit("/", 1)[-1] or uri, f"input {key}, fetched by {source.get('connector')}; {note}",
                                sha256=recorded if kind == "File" else None))


def _cached_sha256(store: Store, batch: BatchRow, source: dict[str, Any]) -> str | None:
    """The input's content hash when the batch ran with the result cache, which recorded it."""
    parts = store.cache_parts_of(batch.id) if batch.cache_key else None
    for entry in (parts or {}).get("inputs") or []:
        if entry.get("key") == source["key"] and entry.get("index") == source.get("index") and entry.get("kind") == "File":
            return entry.get("sha256")
    return None


def _logs(crate: Crate, store: Store, batch: BatchRow) -> list[str]:
    found = []
    for stream in ("stdout", "stderr"):
        path = log_path(store.path, batch.id, stream)
        if path.is_file():
            found.append(crate.add(crate.copy(f"logs/batch_{batch.index}.{stream}", path, f"{stream} of batch {batch.index}",
                                              "What the tool wrote, as faice captured it (its last attempt).")._replace(encoding="text/plain")))
    return found


class _OutputSet:
    """Where an experiment's recorded outputs are now: its output set may have been renamed when a
    later run took its directory (``NAME.old-...``), which the recorded paths do not know."""

    def __init__(self, store: Store, record: dict[str, Any]) -> None:
        self.experiment_id = record["id"]
        self.recorded = record.get("outdir")
        self.now = outputs_of(store, record)
        self.then = Path(SET_ASIDE.sub("", str(self.now))) if self.now is not None else None

    def where(self, recorded: str) -> Path:
        if self.now is None or self.then is None:
            raise EnvironmentUnusable(f"the outputs of experiment {self.experiment_id} are gone from {self.recorded or 'where they were'}"
                                      " (moved or removed): nothing to export them from")
        path = Path(recorded)
        relative = path.relative_to(self.then) if path.is_relative_to(self.then) else None
        current = self.now / relative if relative is not None else path
        if not current.exists() and not current.is_symlink():
            raise EnvironmentUnusable(f"output {recorded} of experiment {self.experiment_id} is gone (moved or removed): nothing to export it from")
        return current

    def entities(self, crate: Crate, batch: BatchRow, *, by_reference: bool) -> list[str]:
        found = []
        for key, _index, value in each_recorded(batch.outputs):
            if value.get("path"):
                current = self.where(value["path"])
                name = f"output {key} of batch {batch.index}"
                if current.is_symlink():
                    entity = DataEntity(f"#batch-{batch.index}-output-{key}", "CreativeWork", name, "A symbolic link: not followed, not exported.")
                elif by_reference:
                    entity = referenced(current, current.name, name)
                else:
                    assert self.now is not None
                    inside = current.relative_to(self.now).as_posix() if current.is_relative_to(self.now) else f"batch_{batch.index}/{current.name}"
                    entity = crate.copy(f"outputs/{inside}", current, current.name, name)
                changed = _changed(value, current, entity)
                if changed:
                    raise EnvironmentUnusable(f"output {current} of experiment {self.experiment_id} changed since the run ({changed}): "
                                              "its record would not describe it")
                found.append(crate.add(entity))
        return found


def _changed(value: dict[str, Any], current: Path, entity: DataEntity) -> str | None:
    """How an output differs from its record (its kind, size or a File's sha1), or None."""
    if current.is_symlink():
        return None
    if (value.get("class") == "Directory") != current.is_dir():
        return f"a {value.get('class')} then, a {'directory' if current.is_dir() else 'file'} now"
    if isinstance(value.get("size"), int) and entity.size is not None and value["size"] != entity.size:
        return f"{value['size']} bytes then, {entity.size} now"
    checksum = value.get("checksum")
    if isinstance(checksum, str) and checksum.startswith("sha1$") and current.is_file():
        from faice.cache.content import file_digest

        if f"sha1${file_digest(current, 'sha1')}" != checksum:
            return f"its content: {checksum} then"
    return None
