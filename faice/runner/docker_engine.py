"""The Docker side of a batch: one container per attempt, started and cleaned up like ``docker run --rm``.

The argv runs as the container's command with the image's ENTRYPOINT replaced (no shell), as
the invoking user, with inputs mounted read-only and the output directory as working directory.
The container is attached to before its start, as ``docker run`` does: its stdout and stderr are
copied into the batch's files exactly as they come (``Attachment``), and a standard input file
(``ContainerSpec.stdin``) is fed on the same connection, ended with EOF.
Every container carries labels naming its experiment, batch and run, so that ``faice cancel``
(in another terminal) and the Ctrl-C handler find exactly their containers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from faice.errors import EnvironmentUnusable

LABEL_EXPERIMENT = "faice.experiment"
LABEL_BATCH = "faice.batch"
LABEL_RUN = "faice.run"
#: on the containers faice removes itself (not those kept with --leave-container): only these
#: are swept away when a run could not remove them
LABEL_REMOVABLE = "faice.removable"
HOME_IN_CONTAINER = "/cc/home"
#: processes and threads a batch's container may have by default: a fork bomb stops there
DEFAULT_PIDS_LIMIT = 4096
API_TIMEOUT = 120


class Mount(NamedTuple):
    """A host path bound into a container."""

    source: Path
    target: str
    read_only: bool = True


@dataclass
class ContainerSpec:
    """Everything an engine needs to create one batch's container."""

    image: str
    argv: list[str]
    workdir: str
    mounts: list[Mount]
    labels: dict[str, str]
    user: str
    ram_mib: int | None = None
    #: CPUs the container may use (fractions too); None: no limit
    cpus: float | None = None
    environment: dict[str, str] = field(default_factory=dict)
    gpu_ids: list[str] | None = None
    gpu_count: int | None = None
    network: str | None = None
    name: str | None = None
    #: processes and threads the container may have (0: no limit)
    pids_limit: int = 0
    #: a host file whose bytes are the tool's standard input (CWL ``stdin``); None: no input at all
    stdin: Path | None = None


class ContainerOutcome(NamedTuple):
    """How a container ended: its exit code, whether memory or the timeout killed it, and what it
    used (faice.runner.usage: None where its cgroup could not be read)."""

    exit_code: int
    oom_killed: bool = False
    timed_out: bool = False
    peak_memory: int | None = None
    cpu_seconds: float | None = None


def invoking_user() -> str:
    """uid:gid of the person who ran faice (the sudo caller when run through sudo)."""
    if os.getuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        return f"{os.environ['SUDO_UID']}:{os.environ.get('SUDO_GID', os.environ['SUDO_UID'])}"
    return f"{os.getuid()}:{os.getgid()}"


def registry_host(image: str) -> str | None:
    """The registry host an image reference names (Docker's rule: a first part with ".", ":" or
    "localhost"), or None for Docker Hub."""
    first, slash, _rest = image.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return None
    if first.startswith("["):  # [v6 address]:port
        return first[1:].partition("]")[0]
    return first.rsplit(":", 1)[0] if ":" in first else first


class DockerEngine:
    """The engine calls of a batch, with errors turned into faice's one-line reasons."""

    name = "docker"
    #: the engine's name in messages
    title = "Docker"

    def __init__(self, host: str | None = None) -> None:
        from faice.runner.dockerapi import DockerAPI, DockerError

        try:
            self.api = DockerAPI(host, timeout=API_TIMEOUT)
            self.api.ping()
        except DockerError as exc:
            where = f" at {self.api.host}" if hasattr(self, "api") else ""
            said = f"it answered HTTP {exc.status} ({exc.message}); is that a {self.title} engine?" if exc.status else exc.message
            raise EnvironmentUnusable(f"{self.title} is not reachable{where}: {said}") from None
        except (OSError, ValueError) as exc:
            where = self.api.host if hasattr(self, "api") else "DOCKER_HOST"
            raise EnvironmentUnusable(f"{self.title} is not reachable at {where}: {exc.strerror or exc} (is the {self.title} engine running, and may you use it?)") from None
        #: the standard input file of each created container that has one, until it is started
        self._stdin: dict[str, Path] = {}
        #: the containers faice was asked to kill: one killed as it was starting is killed again once started
        self._killed: set[str] = set()

    @property
    def host(self) -> str:
        return self.api.host

    def ping(self) -> None:
        self.api.ping()

    def has_image(self, image: str) -> bool:
        return self.image_id(image) is not None

    def image_id(self, image: str) -> str | None:
        """The ID (``sha256:`` and 64 hex digits) the image name stands for here now; None when it is not here."""
        from faice.runner.dockerapi import NotFound

        try:
            found = self.api.inspect_image(image)
        except NotFound:
            return None
        ident = str(found.get("Id") or "")
        return ident if ":" in ident else f"sha256:{ident}"  # podman's answer may lack the algorithm

    def ensure_image(self, image: str, *, pull: bool, auth: dict[str, Any] | None = None) -> str:
        """Make sure the image is here (pulling it when allowed); its ID."""
        from faice.runner.dockerapi import DockerError

        found = self.image_id(image)
        if found is not None:
            return found
        if not pull:
            raise EnvironmentUnusable(f'image "{image}" is not on this machine and --disable-pull forbids pulling it')
        credentials = None
        if auth:
            credentials = {"username": auth.get("username", auth.get("_username")), "password": auth.get("password", auth.get("_password"))}
        repository, tag = _split_tag(image)
        try:
            self.api.pull(repository, tag, credentials)
        except (DockerError, OSError) as exc:
            raise EnvironmentUnusable(f'cannot pull image "{image}": {getattr(exc, "message", exc)}') from None
        found = self.image_id(image)
        if found is None:
            raise EnvironmentUnusable(f'cannot pull image "{image}"')
        return found

    def create(self, spec: ContainerSpec) -> str:
        """Create the container; a standard input file that cannot be read is refused before (DockerError)."""
        if spec.stdin is not None:
            _open_stdin(spec.stdin).close()
        container = self.api.create_container(self.container_config(spec), spec.name)
        if spec.stdin is not None:
            self._stdin[container] = spec.stdin
        return container

    def container_config(self, spec: ContainerSpec) -> dict[str, Any]:
        """The body of the create call."""
        memory = spec.ram_mib * 1024 * 1024 if spec.ram_mib else 0
        host_config: dict[str, Any] = {
            "Mounts": [{"Type": "bind", "Source": str(m.source), "Target": m.target, "ReadOnly": m.read_only} for m in spec.mounts],
            "Tmpfs": {HOME_IN_CONTAINER: "rw,exec,mode=1777"},
        }
        if memory:
            host_config["Memory"] = host_config["MemorySwap"] = memory
        if spec.gpu_ids:
            host_config["DeviceRequests"] = [{"Driver": "", "DeviceIDs": spec.gpu_ids, "Capabilities": [["gpu"]]}]
        elif spec.gpu_count:
            host_config["DeviceRequests"] = [{"Driver": "", "Count": spec.gpu_count, "Capabilities": [["gpu"]]}]
        if spec.network:
            host_config["NetworkMode"] = spec.network
        if spec.pids_limit:
            host_config["PidsLimit"] = spec.pids_limit
        if spec.cpus:
            host_config["NanoCpus"] = int(spec.cpus * 1e9)
        stdin = {"OpenStdin": True, "StdinOnce": True, "AttachStdin": True} if spec.stdin is not None else {}
        return {
            **stdin,
            "Image": spec.image,
            "Entrypoint": spec.argv[:1],
            "Cmd": spec.argv[1:],
            "User": spec.user,
            "WorkingDir": spec.workdir,
            "Env": [f"{k}={v}" for k, v in {"HOME": HOME_IN_CONTAINER, **spec.environment}.items()],
            "Labels": spec.labels,
            "HostConfig": host_config,
        }

    def start_and_wait(self, container: str, timeout: float | None, stdout: Path, stderr: Path) -> ContainerOutcome:
        """Run the created container to its end; its streams are written to ``stdout``/``stderr``.

        The container is attached to before it starts, as ``docker run`` does: its output is copied
        into the files as it comes, byte for byte, and its standard input file (when it has one) is
        fed on the same connection. The files appear when this returns, complete (they are written
        as NAME.partial until then, which ``faice logs --follow`` reads as it grows: see
        faice.state.livelog); the copies end with the container at the latest (a tool need not
        read its input, a timeout kills it anyway)."""
        partial = {path: path.with_name(f"{path.name}.partial") for path in (stdout, stderr)}
        try:
            with open(partial[stdout], "wb") as out, open(partial[stderr], "wb") as err:
                outcome = self._run(container, timeout, out, err)
        except BaseException:
            for path in partial.values():
                path.unlink(missing_ok=True)
            raise
        for path, written in partial.items():
            os.replace(written, path)
        return outcome

    def _run(self, container: str, timeout: float | None, out: Any, err: Any) -> ContainerOutcome:
        """``start_and_wait`` into open files."""
        attachment = self._attach(container, out, err)
        meter = None
        try:
            self.start(container)
            meter = self.meter(container)
            if container in self._killed:  # a kill (Ctrl-C, faice cancel) came before the start, which it cannot stop
                self.api_kill(container)
            timed_out = False
            try:
                code = self.wait(container, timeout)
            except TimeoutError:
                timed_out = True
                self.kill(container)
                code = self.wait(container, API_TIMEOUT)
            if attachment is not None:
                attachment.finish()
        finally:
            used = meter.stop() if meter is not None else None
            if attachment is not None:
                attachment.close()
        # Only a failed container can have been killed for its memory: a zero exit needs no inspect call.
        oom = code != 0 and self.oom_killed(self.api.inspect_container(container), code, timed_out)
        if attachment is None:
            self.api.logs(container, out, err)
        return ContainerOutcome(code, oom, timed_out, *(used or ()))

    def meter(self, container: str) -> Any:
        """A meter of the started container's cgroup (faice.runner.usage.Meter); None for an
        engine on another machine, whose processes are not this machine's."""
        if not self.api.host.startswith("unix://"):
            return None
        from faice.runner.usage import Meter, container_files

        def find() -> Any:
            inspected = self.api.inspect_container(container)
            return container_files(int(inspected["State"].get("Pid") or 0), str(inspected.get("Id") or container))

        return Meter(find)

    def _attach(self, container: str, out: Any, err: Any) -> Any:
        """The container's streams attached and copied (an Attachment), its standard input file too
        when it has one; None when the engine refuses the attach to a container without one: its
        output is then read from the logs endpoint once it ended, as faice did before it attached
        (exact only for text: Docker's json-file log replaces bytes that are not UTF-8, and a
        daemon with ``log-driver: none`` keeps nothing)."""
        from faice.runner.dockerapi import Attachment, DockerError

        path = self._stdin.pop(container, None)
        source = _open_stdin(path) if path is not None else None
        try:
            response = self.api.attach(container, stdin=source is not None)
        except DockerError:
            if source is None:
                return None
            source.close()
            raise
        except BaseException:
            if source is not None:
                source.close()
            raise
        return Attachment(response, out, err, source)

    def start(self, container: str) -> None:
        self.api.start(container)

    def wait(self, container: str, timeout: float | None) -> int:
        """The exit code once the container ends; TimeoutError after ``timeout`` seconds."""
        return self.api.wait(container, timeout)

    def oom_killed(self, inspected: dict[str, Any], exit_code: int, timed_out: bool) -> bool:
        """Whether the kernel killed the container for its memory limit (the engine says so)."""
        return bool(inspected["State"].get("OOMKilled"))

    def kill(self, container: str) -> None:
        self._killed.add(container)
        self.api_kill(container)

    def api_kill(self, container: str) -> None:
        """Ask the engine to kill the container, whatever state it is in."""
        from faice.runner.dockerapi import DockerError

        try:
            self.api.kill(container)
        except (DockerError, OSError):
            pass  # gone already, or not running any more (a lost engine is reported elsewhere)

    def remove(self, container: str) -> None:
        """Remove a container; one Docker does not remove now is swept by a later run (reconcile)."""
        from faice.runner.dockerapi import DockerError

        self._stdin.pop(container, None)
        self._killed.discard(container)
        try:
            self.api.remove(container)
        except (DockerError, OSError):
            pass

    def experiment_containers(self) -> dict[str, list[str]]:
        """The containers faice started to remove them again, by experiment id (never those kept on purpose)."""
        found: dict[str, list[str]] = {}
        for container in self.api.labelled({LABEL_EXPERIMENT: "", LABEL_REMOVABLE: ""}):
            found.setdefault((container.get("Labels") or {}).get(LABEL_EXPERIMENT, ""), []).append(container["Id"])
        return found

    def containers(self, **labels: str) -> list[str]:
        """Ids of all containers (running or not) carrying these label values."""
        return self.api.containers(labels)


def _open_stdin(path: Path) -> Any:
    """The standard input file, open for reading; DockerError (the container cannot be run) when it cannot be."""
    from faice.runner.dockerapi import DockerError

    try:
        source = open(path, "rb", buffering=0)  # noqa: SIM115 - the Attachment closes it
    except OSError as exc:
        raise DockerError(0, f"cannot read the standard input file {path}: {exc.strerror or exc}") from None
    return source


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"
