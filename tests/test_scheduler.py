"""The scheduler's memory budget (pure; the scheduler itself is exercised in test_exec)."""

from __future__ import annotations

import threading

from faice.runner.budget import MemoryBudget


def test_memory_budget_never_exceeds_the_total():
    budget = MemoryBudget(1000)
    cancelled = threading.Event()
    peak = []
    lock = threading.Lock()

    acquired = []

    def worker():
        acquired.append(budget.acquire(400, cancelled))  # an assert here would only warn: checked below
        with lock:
            peak.append(budget.used)
        threading.Event().wait(0.05)
        budget.release(400)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acquired == [True] * 8
    assert max(peak) <= 1000 and budget.used == 0
    cancelled.set()
    budget.used = 900
    assert budget.acquire(400, cancelled) is False


def test_a_cancelled_batch_stays_cancelled(tmp_path):
    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    _, (batch_id,) = store.create_experiment(source="x", red={}, argvs=[["true"]], image="i", engine=None, username="u")
    assert store.set_state(batch_id, "cancelled", "cancelled by faice cancel")
    assert store.set_state(batch_id, "processing", "attempt 1") is False
    assert store.batch(batch_id).state == "cancelled"
    assert [h["state"] for h in store.history(batch_id)] == ["registered", "cancelled"]
