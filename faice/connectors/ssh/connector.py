"""``red-connector-ssh``: files and directories over SFTP, and ``mount: true`` through sshfs.

Runs on the host, like every faice connector, so a RED file that names it runs unchanged with
nothing installed in the image. See :mod:`faice.connectors.ssh.access` for the access fields,
:mod:`.session` for the shared connections, :mod:`.hostkeys` for trust on first use. Only the
access checks are imported up front: ``faice validate`` needs no event loop.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind
from faice.connectors.ssh import access as ssh_access
from faice.connectors.ssh.access import SshAccess

T = TypeVar("T")


def _over_sftp(access: dict[str, Any], context: Context, step: Callable[[Any, SshAccess], Awaitable[T]]) -> T:
    from faice.connectors.ssh import session

    parsed = SshAccess.parse(access)

    async def go() -> T:
        async with session.POOL.sftp(parsed, context.public_network_only) as sftp:
            return await step(sftp, parsed)

    return session.run(go, context.cancelled)


class SshConnector(Connector):
    name = "red-connector-ssh"

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        return ssh_access.problems(access, direction, kind)

    def default_basename(self, access: dict[str, Any]) -> str | None:
        path = access.get("filePath") or access.get("dirPath")
        if not isinstance(path, str) or "{{" in path:
            return None
        return posixpath.basename(path.rstrip("/")) or None

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        from faice.connectors.ssh import transfer

        _over_sftp(access, context, lambda sftp, a: transfer.receive_file(sftp, a, destination))

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        from faice.connectors.ssh import transfer

        _over_sftp(access, context, lambda sftp, a: transfer.receive_dir(sftp, a, destination, listing))

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        from faice.connectors.ssh import transfer

        _over_sftp(access, context, lambda sftp, a: transfer.send_file(sftp, a, source))

    def send_dir(self, access: dict[str, Any], source: Path, listing: list[Any] | None, context: Context) -> None:
        from faice.connectors.ssh import transfer

        _over_sftp(access, context, lambda sftp, a: transfer.send_dir(sftp, a, source, listing))

    def mount_unavailable(self) -> str | None:
        from faice.connectors.ssh import mount

        return mount.unavailable()

    def mount_dir(self, access: dict[str, Any], mountpoint: Path, context: Context) -> None:
        from faice.connectors.ssh import mount, session, transfer

        parsed = SshAccess.parse(access)

        async def check() -> session.Connection:
            """Host key, credentials and the directory, checked by faice's own client first."""
            async with session.POOL.sftp(parsed, context.public_network_only) as sftp:
                await transfer.require(sftp, parsed, directory=True)
            return await session.POOL.connection(parsed, context.public_network_only)

        connection = session.run(check, context.cancelled)
        mount.mount(parsed, connection, mountpoint, context.owner)

    def umount_dir(self, mountpoint: Path) -> None:
        from faice.connectors import fuse

        problem = fuse.unmount(mountpoint)
        if problem:
            raise ConnectorError(problem)
