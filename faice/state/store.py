"""The SQLite state: experiments, batches and the history of every batch state change.

One file per user (``$FAICE_DB``, ``--db``, or ``$XDG_DATA_HOME/faice/faice.db``), in WAL mode
so that several ``faice exec`` processes and ``faice serve`` share it. Ids are 24 hex
characters and batch states are CC-Agency's, so the REST API is a view of this store.
Secrets are never written here: callers store masked argv and credential-free RED data.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple

from faice.errors import InvalidInput
from faice.state.accounts import AccountTables
from faice.state.cache_tables import CacheTables
from faice.state.database import Database
from faice.state.events import EventTables
from faice.state.listing import Listing
from faice.state.states import FINAL_STATES, OPEN_STATES, RUNNING_STATES, STATES, BatchState

__all__ = ["FINAL_STATES", "OPEN_STATES", "STATES", "BatchRow", "BatchState", "Reopened", "StillRunning", "Store", "UnknownId"]


#: the batch columns that hold JSON (the rest hold plain values)
JSON_COLUMNS = frozenset({"argv", "outputs", "cache_parts"})


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "faice"


def default_db_path() -> Path:
    return Path(os.environ["FAICE_DB"]) if os.environ.get("FAICE_DB") else data_dir() / "faice.db"


def new_id() -> str:
    """24 hex characters like CC-Agency's ids: creation second first, so ids sort by age."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


class BatchRow(NamedTuple):
    """A batch as the store records it."""

    id: str
    experiment_id: str
    index: int
    state: BatchState
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
    #: the batch's cache key (a run with the cache) and the batch whose result it reused (a hit)
    cache_key: str | None = None
    cached_from: str | None = None
    #: where its File and Directory inputs came from (faice.provenance.sources), masked; [] before they were recorded
    input_sources: list[dict[str, Any]] = []
    #: what its container used (faice.runner.usage): the most memory at once (bytes), CPU time (s); None: not measured
    peak_memory: int | None = None
    cpu_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"batchId": self.id, "experimentId": self.experiment_id, "index": self.index, "state": self.state, "attempts": self.attempts,
                "argv": self.argv, "exitCode": self.exit_code, "error": self.error, "outputs": self.outputs, "inputSources": self.input_sources, "createdAt": self.created_at, "updatedAt": self.updated_at,
                "peakMemory": self.peak_memory, "cpuSeconds": self.cpu_seconds}
        if self.cache_key is not None:  # a faice extension, only where the cache was used
            data["cacheKey"], data["cachedFrom"] = self.cache_key, self.cached_from
        return data

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BatchRow:
        return cls(
            id=row["id"], experiment_id=row["experiment_id"], index=row["idx"], state=BatchState(row["state"]),
            attempts=row["attempts"], created_at=row["created_at"], updated_at=row["updated_at"],
            argv=json.loads(row["argv"] or "[]"), exit_code=row["exit_code"], error=row["error"],
            outputs=json.loads(row["outputs"] or "{}"), container=row["container"], node=row["node"], username=row["username"],
            cache_key=row["cache_key"], cached_from=row["cached_from"], input_sources=json.loads(row["input_sources"] or "[]"),
            peak_memory=row["peak_memory"], cpu_seconds=row["cpu_seconds"],
        )


class BatchTimes(NamedTuple):
    """When a batch first began to run, when its last attempt began, when it ended (None: not yet;
    ``start`` also None while an attempt after a retry or resume has not begun)."""

    first_start: float | None
    start: float | None
    end: float | None


class OpenExperiment(NamedTuple):
    """An experiment with batches not finished yet, and the process that registered it."""

    id: str
    runner: str | None
    pid: int | None
    host: str | None


class QueuedBatch(NamedTuple):
    """A registered batch waiting for a slot: what the server needs to schedule it, oldest first."""

    id: str
    index: int
    attempts: int
    created_at: float
    rowid: int


class Reopened(NamedTuple):
    """An experiment taken up again: which run of it this is (the first was 1) and its batches."""

    run: int
    batches: list[BatchRow]


class Store(AccountTables, CacheTables, EventTables, Listing):
    """The state file, read and written only through these methods (and those of the bases).

    Its connections (one per thread) and their locks are :class:`faice.state.database.Database`'s,
    private to the store's modules: no other module writes SQL.
    """

    def __init__(self, path: Path | str | None = None, *, read_heavy: bool = True) -> None:
        """``read_heavy``: a large page cache and memory-mapped reads per connection, for lists and
        counts of many batches; ``faice exec``, which mostly writes, runs without."""
        self.path = (Path(path) if path is not None else default_db_path()).absolute()  # outputs and logs live beside it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.path, read_heavy=read_heavy)

    # --- writing -------------------------------------------------------------------------------

    def create_experiment(self, *, source: str, red: dict[str, Any], argvs: list[list[str]], image: str, engine: str | None, username: str,
                          ram: int | None = None, runner: str = "exec", retries: int = 0, settings: dict[str, Any] | None = None,
                          has_secrets: bool = False, container_engine: str | None = None, cache: bool = False,
                          input_sources: list[list[dict[str, Any]]] | None = None) -> tuple[str, list[str]]:
        """Register an experiment and its batches (state ``registered``); return their ids.

        ``red`` must already be redacted. ``has_secrets`` says whether redacting removed anything:
        only an experiment without secrets can be run again from this record after a restart.
        ``cache``: its batches are looked up in (and stored to) the result cache. ``input_sources``:
        each batch's (faice.provenance.sources, masked already).
        """
        from faice import __version__

        experiment_id = new_id()
        now = time.time()
        batch_ids = [new_id() for _ in argvs]
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO experiments (id, created_at, username, source, red, batch_count, image, engine, pid, host, runner, ram, retries, settings, has_secrets,"
                " container_engine, faice_version, cache) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (experiment_id, now, username, source, json.dumps(red), len(argvs), image, engine, os.getpid(), os.uname().nodename,
                 runner, ram, retries, json.dumps(settings or {}), int(has_secrets), container_engine, __version__, int(cache)),
            )
            registered = json.dumps([{"state": BatchState.REGISTERED, "time": now, "node": None}])
            conn.executemany(
                "INSERT INTO batches (id, experiment_id, idx, state, attempts, created_at, updated_at, argv, outputs, username, history_json, input_sources)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(bid, experiment_id, i, BatchState.REGISTERED, 0, now, now, json.dumps(argv), "{}", username, registered,
                  json.dumps(input_sources[i]) if input_sources else None)
                 for i, (bid, argv) in enumerate(zip(batch_ids, argvs, strict=True))],
            )
            conn.executemany(
                "INSERT INTO history (batch_id, experiment_id, time, state, reason) VALUES (?,?,?,?,?)",
                [(bid, experiment_id, now, BatchState.REGISTERED, "submitted") for bid in batch_ids],
            )
        return experiment_id, batch_ids

    def set_state(self, batch_id: str, state: BatchState | str, reason: str, only_from: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Move a batch to ``state``, recording why in its history (and any result fields).

        A cancelled batch stays cancelled (``faice cancel`` may have come from another process):
        then nothing changes and the answer is False.
        """
        return self.set_states([batch_id], state, reason, only_from, **fields) == 1

    def set_states(self, batch_ids: list[str], state: BatchState | str, reason: str, only_from: tuple[str, ...] | None = None, **fields: Any) -> int:
        """``set_state`` for many batches in one transaction; returns how many changed.

        With ``only_from``, a batch moves only from one of those states (compare-and-set).
        """
        return len(self.move(batch_ids, state, reason, only_from, **fields))

    def move(self, batch_ids: list[str], state: BatchState | str, reason: str, only_from: tuple[str, ...] | None = None,
             **fields: Any) -> dict[str, BatchState]:
        """``set_states``, answering the state each batch that moved was in: what was true when
        it moved, not what a read before the move saw."""
        now = time.time()
        moved: dict[str, BatchState] = {}
        with self._db.transaction() as conn:
            for batch_id in batch_ids:
                row = conn.execute("SELECT experiment_id, state, node FROM batches WHERE id = ?", (batch_id,)).fetchone()
                if row is None:
                    raise KeyError(batch_id)
                if row["state"] == BatchState.CANCELLED or (only_from is not None and row["state"] not in only_from):
                    continue
                _record_move(conn, batch_id, row, BatchState(state), reason, now, fields)
                moved[batch_id] = BatchState(row["state"])
        return moved

    def reopen(self, experiment_id: str, container_engine: str) -> Reopened:
        """Take up an experiment whose run ended, in this process (``faice exec --resume``).

        The experiment becomes this process's (pid, host, container engine: what crash cleanup
        and cancel look at); its batches that did not succeed (failed, cancelled) go back to
        ``registered`` with the reason ``resumed (run N)``, their last result cleared and their
        attempts kept; succeeded batches stay as they are. One transaction: of two resumes at
        once, the second finds the first's batches open and is refused (:class:`StillRunning`,
        as is a run that has not ended). The run's number counts the resumes before it, as the
        history records them.
        """
        from faice import __version__

        now = time.time()
        with self._db.transaction() as conn:
            owner = conn.execute("SELECT pid, host FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
            if owner is None:
                raise UnknownId(f'no experiment with id "{experiment_id}" in {self.path}')
            rows = conn.execute("SELECT id, experiment_id, state, node FROM batches WHERE experiment_id = ? ORDER BY idx", (experiment_id,)).fetchall()
            if any(row["state"] in OPEN_STATES for row in rows):
                raise StillRunning(still_running(experiment_id, owner["pid"], owner["host"]))
            earlier = conn.execute("SELECT COUNT(DISTINCT time) FROM history WHERE experiment_id = ? AND state = ? AND reason LIKE ?",
                                   (experiment_id, BatchState.REGISTERED, f"{RESUMED} (run %")).fetchone()[0]
            run = earlier + 2
            conn.execute("UPDATE experiments SET pid = ?, host = ?, container_engine = ?, faice_version = ? WHERE id = ?",
                         (os.getpid(), os.uname().nodename, container_engine, __version__, experiment_id))
            for row in rows:
                if row["state"] != BatchState.SUCCEEDED:  # nothing of the last attempt stays: its result, container, cache key and hit
                    _record_move(conn, row["id"], row, BatchState.REGISTERED, f"{RESUMED} (run {run})", now,
                                 {"exit_code": None, "error": None, "outputs": {}, "container": None, "cache_key": None, "cache_parts": None,
                                  "cached_from": None, "peak_memory": None, "cpu_seconds": None})
        return Reopened(run, self.batches(experiment_id))

    def set_container_engine(self, experiment_id: str, engine: str) -> None:
        """The engine an experiment's batches run on from now (a server restarted on another)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE experiments SET container_engine = ? WHERE id = ?", (engine, experiment_id))

    def set_image_id(self, experiment_id: str, image_id: str) -> None:
        """The ID the experiment's image tag resolved to when its batches ran (``sha256:...``)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE experiments SET image_id = ? WHERE id = ?", (image_id, experiment_id))

    def update(self, batch_id: str, **fields: Any) -> None:
        """Change result fields without a state change (container id, attempts)."""
        columns = {k: (json.dumps(v) if k in JSON_COLUMNS else v) for k, v in fields.items()}
        with self._db.connection() as conn:
            conn.execute(f"UPDATE batches SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?", (*columns.values(), batch_id))

    # --- reading -------------------------------------------------------------------------------

    def resolve_id(self, text: str, kinds: tuple[str, ...] = ("experiment", "batch")) -> tuple[str, str]:
        """("experiment" or "batch", the full id) for an id, an id in capitals, or a unique prefix
        of at least 4 characters of one (as git takes commits); raises UnknownId. ``kinds``: only
        those are looked for (an experiment's batches share the first 8 characters of its id)."""
        wanted = text.strip().lower()
        what = " or ".join(kinds)
        if len(wanted) < MIN_PREFIX or len(wanted) > 24 or any(c not in "0123456789abcdef" for c in wanted):
            raise UnknownId(f'"{text}" is not an {what} id (24 hex digits, or at least the first {MIN_PREFIX} of them)')
        found: list[tuple[str, str]] = []
        with self._db.connection() as conn:
            for kind, table in (("experiment", "experiments"), ("batch", "batches")):
                if kind not in kinds:
                    continue
                rows = conn.execute(f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (wanted, wanted + "g")).fetchall()  # noqa: S608
                found += [(kind, row["id"]) for row in rows]
        exact = [f for f in found if f[1] == wanted]
        if exact or len(found) == 1:
            return (exact or found)[0]
        if not found:
            raise UnknownId(f'no {what} with id "{text}" in {self.path}')
        shown = ", ".join(f"{i} ({kind})" for kind, i in found[:5]) + (", ..." if len(found) > 5 else "")
        raise UnknownId(f'"{text}" starts several ids: {shown}; give more of it')

    def has_open_batches(self, experiment_id: str) -> bool:
        """Whether any batch of the experiment is not finished (an unknown experiment has none)."""
        with self._db.connection() as conn:
            row = conn.execute(f"SELECT 1 FROM batches WHERE experiment_id = ? AND state IN ({','.join('?' * len(OPEN_STATES))}) LIMIT 1",  # noqa: S608
                                    (experiment_id, *OPEN_STATES)).fetchone()
        return row is not None

    def batch(self, batch_id: str) -> BatchRow | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return BatchRow.from_row(row) if row else None

    def is_cancelled(self, batch_id: str) -> bool:
        """Whether ``faice cancel`` (maybe in another process) recorded this batch as cancelled."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return row is not None and row["state"] == BatchState.CANCELLED

    def batches(self, experiment_id: str) -> list[BatchRow]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM batches WHERE experiment_id = ? ORDER BY idx", (experiment_id,)).fetchall()
        return [BatchRow.from_row(r) for r in rows]

    def batch_ids(self, experiment_id: str, states: tuple[str, ...] | None = None) -> list[str]:
        """The experiment's batch ids in index order; with ``states``, of the batches in one of them."""
        where, params = "", ()
        if states is not None:
            where, params = f" AND state IN ({','.join('?' * len(states))})", tuple(states)
        with self._db.connection() as conn:
            return [r[0] for r in conn.execute(f"SELECT id FROM batches WHERE experiment_id = ?{where} ORDER BY idx", (experiment_id, *params))]  # noqa: S608

    def running_batch_ids(self, experiment_id: str) -> list[str]:
        """The experiment's batches that are scheduled or processing."""
        return self.batch_ids(experiment_id, RUNNING_STATES)

    def queued_batches(self, experiment_id: str, limit: int) -> list[QueuedBatch]:
        """Up to ``limit`` of the experiment's registered batches, in the order they were registered."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT id, idx, attempts, created_at, rowid FROM batches WHERE experiment_id = ? AND state = ? ORDER BY rowid LIMIT ?",
                                (experiment_id, BatchState.REGISTERED, limit)).fetchall()
        return [QueuedBatch(r["id"], r["idx"], r["attempts"] or 0, r["created_at"], r["rowid"]) for r in rows]

    def open_experiments(self, runner: str | None = None) -> list[OpenExperiment]:
        """Experiments with a batch not finished; with ``runner`` ("exec" or "serve"), only those it
        runs (records from before schema 3, which have none, are exec's)."""
        where, params = "", ()
        if runner is not None:
            where, params = " AND COALESCE(e.runner, 'exec') = ?", (runner,)
        with self._db.connection() as conn:
            rows = conn.execute("SELECT DISTINCT e.id, e.runner, e.pid, e.host FROM batches b JOIN experiments e ON e.id = b.experiment_id"
                                f" WHERE b.state IN ({','.join('?' * len(OPEN_STATES))}){where}", (*OPEN_STATES, *params)).fetchall()  # noqa: S608
        return [OpenExperiment(r["id"], r["runner"], r["pid"], r["host"]) for r in rows]

    def experiment(self, experiment_id: str, red: bool = True) -> dict[str, Any] | None:
        """The experiment's record; without ``red``, all but its (perhaps megabytes of) RED data."""
        columns = "*" if red else ("id, created_at, username, source, batch_count, image, engine, runner, outdir, retries, has_secrets, container_engine,"
                                   " pid, host, image_id, faice_version, cache")
        with self._db.connection() as conn:
            row = conn.execute(f"SELECT {columns} FROM experiments WHERE id = ?", (experiment_id,)).fetchone()  # noqa: S608
        if row is None:
            return None
        data = dict(row)
        if red:
            data["red"] = json.loads(data["red"])
        return data

    def experiments(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, with the number of batches in each state (and where their outputs are)."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT id, created_at, username, source, batch_count, image, runner, outdir FROM experiments"
                                     " ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
            result = []
            for row in rows:
                counts = {s: 0 for s in STATES}
                for state, n in conn.execute("SELECT state, COUNT(*) FROM batches WHERE experiment_id = ? GROUP BY state", (row["id"],)):
                    counts[state] = n
                result.append({**dict(row), "states": counts})
        return result

    def last_experiment(self, source: str) -> str | None:
        """The newest experiment that ``faice exec`` ran from ``source`` (as it was recorded)."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT id FROM experiments WHERE source = ? AND COALESCE(runner, 'exec') = 'exec' ORDER BY created_at DESC, id DESC LIMIT 1",
                               (source,)).fetchone()
        return row["id"] if row else None

    def set_outdir(self, experiment_id: str, outdir: str | None) -> None:
        """Where the experiment's outputs are now (an exec run's OUTDIR, or where a later run moved them)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE experiments SET outdir = ? WHERE id = ?", (outdir, experiment_id))

    def finished_before(self, cutoff: float, states: tuple[str, ...] | None = None) -> list[str]:
        """Experiments made before ``cutoff`` whose batches all ended before it too (a resumed
        experiment is as old as its last run); with ``states``, only those whose outcome (failed if
        a batch failed, else cancelled if one was, else succeeded) is one of them."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT e.id, GROUP_CONCAT(DISTINCT b.state) AS states FROM experiments e LEFT JOIN batches b ON b.experiment_id = e.id"
                " WHERE e.created_at < ? GROUP BY e.id HAVING COALESCE(MAX(b.updated_at), e.created_at) < ? ORDER BY e.created_at",
                (cutoff, cutoff)).fetchall()
        found = []
        for row in rows:
            present = set((row["states"] or "").split(",")) - {""}
            if present & set(OPEN_STATES):
                continue
            outcome = BatchState.FAILED if BatchState.FAILED in present else BatchState.CANCELLED if BatchState.CANCELLED in present else BatchState.SUCCEEDED
            if states is None or outcome in states:
                found.append(row["id"])
        return found

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment with its batches and history (their logs are the caller's)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM history WHERE experiment_id = ?", (experiment_id,))
            conn.execute("DELETE FROM batches WHERE experiment_id = ?", (experiment_id,))
            conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))

    def batch_times(self, experiment_id: str) -> dict[str, BatchTimes]:
        """When each batch of an experiment first and last began to run and when it ended, from its
        history in one query (a report of 10,000 batches asks once, not per batch).

        The last start counts only when it follows the batch's last move to ``registered`` (a retry,
        a resumed run): a batch cancelled before its new attempt began has no start, rather than
        one from an earlier run that would give it a run time spanning both."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT batch_id, MIN(CASE WHEN state = ? THEN time END) AS first_start, MAX(CASE WHEN state = ? THEN time END) AS start, "
                "MAX(CASE WHEN state = ? THEN id END) AS started, MAX(CASE WHEN state = ? THEN id END) AS queued, "
                f"MAX(CASE WHEN state IN ({','.join('?' * len(FINAL_STATES))}) THEN time END) AS ended "
                "FROM history WHERE experiment_id = ? GROUP BY batch_id",
                (BatchState.PROCESSING, BatchState.PROCESSING, BatchState.PROCESSING, BatchState.REGISTERED, *FINAL_STATES, experiment_id)).fetchall()
        return {r["batch_id"]: BatchTimes(r["first_start"], r["start"] if r["queued"] is None or (r["started"] or 0) > r["queued"] else None, r["ended"])
                for r in rows}

    def history(self, batch_id: str) -> list[dict[str, Any]]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT time, state, reason, node FROM history WHERE batch_id = ? ORDER BY id", (batch_id,)).fetchall()
        return [dict(r) for r in rows]

    def close(self) -> None:
        """Close every thread's connection (a thread that uses the store again opens a new one)."""
        self._db.close()


MIN_PREFIX = 4
#: the history's reason for a batch that a resumed run takes up again: "resumed (run 2)"
RESUMED = "resumed"


class UnknownId(InvalidInput):
    """No experiment or batch, or more than one, goes by what was given."""


class StillRunning(InvalidInput):
    """An experiment that is to be taken up again has batches that have not ended."""


def still_running(experiment_id: str, pid: int | None, host: str | None) -> str:
    """Why an experiment cannot be resumed while its run goes on, and what to do."""
    owner = (f"faice pid {pid}" if pid else "its faice process") + (f" on {host}" if host and host != os.uname().nodename else "")
    return f"experiment {experiment_id} is still running ({owner}): let it end, or cancel it (faice cancel {experiment_id}), before resuming it"


def _record_move(conn: sqlite3.Connection, batch_id: str, row: sqlite3.Row, state: BatchState, reason: str, now: float, fields: dict[str, Any]) -> None:
    """Write a batch's move to ``state`` (``row``: its experiment and node) with its result ``fields``, and the history entry."""
    columns = {"state": state, "updated_at": now}
    for key, value in fields.items():
        columns[key] = json.dumps(value) if key in JSON_COLUMNS else value
    assignments = ", ".join(f"{k} = ?" for k in columns)
    node = fields.get("node", row["node"])
    entry = json.dumps({"state": state, "time": now, "node": node})  # Python's float text, as in the full document
    conn.execute(f"UPDATE batches SET {assignments}, history_json = json_insert(COALESCE(history_json, '[]'), '$[#]', json(?)) WHERE id = ?",
                 (*columns.values(), entry, batch_id))
    conn.execute("INSERT INTO history (batch_id, experiment_id, time, state, reason, node) VALUES (?,?,?,?,?,?)",
                 (batch_id, row["experiment_id"], now, state, reason, node))


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
