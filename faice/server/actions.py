"""What the API does to experiments besides reading them: register a posted one, cancel.

Each in one place, called by the routes (``POST /red``, ``DELETE /experiments/ID``,
``DELETE /batches/ID``).
"""

from __future__ import annotations

from pathlib import Path

from faice.errors import FaiceError
from faice.runner import lifecycle
from faice.server.errors import NotFound
from faice.server.submission import Rejected, Submission
from faice.server.webhooks import WebhookProblem, Webhooks
from faice.server.worker import Active, Worker
from faice.state.store import Store, UnknownId
from faice.state.users import User


def register(store: Store, worker: Worker, submission: Submission, user: User, webhooks: Webhooks) -> str:
    """Record an accepted experiment, name its webhooks, and hand it to the worker; its id."""
    from faice.runner.execute import check_connectors

    try:
        if not user.is_admin:
            webhooks.check_room(user.name, submission.notify)
    except WebhookProblem as exc:
        raise Rejected(str(exc)) from None
    try:
        check_connectors(submission.plans, submission.prepared, remote_validation=submission.connector_validation, mount=worker.mount,
                         base_dir=Path.cwd())  # where the worker finds an admin's local inputs
    except FaiceError as exc:
        raise Rejected(str(exc)) from None
    experiment_id, _ids = lifecycle.register(store, submission.prepared, submission.plans, runner="serve", username=user.name, retries=submission.retries,
                                             connector_validation=submission.connector_validation, container_engine=worker.options.engine,
                                             source="POST /red", cache=worker.options.cache)
    webhooks.add(experiment_id, user.name, submission.notify, public_only=not user.is_admin)
    worker.add(Active(experiment_id, submission.experiment, submission.masker, submission.retries, submission.connector_validation, user.name,
                      admin=user.is_admin))
    return experiment_id


def cancel(store: Store, worker: Worker, target: str, user: User) -> int:
    """Cancel an experiment's unfinished batches, or a batch, and kill their containers (without
    a reachable engine the runner stops them at its next check); how many were cancelled."""
    try:
        return lifecycle.cancel(store, target, f"cancelled through the API by {user.name}", worker.engine_for, strict=False)
    except UnknownId:
        raise NotFound() from None  # removed (faice rm) since the route found it
