"""What faice recorded, as the documents ``faice list``, ``show`` and ``logs`` print.

The CLI only prints these; building them (from the store, the captured logs, a running
container) is library work, usable by anything that holds a store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO, Any

from faice.errors import InvalidInput
from faice.state.cleanup import footprint
from faice.state.livelog import POLL, LogFollower, attempt_marker
from faice.state.store import FINAL_STATES, Store, log_path


def experiment_summary(row: dict[str, Any], disk_bytes: int) -> dict[str, Any]:
    """One experiment of ``faice list --json`` (camelCase, as every JSON faice writes)."""
    return {"experimentId": row["id"], "createdAt": row["created_at"], "username": row["username"], "source": row["source"],
            "batchCount": row["batch_count"], "image": row["image"], "states": row["states"], "diskBytes": disk_bytes}


def experiment_document(record: dict[str, Any], batches: list[dict[str, Any]], disk: dict[str, Any]) -> dict[str, Any]:
    """``faice show EXPERIMENT --json``: the experiment as recorded (its RED data redacted), its batches and what it takes on disk."""
    return {"experimentId": record["id"], "createdAt": record["created_at"], "username": record["username"], "source": record["source"],
            "runBy": record.get("runner") or "exec", "image": record["image"], "engine": record["engine"], "ram": record.get("ram"),
            "batchCount": record["batch_count"], "outdir": record.get("outdir"), "red": record["red"], "disk": disk, "batches": batches}


def experiment_summaries(store: Store, limit: int) -> list[dict[str, Any]]:
    """``faice list``: the newest ``limit`` experiments."""
    return [experiment_summary(row, footprint(store, row).bytes) for row in store.experiments(limit)]


@dataclass(frozen=True)
class Shown:
    """What ``faice show`` found: an experiment (with its batches) or a batch (with its history)."""

    kind: str  # "experiment" or "batch"
    document: dict[str, Any]


def show(store: Store, id: str) -> Shown:
    """The document of an experiment or a batch, given its id or a unique start of one."""
    kind, id = store.resolve_id(id)
    experiment = store.experiment(id) if kind == "experiment" else None
    if experiment is not None:
        batches = [b.to_json() for b in store.batches(id)]
        return Shown("experiment", experiment_document(experiment, batches, footprint(store, experiment).to_json()))
    batch = store.batch(id)
    assert batch is not None
    return Shown("batch", {**batch.to_json(), "history": store.history(id)})


def write_log(store: Store, batch_id: str, out: IO[bytes], *, stderr: bool = False, follow: bool = False, notes: IO[bytes] | None = None) -> None:
    """Write what a batch's tool wrote to stdout (or stderr) to ``out``.

    With ``follow``, a batch that has not ended is followed: what its running attempt writes is
    written as it comes, then each further attempt's (its start said on ``notes`` as
    :func:`attempt_marker`, from the second attempt on), until the batch ends.
    """
    kind, batch_id = store.resolve_id(batch_id)
    if kind == "experiment":
        batches = store.batches(batch_id)
        shown = ", ".join(f"{b.id} ({b.state})" for b in batches[:5]) + (f", and {len(batches) - 5} more (faice show {batch_id})" if len(batches) > 5 else "")
        raise InvalidInput(f"{batch_id} is an experiment; logs belong to its batches: {shown}")
    batch = store.batch(batch_id)
    stream = "stderr" if stderr else "stdout"
    if follow and batch is not None and batch.state not in FINAL_STATES:
        if _follow_log(store, batch_id, stream, out, notes):
            return
        batch = store.batch(batch_id)
    path = log_path(store.path, batch_id, stream)
    if not path.exists():
        raise InvalidInput(f"batch {batch_id} has no captured {stream} (state: {batch.state if batch else 'unknown'})")
    with open(path, "rb") as handle:
        out.write(handle.read())


def _follow_log(store: Store, batch_id: str, stream: str, out: IO[bytes], notes: IO[bytes] | None) -> bool:
    """Follow a batch to its end; False when it ended without a file to show."""
    follower = LogFollower(store, batch_id, stream)
    try:
        while not follower.done:
            for part in follower.poll():
                if part.data is not None:
                    out.write(part.data)
                    out.flush()
                elif part.attempt > 1 and notes is not None:
                    out.flush()
                    notes.write(attempt_marker(part.attempt))
                    notes.flush()
            if not follower.done and not follower.behind:
                time.sleep(POLL)
    finally:
        follower.close()
    return follower.attempt is not None


def experiment_ids(store: Store, given: list[str]) -> list[str]:
    """The full ids of whole experiments (``faice rm``); a batch id is refused."""
    resolved = []
    for text in given:
        kind, full = store.resolve_id(text)
        if kind != "experiment":
            raise InvalidInput(f"{full} is a batch; faice rm removes whole experiments (faice show {full} names its experiment)")
        resolved.append(full)
    return resolved
