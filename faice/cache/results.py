"""Cached results, stored by content: a batch's whole output directory and its captured streams.

Files are blobs named by their SHA-256 under ``CACHE/objects/ab/abcd…`` (read-only, shared by
every entry that holds the same bytes); an entry, one row of the state file per key, lists its
tree (directories, files with their hash, size and executable bit, links with their target) and
its streams. A hit is served only after every blob it needs is read and hashed again: an entry
whose blob was changed or deleted is dropped and its batch runs. Into the output directory a
blob is hard-linked when the file was one everyone may read and nobody executes (read-only then:
change a copy; every output linked to it is the same file), else reflinked where the file system
can, else copied with its mode; under sudo it is copied, so that the outputs belong to the user
who ran faice.

``CACHE`` is ``$FAICE_CACHE_DIR``, else ``cache`` beside the state file. The directory also
holds ``secret``, the key of the fingerprints that stand in the key parts for the values of
access fields and environment variables: comparable, never readable.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from faice.cache.content import BLOCK, file_sha256
from faice.state.cache_tables import CacheEntry
from faice.state.cleanup import MARKER
from faice.state.store import Store

#: the Linux ioctl that makes a file share another's blocks (btrfs, XFS, ...)
FICLONE = 0x40049409
STREAMS = ("stdout", "stderr")


class NotCacheable(Exception):
    """A result the cache cannot hold as it is (a fifo or socket in the outputs)."""


def cache_dir(store: Store) -> Path:
    return Path(os.environ["FAICE_CACHE_DIR"]) if os.environ.get("FAICE_CACHE_DIR") else store.path.parent / "cache"


class Lookup(NamedTuple):
    """An entry found intact, or none; ``dropped``: why one was found damaged and dropped."""

    entry: CacheEntry | None
    dropped: str | None = None


class Restored(NamedTuple):
    """An entry served into an output directory: where it came from."""

    key: str
    batch_id: str | None


class ResultCache:
    """The blobs and entries of one cache directory, for any number of threads."""

    def __init__(self, store: Store, root: Path | None = None) -> None:
        self.store = store
        self.root = root or cache_dir(store)
        self.objects = self.root / "objects"
        self._secret: bytes | None = None

    # --- fingerprints ----------------------------------------------------------------------------

    def fingerprint(self, value: Any) -> str:
        """An HMAC of ``value`` under this cache's secret: equal values, equal fingerprints."""
        if self._secret is None:
            self._secret = self._load_secret()
        return hmac.new(self._secret, repr(value).encode(), hashlib.sha256).hexdigest()[:32]

    def _load_secret(self) -> bytes:
        """The cache's secret, made once: written whole under a temporary name and linked into
        place, so that a process or thread that reads it never sees it half written (a reader
        that got an empty key would fingerprint everything differently: every batch a miss)."""
        path = self.root / "secret"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = os.urandom(32)
        temporary = self.root / f"secret.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(fresh)
            os.link(temporary, path)
        except FileExistsError:  # another process or thread made it first
            return path.read_bytes()
        finally:
            temporary.unlink(missing_ok=True)
        return fresh

    # --- storing ---------------------------------------------------------------------------------

    def save(self, key: str, parts: dict[str, Any], outdir: Path, streams: dict[str, Path], batch_id: str) -> int:
        """Store a succeeded batch's output directory and captured streams under ``key``; the bytes it holds."""
        with self._locked(shared=True):  # a sweep waits: blobs saved but not yet in an entry are not its to take
            tree = self._store_tree(outdir, "")
            stored = {name: self._put(path) for name, path in streams.items() if path.is_file()}
            size = sum(e[4] for e in tree if e[0] == "file") + sum(s for _, s in stored.values())
            files = {"tree": tree, "streams": {name: sha for name, (sha, _) in stored.items()}}
            self.store.save_cache_entry(key, parts, files, size, batch_id)
        return size

    @contextlib.contextmanager
    def _locked(self, shared: bool) -> Iterator[None]:
        """Saves hold the cache's lock shared, a sweep exclusively (``flock``, released if the process dies)."""
        import fcntl

        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _store_tree(self, root: Path, prefix: str) -> list[list[Any]]:
        entries: list[list[Any]] = []
        with os.scandir(root / prefix if prefix else root) as listing:
            for entry in sorted(listing, key=lambda e: e.name):
                relative = f"{prefix}/{entry.name}" if prefix else entry.name
                if relative == MARKER:
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    entries.append(["link", relative, os.readlink(entry.path)])
                elif stat.S_ISDIR(mode):
                    entries.append(["dir", relative, stat.S_IMODE(mode)])
                    entries += self._store_tree(root, relative)
                elif stat.S_ISREG(mode):
                    sha, size = self._put(Path(entry.path))
                    entries.append(["file", relative, stat.S_IMODE(mode), sha, size])
                else:
                    raise NotCacheable(f"{relative} is neither a file, a directory nor a link")
        return entries

    def _put(self, source: Path) -> tuple[str, int]:
        """Copy a file into the blobs (once per content), hashing it on the way; its SHA-256 and size."""
        self.objects.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        temporary = self.objects / f"tmp-{os.urandom(8).hex()}"
        try:
            with open(source, "rb") as handle, open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444), "wb") as out:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
            sha = digest.hexdigest()
            target = self.object_path(sha)
            if not _has_size(target, size):  # none yet, or one damaged (a damaged one of the same size the check on a hit finds)
                target.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(temporary, target)  # the same bytes as any blob another batch put there meanwhile
        finally:
            temporary.unlink(missing_ok=True)
        return sha, size

    def object_path(self, sha: str) -> Path:
        return self.objects / sha[:2] / sha

    # --- serving ---------------------------------------------------------------------------------

    def verified(self, key: str) -> Lookup:
        """The entry for ``key`` when every blob it needs is there with its bytes; an entry that
        fails the check is dropped (with the blobs that failed), so its batch runs again, and
        the lookup says so."""
        entry = self.store.cache_entry(key)
        if entry is None:
            return Lookup(None)
        needed = {e[3]: e[4] for e in entry.files["tree"] if e[0] == "file"}
        needed.update({sha: None for sha in entry.files["streams"].values() if sha not in needed})
        bad = [sha for sha, size in needed.items() if not self._intact(sha, size)]
        if bad:
            self.drop(key, bad)
            return Lookup(None, f"the cached result of batch {entry.batch_id} was damaged ({len(bad)} file{'s' if len(bad) != 1 else ''} changed or"
                                f" missing: was a linked output edited?) and was dropped")
        return Lookup(entry)

    def drop(self, key: str, blobs: tuple[str, ...] | list[str] = ()) -> None:
        """Forget an entry (and blobs known to be bad): its batch runs again."""
        for sha in blobs:
            self.object_path(sha).unlink(missing_ok=True)
        self.store.delete_cache_entries([key])

    def _intact(self, sha: str, size: int | None) -> bool:
        path = self.object_path(sha)
        try:
            return (size is None or path.stat().st_size == size) and file_sha256(path) == sha
        except OSError:
            return False

    def restore(self, entry: CacheEntry, outdir: Path, streams: dict[str, Path], owner: tuple[int, int] | None) -> Restored:
        """Put a verified entry's files into ``outdir`` (which exists and is empty but for faice's
        marker) and its streams where the batch's logs go; ``owner``: (uid, gid) the files must
        belong to, when not to this process's user."""
        directories = []
        for kind, relative, *rest in entry.files["tree"]:
            target = outdir / relative
            if kind == "dir":
                target.mkdir(mode=0o700)
                directories.append((target, rest[0]))
                if owner:
                    os.chown(target, *owner)
            elif kind == "link":
                os.symlink(rest[0], target)
                if owner:
                    os.chown(target, *owner, follow_symlinks=False)
            else:
                mode, sha = rest[0], rest[1]
                self._place(self.object_path(sha), target, mode, owner)
        for directory, mode in reversed(directories):  # innermost first: a read-only directory is filled before it is made so
            os.chmod(directory, mode)
        for name, sha in entry.files["streams"].items():
            if name in streams:
                self._place(self.object_path(sha), streams[name], 0o600, None, link=False)
        self.store.cache_hit(entry.key)
        return Restored(entry.key, entry.batch_id)

    def _place(self, blob: Path, target: Path, mode: int, owner: tuple[int, int] | None, link: bool = True) -> None:
        """A copy of the blob at ``target`` with ``mode``, by the cheapest way that keeps the blob
        safe: a hard link only for a file everyone may read and nobody executes (its mode is the
        blob's, read-only), else a reflink or a copy."""
        if owner is None and link and mode & 0o444 == 0o444 and not mode & 0o111:
            if _reflink(blob, target, mode):
                return
            try:
                os.link(blob, target)
                return
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
                    raise
        elif _reflink(blob, target, mode):
            if owner:
                os.chown(target, *owner)
            return
        shutil.copyfile(blob, target)
        os.chmod(target, mode)
        if owner:
            os.chown(target, *owner)

    # --- housekeeping ----------------------------------------------------------------------------

    def remove(self, keys: list[str]) -> int:
        """Drop these entries, then every blob no remaining entry needs; the bytes freed."""
        self.store.delete_cache_entries(keys)
        return self.sweep()

    def sweep(self) -> int:
        """Delete the blobs that no entry holds (left by dropped entries or an interrupted save);
        the bytes freed. It waits for the saves in progress (in any process) to be recorded."""
        if not self.objects.is_dir():
            return 0
        with self._locked(shared=False):
            live: set[str] = set()
            for entry in self.store.cache_entries():
                live.update(e[3] for e in entry.files["tree"] if e[0] == "file")
                live.update(entry.files["streams"].values())
            freed = 0
            for shard in self.objects.iterdir():
                for blob in shard.iterdir() if shard.is_dir() else [shard]:
                    if blob.name in live or (blob is shard and not shard.name.startswith("tmp-")):
                        continue
                    try:
                        freed += blob.stat().st_size
                        blob.unlink()
                    except FileNotFoundError:
                        pass  # removed by another prune meanwhile
        return freed

    def disk_usage(self) -> int:
        """Bytes the blobs take (each content once, however many entries hold it)."""
        if not self.objects.is_dir():
            return 0
        total = 0
        for shard in self.objects.iterdir():
            for blob in shard.iterdir() if shard.is_dir() else ():
                with contextlib.suppress(FileNotFoundError):  # removed by a prune meanwhile
                    total += blob.stat().st_size
        return total


#: (device of a blob, device of a target directory) where reflinks were refused: not tried again
_NO_REFLINK: set[tuple[int, int]] = set()


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _reflink(blob: Path, target: Path, mode: int) -> bool:
    """A copy that shares the blob's blocks, where the file system can; False where it cannot
    (asked once per pair of devices: a refusal costs a file made and removed)."""
    import fcntl

    try:
        devices = (blob.stat().st_dev, target.parent.stat().st_dev)
        if devices in _NO_REFLINK:
            return False
        with open(blob, "rb") as source:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                fcntl.ioctl(fd, FICLONE, source.fileno())
            except OSError:
                os.close(fd)
                target.unlink()
                _NO_REFLINK.add(devices)
                return False
            os.close(fd)
    except OSError:
        return False
    return True
