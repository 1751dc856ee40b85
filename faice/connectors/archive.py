"""Unpacking a received archive into an input directory, refusing members that would escape it.

Shared by the ``*-archive`` connectors. Every member is checked before anything is written: an
absolute path, a ``..`` component, a link (symbolic or hard) or a device is refused, naming the
member, and the directory stays empty.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind

if TYPE_CHECKING:
    import tarfile
    import zipfile

ARCHIVE_FORMATS = ("zip", "tar", "gztar", "bztar", "xztar")
TAR_MODES = {"tar": "r:", "gztar": "r:gz", "bztar": "r:bz2", "xztar": "r:xz"}


class ArchiveConnector(Connector):
    """A ``*-archive`` connector: receives a Directory as one archive (``archiveFormat``), which
    :meth:`fetch` downloads and this class unpacks."""

    def access_problems(self, access: Any, extra: dict[str, Any]) -> list[str]:
        """The transport's own problems with ``access``, which also carries the ``extra`` fields."""
        raise NotImplementedError

    def fetch(self, access: dict[str, Any], archive: Path, context: Context) -> str:
        """Download the archive to ``archive``; where it came from, for messages (no credentials)."""
        raise NotImplementedError

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        if direction != "receive" or kind != "Directory":
            return [f"{self.name} can only receive directories"]
        problems = self.access_problems(access, {"archiveFormat": str})
        if not problems and access["archiveFormat"] not in ARCHIVE_FORMATS:
            problems.append(f'access "archiveFormat" must be one of {", ".join(ARCHIVE_FORMATS)}')
        return problems

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        with tempfile.TemporaryDirectory(prefix="faice-archive-") as tmp:
            archive = Path(tmp) / "archive"
            where = self.fetch(access, archive, context)
            unpack(archive, destination, access["archiveFormat"], where)


def _path_problem(name: str) -> str | None:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "has a .. component"
    if "\0" in name:
        return "has a NUL character in its name"
    return None


def _tar_problem(member: tarfile.TarInfo) -> str | None:
    if member.issym() or member.islnk():
        kind = f"is a link (to {member.linkname!r})"
    elif not (member.isfile() or member.isdir()):
        kind = "is a device, pipe or other special file"
    else:
        kind = None
    return _path_problem(member.name) or kind


def _zip_problem(info: zipfile.ZipInfo) -> str | None:
    return _path_problem(info.filename) or ("is a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else None)


def unpack(archive: Path, destination: Path, archive_format: str, where: str) -> None:
    """Unpack ``archive`` into the existing directory ``destination``; ``where`` names the source in errors."""
    import tarfile
    import zipfile

    try:
        if archive_format == "zip":
            with zipfile.ZipFile(archive) as handle:
                members = handle.infolist()
                _refuse(where, [(m.filename, _zip_problem(m)) for m in members])
                handle.extractall(destination)
            return
        with tarfile.open(archive, TAR_MODES[archive_format]) as handle:
            members = handle.getmembers()
            _refuse(where, [(m.name, _tar_problem(m)) for m in members])
            if hasattr(tarfile, "data_filter"):
                handle.extractall(destination, filter="data")
            else:  # Python without extraction filters: the checks above already refused every link
                handle.extractall(destination)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ConnectorError(f"{where}: cannot unpack as {archive_format}: {reason}") from None


def _refuse(where: str, checked: list[tuple[str, str | None]]) -> None:
    bad = [(name, problem) for name, problem in checked if problem]
    if bad:
        name, problem = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ConnectorError(f"{where}: archive member {name!r} {problem}{more}; nothing was unpacked")
