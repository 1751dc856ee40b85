"""One experiment lifecycle for every face: ``faice exec``, ``faice serve`` and what comes next.

register → for each batch: attempt (stage in → run → stage out) → retry or record its end;
cancel from anywhere; settle what a run that died left unfinished. Every move is a
compare-and-set in the store, so a cancel (API, ``faice cancel``, Ctrl-C) always wins.

The drivers decide only *when* a batch runs: :class:`faice.runner.scheduler.LocalScheduler`
(threads over the batches of one ``faice exec``) and :class:`faice.server.worker.Worker` (a
dispatcher over the registered batches of every experiment ``faice serve`` was given).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faice.errors import FaiceError
from faice.host import node_name
from faice.provenance.sources import input_sources
from faice.red.model import Experiment
from faice.red.prepare import Prepared
from faice.red.secrets import Masker
from faice.runner.batch import AttemptResult, BatchRunner, RunOptions, gpu_count
from faice.runner.docker_engine import invoking_user
from faice.runner.engine import recorded_engine
from faice.runner.plan import BatchPlan
from faice.state.states import BatchState
from faice.state.store import FINAL_STATES, OPEN_STATES, Store, UnknownId, disk_full, logs_dir

#: progress for a face to show: (batch index, a phase or state, detail)
Event = Callable[[int, str, str], None]
#: reaches a container engine by name ("docker", "podman") when it is needed; cancelling
#: registered batches needs none. ``faice.runner.engine.open_engine`` is one.
EngineFactory = Callable[[str], Any]


def quiet(index: int, what: str, detail: str) -> None:
    """For a face that shows no progress: the store records what matters."""


@dataclass
class BatchRecord:
    """A registered batch as a driver tracks it: its plan, id, attempts so far and last result."""

    plan: BatchPlan
    batch_id: str
    result: AttemptResult | None = None
    attempts: int = 0
    #: attempts of the experiment's earlier runs (``faice exec --resume``): this run's retries count from there
    earlier_attempts: int = 0


class NotRecorded(Exception):
    """A batch's attempt ended but what comes next could not be written; ``record.result`` holds
    its result. ``disk_full``: the state file's disk is full (it can be written once there is room)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.disk_full = disk_full(cause)


# --- registering ---------------------------------------------------------------------------------


def register(store: Store, prepared: Prepared, plans: list[BatchPlan], *, runner: str, username: str, retries: int, connector_validation: bool,
             container_engine: str, source: str | None = None, cache: bool = False, base_dir: Path | None = None) -> tuple[str, list[str]]:
    """Record an experiment and its batches as ``registered``; return their ids. What is kept is
    redacted and masked: credentials never reach the state file. ``base_dir`` (default: the
    current directory): where relative local inputs are, to record where each input came from."""
    experiment = prepared.experiment
    mask = prepared.masker
    red, has_secrets = prepared.redacted()
    settings = {"retryIfFailed": retries > 0, "disableConnectorValidation": not connector_validation,
                "batchConcurrencyLimit": experiment.batch_concurrency_limit}
    return store.create_experiment(
        source=source or prepared.doc.source.name,
        red=red,
        argvs=[[mask(a) for a in p.argv] for p in plans],
        image=experiment.container.image,
        engine=experiment.execution.engine if experiment.execution else None,
        username=username,
        ram=experiment.container.ram,
        runner=runner,
        retries=retries,
        settings=settings,
        has_secrets=has_secrets,
        container_engine=container_engine,
        cache=cache,
        input_sources=[input_sources(p.staged, base_dir or Path.cwd(), mask) for p in plans],
    )


def batch_runner(engine: Any, experiment: Experiment, masker: Masker, options: RunOptions, store: Store, experiment_id: str, base_dir: Path,
                 cancelled: threading.Event | None = None, image_id: str | None = None, cache_scope: str | None = None) -> BatchRunner:
    """The runner of one experiment's attempts; ``cancelled`` is the face's switch that stops them.
    With ``options.cache``, its batches are looked up in the result cache under ``image_id``;
    ``cache_scope`` (faice serve: the user's name) keeps one user's entries from another's: a
    result is served only to whom could have made it."""
    logs = logs_dir(store.path)
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    runner = BatchRunner(engine, experiment, options, masker, base_dir, os.urandom(8).hex(), experiment_id, logs,
                         cancelled or threading.Event(), store.is_cancelled)
    if options.cache and image_id is not None:
        from faice.cache.results import ResultCache
        from faice.runner.caching import BatchCache

        runner.cache = BatchCache(ResultCache(store), store, image_id, experiment, masker, runner.context, environment=runner.environment(),
                                  gpus=options.gpu_ids or gpu_count(experiment.container.gpus), network=options.network, user=invoking_user() + (f" for {cache_scope}" if cache_scope else ""),
                                  mount=options.mount)
    return runner


# --- one batch -----------------------------------------------------------------------------------


def run_attempt(runner: BatchRunner, store: Store, record: BatchRecord, *, retries: int, stop: threading.Event, on_event: Event = quiet) -> bool:
    """One attempt of a batch, then its next state: True when it went back to ``registered`` to be
    tried again, False when its end is recorded. Raises :class:`NotRecorded` when that cannot be
    written."""
    result = attempt(runner, store, record, on_event)
    if result is None:
        return False
    try:
        if result.state == BatchState.FAILED and retry(store, record, result, retries, stop, on_event):
            return True
        finish(store, record, result, on_event)
    except Exception as exc:  # noqa: BLE001 - the driver decides when it can be written
        record.result = result
        raise NotRecorded(exc) from exc
    return False


def attempt(runner: BatchRunner, store: Store, record: BatchRecord, on_event: Event = quiet) -> AttemptResult | None:
    """Run one attempt of a batch; None when it was cancelled before it could start."""
    index = record.plan.index
    record.attempts += 1
    if not store.set_state(record.batch_id, BatchState.PROCESSING, f"attempt {record.attempts}", attempts=record.attempts, node=node_name()):
        record.result = AttemptResult(BatchState.CANCELLED, error="cancelled")
        on_event(index, BatchState.CANCELLED, "")
        return None
    on_event(index, BatchState.PROCESSING, "")
    try:
        return runner.run(
            record.plan,
            record.batch_id,
            phase=lambda name: on_event(index, "phase", name),
            on_container=lambda cid: store.update(record.batch_id, container=cid),
        )
    except Exception as exc:  # noqa: BLE001 - one batch's surprise must not stop the others
        return AttemptResult(BatchState.FAILED, error=runner.mask(f"internal error: {type(exc).__name__}: {exc}"))


def retry(store: Store, record: BatchRecord, result: AttemptResult, retries: int, stop: threading.Event, on_event: Event = quiet) -> bool:
    """Put a failed batch back to ``registered`` when retries remain; whether it was."""
    if not result.retryable or record.attempts - record.earlier_attempts > retries or stop.is_set():
        return False
    # set_state refuses to move a batch that was cancelled meanwhile: then it is finished.
    if store.set_state(record.batch_id, BatchState.REGISTERED, f"attempt {record.attempts} failed ({result.error}); retrying", exit_code=result.exit_code, error=result.error,
                       **result.usage_fields()):
        on_event(record.plan.index, "retry", result.error or "")
        return True
    return False


def finish(store: Store, record: BatchRecord, result: AttemptResult, on_event: Event = quiet) -> None:
    """Record a batch's final state (a batch cancelled elsewhere meanwhile stays cancelled)."""
    record.result = result
    reason = "all outputs found and delivered" if result.state == BatchState.SUCCEEDED else result.error or result.state
    if result.note:
        reason = f"{reason} ({result.note})"
    if not store.set_state(record.batch_id, result.state, reason, exit_code=result.exit_code, error=result.error, outputs=result.outputs,
                           **result.cache_fields(), **result.usage_fields()):
        result = AttemptResult(BatchState.CANCELLED, result.exit_code, "cancelled", result.outputs)
        record.result = result
    on_event(record.plan.index, result.state, result.error or ("from the cache" if result.cached_from else ""))


# --- from outside a run ----------------------------------------------------------------------------


def cancel(store: Store, target: str, reason: str, engine: EngineFactory, *, strict: bool = True) -> int:
    """Record an experiment's unfinished batches (or one batch) as cancelled, then kill their
    containers, whoever started them; return how many were cancelled.

    The run that owns them (``faice exec`` in another terminal, ``faice serve``) finds its
    containers killed and its batches cancelled in the store, and keeps that state. When a batch
    had got as far as a container and the engine cannot be reached, ``strict`` raises (after the
    cancel is recorded); otherwise that is left to the runner, which stops at its next check.
    """
    from faice.runner.docker_engine import LABEL_BATCH, LABEL_EXPERIMENT

    record = store.experiment(target, red=False)
    if record is not None:
        batches, label = store.batches(target), LABEL_EXPERIMENT
    else:
        batch = store.batch(target)
        if batch is None:
            raise UnknownId(f'no experiment or batch with id "{target}" in {store.path}')
        batches, label, record = [batch], LABEL_BATCH, store.experiment(batch.experiment_id, red=False)
    unfinished = [b.id for b in batches if b.state in OPEN_STATES]
    moved = store.move(unfinished, BatchState.CANCELLED, reason, only_from=OPEN_STATES)
    # what the batches were when they were cancelled, not before: one dispatched meanwhile may have a container
    if any(was != BatchState.REGISTERED for was in moved.values()):
        try:
            kill(engine(recorded_engine(record)), label, target)
        except (FaiceError, OSError):
            if strict:
                raise
    return len(moved)


def kill(engine: Any, label: str, value: str) -> None:
    for container in engine.containers(**{label: value}):
        engine.kill(container)


def settle(store: Store, experiment_id: str, reason: str, engine: EngineFactory, *, retries: int | None) -> int:
    """The run of an experiment is gone (SIGKILL, a crash, a stop) and left batches unfinished:
    remove its containers and mounts, then let each unfinished batch go on or end.

    With ``retries`` (a face that can run the experiment again: it has its credentials), a
    registered batch stays queued and a started one goes back to ``registered`` while it has
    retries left; every other unfinished batch fails with ``reason``. Returns how many failed.
    """
    batches = [b for b in store.batches(experiment_id) if b.state not in FINAL_STATES]
    if any(b.state != BatchState.REGISTERED for b in batches):
        record = store.experiment(experiment_id, red=False)
        clean_up_after(experiment_id, lambda: engine(recorded_engine(record)))
    failed = 0
    for batch in batches:
        if retries is not None and batch.state == BatchState.REGISTERED:
            continue
        if retries is not None and batch.attempts <= retries:
            store.set_state(batch.id, BatchState.REGISTERED, f"{reason} (attempt {batch.attempts}); queued again", only_from=OPEN_STATES)
            continue
        why = reason if retries is None else f"{reason} (attempt {batch.attempts}, no retries left)"
        failed += store.set_state(batch.id, BatchState.FAILED, why, only_from=OPEN_STATES, error=why)
    return failed


#: how often the containers of a dead run are asked to go, and the pause between (seconds)
REMOVE_ATTEMPTS = 4
REMOVE_PAUSE = 0.5


def clean_up_after(experiment_id: str, engine: Callable[[], Any]) -> None:
    """Remove what a dead run of the experiment left: its containers, then its mounts. A container
    engine that cannot be reached or cannot list them now leaves them to the next run's sweep;
    what the run left is recorded all the same."""
    import time

    from faice.runner.docker_engine import LABEL_EXPERIMENT
    from faice.runner.mounts import remove_leftovers

    try:
        reached = engine()
        for attempt in range(REMOVE_ATTEMPTS):
            left = reached.containers(**{LABEL_EXPERIMENT: experiment_id})
            if not left:
                break
            if attempt:  # one the dead run was starting at its end: Docker refuses to remove it until it has started
                time.sleep(REMOVE_PAUSE)
            for container in left:
                reached.remove(container)
    except (FaiceError, OSError):
        pass
    remove_leftovers(experiment_id)
