"""Podman as faice's container engine, through its Docker-compatible API (``podman system service``).

Podman has no daemon: faice uses the service socket that answers ($CONTAINER_HOST, else the
rootful /run/podman/podman.sock for root, the rootless $XDG_RUNTIME_DIR/podman/podman.sock for
anyone else) and, when none does, starts ``podman system service`` there itself; it ends on its
own after ``SERVICE_IDLE_SECONDS`` without a call. Where Podman's compatible API differs from
Docker's in what faice relies on:

* rootless, the container's uid 0 is the user and every other uid a subordinate one, so the
  invoking user's uid:gid would write outputs owned by a stranger: ``keep-id`` maps the user's
  uid to itself;
* rootless, limits need the cgroup controllers delegated to the user (never on cgroup v1):
  the memory and pids limits are left out where they could not be enforced (``unenforced``);
* its wait call answers only after podman's cleanup of the container (up to a second later):
  faice watches the container's state instead;
* Podman does not always report an OOM kill (conmon misses it on cgroup v1): a SIGKILL that faice
  did not send to a container with an enforced memory limit is read as one;
* an attach takes stdout and stderr even when the query leaves them out, and conmon holds up
  the tool's writes until they are read: faice's attach always takes and reads them;
* a host whose resource limits are lower than Podman's defaults refuses every container
  ("error setting rlimit"); the reason names the setting that fixes it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from faice.errors import EnvironmentUnusable
from faice.runner.docker_engine import ContainerOutcome, DockerEngine

#: how long a service faice started stays up after its last call
SERVICE_IDLE_SECONDS = 600
#: how long faice waits for a service it started to answer
SERVICE_START_SECONDS = 30
ROOTFUL_SOCKET = Path("/run/podman/podman.sock")
SIGKILL_EXIT = 128 + 9
#: the states of a container that has run and ended (podman's own names, not Docker's)
ENDED = ("stopped", "exited")
ULIMITS_HINT = ("this machine's resource limits are below Podman's defaults: set default_ulimits = [] in the [containers] "
                "section of a containers.conf (make system-deps installs /etc/containers/containers.conf.d/faice-ulimits.conf)")


def runtime_dir() -> Path:
    """Where a rootless Podman keeps its sockets: $XDG_RUNTIME_DIR, else what Podman itself falls back to."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"])
    login_dir = Path(f"/run/user/{os.geteuid()}")
    if login_dir.is_dir() and os.access(login_dir, os.W_OK):
        return login_dir
    return Path(tempfile.gettempdir()) / f"podman-run-{os.geteuid()}"


def default_socket() -> Path:
    """The service socket of this user: rootful for root, rootless for anyone else."""
    return ROOTFUL_SOCKET if os.geteuid() == 0 else runtime_dir() / "podman" / "podman.sock"


def answers(url: str) -> bool:
    from faice.runner.dockerapi import DockerAPI, DockerError

    try:
        DockerAPI(url, timeout=5).ping()
    except (DockerError, OSError):
        return False
    return True


def service_url() -> str:
    """The URL of a Podman service that answers, started here when none does."""
    if os.environ.get("CONTAINER_HOST"):
        url = os.environ["CONTAINER_HOST"]
        if not url.startswith("unix://"):
            raise EnvironmentUnusable(f"CONTAINER_HOST={url}: faice reaches Podman only through a unix:// socket")
        return url
    path = default_socket()
    if not answers(f"unix://{path}"):
        start_service(path)
    return f"unix://{path}"


def start_service(path: Path) -> None:
    """Start ``podman system service`` on ``path`` and wait until it answers.

    A lock beside the socket keeps two faice processes from starting two services, the second
    of which would take the socket from the first. The service outlives faice: it gets none of
    faice's own variables (FAICE_VAR_* may hold secrets) and keeps no directory of faice's busy.
    """
    podman = shutil.which("podman")
    if podman is None:
        raise EnvironmentUnusable("the podman engine was asked for, but podman is not installed (Debian: apt-get install podman uidmap slirp4netns)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(path.parent / "faice-service.lock", "w")  # noqa: SIM115 - held until the service answers
    except OSError as exc:
        raise EnvironmentUnusable(f"cannot start Podman's service at {path}: {exc.strerror or exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answers(f"unix://{path}"):
            return  # another faice started it meanwhile
        log_path = path.parent / "faice-service.log"
        with open(log_path, "wb") as log:
            service = subprocess.Popen([podman, "system", "service", f"--time={SERVICE_IDLE_SECONDS}", f"unix://{path}"],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd="/",
                                       env={k: v for k, v in os.environ.items() if not k.startswith("FAICE_")})
        deadline = time.monotonic() + SERVICE_START_SECONDS
        while service.poll() is None and time.monotonic() < deadline:
            if answers(f"unix://{path}"):
                return
            time.sleep(0.05)
        if service.poll() is None:
            service.kill()
            service.wait()
            said = f"it did not answer within {SERVICE_START_SECONDS} s"
        else:
            said = f"it ended with exit code {service.returncode}"
        told = log_path.read_text(errors="replace").strip().splitlines()
        raise EnvironmentUnusable(f"Podman's service (podman system service unix://{path}) did not come up: {said}"
                                  + (f": {told[-1]}" if told else ""))


def service_uid(url: str) -> int:
    """The uid the service at a unix:// URL runs as (the kernel's word on the socket's peer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
        peer.settimeout(5)
        peer.connect(url.removeprefix("unix://"))
        _pid, uid, _gid = struct.unpack("3i", peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


#: podman's error when the tool ended before podman read its cgroup (fixed in podman 4.4)
CGROUP_RACE = re.compile(r"/proc/\d+/cgroup: no such process")


class PodmanEngine(DockerEngine):
    """Docker's engine calls against Podman's compatible API, adjusted where Podman differs."""

    name = "podman"
    title = "Podman"

    def __init__(self, host: str | None = None) -> None:
        super().__init__(host or service_url())
        #: the service runs as a user, not as root: user namespaces map the container's ids
        self.rootless: bool = service_uid(self.api.host) != 0
        #: the limits this service cannot enforce (it would refuse or ignore them), left out
        self.unenforced: tuple[str, ...] = ()
        if self.rootless:  # podman's info costs 0.2 s: asked only where limits may be missing
            controllers = self.api.call("GET", "/v4.0.0/libpod/info")["host"].get("cgroupControllers") or []
            self.unenforced = tuple(c for c in ("memory", "pids") if c not in controllers)

    def container_config(self, spec: Any) -> dict[str, Any]:
        config = super().container_config(spec)
        host_config = config["HostConfig"]
        if self.rootless:
            host_config["UsernsMode"] = "keep-id"
        if "memory" in self.unenforced:
            host_config.pop("Memory", None)
            host_config.pop("MemorySwap", None)
        if "pids" in self.unenforced:
            host_config.pop("PidsLimit", None)
        return config

    def start_and_wait(self, container: str, timeout: float | None, stdout: Path, stderr: Path) -> ContainerOutcome:
        from faice.runner.dockerapi import DockerError

        try:
            return super().start_and_wait(container, timeout, stdout, stderr)
        except DockerError as exc:
            if "setting rlimit" in exc.message:
                raise DockerError(exc.status, f"{exc.message.strip()} ({ULIMITS_HINT})") from None
            raise
        finally:
            self._killed.discard(container)

    def start(self, container: str) -> None:
        """Podman before 4.4 may fail the start of a container that ended at once, when the tool
        exited before podman read its cgroup ("read /proc/PID/cgroup: no such process", podman
        issue 16383): the container did run, and its state says how it ended."""
        from faice.runner.dockerapi import DockerError

        try:
            super().start(container)
        except DockerError as exc:
            if not CGROUP_RACE.search(exc.message) or self.api.inspect_container(container)["State"]["Status"] not in ENDED:
                raise

    def wait(self, container: str, timeout: float | None) -> int:
        """Podman's wait answers only once its cleanup process is done, a quarter to a whole second
        after the container ended; its state says so at once, with the exit code and the logs complete."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while (state := self._state(container))["Status"] not in ENDED:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(container)
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, 0.25)
        return int(state["ExitCode"])

    def _state(self, container: str) -> dict[str, Any]:
        """The container's state; while podman 4.3 fails to read the cgroup of a tool that just
        ended (the race of ``start``), it is still running as far as the wait goes."""
        from faice.runner.dockerapi import DockerError

        try:
            return self.api.inspect_container(container)["State"]
        except DockerError as exc:
            if not CGROUP_RACE.search(exc.message):
                raise
            return {"Status": "running"}

    def oom_killed(self, inspected: dict[str, Any], exit_code: int, timed_out: bool) -> bool:
        if super().oom_killed(inspected, exit_code, timed_out):
            return True
        limited = bool((inspected.get("HostConfig") or {}).get("Memory"))
        return limited and exit_code == SIGKILL_EXIT and not timed_out and inspected.get("Id") not in self._killed
