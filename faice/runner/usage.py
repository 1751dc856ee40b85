"""What a batch's container used: its peak memory and CPU time, read from its cgroup.

The kernel keeps both per cgroup: cgroup v2 in ``memory.peak`` (bytes, since Linux 5.19; before it,
the highest ``memory.current`` of the meter's readings stands in: sampled, not a true peak) and
``cpu.stat``'s ``usage_usec``; cgroup v1 in ``memory.max_usage_in_bytes`` and ``cpuacct.usage``
(nanoseconds). The container's cgroup is found from its first process (``/proc/PID/cgroup`` and
this machine's cgroup mounts), so whatever the engine (Docker, Podman) and cgroup driver (cgroupfs:
``/docker/ID``, ``/libpod_parent/libpod-ID``; systemd: ``docker-ID.scope``) put it, and a cgroup
whose path does not name the container (an engine on another machine or in another PID namespace,
rootless Podman on cgroup v1: no cgroup of its own) gives nothing rather than another's figures.

The engine removes the cgroup as the container ends, before its wait call answers (Docker's and
Podman's runc ``delete``), so it cannot be read afterwards: a :class:`Meter` reads it while the
container runs, every ``INTERVAL`` seconds. The peak is a high-water mark, exact up to the last
reading; the CPU time misses at most what the container used after it (an interval's worth). A
container that ends before its first reading, or a kernel without the files, gives None.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

#: how often a running container's cgroup is read (s)
INTERVAL = 0.05


class Usage(NamedTuple):
    """What a container used; None where it could not be read."""

    peak_memory: int | None = None
    cpu_seconds: float | None = None


class CgroupFiles(NamedTuple):
    """The files of one container's cgroup that hold its peak memory and CPU time."""

    peak: Path | None
    cpu: Path | None
    #: 1 or 2: the files' formats
    version: int
    #: v2's ``memory.current``: read where ``peak`` is missing (kernels before 5.19)
    current: Path | None = None


def mounts(mountinfo: str) -> dict[str, tuple[str, Path]]:
    """The cgroup hierarchies this process sees: ``{"memory": (ROOT, MOUNTPOINT), "cpuacct": ...,
    "2": ...}``, v1 ones by controller, the v2 one under "2" (``proc(5)``'s mountinfo format)."""
    found: dict[str, tuple[str, Path]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) < 3:
            continue
        fstype, options = after[0], after[2].split(",")
        root, point = _unescape(fields[3]), Path(_unescape(fields[4]))
        if fstype == "cgroup2":
            found.setdefault("2", (root, point))
        elif fstype == "cgroup":
            for option in options:
                if option in ("memory", "cpuacct"):
                    found.setdefault(option, (root, point))
    return found


def locate(proc_cgroup: str, mountinfo: str, container_id: str) -> CgroupFiles | None:
    """The usage files of the container whose first process has ``proc_cgroup`` (its
    ``/proc/PID/cgroup``); None unless the cgroup's path names the container."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            paths["2"] = path
        for controller in controllers.split(","):
            if controller in ("memory", "cpuacct"):
                paths[controller] = path
    hierarchies = mounts(mountinfo)
    if "memory" in paths and "memory" in hierarchies:  # v1 (a hybrid machine's v2 hierarchy holds no controllers)
        peak = _directory(hierarchies["memory"], paths["memory"], container_id)
        cpu = _directory(hierarchies["cpuacct"], paths["cpuacct"], container_id) if "cpuacct" in paths and "cpuacct" in hierarchies else None
        if peak is None and cpu is None:
            return None
        return CgroupFiles(peak and peak / "memory.max_usage_in_bytes", cpu and cpu / "cpuacct.usage", 1)
    if "2" in paths and "2" in hierarchies:
        directory = _directory(hierarchies["2"], paths["2"], container_id)
        return None if directory is None else CgroupFiles(directory / "memory.peak", directory / "cpu.stat", 2, directory / "memory.current")
    return None


def _directory(mount: tuple[str, Path], path: str, container_id: str) -> Path | None:
    """The container's cgroup directory: ``path`` up to its part that names the container (a
    process in a sub-cgroup of it, as Podman's ``container``, still counts the whole)."""
    root, point = mount
    parts = path.strip("/").split("/")
    named = [i for i, part in enumerate(parts) if container_id in part]
    if not container_id or not named:
        return None
    inside = "/".join(parts[: named[0] + 1])
    rooted = root.strip("/")
    if rooted:
        if not (inside == rooted or inside.startswith(rooted + "/")):
            return None
        inside = inside[len(rooted):].strip("/")
    return point / inside


def read(files: CgroupFiles) -> Usage:
    """The figures the files hold now; None for a file that is missing (gone, an older kernel) or
    unreadable. Without ``memory.peak`` the memory is ``memory.current``: the :class:`Meter` keeps
    the highest it reads."""
    peak = _read_int(files.peak)
    if peak is None:
        peak = _read_int(files.current)
    cpu: float | None = None
    if files.cpu is not None:
        if files.version == 2:
            usec = _stat_field(files.cpu, "usage_usec")
            cpu = None if usec is None else usec / 1e6
        else:
            nsec = _read_int(files.cpu)
            cpu = None if nsec is None else nsec / 1e9
    return Usage(peak, cpu)


def _read_int(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stat_field(path: Path, name: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return None


def container_files(pid: int, container_id: str) -> CgroupFiles | None:
    """The usage files of a running container whose first process is ``pid`` on this machine."""
    if pid <= 0:
        return None
    try:
        proc_cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None  # ended already, or not a process of this machine
    return locate(proc_cgroup, mountinfo, container_id)


class Meter:
    """Reads a running container's cgroup every ``interval`` seconds until :meth:`stop`, keeping
    the last figures it could read (the cgroup is gone once the container has ended) and the
    highest memory (a sampled peak where the kernel has no ``memory.peak``).

    Its cgroup is located (``find``: an engine call and two files) in the meter's own thread, so a
    batch's container starts and is waited for no later than without it."""

    def __init__(self, find: Callable[[], CgroupFiles | None], interval: float = INTERVAL) -> None:
        self.find = find
        self.interval = interval
        self.last = Usage()
        self.files: CgroupFiles | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="faice-usage", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            self.files = self.find()
        except Exception:  # noqa: BLE001 - no figures is the answer to any trouble finding them
            return
        while self.files is not None:
            self._take()
            if self._stop.wait(self.interval):
                return

    def _take(self) -> None:
        if self.files is None:
            return
        now = read(self.files)
        peaks = [p for p in (now.peak_memory, self.last.peak_memory) if p is not None]
        self.last = Usage(max(peaks) if peaks else None,
                          now.cpu_seconds if now.cpu_seconds is not None else self.last.cpu_seconds)

    def stop(self) -> Usage:
        """The figures of the last reading (one more is tried: the cgroup may still be there)."""
        self._stop.set()
        self._thread.join()
        self._take()
        return self.last


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (a space is ``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
