"""The access data of ``red-connector-ssh`` (upstream 1.3's fields), checked and parsed.

``host``, ``port`` (default 22; an integer or a string of digits), ``auth`` with ``username``
and ``password`` and/or ``privateKey`` (+ ``passphrase``), ``filePath`` for a File or
``dirPath`` for a Directory, ``writable`` for a mounted directory, and the timeouts
``timeout`` (TCP connect), ``bannerTimeout`` and ``authTimeout`` in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from faice.connectors.base import Direction, Kind, check_fields, port_of, port_problems

DEFAULT_PORT = 22
#: upstream's defaults (paramiko's): no limit on the TCP connect there, 15 s here
TIMEOUT_DEFAULTS = {"timeout": 15.0, "bannerTimeout": 15.0, "authTimeout": 30.0}
NUMBER = (int, float)


def problems(access: Any, direction: Direction, kind: Kind) -> list[str]:
    """What is wrong with ``access`` for this use (never echoing a value: it may be secret)."""
    path_key, other = ("filePath", "dirPath") if kind == "File" else ("dirPath", "filePath")
    optional: dict[str, Any] = {"port": (int, str), other: str, **dict.fromkeys(TIMEOUT_DEFAULTS, NUMBER)}
    if kind == "Directory" and direction != "send":
        optional["writable"] = bool
    found = check_fields(access, {"host": str, "auth": dict, path_key: str}, optional)
    if not isinstance(access, dict):
        return found
    if other in access:
        found.append(f'access "{other}" is for a {"Directory" if kind == "File" else "File"}; a {kind} needs "{path_key}"')
    if isinstance(access.get("host"), str) and (not access["host"] or any(c.isspace() or c in "@/" for c in access["host"])):
        found.append('access "host" must be a host name or IP address (no user@, no spaces)')
    if isinstance(access.get(path_key), str) and not access[path_key]:
        found.append(f'access "{path_key}" must not be empty')
    found += port_problems(access)
    for key in TIMEOUT_DEFAULTS:
        value = access.get(key)
        if isinstance(value, NUMBER) and not isinstance(value, bool) and value <= 0:
            found.append(f'access "{key}" must be more than 0 seconds')
    auth = access.get("auth")
    if isinstance(auth, dict):
        found += check_fields(auth, {"username": str}, {"password": str, "privateKey": str, "passphrase": str}, label="auth:")
        if "password" not in auth and "privateKey" not in auth:
            found.append('auth needs "password" or "privateKey"')
        if "passphrase" in auth and "privateKey" not in auth:
            found.append('auth "passphrase" goes with "privateKey"')
        username = auth.get("username")
        if isinstance(username, str) and not username:
            found.append('auth "username" must not be empty')
        elif isinstance(username, str) and direction == "mount" and not mountable_username(username):
            found.append(MOUNT_USERNAME)
    return found


MOUNT_USERNAME = 'auth "username" cannot be mounted with sshfs: a login name with none of : @ [ ] / \\ , % or spaces, no leading -'


def mountable_username(username: str) -> bool:
    """Whether sshfs's ``user@host:path`` argument keeps this name apart from the host it must go to."""
    return bool(username) and not username.startswith("-") and not any(c in ":@[]/\\,%" or c.isspace() or ord(c) < 32 for c in username)


@dataclass(frozen=True)
class SshAccess:
    """An SSH connector's access block, checked, with its defaults filled in."""

    host: str
    port: int
    username: str
    password: str | None
    private_key: str | None
    passphrase: str | None
    path: str
    writable: bool
    connect_timeout: float
    handshake_timeout: float

    @classmethod
    def parse(cls, access: dict[str, Any]) -> SshAccess:
        """Access data that passed :func:`problems`."""
        auth = access["auth"]
        timeouts = {key: float(access.get(key, default)) for key, default in TIMEOUT_DEFAULTS.items()}
        return cls(
            host=access["host"].lower().rstrip("."),  # as OpenSSH compares host names
            port=port_of(access, DEFAULT_PORT),
            username=auth["username"],
            password=auth.get("password"),
            private_key=_key_text(auth["privateKey"]) if "privateKey" in auth else None,
            passphrase=auth.get("passphrase"),
            path=access.get("filePath") or access.get("dirPath") or "",
            writable=access.get("writable", False) is True,
            connect_timeout=timeouts["timeout"],
            handshake_timeout=timeouts["bannerTimeout"] + timeouts["authTimeout"],
        )

    def where(self, path: str | None = None) -> str:
        """``user@host:port:path``, for messages (no secret in it)."""
        return f"{self.username}@{self.host}:{self.port}:{self.path if path is None else path}"

    @property
    def connection_key(self) -> tuple[str, int, str, str]:
        """Batches with the same key share one connection; the credentials are part of it, hashed."""
        secret = "\0".join(x or "" for x in (self.password, self.private_key, self.passphrase))
        return (self.host, self.port, self.username, hashlib.sha256(secret.encode()).hexdigest())


def _key_text(key: str) -> str:
    """The key as OpenSSH reads it: one written on one line with literal ``\\n`` gets real newlines."""
    if "\n" not in key.strip() and "\\n" in key:
        key = key.replace("\\n", "\n")
    return key.strip() + "\n"
