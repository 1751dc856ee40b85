"""The REST API's list and count queries (the store's :class:`~faice.state.listing.Listing`), by their older names."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from faice.state.listing import Filters, Table
from faice.state.store import Store

__all__ = ["Filters", "count", "open_batches", "rows"]


def count(store: Store, table: Table, filters: Filters) -> int:
    return store.count(table, filters)


def rows(store: Store, table: Table, filters: Filters, *, skip: int = 0, limit: int | None = None, ascending: bool = False) -> list[dict[str, Any]]:
    return store.rows(table, filters, skip=skip, limit=limit, ascending=ascending)


def open_batches(store: Store) -> list[dict[str, Any]]:
    """Batches that hold resources on this machine now (scheduled or processing), with their ram."""
    return [asdict(b) for b in store.running_batches()]
