"""The store's tables of the result cache: entries by key, and the remembered hashes of local files.

The rules (what a key holds, where the blobs are, when an entry can be trusted) are faice/cache's;
this is only their rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, NamedTuple

from faice.state.database import Database


class CacheEntry(NamedTuple):
    """A cached result: its key and parts, the files it holds (see faice.cache.results) and its use."""

    key: str
    parts: dict[str, Any]
    files: dict[str, Any]
    size: int
    batch_id: str | None
    created_at: float
    used_at: float
    hits: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> CacheEntry:
        return cls(row["key"], json.loads(row["parts"]), json.loads(row["files"]), row["size"], row["batch_id"], row["created_at"], row["used_at"], row["hits"])


class FileStat(NamedTuple):
    """What says a local file is unchanged since it was hashed (files changed within a moment of
    hashing aside, see faice.runner.caching): the ctime catches a write that put the mtime back."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int
    device: int


class CacheTables:
    """The cache methods of :class:`faice.state.store.Store`."""

    _db: Database

    def cache_entry(self, key: str) -> CacheEntry | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM cache_entries WHERE key = ?", (key,)).fetchone()
        return CacheEntry.from_row(row) if row else None

    def cache_entries(self, *, used_before: float | None = None, limit: int | None = None) -> list[CacheEntry]:
        """Entries, most recently used first; with ``used_before``, only those last used before it."""
        where, params = ("WHERE used_at < ?", [used_before]) if used_before is not None else ("", [])
        with self._db.connection() as conn:
            rows = conn.execute(f"SELECT * FROM cache_entries {where} ORDER BY used_at DESC, key LIMIT ?", (*params, -1 if limit is None else limit)).fetchall()  # noqa: S608
        return [CacheEntry.from_row(r) for r in rows]

    def save_cache_entry(self, key: str, parts: dict[str, Any], files: dict[str, Any], size: int, batch_id: str) -> None:
        """Record an entry (again: a batch that ran at the same time as another with its key replaces it)."""
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO cache_entries (key, parts, files, size, batch_id, created_at, used_at, hits) VALUES (?,?,?,?,?,?,?,0)",
                         (key, json.dumps(parts), json.dumps(files), size, batch_id, now, now))

    def cache_hit(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE cache_entries SET used_at = ?, hits = hits + 1 WHERE key = ?", (time.time(), key))

    def delete_cache_entries(self, keys: list[str]) -> int:
        with self._db.transaction() as conn:
            return sum(conn.execute("DELETE FROM cache_entries WHERE key = ?", (key,)).rowcount for key in keys)

    def forget_hashes(self, checked_before: float | None = None) -> int:
        """Forget remembered file hashes (those remembered before a time): a file is read again when next used."""
        with self._db.transaction() as conn:
            if checked_before is None:
                return conn.execute("DELETE FROM file_hashes").rowcount
            return conn.execute("DELETE FROM file_hashes WHERE checked_at < ?", (checked_before,)).rowcount

    def cache_parts_of(self, batch_id: str) -> dict[str, Any] | None:
        """The key parts recorded for a batch (a run with the cache), else None."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT cache_parts FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return json.loads(row["cache_parts"]) if row and row["cache_parts"] else None

    def remembered_sha256(self, path: str, stat: FileStat) -> str | None:
        """The SHA-256 remembered for the file at ``path`` (a fingerprint of it) when its stat is still ``stat``."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ? AND ctime_ns = ? AND device = ?",
                               (path, *stat)).fetchone()
        return row["sha256"] if row else None

    def remember_sha256(self, path: str, stat: FileStat, sha256: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, inode, ctime_ns, device, sha256, checked_at) VALUES (?,?,?,?,?,?,?,?)",
                         (path, *stat, sha256, time.time()))
