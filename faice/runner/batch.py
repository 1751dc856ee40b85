"""One attempt of one batch: stage in → run the container → find outputs → stage out.

Inputs are delivered by connectors on the host into a private work directory (or, for local
files, mounted where they are) and mounted read-only at their container paths. The batch's
output directory on the host is mounted as ``/cc/outputs``, so everything the tool writes
lands there directly, owned by the user who ran faice.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faice.connectors import registry
from faice.connectors.base import ConnectorError, Context
from faice.red.model import Cli, Experiment
from faice.red.model import Connector as ConnectorSpec
from faice.red.paths import OUTPUTS_DIR
from faice.red.secrets import Masker, strip_protection
from faice.runner.docker_engine import (
    DEFAULT_PIDS_LIMIT,
    LABEL_BATCH,
    LABEL_EXPERIMENT,
    LABEL_REMOVABLE,
    LABEL_RUN,
    ContainerSpec,
    Mount,
    invoking_user,
)
from faice.runner.engine import Engine
from faice.runner.mounts import Mounted
from faice.runner.outputs import find_outputs, sha1_of, stream_file_name
from faice.runner.plan import BatchPlan

if TYPE_CHECKING:
    from faice.runner.caching import BatchCache, Keyed
from faice.state.cleanup import MARKER
from faice.state.states import BatchState

STDERR_TAIL_LINES = 5


@dataclass
class RunOptions:
    """How batches run here, the same for every batch of an experiment."""

    outdir: Path
    jobs: int
    #: the container engine the batches run on (docker, podman)
    engine: str = "docker"
    retries: int = 0
    timeout: float | None = None
    network: str | None = None
    pull: bool = True
    leave_container: bool = False
    connector_validation: bool = True
    preserve_environment: list[str] = field(default_factory=list)
    gpu_ids: list[str] | None = None
    connector_timeout: float = 300.0
    #: connectors reach only the public internet (faice serve, for non-admin users)
    public_network_only: bool = False
    #: honour ``mount: true``; False (``--no-mount``) copies those directories instead
    mount: bool = True
    #: processes and threads a batch's container may have: a fork bomb stops there (0: no limit)
    pids_limit: int = DEFAULT_PIDS_LIMIT
    #: look each batch up in the result cache, and store what succeeds (``--cache``)
    cache: bool = False


@dataclass
class AttemptResult:
    """How one attempt at a batch ended."""

    state: BatchState  # succeeded, failed or cancelled
    exit_code: int | None = None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    #: False when trying again cannot help (the container could not even start)
    retryable: bool = True
    #: the batch's cache key and its parts (a run with the cache), the batch whose result a hit
    #: reused, and what the history should add (why a result was not stored)
    cache_key: str | None = None
    cache_parts: dict[str, Any] | None = None
    cached_from: str | None = None
    note: str | None = None
    #: what the container used (faice.runner.usage): the most memory at once (bytes) and CPU time (s)
    peak_memory: int | None = None
    cpu_seconds: float | None = None

    def usage_fields(self) -> dict[str, Any]:
        """The store's columns for what the container used (None: not measured)."""
        return {"peak_memory": self.peak_memory, "cpu_seconds": self.cpu_seconds}

    def cache_fields(self) -> dict[str, Any]:
        """The store's columns for the cache, when the run used it."""
        return {"cache_key": self.cache_key, "cache_parts": self.cache_parts, "cached_from": self.cached_from} if self.cache_key else {}


Phase = Callable[[str], None]


class Cancelled(Exception):
    pass


@dataclass
class CacheUse:
    """What the result cache did in one attempt: the batch's key, whether its result is fit to
    store, and what the history should say about it."""

    keyed: Keyed | None = None
    store: bool = False
    notes: list[str] = field(default_factory=list)


class WorkDir:
    """A batch's private directory for the inputs connectors fetch, made when the first one needs
    it: batches without inputs, or with inputs already on this machine, make none (and a run
    that makes none does not load tempfile and random, a millisecond at start-up)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            import tempfile

            self._path = Path(tempfile.mkdtemp(prefix=self.prefix))
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


class BatchRunner:
    """Runs attempts of batches of one experiment; shared by the scheduler's worker threads."""

    def __init__(self, engine: Engine, experiment: Experiment, options: RunOptions, masker: Masker, base_dir: Path, run_id: str, experiment_id: str, logs: Path,
                 cancelled: threading.Event, cancelled_elsewhere: Callable[[str], bool]) -> None:
        self.engine = engine
        #: the result cache (``--cache``, set by faice.runner.lifecycle.batch_runner), else None
        self.cache: BatchCache | None = None
        self.cancelled = cancelled
        self.cancelled_elsewhere = cancelled_elsewhere
        self.experiment = experiment
        self.options = options
        self.mask = masker
        self.context = Context(base_dir=base_dir, timeout=options.connector_timeout, public_network_only=options.public_network_only,
                               cancelled=cancelled, owner=invoking_user())
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.logs = logs
        self.containers: dict[str, str] = {}
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        """The variables passed into the containers (``--preserve-environment``)."""
        return {k: os.environ[k] for k in self.options.preserve_environment if k in os.environ}

    def output_dir(self, index: int) -> Path:
        return output_dir(self.options.outdir, len(self.experiment.batches), index)

    def run(self, plan: BatchPlan, batch_id: str, phase: Phase, on_container: Callable[[str], None]) -> AttemptResult:
        work = WorkDir(f"faice-{batch_id}-")
        mounted = Mounted(self.experiment_id, batch_id)
        use = CacheUse()
        try:
            result = self._run(plan, batch_id, work, mounted, phase, on_container, use)
        except Cancelled:
            result = AttemptResult(BatchState.CANCELLED, error="cancelled")
        except ConnectorError as exc:
            result = AttemptResult(BatchState.FAILED, error=self.mask(str(exc)))
        finally:
            problems = mounted.release()  # before the work directory goes: never delete through a mount
            work.remove()
        if problems and result.state == BatchState.SUCCEEDED:
            result = AttemptResult(BatchState.FAILED, 0, self.mask("; ".join(problems)), result.outputs)
        elif result.state == BatchState.SUCCEEDED and use.store and use.keyed is not None:
            use.notes.append(self._to_cache(use.keyed, batch_id, self.output_dir(plan.index)))
        if use.keyed is not None and result.cache_key is None:  # a failed batch's key too: faice why compares it
            result = dataclasses.replace(result, cache_key=use.keyed.key, cache_parts=use.keyed.parts)
        notes = "; ".join(n for n in [result.note, *use.notes] if n)
        return dataclasses.replace(result, note=self.mask(notes)) if notes else result

    def _docker_lost(self, exc: OSError) -> str:
        if exc.errno == errno.ENOSPC:
            return "no space left on this machine's disk for the batch's logs (the state file's directory)"
        title = self.engine.title
        return (f"{title} stopped answering at {self.engine.host} during the batch ({exc.strerror or exc}); "
                f"its container is removed once {title} is back (by the next faice exec or faice serve)")

    def _check_cancel(self, batch_id: str) -> None:
        """Stop here when the run was interrupted or this batch was cancelled from elsewhere."""
        if self.cancelled.is_set() or self.cancelled_elsewhere(batch_id):
            raise Cancelled()

    def _run(self, plan: BatchPlan, batch_id: str, work: WorkDir, mounted: Mounted, phase: Phase, on_container: Callable[[str], None],
             use: CacheUse) -> AttemptResult:
        phase("stage-in")
        cache = self.cache if self.cache is not None and self.cache.cacheable(plan) else None
        if cache is not None:
            use.keyed = self._cached(use, cache.before_staging, plan)
            if use.keyed is not None and (hit := self._from_cache(plan, batch_id, use, phase)) is not None:
                return hit
        mounts = self._stage_in(plan, batch_id, work, mounted)
        self._check_cancel(batch_id)
        if cache is not None and use.keyed is None:
            use.keyed = self._cached(use, cache.after_staging, plan, [m.source for m in mounts])
            if use.keyed is not None and (hit := self._from_cache(plan, batch_id, use, phase)) is not None:
                return hit
        outdir = self.output_dir(plan.index)
        prepare_output_dir(outdir, self.experiment_id)
        mounts.append(Mount(outdir, OUTPUTS_DIR, read_only=False))
        spec = ContainerSpec(
            image=self.cache.image_id if self.cache is not None else plan.image,  # the image its key names, even if the tag moved meanwhile
            argv=plan.argv,
            workdir=OUTPUTS_DIR,
            mounts=mounts,
            labels={LABEL_EXPERIMENT: self.experiment_id, LABEL_BATCH: batch_id, LABEL_RUN: self.run_id, **({} if self.options.leave_container else {LABEL_REMOVABLE: "1"})},
            user=invoking_user(),
            ram_mib=plan.ram_mib,
            cpus=plan.cores,
            environment={**self.environment(), **plan.environment},
            gpu_ids=self.options.gpu_ids,
            gpu_count=None if self.options.gpu_ids else gpu_count(self.experiment.container.gpus),
            network=self.options.network,
            pids_limit=self.options.pids_limit,
            stdin=stdin_source(plan.stdin, mounts),
        )
        phase("run")
        from faice.runner.dockerapi import DockerError

        try:
            container = self.engine.create(spec)
        except DockerError as exc:
            return AttemptResult(BatchState.FAILED, error=self.mask(f"{self.engine.title} cannot create the container: {exc.message}"), retryable=False)
        except OSError as exc:
            return AttemptResult(BatchState.FAILED, error=self._docker_lost(exc), retryable=False)
        with self._lock:
            self.containers[batch_id] = container
        stdout, stderr = self.logs / f"{batch_id}.stdout", self.logs / f"{batch_id}.stderr"
        try:
            on_container(container)  # recorded in the store: when that fails (a full disk), the container still goes
            self._check_cancel(batch_id)
            outcome = self.engine.start_and_wait(container, self.options.timeout, stdout, stderr)
        except DockerError as exc:
            return AttemptResult(BatchState.FAILED, error=self.mask(f"{self.engine.title} cannot start the container: {exc.message}"), retryable=False)
        except OSError as exc:
            return AttemptResult(BatchState.FAILED, error=self._docker_lost(exc), retryable=False)
        finally:
            with self._lock:
                self.containers.pop(batch_id, None)
            if not self.options.leave_container:
                self.engine.remove(container)  # when Docker does not answer, the next run's sweep removes it
        self._check_cancel(batch_id)
        self._write_streams(plan.cli, outdir, stdout, stderr)
        used = {"peak_memory": outcome.peak_memory, "cpu_seconds": outcome.cpu_seconds}
        if outcome.timed_out:
            return AttemptResult(BatchState.FAILED, outcome.exit_code, f"timed out after {self.options.timeout:g} s (container killed)", **used)
        code = outcome.exit_code
        if outcome.oom_killed or plan.exit_codes.judge(code) != "success":
            reason = f"killed: out of memory (ram limit {plan.ram_mib} MiB)" if outcome.oom_killed else f"exit code {code}"
            return AttemptResult(BatchState.FAILED, code, self.mask(f"{reason}{_tail(stderr)}"), retryable=outcome.oom_killed or plan.exit_codes.retryable(code), **used)
        phase("stage-out")
        found, problems = find_outputs(plan.cli, outdir, plan.values)
        self._check_cancel(batch_id)
        if problems:
            return AttemptResult(BatchState.FAILED, code, "; ".join(problems), {k: v.to_json(outdir) for k, v in found.items()}, **used)
        sent_errors = self._stage_out(plan, found)
        outputs = {k: v.to_json(outdir) for k, v in found.items()}
        if sent_errors:
            return AttemptResult(BatchState.FAILED, code, self.mask("; ".join(sent_errors)), outputs, **used)
        if use.keyed is not None and cache is not None:
            changed = self._cached(use, cache.changed, use.keyed)
            use.store = changed is None
            if changed:
                use.notes.append(f"not cached: input {changed} changed while the batch ran")
        return AttemptResult(BatchState.SUCCEEDED, code, None, outputs, **used)

    def _cached(self, use: CacheUse, step: Callable[..., Any], *args: Any) -> Any:
        """A step of the cache; None when the cache cannot be used (its directory or table): the batch runs uncached."""
        try:
            return step(*args)
        except (OSError, sqlite3.Error) as exc:
            use.notes.append(f"cache not used: {_reason(exc)}")
            use.store = False
            return None

    def _from_cache(self, plan: BatchPlan, batch_id: str, use: CacheUse, phase: Phase) -> AttemptResult | None:
        """The batch's result served from the cache, its outputs sent as after a run; None on a miss
        (no entry, or one that failed its check and was dropped)."""
        assert self.cache is not None and use.keyed is not None
        keyed = use.keyed
        lookup = self._cached(use, self.cache.results.verified, keyed.key)
        if lookup is not None and lookup.dropped:
            use.notes.append(lookup.dropped)
        entry = lookup.entry if lookup is not None else None
        if entry is None:
            return None
        self._check_cancel(batch_id)
        outdir = self.output_dir(plan.index)
        prepare_output_dir(outdir, self.experiment_id)
        user = invoking_user()
        owner = None if os.getuid() != 0 or user == "0:0" else (int(user.split(":")[0]), int(user.split(":")[1]))
        streams = {"stdout": self.logs / f"{batch_id}.stdout", "stderr": self.logs / f"{batch_id}.stderr"}
        restored = self._cached(use, self.cache.results.restore, entry, outdir, streams, owner)
        if restored is None:  # a file pruned meanwhile, a full disk: the batch runs (its half-filled directory is set aside)
            return None
        phase("cached")
        found, problems = find_outputs(plan.cli, outdir, plan.values)
        if problems:  # the entry does not hold this tool's outputs: dropped, never served; the batch runs
            self._cached(use, self.cache.results.drop, keyed.key)
            use.notes.append(f"the cached result of batch {restored.batch_id} lacked outputs ({'; '.join(problems)}) and was dropped")
            return None
        outputs = {k: v.to_json(outdir) for k, v in found.items()}
        fields: dict[str, Any] = {"cache_key": keyed.key, "cache_parts": keyed.parts, "cached_from": restored.batch_id}
        sends = sum(1 for key, out in self.experiment.batches[plan.index].outputs.items() if isinstance(out, dict) and found.get(key) and found[key].path)
        if sends:
            phase("stage-out")
        sent_errors = self._stage_out(plan, found)
        if sent_errors:
            return AttemptResult(BatchState.FAILED, 0, self.mask("; ".join(sent_errors)), outputs, **fields)
        sent = f"; {sends} output{'s' if sends != 1 else ''} sent again" if sends else ""
        return AttemptResult(BatchState.SUCCEEDED, 0, None, outputs, **fields, note=f"cache hit: the result of batch {restored.batch_id}, no container{sent}")

    def _to_cache(self, keyed: Keyed, batch_id: str, outdir: Path) -> str | None:
        """Store a succeeded batch's result; why it was not, when it could not be (the batch still succeeded)."""
        from faice.cache.results import NotCacheable

        assert self.cache is not None
        try:
            self.cache.results.save(keyed.key, keyed.parts, outdir, {"stdout": self.logs / f"{batch_id}.stdout", "stderr": self.logs / f"{batch_id}.stderr"}, batch_id)
        except NotCacheable as exc:
            return f"not cached: {exc}"
        except (OSError, sqlite3.Error) as exc:
            return f"not cached: {_reason(exc)}"
        return None

    def _stage_in(self, plan: BatchPlan, batch_id: str, work: WorkDir, mounted: Mounted) -> list[Mount]:
        mounts: list[Mount] = []
        for staged in plan.staged:
            self._check_cancel(batch_id)
            connector = registry.connector(staged.connector.command)
            access = strip_protection(staged.connector.access)
            label = staged.key if staged.index is None else f"{staged.key}[{staged.index}]"
            mount = staged.connector.mount and self.options.mount
            writable = mount and access.get("writable") is True
            try:
                source = connector.local_source(access, self.context)
                if source is None and mount:
                    source = mounted.mountpoint(label)
                    mounted.add(connector, source)  # before: a mount that half failed is still undone
                    connector.mount_dir(access, source, self.context)
                elif source is None:
                    source = work.path / "inputs" / label.replace("[", "_").replace("]", "") / os.path.basename(staged.container_path)
                    source.parent.mkdir(parents=True, exist_ok=True)
                    if staged.kind == "Directory":
                        source.mkdir()
                        connector.receive_dir(access, source, staged.listing, self.context)
                    else:
                        connector.receive_file(access, source, self.context)
                _check_received(source, staged.kind, plan.values.get(staged.key), staged.index)
            except ConnectorError as exc:
                self._check_cancel(batch_id)
                raise ConnectorError(f'input "{label}" ({staged.connector.command}): {exc}') from None
            except OSError as exc:
                raise ConnectorError(f'input "{label}" ({staged.connector.command}): {exc.strerror or exc}') from None
            mounts.append(Mount(source, staged.container_path, read_only=not writable))
        return mounts

    def _stage_out(self, plan: BatchPlan, found: dict[str, Any]) -> list[str]:
        errors = []
        batch = self.experiment.batches[plan.index]
        for key, job_output in batch.outputs.items():
            output = found.get(key)
            if output is None or output.path is None or not isinstance(job_output, dict):
                continue
            spec = ConnectorSpec.from_data(job_output["connector"])
            try:
                connector = registry.connector(spec.command)
                access = strip_protection(spec.access)
                if output.cls == "Directory":
                    connector.send_dir(access, output.path, job_output.get("listing"), self.context)
                else:
                    connector.send_file(access, output.path, self.context)
            except ConnectorError as exc:
                errors.append(f'output "{key}" ({spec.command}): {exc}')
            except OSError as exc:
                errors.append(f'output "{key}" ({spec.command}): {exc.strerror or exc}')
        return errors

    def _write_streams(self, cli: Cli, outdir: Path, stdout: Path, stderr: Path) -> None:
        """Copy the captured streams to their named files, never through a link the tool planted."""
        for stream, captured in (("stdout", stdout), ("stderr", stderr)):
            name = stream_file_name(cli, stream)
            if not name:
                continue
            target = outdir / name
            parent = target.parent
            if not os.path.realpath(parent).startswith(os.path.realpath(outdir)):
                raise ConnectorError(f"cli.{stream}: {name} leads out of the output directory (through a link the tool made)")
            parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                if target.is_dir() and not target.is_symlink():
                    raise ConnectorError(f"cli.{stream}: the tool made {name} a directory")
                target.unlink()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out, open(captured, "rb") as source:
                shutil.copyfileobj(source, out)
            give_to_invoking_user(target)  # faice writes it, maybe as root: the tool's other outputs are the user's

    def kill_all(self) -> None:
        with self._lock:
            containers = list(self.containers.values())
        for container in containers:
            self.engine.kill(container)


def stdin_source(container_path: str | None, mounts: list[Mount]) -> Path | None:
    """The host file behind the container path a tool reads as its standard input: a staged
    input's, or a file inside a staged Directory, never one that ``..`` or a link inside it leads
    out to (faice opens it, maybe as root)."""
    if container_path is None:
        return None
    import posixpath

    wanted = posixpath.normpath(container_path)
    for mount in mounts:
        target = mount.target.rstrip("/")
        if wanted == target:
            return Path(mount.source)
        if wanted.startswith(target + "/"):
            root = os.path.realpath(mount.source)
            found = os.path.realpath(os.path.join(root, wanted[len(target) + 1:]))
            if not found.startswith(root + os.sep):
                raise ConnectorError(f"stdin: {container_path} leads out of the staged input at {mount.target}")
            return Path(found)
    raise ConnectorError(f"stdin: {container_path} is not a staged input")


def gpu_count(gpus: dict[str, Any] | None) -> int | None:
    """``settings.gpus``: ``{count: N}`` or one entry per device (``devices: [{vramMin}]``)."""
    if not gpus:
        return None
    return gpus.get("count") or len(gpus.get("devices") or []) or None




def output_dir(outdir: Path, batches: int, index: int) -> Path:
    """``OUTDIR`` for a single batch, ``OUTDIR/batch_N`` when there are several."""
    return outdir if batches == 1 else outdir / f"batch_{index}"


def check_output_dir(path: Path) -> None:
    """Refuse, before anything runs, an output directory faice must not take over.

    faice only ever moves aside a non-empty directory that it made itself (it leaves a marker
    file in it), so ``--outdir .`` or ``--outdir ~`` can never move your files away.
    """
    from faice.errors import InvalidInput

    if path.exists() and not path.is_dir():
        raise InvalidInput(f"output directory {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not _made_by_faice(path):
        raise InvalidInput(f"output directory {path} is not empty and was not made by faice; choose another --outdir (or empty it)")
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if not probe.is_dir():
        raise InvalidInput(f"cannot make the output directory {path}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write the output directory {path} (no permission on {probe})")


def check_can_make(path: Path) -> None:
    """Make and remove ``path`` (and the parents it lacks): what access() cannot tell, such as
    /proc or a read-only file system, where even root cannot make a directory."""
    from faice.errors import InvalidInput

    if path.exists():
        return
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise InvalidInput(f"cannot make the output directory {path}: {exc.strerror or exc}") from None
    for directory in made:  # made again when the batch starts
        directory.rmdir()


def _made_by_faice(path: Path) -> bool:
    """faice's marker is in it; or, as earlier versions left several batches, in each of its directories."""
    if (path / MARKER).exists():
        return True
    entries = list(path.iterdir())
    return bool(entries) and all(e.is_dir() and not e.is_symlink() and (e / MARKER).exists() for e in entries)


def set_aside(path: Path) -> Path | None:
    """Rename a directory that holds anything but faice's marker to ``NAME.old-YYYYmmdd-HHMMSS``; the new name."""
    if not path.exists() or not any(p.name != MARKER for p in path.iterdir()):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.old-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.old-{stamp}-{n}")
    path.rename(backup)
    return backup


def prepare_output_dir(path: Path, experiment_id: str) -> None:
    """A fresh, empty output directory; an earlier one is kept, whole, under a new name
    (``NAME.old-YYYYmmdd-HHMMSS``): at the start of a run for the run's whole set of outputs, so
    that one set never mixes two runs' results, and again for a batch's own directory when it is
    tried once more."""
    set_aside(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(f"{experiment_id}\n")  # whose outputs these are: faice rm and prune look
    give_to_invoking_user(path)


def give_to_invoking_user(path: Path) -> None:
    """Under sudo, a directory faice makes belongs to the user who ran sudo, not to root."""
    user = invoking_user()
    if os.getuid() == 0 and user != "0:0":
        uid, gid = (int(x) for x in user.split(":"))
        os.chown(path, uid, gid)


def _check_received(path: Path, kind: str, value: Any, index: int | None) -> None:
    """The delivered input exists, and matches the checksum, size or listing the RED file gives."""
    if isinstance(value, list) and index is not None:
        value = value[index]
    value = value if isinstance(value, dict) else {}
    if kind == "File":
        if not path.is_file():
            raise ConnectorError("the connector did not deliver a file")
        if "size" in value and path.stat().st_size != value["size"]:
            raise ConnectorError(f"size is {path.stat().st_size} bytes, its value says {value['size']}")
        if "checksum" in value and (checksum := sha1_of(path)) != value["checksum"]:
            raise ConnectorError(f"checksum is {checksum}, its value says {value['checksum']}")
        return
    if not path.is_dir():
        raise ConnectorError("the connector did not deliver a directory")
    missing = _missing_from_listing(path, value.get("listing") or [], "")
    if missing:
        raise ConnectorError(f"missing from the delivered directory: {', '.join(missing[:5])}")


def _missing_from_listing(root: Path, listing: list[Any], prefix: str) -> list[str]:
    missing = []
    for entry in listing:
        path = root / entry["basename"]
        shown = prefix + entry["basename"]
        if entry["class"] == "Directory":
            if not path.is_dir():
                missing.append(shown + "/")
            else:
                missing += _missing_from_listing(path, entry.get("listing") or [], shown + "/")
        elif not path.is_file():
            missing.append(shown)
    return missing


def _reason(exc: Exception) -> str:
    """An OSError's reason with the file it concerns; another error's text."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _tail(stderr: Path) -> str:
    try:
        with open(stderr, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = handle.read().decode(errors="replace").strip().splitlines()[-STDERR_TAIL_LINES:]
    except OSError:
        return ""
    return ("; stderr: " + " | ".join(lines)) if lines else ""
