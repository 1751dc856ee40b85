"""Clean up after a ``faice exec`` that died without recording its batches (SIGKILL, power loss).

A batch that is not finished while the process that ran it is gone can never finish: it is
recorded as failed with the reason, its containers (found by label) are removed, and the
directories it had mounted (found by name) are unmounted.
"""

from __future__ import annotations

import os
from typing import Any

from faice.state.store import FINAL_STATES, OPEN_STATES, Store


def _alive(pid: int | None, host: str | None) -> bool:
    if host is not None and host != os.uname().nodename:
        return True  # another machine's process: not ours to judge
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reconcile(store: Store) -> int:
    """Fail the unfinished batches of dead runs and remove their containers; return how many.

    Experiments of ``faice serve`` are left to the server: it re-queues them when it starts again.
    """
    with store._lock:
        rows = store.conn.execute(
            f"SELECT DISTINCT e.id, e.pid, e.host FROM batches b JOIN experiments e ON e.id = b.experiment_id WHERE b.state IN ({','.join('?' * len(OPEN_STATES))})"
            " AND (e.runner IS NULL OR e.runner = 'exec')",
            OPEN_STATES,
        ).fetchall()
    stale = [row["id"] for row in rows if not _alive(row["pid"], row["host"])]
    count = 0
    for experiment_id in stale:
        unfinished = [b.id for b in store.batches(experiment_id) if b.state not in FINAL_STATES]
        reason = "the faice process running it ended without recording a result"
        count += store.set_states(unfinished, "failed", reason, error=reason)
        clean_up_after(experiment_id)
    return count


def clean_up_after(experiment_id: str) -> None:
    """Remove what a dead run of the experiment left: its containers, then its mounts."""
    from faice.errors import EnvironmentUnusable
    from faice.runner.docker_engine import LABEL_EXPERIMENT
    from faice.runner.engine import open_engine
    from faice.runner.mounts import remove_leftovers

    try:
        engine = open_engine()
    except EnvironmentUnusable:
        engine = None  # nothing can run without Docker either; the next call will try again
    for container in engine.containers(**{LABEL_EXPERIMENT: experiment_id}) if engine else []:
        engine.remove(container)
    remove_leftovers(experiment_id)


def sweep_containers(store: Store, engine: Any) -> None:
    """Remove containers that runs which are over left behind (Docker had stopped answering when
    they tried); one call to Docker, made when a run starts anyway."""
    from faice.runner.dockerapi import DockerError

    try:
        by_experiment = engine.experiment_containers()
    except (DockerError, OSError):
        return
    for experiment_id, containers in by_experiment.items():
        if store.experiment(experiment_id, red=False) is None or store.has_open_batches(experiment_id):
            continue  # another state file's, or running (here, in another terminal, in faice serve): not ours to touch
        for container in containers:
            engine.remove(container)
