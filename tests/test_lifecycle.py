"""The batch lifecycle and its two drivers, in this process, on a fake engine and a real store.

What a real engine makes hard to time is tested here: parallelism and the memory budget,
retries, a cancel that races a running container, Ctrl-C, and what a dead run leaves behind.
End-to-end runs on real Docker are in test_exec and test_serve_*.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from faice.red.prepare import prepare
from faice.runner import lifecycle
from faice.runner.batch import RunOptions
from faice.runner.budget import MemoryBudget
from faice.runner.execute import execute
from faice.runner.plan import plan
from faice.runner.scheduler import LocalScheduler
from faice.server.worker import Active, Worker
from faice.state.store import Store
from tests.conftest import eventually
from tests.fake_engine import FakeEngine, Run
from tests.redfiles import as_batches, shell_red, write

ECHO = shell_red('echo "$1" > out.txt', cli_inputs={"n": {"type": "string", "inputBinding": {"position": 1}}},
                 outputs={"out": {"type": "File", "outputBinding": {"glob": "out.txt"}}})


def echo_batches(count: int, **container: Any) -> dict[str, Any]:
    data = as_batches(ECHO, [{"n": f"batch-{i}"} for i in range(count)])
    data["container"] = {**data["container"], "settings": {**data["container"]["settings"], **container}}
    return data


def writes_its_argument(run: Run) -> int:
    """What the echo tool does: its last argument into out.txt."""
    (run.outdir / "out.txt").write_text(run.spec.argv[-1] + "\n")
    return 0


def prepared(tmp_path: Path, data: dict[str, Any]) -> Any:
    return prepare(str(write(tmp_path / "red.yml", data)), connectors_required=True, local=True)


def states(store: Store, experiment_id: str) -> list[str]:
    return [b.state for b in store.batches(experiment_id)]


def history(store: Store, batch_id: str) -> list[str]:
    return [h["state"] for h in store.history(batch_id)]


def run_exec(tmp_path: Path, data: dict[str, Any], engine: FakeEngine, **options: Any) -> tuple[Store, Any, list[tuple[int, str, str]]]:
    store = Store(tmp_path / "faice.db")
    events: list[tuple[int, str, str]] = []
    run_options = RunOptions(outdir=tmp_path / "out", **{"jobs": 2, **options})
    result = execute(prepared(tmp_path, data), run_options, store, lambda i, what, detail: events.append((i, what, detail)), lambda name=None: engine)
    return store, result, events


def test_batches_run_in_parallel_up_to_jobs_each_recorded_through_every_state(tmp_path: Path):
    def slow(run: Run) -> int:
        time.sleep(0.1)
        return writes_its_argument(run)

    engine = FakeEngine(slow)
    store, result, _events = run_exec(tmp_path, echo_batches(6), engine, jobs=2)
    assert result.state == "succeeded"
    assert engine.peak == 2
    assert states(store, result.experiment_id) == ["succeeded"] * 6
    for i, batch in enumerate(store.batches(result.experiment_id)):
        assert history(store, batch.id) == ["registered", "scheduled", "processing", "succeeded"]
        assert (tmp_path / "out" / f"batch_{i}" / "out.txt").read_text() == f"batch-{i}\n"
        assert batch.attempts == 1 and batch.container is not None
    assert engine.left() == []  # every container removed
    created = [c for call, c in engine.calls if call == "create"]
    assert [engine.calls.index(("remove", c)) > engine.calls.index(("start", c)) for c in created] == [True] * 6


def test_a_failed_attempt_is_retried_and_a_batch_out_of_retries_fails(tmp_path: Path):
    tries: dict[str, int] = {}

    def flaky(run: Run) -> int:
        name = run.spec.argv[-1]
        tries[name] = tries.get(name, 0) + 1
        if name == "batch-1" and tries[name] == 1 or name == "batch-2":
            return 3
        return writes_its_argument(run)

    store, result, events = run_exec(tmp_path, echo_batches(3), FakeEngine(flaky), retries=1)
    assert result.state == "failed"
    first, second, third = store.batches(result.experiment_id)
    assert (first.state, first.attempts) == ("succeeded", 1)
    assert (second.state, second.attempts) == ("succeeded", 2)
    assert history(store, second.id) == ["registered", "scheduled", "processing", "registered", "processing", "succeeded"]
    assert (third.state, third.attempts, third.exit_code) == ("failed", 2, 3)
    assert third.error == "exit code 3"
    assert sorted(i for i, what, _ in events if what == "retry") == [1, 2]


def test_the_memory_budget_keeps_batches_that_do_not_fit_together_apart(tmp_path: Path):
    def slow(run: Run) -> int:
        time.sleep(0.05)
        return writes_its_argument(run)

    engine = FakeEngine(slow)
    store = Store(tmp_path / "faice.db")
    ready = prepared(tmp_path, echo_batches(4, ram=600))
    plans = plan(ready.experiment, ready.masker)
    experiment_id, batch_ids = lifecycle.register(store, ready, plans, runner="exec", username="u", retries=0, connector_validation=True, container_engine="fake")
    options = RunOptions(outdir=tmp_path / "out", jobs=4)
    runner = lifecycle.batch_runner(engine, ready.experiment, ready.masker, options, store, experiment_id, tmp_path)
    records = [lifecycle.BatchRecord(p, b) for p, b in zip(plans, batch_ids, strict=True)]
    budget = MemoryBudget(1000)
    LocalScheduler(runner, store, jobs=4, retries=0, memory=budget, on_event=lifecycle.quiet).run(records)
    assert states(store, experiment_id) == ["succeeded"] * 4
    assert engine.peak == 1  # 600 + 600 MiB do not fit in 1000
    assert budget.used == 0


def test_a_clusters_batch_concurrency_limit_is_capped_by_this_machine_and_said_once(tmp_path: Path):
    """Without --jobs, a cluster's batchConcurrencyLimit runs no more batches at once than this
    machine's CPUs and memory take, with one notice; --jobs chooses, and nothing is said.
    (test_exec sees the notice printed by the real command once.)"""
    from faice.host import cpu_count
    from faice.runner.exec_options import exec_options

    def slow(run: Run) -> int:
        time.sleep(0.1)
        return writes_its_argument(run)

    data = echo_batches(cpu_count() + 2)
    data["execution"] = {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 10_000_000}}
    ready = prepared(tmp_path, data)
    options, notices = exec_options(ready.experiment, outdir=tmp_path / "out")
    cap = min(cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20) // 256)
    assert options.jobs == cap
    assert len(notices) == 1 and notices[0].startswith(f"batchConcurrencyLimit 10000000 is a cluster's: here up to {cap} batches run at once (")
    engine = FakeEngine(slow)
    result = execute(ready, options, Store(tmp_path / "faice.db"), lifecycle.quiet, lambda name=None: engine)
    assert result.state == "succeeded"
    assert engine.peak == cap  # all of them at once before
    chosen, quiet = exec_options(ready.experiment, outdir=tmp_path / "out", jobs=2)
    assert (chosen.jobs, quiet) == (2, [])


def test_a_cancel_from_elsewhere_kills_the_running_container_and_no_other_batch_starts(tmp_path: Path):
    engine = FakeEngine(lambda run: run.wait_killed())
    outcome: list[Any] = []
    store = Store(tmp_path / "faice.db")
    thread = threading.Thread(target=lambda: outcome.append(
        execute(prepared(tmp_path, echo_batches(3)), RunOptions(outdir=tmp_path / "out", jobs=1), store, lifecycle.quiet, lambda name=None: engine)))
    thread.start()
    eventually(lambda: engine.running == 1)
    experiment_id = store.experiments()[0]["id"]
    other = Store(tmp_path / "faice.db")  # as faice cancel in another terminal
    asked: list[str | None] = []
    assert lifecycle.cancel(other, experiment_id, "cancelled by faice cancel", lambda name=None: asked.append(name) or engine) == 3
    assert asked == ["fake"]  # the engine the experiment's record names, whatever the caller's default
    thread.join(20)
    assert not thread.is_alive()
    assert outcome[0].state == "cancelled"
    assert states(store, experiment_id) == ["cancelled"] * 3
    assert [call for call, _ in engine.calls].count("start") == 1
    assert ("kill", "fake0001") in engine.calls and engine.left() == []
    assert store.history(store.batches(experiment_id)[0].id)[-1]["reason"] == "cancelled by faice cancel"


def test_ctrl_c_cancels_the_run_and_records_every_batch(tmp_path: Path):
    engine = FakeEngine(lambda run: run.wait_killed())
    store = Store(tmp_path / "faice.db")
    before = signal.getsignal(signal.SIGINT)  # ignored when the tests were started in the background by a shell
    timer = threading.Thread(target=lambda: (eventually(lambda: engine.running == 2), os.kill(os.getpid(), signal.SIGINT)))
    timer.start()
    result = execute(prepared(tmp_path, echo_batches(4)), RunOptions(outdir=tmp_path / "out", jobs=2), store, lifecycle.quiet, lambda name=None: engine)
    timer.join()
    assert result.interrupted and result.state == "cancelled"
    assert states(store, result.experiment_id) == ["cancelled"] * 4
    assert sorted(c for call, c in engine.calls if call == "kill") == ["fake0001", "fake0002"]
    assert engine.left() == []
    assert signal.getsignal(signal.SIGINT) is before  # the run's handler is gone again


def test_cancelling_registered_batches_needs_no_engine(tmp_path: Path):
    store = Store(tmp_path / "faice.db")
    ready = prepared(tmp_path, echo_batches(2))
    experiment_id, (first, _second) = lifecycle.register(store, ready, plan(ready.experiment, ready.masker), runner="exec", username="u",
                                                         retries=0, connector_validation=True, container_engine="fake")

    def no_engine(name: str | None = None) -> Any:
        raise AssertionError("the engine was reached")

    assert lifecycle.cancel(store, first, "cancelled by faice cancel", no_engine) == 1
    assert states(store, experiment_id) == ["cancelled", "registered"]
    assert lifecycle.cancel(store, first, "again", no_engine) == 0  # a cancelled batch stays as it is


def test_settling_a_dead_run_fails_or_requeues_by_retries_and_removes_its_containers(tmp_path: Path):
    engine = FakeEngine(lambda run: run.wait_killed())
    store = Store(tmp_path / "faice.db")
    ready = prepared(tmp_path, echo_batches(4))
    experiment_id, ids = lifecycle.register(store, ready, plan(ready.experiment, ready.masker), runner="serve", username="u", retries=1,
                                            connector_validation=True, container_engine="fake")
    store.set_state(ids[0], "processing", "attempt 1", attempts=1)
    store.set_state(ids[1], "processing", "attempt 2", attempts=2)
    store.set_state(ids[2], "succeeded", "done", attempts=1)
    left = engine.create(lifecycle_spec(experiment_id, ids[0]))
    assert lifecycle.settle(store, experiment_id, "the server stopped", lambda name=None: engine, retries=1) == 1
    assert states(store, experiment_id) == ["registered", "failed", "succeeded", "registered"]
    assert store.batch(ids[1]).error == "the server stopped (attempt 2, no retries left)"
    assert ("remove", left) in engine.calls and engine.left() == []
    assert lifecycle.settle(store, experiment_id, "the faice process died", lambda name=None: engine, retries=None) == 2  # nothing queued again
    assert states(store, experiment_id) == ["failed", "failed", "succeeded", "failed"]


def lifecycle_spec(experiment_id: str, batch_id: str) -> Any:
    from faice.runner.docker_engine import LABEL_BATCH, LABEL_EXPERIMENT, LABEL_REMOVABLE, ContainerSpec

    return ContainerSpec(image="i", argv=["true"], workdir="/", mounts=[], user="0:0",
                         labels={LABEL_EXPERIMENT: experiment_id, LABEL_BATCH: batch_id, LABEL_REMOVABLE: "1"})


# --- faice serve's driver -------------------------------------------------------------------------


@pytest.fixture
def worker_for(tmp_path: Path):
    made: list[Worker] = []

    def make(engine: FakeEngine, jobs: int = 2, memory: int | None = None) -> Worker:
        store = Store(tmp_path / "faice.db")
        worker = Worker(store, RunOptions(outdir=tmp_path / "outputs", jobs=jobs), lambda name=None: engine, memory=MemoryBudget(memory))
        worker.start()
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


def submit(worker: Worker, tmp_path: Path, data: dict[str, Any], retries: int = 0) -> str:
    ready = prepared(tmp_path, data)
    experiment_id, _ids = lifecycle.register(worker.store, ready, plan(ready.experiment, ready.masker), runner="serve", username="u",
                                             retries=retries, connector_validation=True, container_engine="fake")
    worker.add(Active(experiment_id, ready.experiment, ready.masker, retries, True, "u", admin=True))
    return experiment_id


def test_the_worker_runs_experiments_first_in_first_out_within_their_limit(tmp_path: Path, worker_for: Any):
    gate = threading.Event()
    order: list[str] = []

    def tool(run: Run) -> int:
        order.append(run.spec.argv[-1])
        gate.wait(10)
        return writes_its_argument(run)

    engine = FakeEngine(tool)
    worker = worker_for(engine, jobs=2)
    limited = echo_batches(3)
    limited["execution"] = {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 1}}
    first = submit(worker, tmp_path, limited)
    second = submit(worker, tmp_path, echo_batches(2))
    eventually(lambda: engine.running == 2)
    assert sorted(states(worker.store, first)) == ["processing", "registered", "registered"]  # its limit: one at a time
    assert states(worker.store, second)[0] == "processing"
    gate.set()
    eventually(lambda: not worker.store.has_open_batches(first) and not worker.store.has_open_batches(second))
    assert states(worker.store, first) == ["succeeded"] * 3 and states(worker.store, second) == ["succeeded"] * 2
    assert order[:2] == ["batch-0", "batch-0"] and order.count("batch-0") == 2
    assert engine.left() == []
    eventually(lambda: worker.active == {})  # credentials leave memory with the last batch


def test_the_worker_retries_through_the_queue_and_honours_the_memory_budget(tmp_path: Path, worker_for: Any):
    tries: list[str] = []

    def tool(run: Run) -> int:
        tries.append(run.spec.argv[-1])
        time.sleep(0.05)
        return 1 if tries.count("batch-0") == 1 and run.spec.argv[-1] == "batch-0" else writes_its_argument(run)

    engine = FakeEngine(tool)
    worker = worker_for(engine, jobs=4, memory=1000)
    experiment_id = submit(worker, tmp_path, echo_batches(3, ram=600), retries=1)
    eventually(lambda: not worker.store.has_open_batches(experiment_id))
    assert states(worker.store, experiment_id) == ["succeeded"] * 3
    assert worker.store.batches(experiment_id)[0].attempts == 2
    assert engine.peak == 1 and worker.memory.used == 0


def test_stopping_the_worker_cancels_running_batches_and_leaves_queued_ones(tmp_path: Path, worker_for: Any):
    engine = FakeEngine(lambda run: run.wait_killed())
    worker = worker_for(engine, jobs=1)
    experiment_id = submit(worker, tmp_path, echo_batches(2))
    eventually(lambda: engine.running == 1)
    worker.stop()
    assert states(worker.store, experiment_id) == ["cancelled", "registered"]
    assert worker.store.history(worker.store.batches(experiment_id)[0].id)[-1]["reason"] == "faice serve was stopped"
    assert engine.left() == []


# --- which engine, and races around a cancel ------------------------------------------------------


def registered(tmp_path: Path, container_engine: str | None, runner: str = "exec", processing: bool = True) -> tuple[Store, str, list[str]]:
    """An experiment of one batch as a run that died left it (its pid is gone)."""
    import sqlite3

    store = Store(tmp_path / "faice.db")
    ready = prepared(tmp_path, echo_batches(1))
    experiment_id, ids = lifecycle.register(store, ready, plan(ready.experiment, ready.masker), runner=runner, username="u", retries=1,
                                            connector_validation=True, container_engine=container_engine)  # type: ignore[arg-type]
    if processing:
        store.set_states(ids, "processing", "attempt 1", attempts=1)
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE experiments SET pid = 999999999 WHERE id = ?", (experiment_id,))
    return store, experiment_id, ids


def test_an_experiment_recorded_without_an_engine_is_cleaned_up_through_docker_whatever_faice_engine_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from faice.runner.reconcile import reconcile

    store, experiment_id, _ids = registered(tmp_path, container_engine=None)  # written before engines were recorded
    monkeypatch.setenv("FAICE_ENGINE", "podman")
    asked: list[str] = []
    assert reconcile(store, lambda name: asked.append(name) or FakeEngine()) == 1
    assert asked == ["docker"]


def test_a_dead_run_is_recorded_even_when_its_containers_cannot_be_listed(tmp_path: Path):
    from faice.runner.dockerapi import DockerError
    from faice.runner.reconcile import reconcile

    class Stumbling(FakeEngine):
        def containers(self, **labels: str) -> list[str]:
            raise DockerError(500, "server error")

    store, experiment_id, _ids = registered(tmp_path, container_engine="docker")
    assert reconcile(store, lambda name: Stumbling()) == 1  # the next run's sweep removes the containers
    assert states(store, experiment_id) == ["failed"]


def test_a_cancel_kills_a_batch_that_started_after_the_cancel_looked_at_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store, experiment_id, (batch_id,) = registered(tmp_path, container_engine="docker", runner="serve", processing=False)
    engine = FakeEngine()
    container = engine.create(lifecycle_spec(experiment_id, batch_id))
    real = store.move

    def dispatched_meanwhile(batch_ids: list[str], state: str, *args: Any, **kwargs: Any) -> Any:
        if state == "cancelled":  # the worker starts it between the cancel's read and its write
            real(batch_ids, "processing", "attempt 1")
        return real(batch_ids, state, *args, **kwargs)

    monkeypatch.setattr(store, "move", dispatched_meanwhile)
    assert lifecycle.cancel(store, batch_id, "cancelled through the API by u", lambda name: engine, strict=False) == 1
    assert ("kill", container) in engine.calls


def test_a_server_restarted_on_another_engine_cleans_up_on_the_old_and_runs_and_cancels_on_its_own(tmp_path: Path):
    store, experiment_id, (batch_id,) = registered(tmp_path, container_engine="podman", runner="serve")
    engines = {"docker": FakeEngine(lambda run: run.wait_killed()), "podman": FakeEngine()}
    engines["docker"].name, engines["podman"].name = "docker", "podman"
    left = engines["podman"].create(lifecycle_spec(experiment_id, batch_id))
    worker = Worker(store, RunOptions(outdir=tmp_path / "outputs", jobs=1, engine="docker"), lambda name: engines[name], memory=MemoryBudget(None))
    worker.start()
    try:
        assert ("remove", left) in engines["podman"].calls  # the crashed run's container, where it ran
        eventually(lambda: engines["docker"].running == 1)  # queued again (a retry left), run here
        assert store.experiment(experiment_id, red=False)["container_engine"] == "docker"
        assert lifecycle.cancel(store, experiment_id, "cancelled through the API by u", worker.engine_for, strict=False) == 1
        eventually(lambda: engines["docker"].running == 0)
        assert states(store, experiment_id) == ["cancelled"]
    finally:
        worker.stop()
