"""``red-connector-local``: files and directories on this machine, for local development.

Access: ``path`` (required; relative paths are relative to the directory of the RED file, or
the current directory when the RED file came from stdin or a URL). Inputs are mounted into the
container read-only where they are, without copying. When sending, the destination must not
exist unless ``overwrite: true``.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path
from typing import Any

from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind, check_fields


def _resolve(access: dict[str, Any], context: Context) -> Path:
    return (context.base_dir / os.path.expanduser(access["path"])).resolve()


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

    def local_source(self, access: dict[str, Any], context: Context) -> Path | None:
        path = _resolve(access, context)
        if not path.exists():
            raise ConnectorError(f"{access['path']}: no such file or directory (looked in {context.base_dir})")
        return path

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        source = self.local_source(access, context)
        assert source is not None
        if not source.is_file():
            raise ConnectorError(f"{access['path']} is not a file")
        shutil.copyfile(source, destination)

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        source = self.local_source(access, context)
        assert source is not None
        if not source.is_dir():
            raise ConnectorError(f"{access['path']} is not a directory")
        shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)

    def _target(self, access: dict[str, Any], context: Context) -> Path:
        target = _resolve(access, context)
        if target.exists() and not access.get("overwrite", False):
            raise ConnectorError(f"{access['path']} exists already (set overwrite: true to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        target = self._target(access, context)
        if target.is_dir():
            raise ConnectorError(f"{access['path']} is a directory")
        tmp = target.with_name(f".{target.name}.faice-{os.getpid()}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def send_dir(self, access: dict[str, Any], source: Path, listing: list[Any] | None, context: Context) -> None:
        target = self._target(access, context)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        shutil.copytree(source, target, symlinks=True)  # a link the tool made is copied as a link, never followed
