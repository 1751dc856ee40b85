"""Outputs over the API (faice extensions): what a batch recorded, one File's bytes (HTTP ranges
too), and a Directory or a whole experiment as a zip streamed while it is written.

Only what the batch recorded when it ended is served, and only as it was: a recorded path must
resolve (links followed) inside the experiment's output set (:func:`faice.state.cleanup.outputs_of`,
so never a link a tool planted to elsewhere), a File must still be a regular file of the recorded
size (the file opened is the one checked: same device and inode), a Directory must still hold as
many bytes. Anything else is refused with the reason (403, 409, 410), never answered with other
bytes. Answers never show a host path: a file's name and the URL path of its download instead.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
import zipfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from faice.server.errors import BadParameter, Changed, Gone, NotFound, Refused, Unsatisfiable
from faice.server.streaming import CHUNK, CutShort, send
from faice.state.cleanup import MARKER, outputs_of
from faice.state.store import FINAL_STATES, BatchRow, Store

log = logging.getLogger(__name__)

RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --- what a batch recorded ------------------------------------------------------------------------


def url_of(batch_id: str, key: str, index: int | None = None) -> str:
    return f"/batches/{batch_id}/outputs/{quote(key, safe='')}" + ("" if index is None else f"/{index}")


def describe(batch_id: str, key: str, value: Any, index: int | None = None) -> Any:
    """One recorded output as the API shows it: ``{class, name, size, checksum, url}``; an
    optional output that matched nothing is null, an array output a list."""
    if isinstance(value, list):
        return [describe(batch_id, key, item, i) for i, item in enumerate(value)]
    if not isinstance(value, dict) or not value.get("path"):
        return None
    cls = value.get("class")
    return {"class": "File" if cls in ("stdout", "stderr") else cls, "name": os.path.basename(str(value["path"]).rstrip("/")),
            "size": value.get("size"), "checksum": value.get("checksum"), "url": url_of(batch_id, key, index)}


def listing(row: BatchRow) -> dict[str, Any]:
    return {key: describe(row.id, key, value) for key, value in sorted(row.outputs.items())}


def recorded(row: BatchRow, key: str, index: str | None) -> dict[str, Any]:
    """The recorded output ``key`` (item ``index`` of an array output) of the batch."""
    if key not in row.outputs:
        later = "" if row.state in FINAL_STATES else f" (yet: it is {row.state}; outputs are recorded when it ends)"
        raise NotFound(f'batch "{row.id}" recorded no output "{key}"{later}')
    value = row.outputs[key]
    if isinstance(value, list):
        if index is None:
            raise BadParameter(f'output "{key}" is an array of {len(value)}: fetch {url_of(row.id, key)}/INDEX (0 to {len(value) - 1})')
        if not (index.isascii() and index.isdigit()):
            raise BadParameter(f'the index of output "{key}" must be an integer >= 0.')
        if int(index) >= len(value):
            raise NotFound(f'output "{key}" of batch "{row.id}" has {len(value)} items, no item {int(index)}')
        value = value[int(index)]
    elif index is not None:
        raise NotFound(f'output "{key}" of batch "{row.id}" is not an array')
    if not isinstance(value, dict) or not value.get("path"):
        raise NotFound(f'output "{key}" of batch "{row.id}" is optional and matched nothing')
    return value


# --- checking a recorded path ---------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A regular file checked against its record, open; exactly ``size`` bytes are sent."""

    handle: BinaryIO
    size: int
    mtime_ns: int
    mode: int


def root_of(store: Store, experiment_id: str) -> str:
    """The experiment's output set, resolved (links followed)."""
    record = store.experiment(experiment_id, red=False)
    root = outputs_of(store, record) if record is not None else None
    if root is None:
        raise Gone(f'the outputs of experiment "{experiment_id}" are no longer there (removed, or moved by a later run)')
    return os.path.realpath(root)


def resolved(root: str, path: str, what: str, directory: bool = False) -> str:
    """``path`` with links followed, if it is inside ``root`` (a Directory output may be ``root``
    itself: CWL's glob ".")."""
    if not os.path.isabs(path):
        raise Gone(f"{what} was recorded without its directory")
    real = os.path.realpath(path)
    if not (real.startswith(root + os.sep) or (directory and real == root)):
        raise Refused(f"{what} leads out of its experiment's outputs (a link?): it is not served")
    return real


def open_file(real: str, size: int | None, what: str) -> Source:
    """The regular file at ``real`` (no link), opened, if it still has ``size`` bytes."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))  # a FIFO planted there does not block
    except FileNotFoundError:
        raise Gone(f"{what} is no longer there (removed since it was recorded)") from None
    except OSError as exc:
        raise Changed(f"{what} can no longer be read as a file ({exc.strerror})") from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise Changed(f"{what} is no longer a file")
        if size is not None and found.st_size != size:
            raise Changed(f"{what} changed since it was recorded ({size} bytes then, {found.st_size} now): it is not served")
        os.set_blocking(fd, True)
        return Source(os.fdopen(fd, "rb"), found.st_size, found.st_mtime_ns, found.st_mode)
    except BaseException:
        os.close(fd)
        raise


def checked_file(store: Store, row: BatchRow, value: dict[str, Any], what: str) -> Source:
    return open_file(resolved(root_of(store, row.experiment_id), str(value["path"]), what), value.get("size"), what)


def checked_directory(root: str, value: dict[str, Any], what: str) -> str:
    from faice.runner.outputs import tree_size

    real = resolved(root, str(value["path"]), what, directory=True)
    if not os.path.isdir(real):
        raise Gone(f"{what} is no longer there (removed since it was recorded)")
    size = value.get("size")
    if size is not None and (now := tree_size(Path(real))) != size:
        raise Changed(f"{what} changed since it was recorded ({size} bytes then, {now} now): it is not served")
    return real


# --- one file, or a range of it ---------------------------------------------------------------------


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks for; None: the whole file (no header, or
    one this server does not take: several ranges, another unit, nonsense — RFC 9110 lets a server
    ignore those). A range that starts beyond the end raises :class:`Unsatisfiable`."""
    found = RANGE.match(header or "")
    if found is None or (not found[1] and not found[2]):
        return None
    unsatisfiable = Unsatisfiable(f'the range "{header}" lies beyond the end of the file ({size} bytes)', size)
    if found[1]:
        start = int(found[1])
        end = int(found[2]) if found[2] else size - 1
        if found[2] and end < start:
            return None  # not a valid range: ignored
        if start >= size:
            raise unsatisfiable
        return start, min(end, size - 1)
    suffix = int(found[2])
    if suffix == 0 or size == 0:
        raise unsatisfiable
    return max(0, size - suffix), size - 1


def content_disposition(name: str) -> str:
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "output"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- zips -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One entry of a zip: a file to open when its turn comes, or a directory (``real`` None)."""

    name: str
    real: str | None = None
    size: int | None = None  # a File output's recorded size; None: a file inside a Directory output


class _Pipe:
    """What zipfile writes, kept until the generator hands it on (zipfile sees a stream it cannot
    seek, so it writes data descriptors and never goes back)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.buffered = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.buffered += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        return data


def zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    return max(ZIP_EPOCH, time.localtime(mtime)[:6])  # type: ignore[return-value]


def zip_stream(members: Iterable[Member]) -> Generator[bytes, None, None]:
    """A zip of ``members``, written while it is sent: at most one chunk of it is held in memory.
    A file that vanished or changed after the answer began breaks the answer off (the client sees
    a cut connection, never a zip with other bytes)."""
    pipe = _Pipe()
    names: set[str] = set()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:  # type: ignore[arg-type]
        for member in members:
            if member.name in names:
                continue  # a File output inside a Directory output of the same batch: once
            names.add(member.name)
            if member.real is None:
                info = zipfile.ZipInfo(member.name.rstrip("/") + "/", ZIP_EPOCH)
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                archive.writestr(info, b"")
                continue
            try:
                source = open_file(member.real, member.size, f'"{member.name}"')
            except (Gone, Changed) as exc:
                log.warning("a zip of outputs was broken off: %s", exc)
                raise CutShort(str(exc)) from None
            info = zipfile.ZipInfo(member.name, zip_time(source.mtime_ns / 1e9))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | (source.mode & 0o777)) << 16
            info.file_size = source.size
            with archive.open(info, "w") as target:
                for data in send(source.handle, 0, source.size):
                    target.write(data)
                    if pipe.buffered >= CHUNK:
                        yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def tree_members(real: str, prefix: str) -> Iterator[Member]:
    """A directory's files and folders under ``prefix``, sorted; links (to files or folders) are
    left out, never followed, and so is faice's marker file."""
    yield Member(prefix + "/")
    for top, folders, files in os.walk(real, followlinks=False):
        folders[:] = sorted(f for f in folders if not os.path.islink(os.path.join(top, f)))
        relative = os.path.relpath(top, real)
        inner = prefix if relative == "." else f"{prefix}/{Path(relative).as_posix()}"
        if relative != ".":
            yield Member(inner + "/")
        for name in sorted(files):
            path = os.path.join(top, name)
            if os.path.islink(path) or (relative == "." and name == MARKER) or not os.path.isfile(path):
                continue
            yield Member(f"{inner}/{name}", path)


def directory_members(store: Store, row: BatchRow, value: dict[str, Any], what: str) -> tuple[str, Iterator[Member]]:
    """A Directory output's zip members (checked now) and its name."""
    real = checked_directory(root_of(store, row.experiment_id), value, what)
    name = os.path.basename(str(value["path"]).rstrip("/")) or "output"
    return name, tree_members(real, name)


def experiment_members(store: Store, experiment_id: str, rows: list[BatchRow]) -> list[Member]:
    """Every recorded output of every batch, under ``batch_N/`` as it lies in the batch's output
    directory; each checked before the answer begins (a problem is answered, not streamed)."""
    from faice.runner.batch import output_dir
    from faice.runner.outputs import each_recorded

    root = root_of(store, experiment_id)
    members: list[Member] = []
    for row in rows:
        batch_dir = os.path.realpath(output_dir(Path(root), len(rows), row.index))
        prefix = f"batch_{row.index}"
        members.append(Member(prefix + "/"))
        for key, i, item in each_recorded(dict(sorted(row.outputs.items()))):
            if not item.get("path"):
                continue
            what = f'output "{key}"' + (f" item {i}" if i is not None else "") + f" of batch {row.index}"
            directory = item.get("class") == "Directory"
            real = checked_directory(root, item, what) if directory else resolved(root, str(item["path"]), what)
            relative = os.path.relpath(real, batch_dir)
            inner = f"{prefix}/{Path(relative).as_posix()}" if not relative.startswith("..") else f"{prefix}/{os.path.basename(real)}"
            if directory:
                members += list(tree_members(real, inner.removesuffix("/.")))
            else:
                open_file(real, item.get("size"), what).handle.close()  # checked now; opened again when its turn comes
                members.append(Member(inner, real, item.get("size")))
    return members
