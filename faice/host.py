"""Facts about this machine that validation and scheduling share."""

from __future__ import annotations

import os


def memory_mib() -> int | None:
    """Physical memory in MiB (None when the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def node_name() -> str:
    """This machine as a CC-Agency node: batches record it, ``GET /nodes`` shows it."""
    return os.uname().nodename


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def process_alive(pid: int | None, host: str | None) -> bool:
    """Whether the faice process ``pid`` on ``host`` still runs; another machine's counts as alive
    (not ours to judge)."""
    if host is not None and host != os.uname().nodename:
        return True
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
