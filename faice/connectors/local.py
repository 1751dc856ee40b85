"""``red-connector-local``: files and directories on this machine, for local development.

Access: ``path`` (required; relative paths are relative to the directory of the RED file, or
the current directory when the RED file came from stdin or a URL). When sending,
``overwrite: true`` allows replacing an existing destination.
"""

from __future__ import annotations

import posixpath
from typing import Any

from faice.connectors.base import Connector, Direction, Kind, check_fields


class LocalConnector(Connector):
    name = "red-connector-local"

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        problems = check_fields(access, {"path": str}, {"overwrite": bool})
        if not problems and not access["path"]:
            problems.append('access "path" must not be empty')
        return problems

    def default_basename(self, access: dict[str, Any]) -> str | None:
        path = access.get("path")
        if not isinstance(path, str):
            return None
        return posixpath.basename(path.rstrip("/")) or None
