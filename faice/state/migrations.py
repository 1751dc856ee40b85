"""The state file's schema as named steps, applied in order, each once and in its own transaction.

The ``migrations`` table records which steps ran and when (sqlite-utils' migrations idea); a
file written before that table existed (schema versions 1 to 5, counted by ``user_version``)
gets every step: each one checks what is there already (``IF NOT EXISTS``, a missing column),
so it brings any of those files up to date and changes nothing that is. New steps go at the
end of ``MIGRATIONS``, and never change once released.

Every index serves a filter of the REST API (``faice serve``) or of ``faice list``: lists are
ordered by (created_at, rowid), so each index ends in created_at (rowid is implicit).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import NamedTuple

Step = Callable[[sqlite3.Connection], None]


class Migration(NamedTuple):
    """One named schema step: recorded once applied, never applied twice."""

    name: str
    apply: Step


def _add_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    for column, kind in columns.items():
        if column not in present:
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {kind}')


def _indexes(conn: sqlite3.Connection, table: str, *indexes: tuple[str, ...], unique: bool = False) -> None:
    for columns in indexes:
        name = f"idx_{table}_{'_'.join(columns)}"  # the names sqlite-utils gave them in schema versions 1 to 5
        quoted = ", ".join(f'"{c}"' for c in columns)
        conn.execute(f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}" ON "{table}" ({quoted})')


def experiments_batches_history(conn: sqlite3.Connection) -> None:
    """Schema 1 (faice exec): experiments, their batches, and every batch state change."""
    conn.execute('CREATE TABLE IF NOT EXISTS "experiments" ("id" TEXT PRIMARY KEY, "created_at" REAL, "username" TEXT, "source" TEXT, "red" TEXT,'
                 ' "batch_count" INTEGER, "image" TEXT, "engine" TEXT, "pid" INTEGER, "host" TEXT)')
    conn.execute('CREATE TABLE IF NOT EXISTS "batches" ("id" TEXT PRIMARY KEY, "experiment_id" TEXT REFERENCES "experiments"("id"), "idx" INTEGER,'
                 ' "state" TEXT, "attempts" INTEGER, "created_at" REAL, "updated_at" REAL, "node" TEXT, "argv" TEXT, "exit_code" INTEGER,'
                 ' "error" TEXT, "outputs" TEXT, "container" TEXT, "username" TEXT)')
    conn.execute('CREATE TABLE IF NOT EXISTS "history" ("id" INTEGER PRIMARY KEY, "batch_id" TEXT REFERENCES "batches"("id"), "experiment_id" TEXT,'
                 ' "time" REAL, "state" TEXT, "reason" TEXT)')


def users_tokens_login_failures(conn: sqlite3.Connection) -> None:
    """Schema 2 (faice users): password hashes, the hashes of API tokens, failed logins for throttling."""
    conn.execute('CREATE TABLE IF NOT EXISTS "users" ("name" TEXT PRIMARY KEY, "hash" BLOB, "salt" BLOB, "is_admin" INTEGER, "created_at" REAL)')
    conn.execute('CREATE TABLE IF NOT EXISTS "tokens" ("hash" TEXT PRIMARY KEY, "username" TEXT, "expires_at" REAL, "created_at" REAL)')
    conn.execute('CREATE TABLE IF NOT EXISTS "login_failures" ("id" INTEGER PRIMARY KEY, "username" TEXT, "client" TEXT, "time" REAL)')


def serve_columns(conn: sqlite3.Connection) -> None:
    """Schemas 3 and 4 (faice serve): who runs an experiment ("exec" or "serve") and what it needs to
    run again after a restart; the node in each history entry; token kinds."""
    _add_columns(conn, "experiments", {"runner": "TEXT", "ram": "INTEGER", "retries": "INTEGER", "settings": "TEXT", "has_secrets": "INTEGER"})
    _add_columns(conn, "history", {"node": "TEXT"})
    _add_columns(conn, "tokens", {"kind": "TEXT"})


def history_json(conn: sqlite3.Connection) -> None:
    """The list projection of each batch's history, kept beside it (GET /batches answers 100
    batches without a join): ``[{"state", "time", "node"}, ...]``."""
    _add_columns(conn, "batches", {"history_json": "TEXT"})
    conn.execute(
        "UPDATE batches SET history_json = (SELECT json_group_array(json_object('state', h.state, 'time', h.time, 'node', h.node))"
        " FROM (SELECT * FROM history WHERE batch_id = batches.id ORDER BY id) h) WHERE history_json IS NULL"
    )


def list_indexes(conn: sqlite3.Connection) -> None:
    """An index for each list filter, each experiment's queue (the server's), and each batch's history."""
    _indexes(conn, "tokens", ("username",))
    _indexes(conn, "login_failures", ("username", "client", "time"))
    _indexes(conn, "experiments", ("created_at",), ("username", "created_at"))
    _indexes(conn, "batches", ("experiment_id", "idx"), unique=True)
    _indexes(conn, "batches", ("experiment_id", "created_at"), ("experiment_id", "state"), ("state", "created_at"), ("username", "created_at"),
             ("username", "state", "created_at"), ("node", "created_at"), ("created_at",))
    _indexes(conn, "history", ("batch_id", "time"))


BATCH_COUNTS = [
    "DROP TRIGGER IF EXISTS batch_counts_insert",
    "DROP TRIGGER IF EXISTS batch_counts_update",
    "DROP TRIGGER IF EXISTS batch_counts_delete",
    "DROP TABLE IF EXISTS batch_counts",
    """CREATE TABLE batch_counts (experiment_id TEXT NOT NULL, username TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL,
                                  n INTEGER NOT NULL, PRIMARY KEY (experiment_id, username, node, state)) WITHOUT ROWID""",
    "CREATE INDEX batch_counts_state ON batch_counts (state)",
    """INSERT INTO batch_counts SELECT experiment_id, COALESCE(username, ''), COALESCE(node, ''), state, COUNT(*) FROM batches
           GROUP BY experiment_id, COALESCE(username, ''), COALESCE(node, ''), state""",
    """CREATE TRIGGER batch_counts_insert AFTER INSERT ON batches BEGIN
           INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
               ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER batch_counts_update AFTER UPDATE OF state, node, username, experiment_id ON batches
           WHEN OLD.state IS NOT NEW.state OR OLD.node IS NOT NEW.node OR OLD.username IS NOT NEW.username OR OLD.experiment_id IS NOT NEW.experiment_id
       BEGIN
           UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
               AND node = COALESCE(OLD.node, '') AND state = OLD.state;
           INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
               ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER batch_counts_delete AFTER DELETE ON batches BEGIN
           UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
               AND node = COALESCE(OLD.node, '') AND state = OLD.state;
       END""",
]


def batch_counts(conn: sqlite3.Connection) -> None:
    """How many batches per (experiment, user, node, state), kept by triggers: ``GET /batches/count``
    and the lists' totals add up a few hundred rows instead of scanning an index of 100,000s.

    A missing node or user is stored as "", so that the primary key can tell the rows apart.
    Counted afresh (a file from before may have them already), in the step's transaction: no
    other process changes a batch between counting and the triggers taking over.
    """
    for statement in BATCH_COUNTS:
        conn.execute(statement)


def experiment_outdir(conn: sqlite3.Connection) -> None:
    """Schema 5: where an exec run's outputs are (``faice rm`` and ``prune`` remove them)."""
    _add_columns(conn, "experiments", {"outdir": "TEXT"})


def experiment_container_engine(conn: sqlite3.Connection) -> None:
    """Which container engine (docker, podman) runs an experiment: cancel, logs and crash cleanup
    reach that one (none recorded: the experiment ran before podman could, on Docker)."""
    _add_columns(conn, "experiments", {"container_engine": "TEXT"})


def cache_and_provenance(conn: sqlite3.Connection) -> None:
    """The result cache and what an RO-Crate export tells (issue 11).

    experiments: the image's ID that the tag resolved to, the faice version that ran it, and
    whether its batches were looked up in the cache. batches: the cache key and its parts (for
    ``faice why``; never a secret), and the batch whose result a cache hit reused. cache_entries:
    one per key, the files of its result by content (blobs under the cache directory).
    file_hashes: a local file's SHA-256 remembered by (a fingerprint of) its path, size, mtime,
    inode, ctime and device.
    """
    _add_columns(conn, "experiments", {"image_id": "TEXT", "faice_version": "TEXT", "cache": "INTEGER"})
    _add_columns(conn, "batches", {"cache_key": "TEXT", "cache_parts": "TEXT", "cached_from": "TEXT"})
    conn.execute('CREATE TABLE IF NOT EXISTS "cache_entries" ("key" TEXT PRIMARY KEY, "parts" TEXT NOT NULL, "files" TEXT NOT NULL,'
                 ' "size" INTEGER NOT NULL, "batch_id" TEXT, "created_at" REAL NOT NULL, "used_at" REAL NOT NULL, "hits" INTEGER NOT NULL DEFAULT 0)')
    conn.execute('CREATE TABLE IF NOT EXISTS "file_hashes" ("path" TEXT PRIMARY KEY, "size" INTEGER NOT NULL, "mtime_ns" INTEGER NOT NULL,'
                 ' "inode" INTEGER NOT NULL, "ctime_ns" INTEGER NOT NULL, "device" INTEGER NOT NULL, "sha256" TEXT NOT NULL, "checked_at" REAL NOT NULL)')
    _indexes(conn, "cache_entries", ("used_at",))
    _indexes(conn, "batches", ("cache_key",))


def batch_input_sources(conn: sqlite3.Connection) -> None:
    """Where each batch's File and Directory inputs came from (an absolute path, a URL without its
    credentials), masked: the stored RED data masks all access data, so without this an export
    could not name the inputs (issue 11)."""
    _add_columns(conn, "batches", {"input_sources": "TEXT"})


def history_event_ids(conn: sqlite3.Connection) -> None:
    """History ids that are never used twice: each entry is an event of ``GET /events`` and its id
    the event's, which a client sends back (``Last-Event-ID``) to resume. A plain rowid is reused
    once the newest entries are deleted (``faice rm``); AUTOINCREMENT's is not. The table is
    copied once into its new form, with an index for an experiment's events (and its deletion)."""
    conn.execute('CREATE TABLE "history_new" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "batch_id" TEXT REFERENCES "batches"("id"),'
                 ' "experiment_id" TEXT, "time" REAL, "state" TEXT, "reason" TEXT, "node" TEXT)')
    conn.execute('INSERT INTO "history_new" (id, batch_id, experiment_id, time, state, reason, node)'
                 ' SELECT id, batch_id, experiment_id, time, state, reason, node FROM "history" ORDER BY id')
    conn.execute('DROP TABLE "history"')
    conn.execute('ALTER TABLE "history_new" RENAME TO "history"')
    _indexes(conn, "history", ("batch_id", "time"), ("experiment_id", "id"))


def batch_usage(conn: sqlite3.Connection) -> None:
    """What each batch's container used, read from its cgroup (faice.runner.usage): the most memory
    at once in bytes and the CPU time in seconds; NULL where it could not be read (issue 13)."""
    _add_columns(conn, "batches", {"peak_memory": "INTEGER", "cpu_seconds": "REAL"})


MIGRATIONS = [Migration(step.__name__, step) for step in (experiments_batches_history, users_tokens_login_failures, serve_columns, history_json,
                                                          list_indexes, batch_counts, experiment_outdir, experiment_container_engine,
                                                          cache_and_provenance, batch_input_sources, history_event_ids, batch_usage)]


def applied(conn: sqlite3.Connection) -> dict[str, float]:
    """The steps recorded in the file, with when each was applied."""
    conn.execute('CREATE TABLE IF NOT EXISTS "migrations" ("name" TEXT PRIMARY KEY, "applied_at" REAL NOT NULL)')
    return dict(conn.execute("SELECT name, applied_at FROM migrations").fetchall())


def migrate(conn: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS) -> list[str]:
    """Apply the steps the file has not had, each in its own transaction; their names.

    ``conn`` is in autocommit mode (``isolation_level=None``). A step that fails rolls back alone:
    the steps before it stay applied and recorded, and the next opening tries it again.
    """
    done = applied(conn)
    ran = []
    for migration in migrations:
        if migration.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (migration.name,)).fetchone() is None:  # not by another process meanwhile
                migration.apply(conn)
                conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (migration.name, time.time()))
                ran.append(migration.name)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return ran
