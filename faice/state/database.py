"""The state file's connections: one per thread, opened in WAL mode, migrated on first opening.

Only the store's modules (faice/state/) use this: the rest of faice asks the store's methods.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faice.errors import EnvironmentUnusable
from faice.state.migrations import migrate

MIN_SQLITE = (3, 31, 0)  # json_insert's '$[#]' (and upserts in triggers)


class _Connection(sqlite3.Connection):
    """A connection that can be referred to weakly (sqlite3's own cannot), to be closed at exit."""


#: every connection opened and not yet freed: a connection is in a reference cycle with its
#: statement cache, so only the cyclic collector frees it, and a process that ends without the
#: interpreter's teardown (faice's CLI) never would
_CONNECTIONS: weakref.WeakSet[_Connection] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close the connections at exit: the last one to close folds the write-ahead log into the
    file and removes it, so the state file alone holds every run (as a copy of it expects)."""
    for conn in list(_CONNECTIONS):
        try:
            conn.close()
        except sqlite3.Error:
            pass  # leaving anyway: the next opener recovers the log


class Database:
    """Thread-safe access to one SQLite file: one connection per thread.

    A thread that waits for SQLite's write lock (another process, or another thread inserting
    100,000 batches) holds up only itself: readers go on, as WAL allows.
    """

    def __init__(self, path: Path, *, read_heavy: bool = True) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise EnvironmentUnusable(f"faice needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; Python here has {sqlite3.sqlite_version}")
        self.path = path
        self.read_heavy = read_heavy
        self._local = threading.local()
        self._opened: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._opened_lock = threading.Lock()
        conn = self._conn()
        # Switching to WAL and migrating are not covered by SQLite's busy wait: two processes
        # opening a new file at once would see "database is locked". A file lock serialises them.
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use), in autocommit mode."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None, factory=_Connection)
            _CONNECTIONS.add(conn)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            if self.read_heavy:
                # faice serve reads lists and counts of 100,000s of batches: keep the indexes in
                # memory (the 2 MiB default made counts and history lookups evict each other).
                # A writer (faice exec) keeps SQLite's defaults: with a connection per batch
                # thread, each caching what it wrote, a long run's memory would grow with it.
                conn.execute("PRAGMA cache_size=-65536")
                conn.execute("PRAGMA mmap_size=268435456")
            self._local.conn = conn
            self._local.lock = threading.RLock()
            with self._opened_lock:
                # Threads come and go (a server's thread pool): close what ended threads left open.
                alive = []
                for thread, other in self._opened:
                    if thread() is not None and thread().is_alive():  # type: ignore[union-attr]
                        alive.append((thread, other))
                    else:
                        other.close()
                self._opened = [*alive, (weakref.ref(threading.current_thread()), conn)]
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, for statements that need no transaction of their own."""
        conn = self._conn()
        with self._local.lock:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on an error)."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside a read transaction: its statements see one state of the
        file, whatever other processes commit meanwhile (WAL readers never block writers)."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection (a thread that uses the file again opens a new one)."""
        with self._opened_lock:
            for _thread, conn in self._opened:
                conn.close()
            self._opened = []
        self._local = threading.local()
