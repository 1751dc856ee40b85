"""A container engine in this process, for testing the lifecycle and its drivers without Docker.

A "container" is a Python function of its spec and its output directory on the host that
returns an exit code; it runs in ``start_and_wait``'s thread and can wait to be killed. The
engine records every call, and how many containers ran at once, so that tests assert ordering,
parallelism, cleanup and kills. Real Docker runs in test_exec and test_serve_*; this fake only
lets the in-process tests reach the races and failures that a real engine makes hard to time.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from faice.red.paths import OUTPUTS_DIR
from faice.runner.docker_engine import LABEL_EXPERIMENT, LABEL_REMOVABLE, ContainerOutcome, ContainerSpec


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    killed: threading.Event = field(default_factory=threading.Event)
    started: bool = False


@dataclass
class Run:
    """What a fake container's tool gets: its spec, its output directory, and its kill switch."""

    spec: ContainerSpec
    outdir: Path
    killed: threading.Event

    def wait_killed(self, timeout: float = 10.0) -> int:
        """Block like a long-running tool until killed (137), or fail the test after ``timeout``."""
        if not self.killed.wait(timeout):
            raise AssertionError("the fake container was never killed")
        return 137


Tool = Callable[[Run], int]


def succeed(run: Run) -> int:
    return 0


class FakeEngine:
    def __init__(self, tool: Tool = succeed, images: tuple[str, ...] = ("faice-test-busybox:latest",)) -> None:
        self.tool = tool
        self.images = set(images)
        self.name = "fake"
        self.title = "Fake"
        self.host = "fake://engine"
        self.calls: list[tuple[str, str]] = []
        self.containers_by_id: dict[str, FakeContainer] = {}
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._next = 0

    def ping(self) -> None:
        pass

    def _record(self, call: str, container: str) -> None:
        with self._lock:
            self.calls.append((call, container))

    def has_image(self, image: str) -> bool:
        return image in self.images

    def ensure_image(self, image: str, *, pull: bool, auth: dict | None = None) -> str:
        from faice.errors import EnvironmentUnusable

        if image not in self.images:
            raise EnvironmentUnusable(f"image {image} is not here")
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()

    def create(self, spec: ContainerSpec) -> str:
        with self._lock:
            self._next += 1
            container = f"fake{self._next:04d}"
            self.containers_by_id[container] = FakeContainer(container, spec)
        self._record("create", container)
        return container

    def start_and_wait(self, container: str, timeout: float | None, stdout: Path, stderr: Path) -> ContainerOutcome:
        fake = self.containers_by_id[container]
        outdir = next(m.source for m in fake.spec.mounts if m.target == OUTPUTS_DIR)
        self._record("start", container)
        with self._lock:
            fake.started = True
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            code = 137 if fake.killed.is_set() else self.tool(Run(fake.spec, Path(outdir), fake.killed))
        finally:
            with self._lock:
                self.running -= 1
        stdout.write_bytes(b"")
        stderr.write_bytes(b"")
        return ContainerOutcome(code)

    def kill(self, container: str) -> None:
        self._record("kill", container)
        if container in self.containers_by_id:
            self.containers_by_id[container].killed.set()

    def remove(self, container: str) -> None:
        self._record("remove", container)
        with self._lock:
            self.containers_by_id.pop(container, None)

    def containers(self, **labels: str) -> list[str]:
        with self._lock:
            return [c.id for c in self.containers_by_id.values() if all(c.spec.labels.get(k) == v for k, v in labels.items())]

    def experiment_containers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        with self._lock:
            for c in self.containers_by_id.values():
                if LABEL_REMOVABLE in c.spec.labels:
                    found.setdefault(c.spec.labels[LABEL_EXPERIMENT], []).append(c.id)
        return found

    def left(self) -> list[str]:
        """Containers created and never removed."""
        with self._lock:
            return list(self.containers_by_id)
