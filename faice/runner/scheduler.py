"""``faice exec``'s driver of the batch lifecycle: up to ``--jobs`` threads take the batches in
order, each within the memory budget, and a batch keeps its thread through its retries.

Each batch moves through CC-Agency's states (registered → scheduled → processing →
succeeded | failed | cancelled) and every move is recorded with its reason. A failing batch
does not stop the others. Cancelling (Ctrl-C, SIGTERM, ``faice cancel``) kills this run's
containers and records the batches that did not finish as cancelled.
"""

from __future__ import annotations

import threading

from faice.runner.batch import AttemptResult, BatchRunner
from faice.runner.budget import MemoryBudget
from faice.runner.lifecycle import BatchRecord, Event, NotRecorded, finish, run_attempt
from faice.state.states import BatchState
from faice.state.store import Store


class LocalScheduler:
    def __init__(self, runner: BatchRunner, store: Store, *, jobs: int, retries: int, memory: MemoryBudget, on_event: Event) -> None:
        self.runner = runner
        self.store = store
        self.jobs = max(1, jobs)
        self.retries = max(0, retries)
        self.memory = memory
        self.on_event = on_event

    @property
    def cancelled(self) -> threading.Event:
        return self.runner.cancelled

    def run(self, records: list[BatchRecord]) -> list[BatchRecord]:
        """Run every batch; returns when each one has a result (also after a cancel)."""
        self.store.set_states([r.batch_id for r in records], BatchState.SCHEDULED, f"queued (up to {self.jobs} in parallel)")
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
        ram = record.plan.ram_mib
        again = True
        while again:
            if not self.memory.acquire(ram, self.cancelled):
                finish(self.store, record, AttemptResult(BatchState.CANCELLED, error="cancelled before it started"), self.on_event)
                return
            try:
                again = run_attempt(self.runner, self.store, record, retries=self.retries, stop=self.cancelled, on_event=self.on_event)
            except NotRecorded as exc:  # the run's result still says it; the next faice command records it failed
                result = record.result
                assert result is not None
                self.on_event(record.plan.index, result.state, f"{result.error or result.state} (not recorded: {exc})")
                return
            finally:
                self.memory.release(ram)
