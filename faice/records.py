"""What faice recorded, as the documents ``faice list``, ``show`` and ``logs`` print.

The CLI only prints these; building them (from the store, the captured logs, a running
container) is library work, usable by anything that holds a store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from faice.errors import InvalidInput
from faice.runner.engine import recorded_engine
from faice.state.cleanup import footprint
from faice.state.states import BatchState
from faice.state.store import FINAL_STATES, Store, log_path

#: seconds between two looks at a followed batch that has not started its container yet
FOLLOW_POLL = 0.5


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


def write_log(store: Store, batch_id: str, out: IO[bytes], engine: Callable[[str | None], Any], *, stderr: bool = False, follow: bool = False) -> None:
    """Write what a batch's tool wrote to stdout (or stderr) to ``out``.

    With ``follow``, a batch that has not ended is waited for and its running container's output
    streamed as it comes; the captured file is written once the batch has one.
    """
    kind, batch_id = store.resolve_id(batch_id)
    if kind == "experiment":
        batches = store.batches(batch_id)
        shown = ", ".join(f"{b.id} ({b.state})" for b in batches[:5]) + (f", and {len(batches) - 5} more (faice show {batch_id})" if len(batches) > 5 else "")
        raise InvalidInput(f"{batch_id} is an experiment; logs belong to its batches: {shown}")
    batch = store.batch(batch_id)
    path = log_path(store.path, batch_id, "stderr" if stderr else "stdout")
    while follow and not path.exists() and batch is not None and batch.state not in FINAL_STATES:
        if batch.state == BatchState.PROCESSING and batch.container:
            record = store.experiment(batch.experiment_id, red=False)
            if engine(recorded_engine(record)).follow_logs(batch.container, stderr=stderr, out=out):
                return
        time.sleep(FOLLOW_POLL)
        batch = store.batch(batch_id)
    if not path.exists():
        raise InvalidInput(f"batch {batch_id} has no captured {'stderr' if stderr else 'stdout'} (state: {batch.state if batch else 'unknown'})")
    with open(path, "rb") as handle:
        out.write(handle.read())


def experiment_ids(store: Store, given: list[str]) -> list[str]:
    """The full ids of whole experiments (``faice rm``); a batch id is refused."""
    resolved = []
    for text in given:
        kind, full = store.resolve_id(text)
        if kind != "experiment":
            raise InvalidInput(f"{full} is a batch; faice rm removes whole experiments (faice show {full} names its experiment)")
        resolved.append(full)
    return resolved
