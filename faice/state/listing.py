"""The store's list and count queries of the REST API, on the indexes its migrations create.

CC-Agency sorts by registration time only, which leaves batches of one experiment (they share
it) in no particular order; here ties are broken by rowid, the order they were registered in,
so paging with skip/limit is stable.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

from faice.state.database import Database
from faice.state.states import RUNNING_STATES

Table = Literal["experiments", "batches"]


class Filters(NamedTuple):
    """Exact-match filters; ``owner`` is the restriction for a non-admin (None for admins)."""

    owner: str | None = None
    username: str | None = None
    node: str | None = None
    state: str | None = None
    experiment_id: str | None = None

    def where(self, experiments: bool = False) -> tuple[str, list[Any]]:
        clauses, params = [], []
        columns = [("username", self.owner), ("username", self.username)]
        if not experiments:
            columns += [("node", self.node), ("state", self.state), ("experiment_id", self.experiment_id)]
        for column, value in columns:
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class RunningBatch(NamedTuple):
    """A batch that holds resources on this machine now, and the memory (MiB) it asked for."""

    id: str
    username: str | None
    ram: int | None


class Listing:
    """The list methods of :class:`faice.state.store.Store`."""

    _db: Database

    def count(self, table: Table, filters: Filters) -> int:
        """How many rows match: experiments counted directly, batches from the trigger-kept ``batch_counts``."""
        where, params = filters.where(experiments=table == "experiments")
        if table == "batches" and "" in params:
            return 0  # batch_counts stores a missing node as "": no batch has an empty name or node
        sql = f"SELECT COUNT(*) FROM experiments{where}" if table == "experiments" else f"SELECT COALESCE(SUM(n), 0) FROM batch_counts{where}"  # noqa: S608
        with self._db.connection() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def rows(self, table: Table, filters: Filters, *, skip: int = 0, limit: int | None = None, ascending: bool = False) -> list[dict[str, Any]]:
        """Rows of ``experiments`` or ``batches`` for a list route, newest first unless ``ascending``:
        an experiment's id, username and created_at; a batch's also its state, experiment_id,
        node, idx and history_json."""
        where, params = filters.where(experiments=table == "experiments")
        order = "ASC" if ascending else "DESC"
        columns = "id, username, created_at" if table == "experiments" else "id, username, created_at, state, experiment_id, node, idx, history_json"
        sql = f"SELECT {columns} FROM {table}{where} ORDER BY created_at {order}, rowid {order} LIMIT ? OFFSET ?"  # noqa: S608
        with self._db.connection() as conn:
            return [dict(r) for r in conn.execute(sql, [*params, -1 if limit is None else limit, skip])]

    def running_batches(self) -> list[RunningBatch]:
        """Batches scheduled or processing, with the ram of their experiment."""
        with self._db.connection() as conn:
            found = conn.execute("SELECT b.id, b.username, e.ram, e.red FROM batches b JOIN experiments e ON e.id = b.experiment_id"
                                 f" WHERE b.state IN ({','.join('?' * len(RUNNING_STATES))})", RUNNING_STATES).fetchall()  # noqa: S608
        return [RunningBatch(r["id"], r["username"], r["ram"] if r["ram"] is not None else _ram_of(r["red"])) for r in found]


def _ram_of(red: str) -> int | None:
    """``container.settings.ram`` of a record written before the ram column existed (schema < 3)."""
    try:
        return json.loads(red)["container"]["settings"].get("ram")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
