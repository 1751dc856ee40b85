"""Any other connector command: a RED Connector CLI 1 program on ``PATH``, run on the host.

The access data goes to the program in a temporary file readable only by the user (never in
argv), and a listing likewise, as ``--listing=FILE`` after the positional arguments. Exit code
0 is success; otherwise the program's stderr (masked by the caller) is the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind, process_environment

ACCEPTED_CLI_VERSIONS = ("1", "0.1")
SUBCOMMAND = {("receive", "File"): "receive-file", ("receive", "Directory"): "receive-dir", ("send", "File"): "send-file", ("send", "Directory"): "send-dir",
              ("mount", "Directory"): "mount-dir"}


@contextmanager
def _json_file(data: Any, prefix: str) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        yield path
    finally:
        os.unlink(path)


class ProgramConnector(Connector):
    def __init__(self, command: str, executable: str) -> None:
        self.name = command
        self.executable = executable
        self._version_checked = False

    def _run(self, args: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL, env=process_environment())
        except subprocess.TimeoutExpired:
            raise ConnectorError(f"{self.name} {args[0]} did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise ConnectorError(f"{self.name}: cannot run {self.executable}: {exc.strerror or exc}") from None

    def _fail(self, action: str, result: subprocess.CompletedProcess[str]) -> ConnectorError:
        code = result.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[-1] if message else "no message"
        return ConnectorError(f"{self.name} {action} {how}: {detail}")

    def check_version(self, timeout: float = 30) -> None:
        if self._version_checked:
            return
        result = self._run(["cli-version"], timeout)
        version = result.stdout.strip()
        if result.returncode != 0:
            raise self._fail("cli-version", result)
        if version not in ACCEPTED_CLI_VERSIONS:
            raise ConnectorError(f"{self.name} speaks RED Connector CLI {version!r}; faice needs version 1")
        self._version_checked = True

    def validate_remote(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None, timeout: float = 60) -> None:
        """The program's own ``*-validate`` subcommand (run before any container starts)."""
        self.check_version()
        action = SUBCOMMAND[(direction, kind)] + "-validate"
        with _json_file(access, "faice-access-") as access_file, _listing_arg(None if direction == "mount" else listing) as extra:
            result = self._run([action, access_file, *extra], timeout)
        if result.returncode != 0:
            raise self._fail(action, result)

    def _transfer(self, direction: Direction, kind: Kind, access: dict[str, Any], path: Path, listing: list[Any] | None, context: Context) -> None:
        self.check_version()
        action = SUBCOMMAND[(direction, kind)]
        with _json_file(access, "faice-access-") as access_file, _listing_arg(listing if kind == "Directory" else None) as extra:
            result = self._run([action, access_file, str(path), *extra], context.timeout, cwd=path.parent)
        if result.returncode != 0:
            raise self._fail(action, result)

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        self._transfer("receive", "File", access, destination, None, context)

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        self._transfer("receive", "Directory", access, destination, listing, context)

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        self._transfer("send", "File", access, source, None, context)

    def send_dir(self, access: dict[str, Any], source: Path, listing: list[Any] | None, context: Context) -> None:
        self._transfer("send", "Directory", access, source, listing, context)

    def mount_dir(self, access: dict[str, Any], mountpoint: Path, context: Context) -> None:
        """``mount-dir`` runs on this machine too: the program mounts here, faice binds it into the container."""
        self._transfer("mount", "Directory", access, mountpoint, None, context)

    def umount_dir(self, mountpoint: Path) -> None:
        result = self._run(["umount-dir", str(mountpoint)], 60, cwd=mountpoint.parent)
        if result.returncode != 0:
            raise self._fail("umount-dir", result)


@contextmanager
def _listing_arg(listing: list[Any] | None) -> Iterator[list[str]]:
    if listing is None:
        yield []
        return
    with _json_file(listing, "faice-listing-") as path:
        yield [f"--listing={path}"]
