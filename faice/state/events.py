"""The store's event queries: every history entry is an event (``GET /events``, ``faice watch``).

An entry's id never repeats (the ``history_event_ids`` migration), so a client that names the
last id it saw resumes exactly, across server restarts too.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from faice.state.database import Database
from faice.state.states import STATES


class EventRow(NamedTuple):
    """One batch state change, with whose batch it is (what a caller may see depends on it)."""

    id: int
    time: float
    batch_id: str
    experiment_id: str
    state: str
    node: str | None
    username: str | None
    index: int


class ExperimentCounts(NamedTuple):
    """An experiment's batches by state, now."""

    experiment_id: str
    username: str | None
    batches: dict[str, int]


class EventFilter(NamedTuple):
    """Which events a reader wants and may see: ``owner`` restricts a non-admin to their own."""

    owner: str | None = None
    experiment_id: str | None = None
    batch_id: str | None = None


class EventTables:
    """The event methods of :class:`faice.state.store.Store`."""

    _db: Database
    path: Path

    def write_marker(self) -> tuple[int, ...]:
        """What changes when any process commits to the file (its write-ahead log's and its own
        size and modification time): a look costs two stat calls instead of a query, so readers of
        new events may look often. File times are coarse: readers also query now and then."""
        marker: list[int] = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                found = os.stat(path)
            except OSError:
                marker += [-1, -1]
                continue
            marker += [found.st_size, found.st_mtime_ns]
        return tuple(marker)

    def last_event_id(self) -> int:
        """The newest event's id (0: none yet)."""
        with self._db.connection() as conn:
            return conn.execute("SELECT COALESCE(MAX(id), 0) FROM history").fetchone()[0]

    def events_after(self, after: int, limit: int, wanted: EventFilter = EventFilter(), upto: int | None = None) -> list[EventRow]:
        """Up to ``limit`` events newer than ``after`` (and not newer than ``upto``), oldest first."""
        with self._db.connection() as conn:
            return _rows(conn, after, limit, wanted, upto)

    def events_page(self, after: int, limit: int, wanted: EventFilter = EventFilter(), upto: int | None = None) -> EventPage:
        """``events_after`` and, read in the same snapshot of the file, the counts of each experiment
        the rows touched that has no later history in that snapshot: counts that say no more than
        the rows do (an experiment with later changes gets its counts with the page holding them)."""
        with self._db.snapshot() as conn:
            rows = _rows(conn, after, limit, wanted, upto)
            if not rows:
                return EventPage([], [])
            last = rows[-1].id
            settled = [e for e in dict.fromkeys(row.experiment_id for row in rows)
                       if conn.execute("SELECT 1 FROM history WHERE experiment_id = ? AND id > ? LIMIT 1", (e, last)).fetchone() is None]
            return EventPage(rows, _counts(conn, settled))

    def experiment_counts(self, experiment_ids: Iterable[str]) -> list[ExperimentCounts]:
        """Each existing experiment's batches counted by state (every state named, 0 included)."""
        with self._db.snapshot() as conn:
            return _counts(conn, list(dict.fromkeys(experiment_ids)))


class EventPage(NamedTuple):
    """A page of events and the counts of the experiments it leaves settled."""

    rows: list[EventRow]
    counts: list[ExperimentCounts]


def _rows(conn: sqlite3.Connection, after: int, limit: int, wanted: EventFilter, upto: int | None) -> list[EventRow]:
    clauses, params = ["h.id > ?"], [after]
    for clause, value in (("h.id <= ?", upto), ("b.username = ?", wanted.owner), ("h.experiment_id = ?", wanted.experiment_id),
                          ("h.batch_id = ?", wanted.batch_id)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = ("SELECT h.id, h.time, h.batch_id, h.experiment_id, h.state, h.node, b.username, b.idx FROM history h JOIN batches b ON b.id = h.batch_id"
           f" WHERE {' AND '.join(clauses)} ORDER BY h.id LIMIT ?")  # noqa: S608 - the clauses are the constants above
    return [EventRow(*row) for row in conn.execute(sql, [*params, limit])]


#: experiments counted per statement (SQLite before 3.32 takes at most 999 parameters)
COUNT_CHUNK = 500


def _counts(conn: sqlite3.Connection, ids: list[str]) -> list[ExperimentCounts]:
    owners: dict[str, str | None] = {}
    counted: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), COUNT_CHUNK):
        chunk = ids[start:start + COUNT_CHUNK]
        marks = ",".join("?" * len(chunk))
        owners.update(conn.execute(f"SELECT id, username FROM experiments WHERE id IN ({marks})", chunk).fetchall())  # noqa: S608
        counted.update({i: dict.fromkeys(map(str, STATES), 0) for i in chunk if i in owners})
        for experiment_id, state, n in conn.execute(
                f"SELECT experiment_id, state, SUM(n) FROM batch_counts WHERE experiment_id IN ({marks}) GROUP BY experiment_id, state", chunk):  # noqa: S608
            if experiment_id in counted:
                counted[experiment_id][state] = n
    return [ExperimentCounts(i, owners[i], counted[i]) for i in ids if i in owners]
