"""What the API does to experiments besides reading them: register a posted one, cancel.

Each in one place, called by the routes (``POST /red``, ``DELETE /experiments/ID``,
``DELETE /batches/ID``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faice.errors import FaiceError
from faice.server.submission import Rejected, Submission
from faice.server.worker import Active, Worker
from faice.state.store import OPEN_STATES, BatchRow, Store
from faice.state.users import User


def register(store: Store, worker: Worker, submission: Submission, user: User) -> str:
    """Record an accepted experiment and hand it to the worker; its id."""
    from faice.runner.execute import check_connectors

    try:
        check_connectors(submission.plans, submission, remote_validation=submission.connector_validation, mount=worker.mount,  # type: ignore[arg-type]
                         base_dir=Path.cwd())  # where the worker finds an admin's local inputs
    except FaiceError as exc:
        raise Rejected(str(exc)) from None
    experiment = submission.experiment
    mask = submission.masker
    experiment_id, _ids = store.create_experiment(
        source="POST /red", red=submission.redacted, argvs=[[mask(a) for a in p.argv] for p in submission.plans],
        image=experiment.container.image, engine=experiment.execution.engine if experiment.execution else None, username=user.name,
        ram=experiment.container.ram, runner="serve", retries=submission.retries, settings=submission.settings, has_secrets=submission.has_secrets,
    )
    worker.add(Active(experiment_id, experiment, mask, submission.retries, submission.connector_validation, user.name, admin=user.is_admin))
    return experiment_id


def cancelled_by(user: User) -> str:
    return f"cancelled through the API by {user.name}"


def cancel_experiment(store: Store, worker: Worker, record: dict[str, Any], user: User) -> int:
    """Cancel every unfinished batch of an experiment and kill its containers; how many were cancelled."""
    from faice.runner.docker_engine import LABEL_EXPERIMENT

    open_ids = [b.id for b in store.batches(record["id"]) if b.state in OPEN_STATES]
    cancelled = store.set_states(open_ids, "cancelled", cancelled_by(user), OPEN_STATES)
    worker.kill_containers(LABEL_EXPERIMENT, record["id"])
    return cancelled


def cancel_batch(store: Store, worker: Worker, row: BatchRow, user: User) -> bool:
    """Cancel a batch unless it ended, and kill its container; whether it was cancelled now."""
    from faice.runner.docker_engine import LABEL_BATCH

    changed = store.set_state(row.id, "cancelled", cancelled_by(user), OPEN_STATES)
    if changed:
        worker.kill_containers(LABEL_BATCH, row.id)
    return changed
