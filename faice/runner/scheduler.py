"""Running many batches: in parallel up to ``--jobs``, never above the host's memory, with retries.

Each batch moves through CC-Agency's states (registered → scheduled → processing →
succeeded | failed | cancelled) and every move is recorded with its reason. A failing batch
does not stop the others. Cancelling (Ctrl-C, SIGTERM, ``faice cancel``) kills this run's
containers and records the batches that did not finish as cancelled.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

from faice.host import node_name
from faice.runner.batch import AttemptResult, BatchRunner
from faice.runner.plan import BatchPlan
from faice.state.store import Store

Event = Callable[[int, str, str], None]  # (batch index, phase or state, detail)


@dataclass
class BatchRecord:
    plan: BatchPlan
    batch_id: str
    result: AttemptResult | None = None
    attempts: int = 0


class MemoryBudget:
    """Batches reserve their ``ram`` before they start; the sum never exceeds the budget."""

    def __init__(self, total_mib: int | None) -> None:
        self.total = total_mib
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, mib: int | None, cancelled: threading.Event) -> bool:
        if not self.total or not mib:
            return not cancelled.is_set()
        need = min(mib, self.total)
        with self._cond:
            while self.used + need > self.total and not cancelled.is_set():
                self._cond.wait(0.2)
            if cancelled.is_set():
                return False
            self.used += need
            return True

    def try_acquire(self, mib: int | None) -> bool:
        """Reserve without waiting (the server's dispatcher decides again on the next wake-up)."""
        if not self.total or not mib:
            return True
        need = min(mib, self.total)
        with self._cond:
            if self.used + need > self.total:
                return False
            self.used += need
            return True

    def release(self, mib: int | None) -> None:
        if not self.total or not mib:
            return
        with self._cond:
            self.used -= min(mib, self.total)
            self._cond.notify_all()


class Scheduler:
    def __init__(self, runner: BatchRunner, store: Store, *, jobs: int, retries: int, memory_mib: int | None, on_event: Event) -> None:
        self.runner = runner
        self.store = store
        self.jobs = max(1, jobs)
        self.retries = max(0, retries)
        self.memory = MemoryBudget(memory_mib)
        self.on_event = on_event

    @property
    def cancelled(self) -> threading.Event:
        return self.runner.cancelled

    def run(self, records: list[BatchRecord]) -> list[BatchRecord]:
        """Run every batch; returns when each one has a recorded result (also after a cancel)."""
        self.store.set_states([r.batch_id for r in records], "scheduled", f"queued (up to {self.jobs} in parallel)")
        queue = list(reversed(records))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    record = queue.pop()
                self._run_batch(record)

        workers = [threading.Thread(target=worker, name=f"faice-batch-{i}", daemon=True) for i in range(min(self.jobs, len(records)))]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()  # signals do not interrupt this: the caller's handlers only call cancel()
        return records

    def _run_batch(self, record: BatchRecord) -> None:
        ram = self.runner.experiment.container.ram
        while True:
            if not self.memory.acquire(ram, self.cancelled):
                finish(self.store, record, AttemptResult("cancelled", error="cancelled before it started"), self.on_event)
                return
            try:
                result = attempt(self.runner, self.store, record, self.on_event)
            finally:
                self.memory.release(ram)
            if result is None:
                return
            try:
                if not (result.state == "failed" and retry(self.store, record, result, self.retries, self.cancelled, self.on_event)):
                    finish(self.store, record, result, self.on_event)
                    return
            except (sqlite3.OperationalError, OSError) as exc:  # a full disk: the run's result still says it; the next faice command records it failed
                record.result = result
                self.on_event(record.plan.index, result.state, f"{result.error or result.state} (not recorded: {exc})")
                return


def attempt(runner: BatchRunner, store: Store, record: BatchRecord, on_event: Event) -> AttemptResult | None:
    """Run one attempt of a batch; None when it was cancelled before it could start."""
    index = record.plan.index
    record.attempts += 1
    if not store.set_state(record.batch_id, "processing", f"attempt {record.attempts}", attempts=record.attempts, node=node_name()):
        record.result = AttemptResult("cancelled", error="cancelled")
        on_event(index, "cancelled", "")
        return None
    on_event(index, "processing", "")
    try:
        return runner.run(
            record.plan,
            record.batch_id,
            phase=lambda name: on_event(index, "phase", name),
            on_container=lambda cid: store.update(record.batch_id, container=cid),
        )
    except Exception as exc:  # noqa: BLE001 - one batch's surprise must not stop the others
        return AttemptResult("failed", error=runner.mask(f"internal error: {type(exc).__name__}: {exc}"))


def retry(store: Store, record: BatchRecord, result: AttemptResult, retries: int, cancelled: threading.Event, on_event: Event) -> bool:
    """Put a failed batch back to ``registered`` when retries remain; whether it was."""
    if not result.retryable or record.attempts > retries or cancelled.is_set():
        return False
    # set_state refuses to move a batch that was cancelled meanwhile: then it is finished.
    if store.set_state(record.batch_id, "registered", f"attempt {record.attempts} failed ({result.error}); retrying", exit_code=result.exit_code, error=result.error):
        on_event(record.plan.index, "retry", result.error or "")
        return True
    return False


def finish(store: Store, record: BatchRecord, result: AttemptResult, on_event: Event) -> None:
    """Record a batch's final state (a batch cancelled elsewhere meanwhile stays cancelled)."""
    record.result = result
    reason = "all outputs found and delivered" if result.state == "succeeded" else result.error or result.state
    if not store.set_state(record.batch_id, result.state, reason, exit_code=result.exit_code, error=result.error, outputs=result.outputs):
        result = AttemptResult("cancelled", result.exit_code, "cancelled", result.outputs)
        record.result = result
    on_event(record.plan.index, result.state, result.error or "")
