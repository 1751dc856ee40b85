"""SSH host keys: trust on first use, remembered in faice's data directory, never a silent change.

The first time faice meets a host (a name and port), it records the key the host presents in
``$XDG_DATA_HOME/faice/known_hosts`` (OpenSSH's format, so ``ssh-keygen -R`` and ``ssh-keyscan``
work on it). Keys in the user's ``~/.ssh/known_hosts`` and in ``/etc/ssh/ssh_known_hosts`` are
trusted too. A host that presents another key than the one remembered is refused with both
fingerprints; a revoked key (``@revoked``) is refused as well.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faice.connectors.base import ConnectorError
from faice.state.store import data_dir

SYSTEM_FILE = Path("/etc/ssh/ssh_known_hosts")


def faice_file() -> Path:
    return data_dir() / "known_hosts"


def user_file() -> Path:
    return Path(os.path.expanduser("~")) / ".ssh" / "known_hosts"


def entry_name(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` elsewhere."""
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyRefused(ConnectorError):
    """The host's key is not the remembered one, or is revoked."""


@dataclass
class Known:
    """The keys known for one host, and the file each one came from."""

    keys: list[tuple[Any, Path]] = field(default_factory=list)
    ca_keys: list[Any] = field(default_factory=list)
    revoked: list[tuple[Any, Path]] = field(default_factory=list)


def _lowercase_names(line: str) -> str:
    """The line with its host patterns in lower case (hashed ones untouched): OpenSSH matches names
    without regard to case, asyncssh does not, and faice asks in lower case."""
    fields = line.split(None, 2)
    at = 1 if fields and fields[0].startswith("@") else 0
    if len(fields) <= at or fields[0].startswith("#") or fields[at].startswith("|"):
        return line
    fields[at] = fields[at].lower()
    return " ".join(fields)


def _parse(text: str) -> Any:
    """A known_hosts text as asyncssh reads it; lines it cannot read are skipped, as OpenSSH does."""
    import asyncssh

    text = "\n".join(_lowercase_names(line) for line in text.splitlines())
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError):
        good = []
        for line in text.splitlines():
            try:
                asyncssh.import_known_hosts(line)
                good.append(line)
            except (ValueError, asyncssh.KeyImportError):
                continue
        return asyncssh.import_known_hosts("\n".join(good))


def lookup(host: str, port: int) -> Known:
    """Every key the known_hosts files hold for ``host`` on ``port`` (matched by name, as OpenSSH does)."""
    known = Known()
    for path in (faice_file(), user_file(), SYSTEM_FILE):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        keys, ca_keys, revoked, *_x509 = _parse(text).match(host, "", None if port == 22 else port)
        known.keys += [(key, path) for key in keys]
        known.ca_keys += list(ca_keys)
        known.revoked += [(key, path) for key in revoked]
    return known


def describe(key: Any) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


def verify(host: str, port: int, key: Any, known: Known) -> None:
    """Accept ``key`` for the host, remembering it when the host is new; raise when it changed."""
    name = entry_name(host, port)
    for revoked, path in known.revoked:
        if revoked == key:
            raise HostKeyRefused(f"the host key of {name} ({describe(key)}) is marked @revoked in {path}")
    if any(trusted == key for trusted, _ in known.keys):
        return
    if known.keys:
        old, path = known.keys[0]
        raise HostKeyRefused(
            f"the host key of {name} has CHANGED: it presents {describe(key)}, but {path} remembers {describe(old)}; "
            f"someone may be intercepting the connection. If the host was really re-keyed, forget the old key with "
            f"ssh-keygen -R '{name}' -f {path}"
        )
    remember(host, port, key)


def remember(host: str, port: int, key: Any) -> None:
    """Append the key to faice's known_hosts (under a lock, once, even with several faice processes)."""
    path = faice_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    algorithm, data = key.export_public_key("openssh").decode().split()[:2]
    line = f"{entry_name(host, port)} {algorithm} {data}\n"
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        keys, *_rest = _parse(handle.read()).match(host, "", None if port == 22 else port)
        if key in keys:
            return
        if keys:
            raise HostKeyRefused(f"the host key of {entry_name(host, port)} was just remembered differently by another faice process; try again")
        handle.seek(0, os.SEEK_END)
        handle.write(line)
