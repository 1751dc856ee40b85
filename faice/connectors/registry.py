"""Finding the connector for a RED ``connector.command``.

Plugins are entry points in the ``faice.connectors`` group. faice's built-ins are registered
there too and always keep their names; a third-party package adds new commands by being
installed. Any other command is looked up on ``PATH`` as a RED Connector CLI 1 program. A
command found in neither is unresolvable on this machine.
"""

from __future__ import annotations

import shutil
from functools import cache
from importlib import import_module
from typing import NamedTuple

from faice.connectors.base import Connector

GROUP = "faice.connectors"


#: faice's own connectors, exactly as pyproject.toml registers them (a test keeps the two equal).
#: Resolving these needs no scan of installed packages' metadata (about 40 ms at start-up).
BUILTINS = {
    "red-connector-http": "faice.connectors.http:HttpConnector",
    "red-connector-http-archive": "faice.connectors.http:HttpArchiveConnector",
    "red-connector-local": "faice.connectors.local:LocalConnector",
    "red-connector-ssh": "faice.connectors.ssh:SshConnector",
    "red-connector-ftp": "faice.connectors.ftp:FtpConnector",
    "red-connector-ftp-archive": "faice.connectors.ftp:FtpArchiveConnector",
}


class PluginRef(NamedTuple):
    """An entry point's name and ``module:Class`` value, loadable without importlib.metadata."""

    name: str
    value: str

    def load(self) -> type:
        module, _, attribute = self.value.partition(":")
        return getattr(import_module(module), attribute)


@cache
def plugin_entry_points() -> dict[str, PluginRef]:
    """Every installed plugin; a built-in name always means the built-in."""
    from importlib.metadata import entry_points

    found = {ep.name: PluginRef(ep.name, ep.value) for ep in entry_points(group=GROUP)}
    return {**found, **{name: PluginRef(name, value) for name, value in BUILTINS.items()}}


def _entry_point(command: str) -> PluginRef | None:
    if command in BUILTINS:
        return PluginRef(command, BUILTINS[command])
    return plugin_entry_points().get(command)


class Resolution(NamedTuple):
    """What a connector command resolves to here: a plugin, a program on PATH, or nothing."""

    command: str
    plugin: str | None = None  # entry point value, e.g. "faice.connectors.http:HttpConnector"
    executable: str | None = None  # absolute path of a Connector CLI 1 program

    @property
    def found(self) -> bool:
        return self.plugin is not None or self.executable is not None


@cache
def resolve(command: str) -> Resolution:
    entry = _entry_point(command)
    if entry is not None:
        return Resolution(command, plugin=entry.value)
    return Resolution(command, executable=shutil.which(command))


@cache
def plugin(command: str) -> Connector | None:
    """The loaded plugin for ``command``, or None when it is not a plugin."""
    entry = _entry_point(command)
    if entry is None:
        return None
    cls = entry.load()
    instance = cls()
    if not isinstance(instance, Connector):
        raise TypeError(f"connector plugin {entry.value} does not implement faice.connectors.Connector")
    return instance


@cache
def connector(command: str) -> Connector:
    """The connector that handles ``command``: a plugin, or a Connector CLI 1 program on PATH."""
    from faice.connectors.base import ConnectorError

    found = plugin(command)
    if found is not None:
        return found
    executable = resolve(command).executable
    if executable is None:
        raise ConnectorError(f'connector "{command}" is not installed here (no faice plugin, not on PATH)')
    from faice.connectors.program import ProgramConnector

    return ProgramConnector(command, executable)
