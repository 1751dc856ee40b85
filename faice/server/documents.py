"""The JSON shapes of CC-Agency's documents, built from the store's rows.

Field names and types follow CC-Agency 9.3 (``_id`` as 24 hex characters, float epoch times,
``batchesListIndex``, ``history`` entries with ``state``, ``time``, ``node``, ``debugInfo`` and
``ccagent``). Fields faice adds (``exitCode``, ``error``, ``argv``, ``results``, ``reason``, and
``peakMemory`` and ``cpuSeconds`` on a full batch)
are extensions a CC-Agency client ignores. Credentials never appear: stored RED data is
redacted before it is written.
"""

from __future__ import annotations

import json
from typing import Any

from faice.events import finished
from faice.red.model import job_sections
from faice.state.states import BatchState
from faice.state.store import FINAL_STATES, BatchRow

AGENCY_API_VERSION = "9.3.0"


def list_experiment(row: dict[str, Any]) -> dict[str, Any]:
    """CC-Agency's list projection of an experiment."""
    return {"_id": row["id"], "username": row["username"], "registrationTime": row["created_at"]}


def list_batches_json(rows: list[dict[str, Any]]) -> bytes:
    """CC-Agency's list projection of batches, encoded directly.

    Each row's history is stored as this JSON already (``history_json``), so a page of 100
    batches is joined as text instead of being decoded and encoded again.
    """
    dumps = json.dumps
    return ("[" + ",".join(
        f'{{"_id":"{r["id"]}","username":{dumps(r["username"])},"registrationTime":{dumps(r["created_at"])},"state":"{r["state"]}",'
        f'"experimentId":"{r["experiment_id"]}","node":{dumps(r["node"])},"batchesListIndex":{r["idx"]},"history":{r["history_json"] or "[]"}}}'
        for r in rows
    ) + "]").encode()


def experiment(record: dict[str, Any], settings: dict[str, Any] | None = None, states: dict[str, int] | None = None) -> dict[str, Any]:
    """The full experiment; with ``states`` (a faice extension, what /ui shows) how many of its
    batches are in each state and whether they have all ended (``batchStates``, ``finished``: as
    GET /events' experiment event says them)."""
    red = record["red"]
    doc: dict[str, Any] = {
        "_id": record["id"], "username": record["username"], "registrationTime": record["created_at"],
        "redVersion": red.get("redVersion", "9"), "cli": red.get("cli"), "container": red.get("container"),
        "protectedKeysVoided": True, "batchCount": record["batch_count"],
    }
    execution = red.get("execution")
    if isinstance(execution, dict):
        kept = {k: v for k, v in (execution.get("settings") or {}).items() if k != "access"}
        if settings:
            kept.update({k: v for k, v in settings.items() if v is not None})
        doc["execution"] = {"engine": execution.get("engine"), "settings": kept}
    if states is not None:
        doc["batchStates"] = states
        doc["finished"] = finished(states)
    return doc


def batch(row: BatchRow, history: list[dict[str, Any]], red: dict[str, Any]) -> dict[str, Any]:
    sections = job_sections(red)
    _path, inputs, outputs = sections[row.index] if row.index < len(sections) else ((), {}, {})
    cli = red.get("cli") or {}
    final = row.state in FINAL_STATES
    doc = {
        "_id": row.id, "experimentId": row.experiment_id, "username": row.username, "registrationTime": row.created_at,
        "batchesListIndex": row.index, "state": row.state, "node": row.node, "attempts": row.attempts,
        "history": [
            # CC-Agency's debugInfo says why a batch failed or went back to the queue; faice's
            # reason (an extension) says why for every entry.
            {"state": h["state"], "time": h["time"], "node": h["node"], "ccagent": None,
             "debugInfo": h["reason"] if i > 0 and h["state"] in (BatchState.FAILED, BatchState.REGISTERED) else None, "reason": h["reason"]}
            for i, h in enumerate(history)
        ],
        "inputs": inputs or {}, "outputs": outputs or {},
        "usedGPUs": None, "mount": False, "protectedKeysVoided": final, "notificationsSent": False,
        "usedSpecifiedStdout": bool(cli.get("stdout")), "usedSpecifiedStderr": bool(cli.get("stderr")),
        "cliStdout": cli.get("stdout"), "cliStderr": cli.get("stderr"),
        "argv": row.argv, "exitCode": row.exit_code, "error": row.error, "results": row.outputs, "updatedAt": row.updated_at,
        "peakMemory": row.peak_memory, "cpuSeconds": row.cpu_seconds,
    }
    if row.cache_key is not None:  # a faice extension: the batch's cache key, and whose result a hit reused
        doc["cacheKey"], doc["cachedFrom"] = row.cache_key, row.cached_from
    return doc

