"""Moving files and directories over one SFTP channel (coroutines run on the SSH loop).

Files stream to and from disk (asyncssh keeps a bounded number of blocks in flight), so a large
file never sits in memory. A directory's files go a few at a time over the channel. Names that a
server returns are checked before they touch the local disk; a file is uploaded under a
temporary name and renamed into place, so a broken transfer never leaves half a file behind.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from faice.connectors.ssh.access import SshAccess
from faice.connectors.ssh.session import SshError, describe

FILES_IN_FLIGHT = 4
MAX_DEPTH = 64


def _is_dir(attrs: Any) -> bool:
    import asyncssh

    return attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY


async def _guard(access: SshAccess, path: str, step: Awaitable[Any]) -> Any:
    """Await one SFTP step; its failure names the remote path."""
    import asyncssh

    try:
        return await step
    except (asyncssh.Error, OSError) as exc:
        raise SshError(f"{access.where(path)}: {describe(exc)}") from None


async def require(sftp: Any, access: SshAccess, directory: bool) -> None:
    """The access path exists and is a directory (or a file)."""
    if _is_dir(await _guard(access, access.path, sftp.stat(access.path))) != directory:
        raise SshError(f"{access.where()}: " + ("is not a directory" if directory else "is a directory, not a file"))


async def receive_file(sftp: Any, access: SshAccess, destination: Path) -> None:
    await require(sftp, access, directory=False)
    await _guard(access, access.path, sftp.get(access.path, str(destination), follow_symlinks=True))


async def receive_dir(sftp: Any, access: SshAccess, destination: Path, listing: list[Any] | None) -> None:
    await require(sftp, access, directory=True)
    files: list[tuple[str, Path]] = []
    await _collect(sftp, access, access.path, destination, listing, files, 0)
    await _bounded(access, [(remote, lambda r=remote, loc=loc: sftp.get(r, str(loc), follow_symlinks=True)) for remote, loc in files])


async def _collect(sftp: Any, access: SshAccess, remote: str, local: Path, listing: list[Any] | None, files: list[tuple[str, Path]], depth: int) -> None:
    """Make the local directories and list the files to fetch (all of it, or what the listing names)."""
    import asyncssh

    if depth > MAX_DEPTH:
        raise SshError(f"{access.where(remote)}: more than {MAX_DEPTH} directories deep (a link loop?)")
    if listing is None:
        names = await _guard(access, remote, sftp.readdir(remote))
        entries = [(n.filename, n.attrs, None) for n in names if n.filename not in (".", "..")]
    else:
        entries = [(e["basename"], None, e) for e in listing]
    for name, attrs, entry in entries:
        path = posixpath.join(remote, name)
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise SshError(f"{access.where(remote)}: the server listed an impossible file name {name!r}")
        if attrs is None or attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK:
            try:
                attrs = await sftp.stat(path)
            except asyncssh.SFTPNoSuchFile:
                if entry is not None:
                    raise SshError(f"{access.where(path)}: no such file or directory (the listing names it)") from None
                continue  # a link to nothing: nothing to copy
            except asyncssh.SFTPError as exc:
                raise SshError(f"{access.where(path)}: {describe(exc)}") from None
        if _is_dir(attrs):
            (local / name).mkdir()
            await _collect(sftp, access, path, local / name, entry.get("listing") if entry is not None else None, files, depth + 1)
        elif attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
            files.append((path, local / name))


async def _mkdir(sftp: Any, access: SshAccess, path: str) -> None:
    """Make one directory; one already there is fine (as makedirs' exist_ok)."""
    import asyncssh

    try:
        await sftp.mkdir(path)
    except asyncssh.SFTPError as exc:
        if not await sftp.isdir(path):
            raise SshError(f"{access.where(path)}: {describe(exc)}") from None


Step = tuple[str, Callable[[], Awaitable[Any]]]


async def _bounded(access: SshAccess, steps: list[Step]) -> None:
    """Run the steps a few at a time; the first failure is raised after the others stopped."""
    limit = asyncio.Semaphore(FILES_IN_FLIGHT)

    async def one(path: str, step: Callable[[], Awaitable[Any]]) -> None:
        async with limit:
            await _guard(access, path, step())

    tasks = [asyncio.ensure_future(one(path, step)) for path, step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def send_file(sftp: Any, access: SshAccess, source: Path) -> None:
    parent = posixpath.dirname(access.path.rstrip("/"))
    if parent:
        await _guard(access, parent, sftp.makedirs(parent, exist_ok=True))
    await _put(sftp, access, source, access.path.rstrip("/"))


async def _put(sftp: Any, access: SshAccess, source: Path, target: str) -> None:
    """Upload under a temporary name, then rename over ``target``: a broken transfer leaves the old
    file (or none), never half a file. A link is sent as what it points to (faice checked that it
    stays in the output directory)."""
    import asyncssh

    parent, name = posixpath.split(target)
    partial = posixpath.join(parent, f".{name}.faice-{secrets.token_hex(4)}")
    placed = False
    try:
        await sftp.put(str(source), partial, follow_symlinks=True)
        try:
            await sftp.posix_rename(partial, target)
        except asyncssh.SFTPOpUnsupported:
            await _not_a_directory(sftp, access, target)
            await _rename_over(sftp, access, partial, target)
        except asyncssh.SFTPError:
            await _not_a_directory(sftp, access, target)
            raise
        placed = True
    except (asyncssh.Error, OSError) as exc:
        raise SshError(f"{access.where(target)}: {describe(exc)}") from None
    finally:
        if not placed:  # only a failed upload leaves its partial file: no round trip after a good one
            try:
                await sftp.remove(partial)
            except (asyncssh.Error, OSError):
                pass


async def _not_a_directory(sftp: Any, access: SshAccess, target: str) -> None:
    """Why a file cannot go to ``target`` when a directory is there (asked only when the rename failed)."""
    if await sftp.isdir(target):
        raise SshError(f"{access.where(target)}: is a directory on the server")


async def _rename_over(sftp: Any, access: SshAccess, partial: str, target: str) -> None:
    """Plain SFTP rename does not replace: move the old file aside, put the new one in, drop the old."""
    import asyncssh

    if not await sftp.exists(target):
        await sftp.rename(partial, target)
        return
    backup = f"{target}.faice-old-{secrets.token_hex(4)}"
    await sftp.rename(target, backup)
    try:
        await sftp.rename(partial, target)
    except (asyncssh.Error, OSError) as exc:
        try:
            await sftp.rename(backup, target)
        except (asyncssh.Error, OSError):
            raise SshError(f"{access.where(target)}: {describe(exc)} (and the old file could not be put back: it is {backup})") from None
        raise
    try:
        await sftp.remove(backup)
    except (asyncssh.Error, OSError):
        pass  # the new file is in place; an old copy left beside it loses nothing


async def send_dir(sftp: Any, access: SshAccess, source: Path, listing: list[Any] | None) -> None:
    await _guard(access, access.path, sftp.makedirs(access.path, exist_ok=True))
    files: list[Step] = []
    await _send_tree(sftp, access, source, access.path, listing, files)
    await _bounded(access, files)


async def _send_tree(sftp: Any, access: SshAccess, local: Path, remote: str, listing: list[Any] | None, files: list[Step]) -> None:
    """Make the remote directories and links; list the files to upload. Links are sent as links, never followed."""
    import asyncssh

    if listing is None:
        entries = [(entry.name, None) for entry in sorted(os.scandir(local), key=lambda e: e.name)]
    else:
        entries = [(e["basename"], e) for e in listing]
    for name, entry in entries:
        path, here = posixpath.join(remote, name), local / name
        if here.is_symlink():
            target = os.readlink(here)
            try:
                if await sftp.lexists(path):
                    await sftp.remove(path)
                await sftp.symlink(target, path)
            except asyncssh.SFTPError as exc:
                raise SshError(f"{access.where(path)}: cannot make the link: {describe(exc)}") from None
        elif here.is_dir():
            await _mkdir(sftp, access, path)  # its parent was made just before: one request, not one per level
            await _send_tree(sftp, access, here, path, entry.get("listing") if entry is not None else None, files)
        elif here.is_file():
            files.append((path, lambda h=here, p=path: _put(sftp, access, h, p)))
        elif entry is not None:
            raise SshError(f"{access.where(path)}: the listing names {name}, which the tool did not make")
