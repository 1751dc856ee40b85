"""The SQLite state: experiments, batches and the history of every batch state change.

One file per user (``$FAICE_DB``, ``--db``, or ``$XDG_DATA_HOME/faice/faice.db``), in WAL mode
so that several ``faice exec`` processes and ``faice serve`` share it. Ids are 24 hex
characters and batch states are CC-Agency's, so the REST API is a view of this store.
Secrets are never written here: callers store masked argv and credential-free RED data.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faice.errors import EnvironmentUnusable, InvalidInput

SCHEMA_VERSION = 5
MIN_SQLITE = (3, 31, 0)  # json_insert's '$[#]' (and upserts in triggers)
STATES = ("registered", "scheduled", "processing", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
OPEN_STATES = tuple(s for s in STATES if s not in FINAL_STATES)


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "faice"


def default_db_path() -> Path:
    return Path(os.environ["FAICE_DB"]) if os.environ.get("FAICE_DB") else data_dir() / "faice.db"


def new_id() -> str:
    """24 hex characters like CC-Agency's ids: creation second first, so ids sort by age."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class BatchRow:
    id: str
    experiment_id: str
    index: int
    state: str
    attempts: int
    created_at: float
    updated_at: float
    argv: list[str]
    exit_code: int | None
    error: str | None
    outputs: dict[str, Any]
    container: str | None
    node: str | None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"batchId": self.id, "experimentId": self.experiment_id, "index": self.index, "state": self.state, "attempts": self.attempts,
                "argv": self.argv, "exitCode": self.exit_code, "error": self.error, "outputs": self.outputs, "createdAt": self.created_at, "updatedAt": self.updated_at}

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BatchRow:
        return cls(
            id=row["id"], experiment_id=row["experiment_id"], index=row["idx"], state=row["state"],
            attempts=row["attempts"], created_at=row["created_at"], updated_at=row["updated_at"],
            argv=json.loads(row["argv"] or "[]"), exit_code=row["exit_code"], error=row["error"],
            outputs=json.loads(row["outputs"] or "{}"), container=row["container"], node=row["node"], username=row["username"],
        )


class Store:
    """Thread-safe access to the state file: one connection per thread.

    A thread that waits for SQLite's write lock (another process, or another thread inserting
    100,000 batches) holds up only itself: readers go on, as WAL allows. ``_lock`` is kept per
    thread too, for the callers that group several statements on ``conn``.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = (Path(path) if path is not None else default_db_path()).absolute()  # outputs and logs live beside it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise EnvironmentUnusable(f"faice needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; Python here has {sqlite3.sqlite_version}")
        self._local = threading.local()
        self._opened: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._opened_lock = threading.Lock()
        conn = self.conn
        # Switching to WAL and creating the tables are not covered by SQLite's busy wait: two
        # processes opening a new file at once would see "database is locked". A file lock
        # serialises just that step.
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            conn.execute("PRAGMA journal_mode=WAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._create_schema()
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            # faice serve reads lists and counts of 100,000s of batches: keep the indexes in
            # memory (the 2 MiB default made counts and history lookups evict each other).
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

    @property
    def _lock(self) -> threading.RLock:
        self.conn  # noqa: B018 - opens this thread's connection and lock
        return self._local.lock

    def _create_schema(self) -> None:
        """Tables and indexes, created with sqlite-utils (only on a new or older file).

        Every index serves a filter of the REST API (``faice serve``) or of ``faice list``: lists
        are ordered by (created_at, rowid), so each index ends in created_at (rowid is implicit).
        """
        import sqlite_utils

        db = sqlite_utils.Database(self.conn)
        with self._lock:
            db["experiments"].create(
                {"id": str, "created_at": float, "username": str, "source": str, "red": str, "batch_count": int, "image": str, "engine": str, "pid": int, "host": str},
                pk="id", if_not_exists=True,
            )
            db["batches"].create(
                {"id": str, "experiment_id": str, "idx": int, "state": str, "attempts": int, "created_at": float, "updated_at": float, "node": str,
                 "argv": str, "exit_code": int, "error": str, "outputs": str, "container": str, "username": str},
                pk="id", foreign_keys=[("experiment_id", "experiments", "id")], if_not_exists=True,
            )
            db["history"].create(
                {"id": int, "batch_id": str, "experiment_id": str, "time": float, "state": str, "reason": str},
                pk="id", foreign_keys=[("batch_id", "batches", "id")], if_not_exists=True,
            )
            db["users"].create({"name": str, "hash": bytes, "salt": bytes, "is_admin": int, "created_at": float}, pk="name", if_not_exists=True)
            db["tokens"].create({"hash": str, "username": str, "expires_at": float, "created_at": float}, pk="hash", if_not_exists=True)
            db["login_failures"].create({"id": int, "username": str, "client": str, "time": float}, pk="id", if_not_exists=True)
            # Versions 3 and 4 (faice serve): who runs an experiment ("exec" or "serve") and what it needs
            # to run again after a restart; the node in each history entry; token kinds.
            for table, column, kind in [("experiments", "runner", str), ("experiments", "ram", int), ("experiments", "retries", int),
                                        ("experiments", "settings", str), ("experiments", "has_secrets", int),
                                        ("history", "node", str), ("tokens", "kind", str), ("batches", "history_json", str),
                                        ("experiments", "outdir", str)]:  # version 5: where an exec run's outputs are
                if column not in db[table].columns_dict:
                    db[table].add_column(column, kind)
            # The list projection of each batch's history, kept beside it (GET /batches answers
            # 100 batches without a join): [{"state", "time", "node"}, ...]
            self.conn.execute(
                "UPDATE batches SET history_json = (SELECT json_group_array(json_object('state', h.state, 'time', h.time, 'node', h.node))"
                " FROM (SELECT * FROM history WHERE batch_id = batches.id ORDER BY id) h) WHERE history_json IS NULL"
            )
            db["tokens"].create_index(["username"], if_not_exists=True)
            db["login_failures"].create_index(["username", "client", "time"], if_not_exists=True)
            db["experiments"].create_index(["created_at"], if_not_exists=True)
            db["experiments"].create_index(["username", "created_at"], if_not_exists=True)
            db["batches"].create_index(["experiment_id", "idx"], unique=True, if_not_exists=True)
            db["batches"].create_index(["experiment_id", "created_at"], if_not_exists=True)
            db["batches"].create_index(["experiment_id", "state"], if_not_exists=True)  # the server's queue of each experiment
            db["batches"].create_index(["state", "created_at"], if_not_exists=True)
            db["batches"].create_index(["username", "created_at"], if_not_exists=True)
            db["batches"].create_index(["username", "state", "created_at"], if_not_exists=True)
            db["batches"].create_index(["node", "created_at"], if_not_exists=True)
            db["batches"].create_index(["created_at"], if_not_exists=True)
            db["history"].create_index(["batch_id", "time"], if_not_exists=True)
            self._create_counts()
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _create_counts(self) -> None:
        """``batch_counts``: how many batches per (experiment, user, node, state), kept by triggers.

        ``GET /batches/count`` and the lists' total add up a few hundred rows instead of
        scanning an index of 100,000s, however often the batches change. (A missing node is
        stored as "", so that the primary key can tell the rows apart.)
        """
        present = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'batch_counts%'")}
        if {"batch_counts", "batch_counts_insert", "batch_counts_update", "batch_counts_delete"} <= present:
            return
        # one transaction: a crash half-way leaves nothing behind, and no other process can
        # change a batch between counting and the triggers taking over
        self.conn.executescript("""
            BEGIN IMMEDIATE;
            DROP TRIGGER IF EXISTS batch_counts_insert;
            DROP TRIGGER IF EXISTS batch_counts_update;
            DROP TRIGGER IF EXISTS batch_counts_delete;
            DROP TABLE IF EXISTS batch_counts;
            CREATE TABLE batch_counts (experiment_id TEXT NOT NULL, username TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL,
                                       n INTEGER NOT NULL, PRIMARY KEY (experiment_id, username, node, state)) WITHOUT ROWID;
            CREATE INDEX batch_counts_state ON batch_counts (state);
            INSERT INTO batch_counts SELECT experiment_id, COALESCE(username, ''), COALESCE(node, ''), state, COUNT(*) FROM batches
                GROUP BY experiment_id, COALESCE(username, ''), COALESCE(node, ''), state;
            CREATE TRIGGER IF NOT EXISTS batch_counts_insert AFTER INSERT ON batches BEGIN
                INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
                    ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
            END;
            CREATE TRIGGER IF NOT EXISTS batch_counts_update AFTER UPDATE OF state, node, username, experiment_id ON batches
                WHEN OLD.state IS NOT NEW.state OR OLD.node IS NOT NEW.node OR OLD.username IS NOT NEW.username OR OLD.experiment_id IS NOT NEW.experiment_id
            BEGIN
                UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
                    AND node = COALESCE(OLD.node, '') AND state = OLD.state;
                INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
                    ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
            END;
            CREATE TRIGGER IF NOT EXISTS batch_counts_delete AFTER DELETE ON batches BEGIN
                UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
                    AND node = COALESCE(OLD.node, '') AND state = OLD.state;
            END;
            COMMIT;
        """)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- writing -------------------------------------------------------------------------------

    def create_experiment(self, *, source: str, red: dict[str, Any], argvs: list[list[str]], image: str, engine: str | None, username: str,
                          ram: int | None = None, runner: str = "exec", retries: int = 0, settings: dict[str, Any] | None = None,
                          has_secrets: bool = False) -> tuple[str, list[str]]:
        """Register an experiment and its batches (state ``registered``); return their ids.

        ``red`` must already be redacted. ``has_secrets`` says whether redacting removed anything:
        only an experiment without secrets can be run again from this record after a restart.
        """
        experiment_id = new_id()
        now = time.time()
        batch_ids = [new_id() for _ in argvs]
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO experiments (id, created_at, username, source, red, batch_count, image, engine, pid, host, runner, ram, retries, settings, has_secrets)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (experiment_id, now, username, source, json.dumps(red), len(argvs), image, engine, os.getpid(), os.uname().nodename,
                 runner, ram, retries, json.dumps(settings or {}), int(has_secrets)),
            )
            registered = json.dumps([{"state": "registered", "time": now, "node": None}])
            conn.executemany(
                "INSERT INTO batches (id, experiment_id, idx, state, attempts, created_at, updated_at, argv, outputs, username, history_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(bid, experiment_id, i, "registered", 0, now, now, json.dumps(argv), "{}", username, registered)
                 for i, (bid, argv) in enumerate(zip(batch_ids, argvs, strict=True))],
            )
            conn.executemany(
                "INSERT INTO history (batch_id, experiment_id, time, state, reason) VALUES (?,?,?,?,?)",
                [(bid, experiment_id, now, "registered", "submitted") for bid in batch_ids],
            )
        return experiment_id, batch_ids

    def set_state(self, batch_id: str, state: str, reason: str, only_from: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Move a batch to ``state``, recording why in its history (and any result fields).

        A cancelled batch stays cancelled (``faice cancel`` may have come from another process):
        then nothing changes and the answer is False.
        """
        return self.set_states([batch_id], state, reason, only_from, **fields) == 1

    def set_states(self, batch_ids: list[str], state: str, reason: str, only_from: tuple[str, ...] | None = None, **fields: Any) -> int:
        """``set_state`` for many batches in one transaction; returns how many changed.

        With ``only_from``, a batch moves only from one of those states (compare-and-set).
        """
        assert state in STATES, state
        now = time.time()
        columns = {"state": state, "updated_at": now}
        for key, value in fields.items():
            columns[key] = json.dumps(value) if key in ("argv", "outputs") else value
        assignments = ", ".join(f"{k} = ?" for k in columns)
        changed = 0
        with self.transaction() as conn:
            for batch_id in batch_ids:
                row = conn.execute("SELECT experiment_id, state, node FROM batches WHERE id = ?", (batch_id,)).fetchone()
                if row is None:
                    raise KeyError(batch_id)
                if row["state"] == "cancelled" or (only_from is not None and row["state"] not in only_from):
                    continue
                node = fields.get("node", row["node"])
                entry = json.dumps({"state": state, "time": now, "node": node})  # Python's float text, as in the full document
                conn.execute(f"UPDATE batches SET {assignments}, history_json = json_insert(COALESCE(history_json, '[]'), '$[#]', json(?)) WHERE id = ?",
                             (*columns.values(), entry, batch_id))
                conn.execute("INSERT INTO history (batch_id, experiment_id, time, state, reason, node) VALUES (?,?,?,?,?,?)",
                             (batch_id, row["experiment_id"], now, state, reason, node))
                changed += 1
        return changed

    def update(self, batch_id: str, **fields: Any) -> None:
        """Change result fields without a state change (container id, attempts)."""
        columns = {k: (json.dumps(v) if k in ("argv", "outputs") else v) for k, v in fields.items()}
        with self._lock:
            self.conn.execute(f"UPDATE batches SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?", (*columns.values(), batch_id))

    # --- reading -------------------------------------------------------------------------------

    def resolve_id(self, text: str) -> tuple[str, str]:
        """("experiment" or "batch", the full id) for an id, an id in capitals, or a unique prefix
        of at least 4 characters of one (as git takes commits); raises UnknownId."""
        wanted = text.strip().lower()
        if len(wanted) < MIN_PREFIX or len(wanted) > 24 or any(c not in "0123456789abcdef" for c in wanted):
            raise UnknownId(f'"{text}" is not an experiment or batch id (24 hex digits, or at least the first {MIN_PREFIX} of them)')
        found: list[tuple[str, str]] = []
        with self._lock:
            for kind, table in (("experiment", "experiments"), ("batch", "batches")):
                rows = self.conn.execute(f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (wanted, wanted + "g")).fetchall()  # noqa: S608
                found += [(kind, row["id"]) for row in rows]
        exact = [f for f in found if f[1] == wanted]
        if exact or len(found) == 1:
            return (exact or found)[0]
        if not found:
            raise UnknownId(f'no experiment or batch with id "{text}" in {self.path}')
        shown = ", ".join(f"{i} ({kind})" for kind, i in found[:5]) + (", ..." if len(found) > 5 else "")
        raise UnknownId(f'"{text}" starts several ids: {shown}; give more of it')

    def has_open_batches(self, experiment_id: str) -> bool:
        """Whether any batch of the experiment is not finished (an unknown experiment has none)."""
        with self._lock:
            row = self.conn.execute(f"SELECT 1 FROM batches WHERE experiment_id = ? AND state IN ({','.join('?' * len(OPEN_STATES))}) LIMIT 1",  # noqa: S608
                                    (experiment_id, *OPEN_STATES)).fetchone()
        return row is not None

    def batch(self, batch_id: str) -> BatchRow | None:
        with self._lock:
            row = self.conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return BatchRow.from_row(row) if row else None

    def is_cancelled(self, batch_id: str) -> bool:
        """Whether ``faice cancel`` (maybe in another process) recorded this batch as cancelled."""
        with self._lock:
            row = self.conn.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return row is not None and row["state"] == "cancelled"

    def batches(self, experiment_id: str) -> list[BatchRow]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM batches WHERE experiment_id = ? ORDER BY idx", (experiment_id,)).fetchall()
        return [BatchRow.from_row(r) for r in rows]

    def batch_ids(self, experiment_id: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT id FROM batches WHERE experiment_id = ? ORDER BY idx", (experiment_id,))]

    def experiment(self, experiment_id: str, red: bool = True) -> dict[str, Any] | None:
        """The experiment's record; without ``red``, all but its (perhaps megabytes of) RED data."""
        columns = "*" if red else "id, created_at, username, source, batch_count, image, engine, runner, outdir"
        with self._lock:
            row = self.conn.execute(f"SELECT {columns} FROM experiments WHERE id = ?", (experiment_id,)).fetchone()  # noqa: S608
        if row is None:
            return None
        data = dict(row)
        if red:
            data["red"] = json.loads(data["red"])
        return data

    def experiments(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, with the number of batches in each state (and where their outputs are)."""
        with self._lock:
            rows = self.conn.execute("SELECT id, created_at, username, source, batch_count, image, runner, outdir FROM experiments"
                                     " ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
            result = []
            for row in rows:
                counts = {s: 0 for s in STATES}
                for state, n in self.conn.execute("SELECT state, COUNT(*) FROM batches WHERE experiment_id = ? GROUP BY state", (row["id"],)):
                    counts[state] = n
                result.append({**dict(row), "states": counts})
        return result

    def set_outdir(self, experiment_id: str, outdir: str | None) -> None:
        """Where the experiment's outputs are now (an exec run's OUTDIR, or where a later run moved them)."""
        with self.transaction() as conn:
            conn.execute("UPDATE experiments SET outdir = ? WHERE id = ?", (outdir, experiment_id))

    def finished_before(self, cutoff: float, states: tuple[str, ...] | None = None) -> list[str]:
        """Experiments made before ``cutoff`` whose batches all ended; with ``states``, only those
        whose outcome (failed if a batch failed, else cancelled if one was, else succeeded) is one of them."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT e.id, GROUP_CONCAT(DISTINCT b.state) AS states FROM experiments e LEFT JOIN batches b ON b.experiment_id = e.id"
                " WHERE e.created_at < ? GROUP BY e.id ORDER BY e.created_at", (cutoff,)).fetchall()
        found = []
        for row in rows:
            present = set((row["states"] or "").split(",")) - {""}
            if present & set(OPEN_STATES):
                continue
            outcome = "failed" if "failed" in present else "cancelled" if "cancelled" in present else "succeeded"
            if states is None or outcome in states:
                found.append(row["id"])
        return found

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment with its batches and history (their logs are the caller's)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM history WHERE experiment_id = ?", (experiment_id,))
            conn.execute("DELETE FROM batches WHERE experiment_id = ?", (experiment_id,))
            conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))

    def history(self, batch_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT time, state, reason, node FROM history WHERE batch_id = ? ORDER BY id", (batch_id,)).fetchall()
        return [dict(r) for r in rows]

    def close(self) -> None:
        """Close every thread's connection (a thread that uses the store again opens a new one)."""
        with self._opened_lock:
            for _thread, conn in self._opened:
                conn.close()
            self._opened = []
        self._local = threading.local()


MIN_PREFIX = 4


class UnknownId(InvalidInput):
    """No experiment or batch, or more than one, goes by what was given."""


def disk_full(exc: BaseException) -> bool:
    """Whether an error says that the disk (of the state file or the logs) is full."""
    return (isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC)


def logs_dir(db_path: Path) -> Path:
    """Captured stdout/stderr live next to the state file: ``logs/<batch id>.stdout|stderr``."""
    return db_path.parent / "logs"


def log_path(db_path: Path, batch_id: str, stream: str) -> Path:
    """Where a batch's ``stdout`` or ``stderr`` is captured."""
    return logs_dir(db_path) / f"{batch_id}.{stream}"


def outputs_dir(db_path: Path) -> Path:
    """faice serve's outputs live next to the state file: ``outputs/<experiment id>``."""
    return db_path.parent / "outputs"
