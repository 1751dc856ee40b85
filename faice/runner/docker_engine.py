"""The Docker side of a batch: one container per attempt, started and cleaned up like ``docker run --rm``.

The argv runs as the container's command with the image's ENTRYPOINT replaced (no shell), as
the invoking user, with inputs mounted read-only and the output directory as working directory.
Every container carries labels naming its experiment, batch and run, so that ``faice cancel``
(in another terminal) and the Ctrl-C handler find exactly their containers.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faice.errors import EnvironmentUnusable

LABEL_EXPERIMENT = "faice.experiment"
LABEL_BATCH = "faice.batch"
LABEL_RUN = "faice.run"
HOME_IN_CONTAINER = "/cc/home"
API_TIMEOUT = 120


@dataclass
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class ContainerSpec:
    image: str
    argv: list[str]
    workdir: str
    mounts: list[Mount]
    labels: dict[str, str]
    user: str
    ram_mib: int | None = None
    environment: dict[str, str] = field(default_factory=dict)
    gpu_ids: list[str] | None = None
    gpu_count: int | None = None
    network: str | None = None
    name: str | None = None


@dataclass
class ContainerOutcome:
    exit_code: int
    oom_killed: bool = False
    timed_out: bool = False


def invoking_user() -> str:
    """uid:gid of the person who ran faice (the sudo caller when run through sudo)."""
    if os.getuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        return f"{os.environ['SUDO_UID']}:{os.environ.get('SUDO_GID', os.environ['SUDO_UID'])}"
    return f"{os.getuid()}:{os.getgid()}"


class DockerEngine:
    def __init__(self) -> None:
        import docker
        from docker.errors import DockerException

        try:
            self.api = docker.APIClient(**docker.utils.kwargs_from_env(), timeout=API_TIMEOUT, version="auto")
            self.api.ping()
        except DockerException as exc:
            raise EnvironmentUnusable(f"Docker is not reachable: {_reason(exc)} (is the Docker engine running, and may you use it?)") from None
        except Exception as exc:  # requests' connection errors
            raise EnvironmentUnusable(f"Docker is not reachable: {exc}") from None
        self._lock = threading.Lock()

    def has_image(self, image: str) -> bool:
        from docker.errors import ImageNotFound

        try:
            self.api.inspect_image(image)
        except ImageNotFound:
            return False
        return True

    def ensure_image(self, image: str, *, pull: bool, auth: dict[str, Any] | None = None) -> bool:
        """Make sure the image is here; return True when it had to be pulled."""
        from docker.errors import APIError

        if self.has_image(image):
            return False
        if not pull:
            raise EnvironmentUnusable(f'image "{image}" is not on this machine and --disable-pull forbids pulling it')
        credentials = None
        if auth:
            credentials = {"username": auth.get("username", auth.get("_username")), "password": auth.get("password", auth.get("_password"))}
        repository, tag = _split_tag(image)
        try:
            for _ in self.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=credentials):
                pass
        except APIError as exc:
            raise EnvironmentUnusable(f'cannot pull image "{image}": {_reason(exc)}') from None
        if not self.has_image(image):
            raise EnvironmentUnusable(f'cannot pull image "{image}"')
        return True

    def create(self, spec: ContainerSpec) -> str:
        from docker.types import DeviceRequest

        binds = {str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in spec.mounts}
        device_requests = None
        if spec.gpu_ids:
            device_requests = [DeviceRequest(device_ids=spec.gpu_ids, capabilities=[["gpu"]])]
        elif spec.gpu_count:
            device_requests = [DeviceRequest(count=spec.gpu_count, capabilities=[["gpu"]])]
        memory = f"{spec.ram_mib}m" if spec.ram_mib else None
        host_config = self.api.create_host_config(
            binds=binds,
            mem_limit=memory,
            memswap_limit=memory,
            tmpfs={HOME_IN_CONTAINER: "rw,exec,mode=1777"},
            device_requests=device_requests,
            network_mode=spec.network,
            init=False,
        )
        environment = {"HOME": HOME_IN_CONTAINER, **spec.environment}
        created = self.api.create_container(
            spec.image,
            command=spec.argv[1:],
            entrypoint=spec.argv[:1],
            user=spec.user,
            working_dir=spec.workdir,
            environment=environment,
            labels=spec.labels,
            host_config=host_config,
            name=spec.name,
            network_disabled=False,
        )
        return created["Id"]

    def start_and_wait(self, container: str, timeout: float | None, stdout: Path, stderr: Path) -> ContainerOutcome:
        """Run the created container to its end; its streams are written to ``stdout``/``stderr``."""
        import requests

        self.api.start(container)
        timed_out = False
        try:
            status = self.api.wait(container, timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            self.kill(container)
            status = self.api.wait(container, timeout=API_TIMEOUT)
        state = self.api.inspect_container(container)["State"]
        for path, which in ((stdout, "stdout"), (stderr, "stderr")):
            with open(path, "wb") as handle:
                for chunk in self.api.logs(container, stdout=which == "stdout", stderr=which == "stderr", stream=True):
                    handle.write(chunk)
        return ContainerOutcome(int(status.get("StatusCode", -1)), bool(state.get("OOMKilled")), timed_out)

    def follow_logs(self, container: str, *, stderr: bool, out: Any) -> bool:
        """Stream a running container's output until it ends; False when the container is gone."""
        from docker.errors import NotFound

        try:
            for chunk in self.api.logs(container, stdout=not stderr, stderr=stderr, stream=True, follow=True):
                out.write(chunk)
                out.flush()
        except NotFound:
            return False
        return True

    def kill(self, container: str) -> None:
        from docker.errors import APIError, NotFound

        try:
            self.api.kill(container)
        except (NotFound, APIError):
            pass

    def remove(self, container: str) -> None:
        from docker.errors import APIError, NotFound

        try:
            self.api.remove_container(container, force=True, v=True)
        except NotFound:
            pass
        except APIError:
            pass

    def containers(self, **labels: str) -> list[str]:
        """Ids of all containers (running or not) carrying these label values."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return [c["Id"] for c in self.api.containers(all=True, filters=filters)]


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


def _reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation if explanation else str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text).splitlines()[0] if text else type(exc).__name__
