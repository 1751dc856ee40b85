"""FUSE mounts on this machine: is a path mounted, unmount it, find the ones a dead run left.

A mount whose FUSE process died answers every ``stat`` with "Transport endpoint is not
connected", so whether a path is mounted is read from ``/proc/self/mountinfo``, never by
looking at the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from faice.connectors.base import process_environment

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in a path as octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mountpoints() -> list[str]:
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    return [_unescape(line.split(" ")[4]) for line in lines if line.count(" ") >= 4]


def is_mounted(path: Path) -> bool:
    return os.path.realpath(path) in mountpoints()  # mountinfo has real paths; TMPDIR may lead through a link


def fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


def unmount(path: Path) -> str | None:
    """Unmount ``path`` (detached lazily when it is busy); None when done, else why not."""
    if not is_mounted(path):
        return None
    helper = fusermount()
    real = os.path.realpath(path)
    attempts = [[helper, "-u", real], [helper, "-u", "-z", real]] if helper else []
    if os.getuid() == 0:
        attempts += [["umount", real], ["umount", "-l", real]]
    reason = "no fusermount or umount here"
    for argv in attempts:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=process_environment())
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
            continue
        if not is_mounted(path):
            return None
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"{argv[0]} exited with {done.returncode}"]
        reason = reason[0]
    return f"cannot unmount {path}: {reason}"


def leftovers(marker: str) -> list[Path]:
    """Mount points below a directory whose name starts with ``marker`` (deepest first)."""
    found = [Path(p) for p in mountpoints() if any(part.startswith(marker) for part in Path(p).parts)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)
