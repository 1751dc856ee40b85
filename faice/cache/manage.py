"""What ``faice why`` and ``faice cache ls|du|prune`` answer, as plain data from the store and the cache directory."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from faice.cache.key import differences
from faice.cache.results import ResultCache
from faice.errors import InvalidInput
from faice.state.store import Store

#: the entries ``faice why`` compares a batch with (the most recently used first)
WHY_CANDIDATES = 2000


class Why(NamedTuple):
    """Why a batch ran or did not: what it was compared with, and the parts that differ."""

    batch_id: str
    #: "hit" (it reused a result), "stored" (it ran; its result is an entry now), "in-cache" (an
    #: entry with its key came later), "miss" (it ran; no entry has its key), "empty", "compared"
    verdict: str
    summary: str
    other: str | None  # the batch or entry compared with
    differences: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"batchId": self.batch_id, "verdict": self.verdict, "summary": self.summary, "comparedWith": self.other, "differences": self.differences}


def _batch(store: Store, text: str) -> tuple[str, dict[str, Any], Any]:
    kind, full = store.resolve_id(text)
    if kind == "experiment":
        ids = store.batch_ids(full)
        if len(ids) != 1:
            raise InvalidInput(f"{full} is an experiment of {len(ids)} batches; name one of them (faice show {full} lists them)")
        full = ids[0]
    parts = store.cache_parts_of(full)
    if parts is None:
        raise InvalidInput(f"batch {full} has no cache key: it ran without --cache, or was stopped before its inputs were hashed")
    return full, parts, store.batch(full)


def why(store: Store, batch: str, other: str | None = None) -> Why:
    """Compare a batch's key parts with another batch's, or with the closest entry in the cache."""
    batch_id, parts, row = _batch(store, batch)
    if other is not None:
        other_id, other_parts, _ = _batch(store, other)
        found = differences(other_parts, parts)
        summary = "the same key: one could serve the other" if not found else f"{len(found)} difference{'s' if len(found) != 1 else ''} in the key"
        return Why(batch_id, "compared", summary, other_id, found)
    if row.cached_from:
        return Why(batch_id, "hit", f"a cache hit: it reused the result of batch {row.cached_from}", row.cached_from, [])
    entry = store.cache_entry(row.cache_key)
    if entry is not None and entry.batch_id != batch_id:
        return Why(batch_id, "in-cache", f"an entry with its key is in the cache now (stored by batch {entry.batch_id}); there was none when it started",
                   entry.batch_id, [])
    made = "; its result is that entry now" if entry is not None else ""
    if row.state != "succeeded":
        made = f"; it {row.state}, and only succeeded batches are stored"
    others = [e for e in store.cache_entries(limit=WHY_CANDIDATES) if e.key != row.cache_key]
    if not others:
        return Why(batch_id, "stored" if made else "empty", f"no entry had its key{made}; the cache holds no other entry to compare with", None, [])
    found, _used, closest = min(((differences(e.parts, parts), -e.used_at, e) for e in others), key=lambda t: (len(t[0]), t[1]))
    return Why(batch_id, "stored" if made else "miss",
               f"no entry had its key{made}; the closest other (stored by batch {closest.batch_id}) differs in {len(found)} part{'s' if len(found) != 1 else ''}",
               closest.batch_id, found)


def listing(store: Store) -> list[dict[str, Any]]:
    """``faice cache ls``: every entry, the most recently used first."""
    return [{"key": e.key, "batchId": e.batch_id, "createdAt": e.created_at, "usedAt": e.used_at, "hits": e.hits, "bytes": e.size,
             "image": e.parts.get("image"), "argv": e.parts.get("argv")} for e in store.cache_entries()]


def usage(store: Store) -> dict[str, Any]:
    """``faice cache du``: entries, the bytes their results hold, and what the blobs take on disk (each content once)."""
    cache = ResultCache(store)
    entries = store.cache_entries()
    return {"path": str(cache.root), "entries": len(entries), "bytes": sum(e.size for e in entries), "diskBytes": cache.disk_usage()}


def prune(store: Store, older_than: float | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Drop the entries not used for ``older_than`` seconds (all, without it), then the blobs no entry needs."""
    cache = ResultCache(store)
    cutoff = None if older_than is None else time.time() - older_than
    doomed = [e.key for e in store.cache_entries(used_before=cutoff)]
    if dry_run:
        return {"entries": len(doomed), "freedBytes": None, "dryRun": True}
    freed = cache.remove(doomed)
    store.forget_hashes(cutoff)  # hashes remembered before then go too: the table does not grow for ever
    return {"entries": len(doomed), "freedBytes": freed, "dryRun": False}
