"""Clean up after a ``faice exec`` that died without recording its batches (SIGKILL, power loss).

A batch that is not finished while the process that ran it is gone can never finish: it is
recorded as failed with the reason, its containers (found by label) are removed, and the
directories it had mounted (found by name) are unmounted.
"""

from __future__ import annotations

from typing import Any

from faice.host import process_alive
from faice.runner.lifecycle import EngineFactory, settle
from faice.state.store import Store

DEAD_RUN = "the faice process running it ended without recording a result"


def reconcile(store: Store, engine: EngineFactory) -> int:
    """Fail the unfinished batches of dead runs and remove their containers; return how many.

    Experiments of ``faice serve`` are left to the server: it re-queues them when it starts again.
    """
    stale = [e.id for e in store.open_experiments(runner="exec") if not process_alive(e.pid, e.host)]
    return sum(settle(store, experiment_id, DEAD_RUN, engine, retries=None) for experiment_id in stale)


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
