"""The one interface every connector implements, built-in or installed by a third party.

A connector moves one input into the batch's work directory, or one output to where the RED
file says. Plugins are discovered through the ``faice.connectors`` entry-point group: the
entry-point name is the RED ``connector.command`` it answers to, the value a class
implementing :class:`Connector`. Any other command is run as a RED Connector CLI 1 program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Direction = Literal["receive", "send"]
Kind = Literal["File", "Directory"]


class ConnectorError(Exception):
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

    def supports(self, direction: Direction, kind: Kind) -> bool:
        method = {("receive", "File"): "receive_file", ("receive", "Directory"): "receive_dir",
                  ("send", "File"): "send_file", ("send", "Directory"): "send_dir"}[(direction, kind)]
        return getattr(type(self), method) is not getattr(Connector, method)


def check_fields(access: Any, required: dict[str, type | tuple[type, ...]], optional: dict[str, type | tuple[type, ...]]) -> list[str]:
    """Small, fast structural check of an access mapping (no values echoed: they may be secret)."""
    if not isinstance(access, dict):
        return ["access must be a mapping"]
    problems = [f'access needs "{key}"' for key in required if key not in access]
    known = {**required, **optional}
    for key, value in access.items():
        if key not in known:
            problems.append(f'access has unknown key "{key}"; allowed: {", ".join(sorted(known))}')
        elif not isinstance(value, known[key]) or (known[key] is not bool and isinstance(value, bool)):
            expected = known[key]
            names = "/".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
            problems.append(f'access "{key}" must be of type {names}')
    return problems
