"""The container engine a run uses: the calls faice makes of one, and how the engine is chosen.

Docker and Podman both speak Docker's Engine API (Podman through ``podman system service``), so
one client serves both; what differs (finding or starting Podman's service, user namespaces,
limits that a rootless Podman cannot enforce, how an OOM kill is reported) lives in their
modules. The runner, cancel, reconcile and logs see only ``Engine``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from faice.errors import InvalidInput

if TYPE_CHECKING:
    from faice.runner.docker_engine import ContainerOutcome, ContainerSpec

#: the engines ``open_engine`` knows, the default first
ENGINES = ("docker", "podman")
ENGINE_VARIABLE = "FAICE_ENGINE"


class Engine(Protocol):
    """What a batch, ``faice cancel``, crash recovery and ``faice logs`` ask of a container engine."""

    #: "docker" or "podman"
    name: str
    #: the name in messages: "Docker", "Podman"
    title: str

    @property
    def host(self) -> str:
        """Where the engine answers (for messages), e.g. unix:///var/run/docker.sock."""

    def ping(self) -> None:
        """Raise (DockerError or OSError) unless the engine answers."""

    def has_image(self, image: str) -> bool: ...

    def ensure_image(self, image: str, *, pull: bool, auth: dict[str, Any] | None = None) -> str:
        """Make sure the image is here; its ID (``sha256:...``), what the cache keys on, not the tag."""

    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the batch's container; its id."""

    def start_and_wait(self, container: str, timeout: float | None, stdout: Path, stderr: Path) -> ContainerOutcome:
        """Run the created container to its end, killing it after ``timeout`` s; streams to files."""

    def kill(self, container: str) -> None: ...

    def remove(self, container: str) -> None: ...

    def experiment_containers(self) -> dict[str, list[str]]:
        """The containers faice started to remove again, by experiment id."""

    def containers(self, **labels: str) -> list[str]:
        """Ids of all containers (running or not) carrying these label values."""


def recorded_engine(record: dict[str, Any] | None) -> str:
    """The engine an experiment's record names; records from before engines were recorded ran on Docker."""
    return (record or {}).get("container_engine") or ENGINES[0]


def engine_name(name: str | None = None) -> str:
    """The engine asked for: ``name``, else $FAICE_ENGINE, else docker; unknown names are refused."""
    chosen = (name or os.environ.get(ENGINE_VARIABLE) or ENGINES[0]).strip().lower()
    if chosen not in ENGINES:
        source = "" if name else f" (from {ENGINE_VARIABLE})"
        raise InvalidInput(f'unknown container engine "{chosen}"{source}; known: {", ".join(ENGINES)}')
    return chosen


def open_engine(name: str | None = None) -> Engine:
    """The engine, reachable (EnvironmentUnusable, exit 3, when it is not)."""
    if engine_name(name) == "podman":
        from faice.runner.podman import PodmanEngine

        return PodmanEngine()
    from faice.runner.docker_engine import DockerEngine

    return DockerEngine()
