"""The one interface every connector implements, built-in or installed by a third party.

A connector moves one input into the batch's work directory, or one output to where the RED
file says. Plugins are discovered through the ``faice.connectors`` entry-point group: the
entry-point name is the RED ``connector.command`` it answers to, the value a class
implementing :class:`Connector`. Any other command is run as a RED Connector CLI 1 program.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faice.errors import FaiceError

#: ``mount``: an input Directory with ``mount: true``, made available in place instead of copied
Direction = Literal["receive", "send", "mount"]
Kind = Literal["File", "Directory"]


class ConnectorError(FaiceError):
    """A connector could not do its job; the message is shown to the user (no secrets in it)."""


@dataclass(frozen=True)
class Context:
    """What a connector may need besides the access data."""

    #: directory that relative local paths are relative to (the RED file's directory)
    base_dir: Path
    #: seconds a single network operation may take
    timeout: float = 300.0
    #: reach only hosts on the public internet, with no credentials or proxies of this machine
    #: (.netrc, environment) and no redirects: for non-admin users of faice serve, whose
    #: connectors run on the server's machine
    public_network_only: bool = False
    #: set when the run is cancelled: a long transfer may stop early (raising ConnectorError)
    cancelled: threading.Event | None = None
    #: "uid:gid" of the user the container runs as (who a mount must present its files to)
    owner: str | None = None


class Connector:
    """Base class of connector plugins. ``access`` never has protected ``_`` prefixes here.

    Methods raise :class:`ConnectorError` with a message fit for the user (no credentials).
    """

    #: the RED ``connector.command`` this plugin answers to
    name: str = ""

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        """Problems with ``access`` for this use, without touching the network (empty when fine)."""
        return []

    def default_basename(self, access: dict[str, Any]) -> str | None:
        """The file name an input gets when the RED file names none (None: use the input key)."""
        return None

    def local_source(self, access: dict[str, Any], context: Context) -> Path | None:
        """A path on this machine holding the input already, to mount instead of copying."""
        return None

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        raise ConnectorError(f"{self.name} cannot receive files")

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        raise ConnectorError(f"{self.name} cannot receive directories")

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        raise ConnectorError(f"{self.name} cannot send files")

    def send_dir(self, access: dict[str, Any], source: Path, listing: list[Any] | None, context: Context) -> None:
        raise ConnectorError(f"{self.name} cannot send directories")

    def mount_dir(self, access: dict[str, Any], mountpoint: Path, context: Context) -> None:
        """Make the remote directory appear at the existing, empty ``mountpoint`` (on this machine)."""
        raise ConnectorError(f"{self.name} cannot mount directories")

    def umount_dir(self, mountpoint: Path) -> None:
        """Undo :meth:`mount_dir`; faice checks afterwards and detaches what is still mounted."""

    def mount_unavailable(self) -> str | None:
        """Why this machine cannot mount for this connector now (None: it can), said before anything runs."""
        return None

    def supports(self, direction: Direction, kind: Kind) -> bool:
        """Whether this connector implements the use; data already on this machine mounts where it is."""
        methods = {("receive", "File"): ("receive_file",), ("receive", "Directory"): ("receive_dir",),
                   ("send", "File"): ("send_file",), ("send", "Directory"): ("send_dir",),
                   ("mount", "Directory"): ("mount_dir", "local_source")}.get((direction, kind), ())
        return any(getattr(type(self), method) is not getattr(Connector, method) for method in methods)


def check_fields(access: Any, required: dict[str, type | tuple[type, ...]], optional: dict[str, type | tuple[type, ...]], label: str = "access") -> list[str]:
    """Small, fast structural check of an access mapping (no values echoed: they may be secret);
    ``label`` names it in the messages (``auth:`` for the mapping under ``auth``)."""
    if not isinstance(access, dict):
        return [f"{label} must be a mapping"]
    problems = [f'{label} needs "{key}"' for key in required if key not in access]
    known = {**required, **optional}
    for key, value in access.items():
        if key not in known:
            problems.append(f'{label} has unknown key "{key}"; allowed: {", ".join(sorted(known))}')
        elif not isinstance(value, known[key]) or (known[key] is not bool and isinstance(value, bool)):
            expected = known[key]
            names = "/".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
            problems.append(f'{label} "{key}" must be of type {names}')
    return problems


def port_problems(access: dict[str, Any], field: str = "port") -> list[str]:
    """A TCP port given as an integer or, as filled ``{{variables}}`` are, a string of digits."""
    if field not in access:
        return []
    value = access[field]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.isdigit()):
        return [f'access "{field}" must be a port number (an integer, or a string of digits)']
    if not 0 < int(value) < 65536:
        return [f'access "{field}" must be between 1 and 65535']
    return []


def port_of(access: dict[str, Any], default: int, field: str = "port") -> int:
    """The port of access data that passed :func:`port_problems`."""
    return int(access.get(field, default))


def process_environment(**extra: str) -> dict[str, str]:
    """The environment for a program a connector starts: faice's own without the values of
    ``{{variables}}`` (``FAICE_VAR_*``: secrets that must not sit in another process's environ)."""
    from faice.red.variables import ENV_PREFIX

    return {**{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}, **extra}
