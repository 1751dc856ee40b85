"""Content hashes of a batch's inputs and outputs, for its cache key and for checking cache entries.

A file's hash is the SHA-256 of its bytes. A directory's is the SHA-256 of a listing of its tree
in a fixed order: each entry's path relative to the directory, its kind (file, directory,
symbolic link), whether a file is executable, a file's content hash and a link's target. Names,
kinds, contents and the executable bit are what a tool reads; owners, times and the other mode
bits are not in it, so a copy of the same tree has the same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

BLOCK = 1 << 20


def file_digest(path: Path | str, algorithm: str) -> str:
    """The hex digest of a file's bytes by ``algorithm`` (a hashlib name), read in blocks: any size."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes, 64 hex characters."""
    return file_digest(path, "sha256")


def tree_sha256(root: Path | str) -> str:
    """The SHA-256 of a directory tree's listing (see the module's docstring); symbolic links are
    hashed as links, never followed, so a tree cannot reach outside itself."""
    digest = hashlib.sha256()
    for line in _listing(str(root), ""):
        digest.update(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return digest.hexdigest()


def content_sha256(path: Path | str) -> str:
    """A file's or a directory tree's hash, whichever ``path`` is."""
    return tree_sha256(path) if os.path.isdir(path) and not os.path.islink(path) else file_sha256(path)


def _listing(root: str, prefix: str) -> list[list[str | bool]]:
    lines: list[list[str | bool]] = []
    with os.scandir(os.path.join(root, prefix) if prefix else root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                lines.append(["link", relative, os.readlink(entry.path)])
            elif stat.S_ISDIR(mode):
                lines.append(["dir", relative])
                lines += _listing(root, relative)
            elif stat.S_ISREG(mode):
                lines.append(["file", relative, bool(mode & stat.S_IXUSR), file_sha256(entry.path)])
            else:
                lines.append(["other", relative])  # a fifo or socket: its name, never its stream
    return lines
