"""The server's scheduler: runs registered batches with the same runner as ``faice exec``.

CC-Agency's rules on one node: batches start first in, first out; an experiment never has more
than its ``batchConcurrencyLimit`` batches scheduled or processing; all of them together never
more than ``--jobs``, nor more ``ram`` than this machine has. A failed batch goes back to
``registered`` while it has retries left. Every move is a compare-and-set in the store, so a
cancel through the API (or ``faice cancel``) always wins.

Credentials of POSTed experiments live only in :class:`Active` objects, in this process's
memory; they are dropped when the experiment's last batch ends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faice.errors import FaiceError
from faice.host import node_name
from faice.red.model import Experiment, experiment_from_data
from faice.red.secrets import Masker
from faice.runner.batch import AttemptResult, BatchRunner, RunOptions, give_to_invoking_user
from faice.runner.budget import MemoryBudget
from faice.runner.dockerapi import DockerError
from faice.runner.engine import recorded_engine
from faice.runner.lifecycle import BatchRecord, EngineFactory, NotRecorded, batch_runner, finish, run_attempt, settle
from faice.runner.plan import plan_batch
from faice.runner.reconcile import reconcile, sweep_containers
from faice.state.states import BatchState
from faice.state.store import OPEN_STATES, RUNNING_STATES, Store, disk_full, outputs_dir

log = logging.getLogger("faice.serve")
RESTART_REASON = "faice serve stopped while it ran"
RECONCILE_SECONDS = 30
DOCKER_RETRY_SECONDS = 5


@dataclass
class Active:
    """An experiment this server runs, with everything it needs (credentials included) in memory."""

    id: str
    experiment: Experiment
    masker: Masker
    retries: int
    connector_validation: bool
    username: str
    #: an admin's connectors may reach this machine and its networks; others' only the internet
    admin: bool = False
    runner: BatchRunner | None = None
    running: int = 0
    image_error: str | None = None
    image_checked: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def limit(self) -> int | None:
        return self.experiment.batch_concurrency_limit


class Worker:
    """``faice serve``'s driver of the batch lifecycle. ``options`` are the server's run options
    (jobs, network, mount, pids limit), from which each experiment's own are made; ``open_engine``
    reaches the container engine (on first use: the API works without it)."""

    def __init__(self, store: Store, options: RunOptions, open_engine: EngineFactory, *, memory: MemoryBudget, user_network: str = "none") -> None:
        self.store = store
        self.options = options
        self.jobs = max(1, options.jobs)
        self.memory = memory
        #: non-admins' containers: on Docker's bridge they would reach this machine and its networks
        self.user_network = user_network
        self._open_engine = open_engine
        self.node = node_name()
        self.active: dict[str, Active] = {}
        #: batches that ended while their end could not be recorded (a full disk), with the reason
        self.unrecorded: dict[str, str] = {}
        self.running = 0
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="faice-serve-batch")
        self._thread = threading.Thread(target=self._loop, name="faice-serve-dispatcher", daemon=True)
        self._engine: Any = None
        self.docker_down_until = 0.0
        self.outputs_root = outputs_dir(store.path)

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.outputs_root.mkdir(mode=0o700, parents=True, exist_ok=True)  # one user's outputs are not another's to read
        give_to_invoking_user(self.outputs_root)
        self.recover()
        self._thread.start()

    def stop(self) -> None:
        """Cancel and record every running batch, kill its container, wait for the threads."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.wake.set()
        self._record_pending()  # a batch that ended unrecorded failed: it was not cancelled by the stop
        with self._lock:
            actives = list(self.active.values())
            unrecorded = set(self.unrecorded)
        for active in actives:
            running = [b for b in self.store.running_batch_ids(active.id) if b not in unrecorded]
            try:
                self.store.set_states(running, BatchState.CANCELLED, "faice serve was stopped", only_from=RUNNING_STATES)
            except Exception as exc:
                if not disk_full(exc):
                    raise
                log.warning("could not record the stop of experiment %s: %s", active.id, exc)  # the next start settles them
            if active.runner is not None:
                active.runner.cancelled.set()
                active.runner.kill_all()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)

    @property
    def mount(self) -> bool:
        """Whether ``mount: true`` is honoured (False: ``faice serve --no-mount`` copies instead)."""
        return self.options.mount

    def engine(self) -> Any:
        """The container engine, reached on first use (the API works without it)."""
        if self._engine is None:
            self._engine = self._open_engine(self.options.engine)
            sweep_containers(self.store, self._engine)  # what runs left while Docker did not answer
        return self._engine

    def engine_for(self, name: str) -> Any:
        """The engine an experiment's record names: this server's own, reached once, or another."""
        return self.engine() if name == self.options.engine else self._open_engine(name)

    def docker_problem(self) -> str | None:
        """None while the container engine answers, else why not (the next call tries again)."""
        from faice.runner.dockerapi import DockerError

        title = "Podman" if self.options.engine == "podman" else "Docker"
        try:
            self.engine().ping()
            return None
        except DockerError as exc:  # it answered, but not as an engine does (before FaiceError: it is one)
            problem = f"{title} is not reachable: {exc.message}"
        except OSError as exc:
            problem = f"{title} is not reachable: {exc}"
        except FaiceError as exc:  # not reached at all: the engine's own one-line reason
            problem = str(exc)
        self._engine = None
        return problem

    # --- registering -------------------------------------------------------------------------

    def add(self, active: Active) -> None:
        with self._lock:
            self.active[active.id] = active
        self.wake.set()

    def recover(self) -> None:
        """After a crash or a stop: re-queue or fail what the last server left unfinished."""
        from faice.state.users import Users

        users = Users(self.store)
        for experiment_id in [e.id for e in self.store.open_experiments(runner="serve")]:
            record = self.store.experiment(experiment_id)
            assert record is not None
            if record["has_secrets"]:
                reason = f"{RESTART_REASON}; its credentials were kept only in that server's memory: submit the experiment again"
                settle(self.store, experiment_id, reason, self.engine_for, retries=None)
                continue
            settle(self.store, experiment_id, RESTART_REASON, self.engine_for, retries=record["retries"] or 0)
            if recorded_engine(record) != self.options.engine:  # cleaned up where it ran; what is queued again runs here
                self.store.set_container_engine(experiment_id, self.options.engine)
            settings = json.loads(record["settings"] or "{}")
            owner = users.get(record["username"])
            self.add(Active(experiment_id, experiment_from_data(record["red"]), Masker(), record["retries"] or 0, not settings.get("disableConnectorValidation"),
                            record["username"], admin=owner is not None and owner.is_admin))

    # --- dispatching -------------------------------------------------------------------------

    def _loop(self) -> None:
        last_reconcile = time.monotonic()
        while not self.stopping.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self._record_pending()
                self._dispatch()
                if time.monotonic() - last_reconcile > RECONCILE_SECONDS:
                    last_reconcile = time.monotonic()
                    reconcile(self.store, self.engine_for)  # a faice exec killed meanwhile: its batches end as failed
            except Exception:  # noqa: BLE001 - the dispatcher must survive to run the next batch
                log.exception("dispatching batches failed")

    def _record_later(self, batch_id: str, reason: str) -> None:
        """A batch whose end could not be written: it fails with the reason as soon as the store takes it."""
        log.warning("batch %s: %s", batch_id, reason)
        with self._lock:
            self.unrecorded[batch_id] = reason

    def _record_pending(self) -> None:
        with self._lock:
            pending = dict(self.unrecorded)
        for batch_id, reason in pending.items():
            try:
                self.store.set_state(batch_id, BatchState.FAILED, reason, only_from=OPEN_STATES, error=reason)
            except Exception as exc:
                if not disk_full(exc):
                    raise
                return  # still no room: the next round tries again
            with self._lock:
                self.unrecorded.pop(batch_id, None)

    def _candidates(self, free: int) -> list[tuple[Active, Any]]:
        """Up to ``free`` registered batches, oldest first, of experiments below their limit."""
        found = []
        with self._lock:
            actives = [a for a in self.active.values() if a.limit is None or a.running < a.limit]
        for active in actives:
            room = free if active.limit is None else min(free, active.limit - active.running)
            found += [(active, row) for row in self.store.queued_batches(active.id, room)]
        found.sort(key=lambda item: (item[1].created_at, item[1].rowid))
        return found[:free]

    def _dispatch(self) -> None:
        if time.monotonic() < self.docker_down_until:
            return
        if self._candidates(1) and self.docker_problem() is not None:
            # Docker is down (or not up yet, right after boot): the batches wait, unchanged.
            self.docker_down_until = time.monotonic() + DOCKER_RETRY_SECONDS
            return
        while not self.stopping.is_set():
            free = self.jobs - self.running
            if free <= 0:
                return
            candidates = self._candidates(free)
            if not candidates:
                self._retire_idle()
                return
            started = 0
            for active, row in candidates:
                if self.stopping.is_set():
                    return  # what is still registered waits for the next start
                if active.limit is not None and active.running >= active.limit:
                    continue
                ram = active.experiment.container.ram
                if not self.memory.try_acquire(ram):
                    return  # first in, first out: wait until memory is free for this one
                if not self.store.set_state(row.id, BatchState.SCHEDULED, f"scheduled on node {self.node}", only_from=(BatchState.REGISTERED,), node=self.node):
                    self.memory.release(ram)
                    continue
                try:
                    # planned now, not kept from POST /red: 100,000 plans would sit in memory for hours
                    record = BatchRecord(plan_batch(active.experiment, row.index, active.masker), row.id, attempts=row.attempts)
                except Exception as exc:  # noqa: BLE001 - it planned at POST /red; if not now, this batch fails, not the server
                    self.memory.release(ram)
                    self.store.set_state(row.id, BatchState.FAILED, active.masker(f"cannot plan the batch: {exc}"), only_from=(BatchState.SCHEDULED,))
                    continue
                with self._lock:
                    active.running += 1
                    self.running += 1
                self._pool.submit(self._run, active, record)
                started += 1
            if not started:
                return

    def _run(self, active: Active, record: BatchRecord) -> None:
        ram = active.experiment.container.ram
        try:
            if self.stopping.is_set() and self.store.set_state(record.batch_id, BatchState.REGISTERED, "faice serve stopped before it started",
                                                               only_from=(BatchState.SCHEDULED,)):
                return  # dispatched as the server stopped: it waits for the next start
            runner = self._runner(active)
            if active.image_error is not None:
                record.attempts += 1
                self.store.update(record.batch_id, attempts=record.attempts)
                finish(self.store, record, AttemptResult(BatchState.FAILED, error=active.image_error, retryable=False))
            else:
                run_attempt(runner, self.store, record, retries=active.retries, stop=self.stopping)  # a retry is dispatched again
        except NotRecorded as exc:
            if exc.disk_full:  # what ended cannot be written down yet
                self._record_later(record.batch_id, f"faice serve could not record the end of this batch ({exc}); it is failed now that it can")
            else:
                self._internal_error(record, exc)
        except Exception as exc:  # noqa: BLE001 - a batch's surprise must not take the server down
            if disk_full(exc):
                self._record_later(record.batch_id, f"faice serve could not record the end of this batch ({exc}); it is failed now that it can")
            else:
                self._internal_error(record, exc)
        finally:
            self.memory.release(ram)
            with self._lock:
                active.running -= 1
                self.running -= 1
            self._retire_if_done(active)
            self.wake.set()

    def _internal_error(self, record: BatchRecord, exc: Exception) -> None:
        log.error("batch %s", record.batch_id, exc_info=exc)
        try:
            finish(self.store, record, AttemptResult(BatchState.FAILED, error="internal error in faice serve (see its log)"))
        except Exception as again:
            if not disk_full(again):
                raise
            self._record_later(record.batch_id, f"internal error in faice serve, and the failure could not be recorded then ({again})")

    def _runner(self, active: Active) -> BatchRunner:
        """The experiment's runner, made (and its image pulled) by the first batch that starts."""
        with active.lock:
            if active.runner is None:
                options = dataclasses.replace(self.options, outdir=self.outputs_root / active.id, retries=active.retries,
                                              network=self.options.network if active.admin else self.user_network,
                                              connector_validation=active.connector_validation, public_network_only=not active.admin)
                image_id = None
                try:
                    engine = self.engine()
                    image_id = engine.ensure_image(active.experiment.container.image, pull=True, auth=active.experiment.container.image_auth)
                    self.store.set_image_id(active.id, image_id)
                except (DockerError, OSError):
                    raise  # the engine stumbled: this batch fails, the next one asks again
                except FaiceError as exc:  # the image cannot be had: every batch of the experiment fails with why
                    active.image_error = active.masker(str(exc))
                    engine = None
                active.runner = batch_runner(engine, active.experiment, active.masker, options, self.store, active.id, Path.cwd(), image_id=image_id,
                                             cache_scope=active.username)
                if self.stopping.is_set():
                    active.runner.cancelled.set()
            return active.runner

    def _retire_idle(self) -> None:
        with self._lock:
            idle = [a for a in self.active.values() if a.running == 0]
        for active in idle:
            self._retire_if_done(active)

    def _retire_if_done(self, active: Active) -> None:
        """Forget an experiment whose batches all ended: its credentials leave memory here."""
        if not self.store.has_open_batches(active.id):
            with self._lock:
                if active.running == 0:
                    self.active.pop(active.id, None)
