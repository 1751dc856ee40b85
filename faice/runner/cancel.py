"""Cancelling from anywhere: record the batches as cancelled, then kill their containers.

The ``faice exec`` that runs them (maybe in another terminal) finds its containers killed and
its batches already cancelled in the store, and keeps that state.
"""

from __future__ import annotations

from faice.errors import InvalidInput
from faice.runner.docker_engine import LABEL_BATCH, LABEL_EXPERIMENT
from faice.state.store import OPEN_STATES, Store


def cancel_ids(store: Store, id: str, reason: str = "cancelled by faice cancel") -> int:
    """Cancel an experiment's unfinished batches, or one batch; return how many were cancelled."""
    if store.experiment(id) is not None:
        batches, label = store.batches(id), LABEL_EXPERIMENT
    else:
        batch = store.batch(id)
        if batch is None:
            raise InvalidInput(f'no experiment or batch with id "{id}" in {store.path}')
        batches, label = [batch], LABEL_BATCH
    unfinished = [b for b in batches if b.state in OPEN_STATES]
    store.set_states([b.id for b in unfinished], "cancelled", reason, only_from=OPEN_STATES)
    if any(b.state == "processing" for b in unfinished):
        kill_labelled(label, id)
    return len(unfinished)


def kill_labelled(label: str, value: str) -> None:
    """Kill the containers labelled ``label=value``, whoever started them (raises without Docker)."""
    from faice.runner.engine import open_engine

    engine = open_engine()
    for container in engine.containers(**{label: value}):
        engine.kill(container)
