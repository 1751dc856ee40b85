"""The state file shared by several processes."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def raw(store) -> sqlite3.Connection:
    """A connection of the test's own to the store's file, to look at (or damage) it without the store."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def test_many_processes_can_create_the_same_new_state_file(tmp_path: Path):
    for round_ in range(3):
        db = tmp_path / f"round{round_}" / "faice.db"
        code = f"from faice.state.store import Store; Store({str(db)!r}).create_experiment(source='x', red={{}}, argvs=[['a']], image='i', engine=None, username='u')"
        processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [p.communicate(timeout=60)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 6, errors
        from faice.state.store import Store

        assert len(Store(db).experiments()) == 6


def _direct_counts(store, filters) -> int:
    """The batches a filter means, counted here from every row (not with the code under test)."""
    wanted = {"username": filters.owner or filters.username, "node": filters.node, "state": filters.state, "experiment_id": filters.experiment_id}
    with contextlib.closing(raw(store)) as conn:
        rows = conn.execute("SELECT username, node, state, experiment_id FROM batches").fetchall()
    return sum(1 for row in rows if all(value is None or row[column] == value for column, value in wanted.items()))


FILTERS = [
    {}, {"state": "registered"}, {"state": "failed"}, {"state": "cancelled"}, {"node": "n1"}, {"owner": "ann"}, {"username": "bo"},
    {"owner": "ann", "state": "succeeded"}, {"node": "n2", "state": "processing"},
]


def _changed_store(tmp_path: Path):
    """Two users' experiments whose batches went through every kind of change."""
    import random

    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    rng = random.Random(7)
    ids = []
    for user in ("ann", "bo", "ann"):
        _, batch_ids = store.create_experiment(source="x", red={}, argvs=[["a"]] * 40, image="i", engine=None, username=user)
        ids += batch_ids
    for _ in range(300):
        batch = rng.choice(ids)
        state = rng.choice(["scheduled", "processing", "succeeded", "failed", "cancelled", "registered"])
        store.set_state(batch, state, "test", **({"node": rng.choice(["n1", "n2"])} if rng.random() < 0.5 else {}))
    return store, ids


def test_batch_counts_kept_by_triggers_match_counting_the_batches(tmp_path: Path):
    from faice.state.listing import Filters

    store, _ids = _changed_store(tmp_path)
    for spec in FILTERS:
        filters = Filters(**spec)
        assert store.count("batches", filters) == _direct_counts(store, filters), spec
    assert store.count("batches", Filters(experiment_id="0" * 24)) == 0


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_file_gets_counts_and_history_json_on_opening(tmp_path: Path, version: int):
    import json

    from faice.state.listing import Filters
    from faice.state.store import Store

    store, ids = _changed_store(tmp_path)
    expected = {b: [{"state": h["state"], "time": h["time"], "node": h["node"]} for h in store.history(b)] for b in ids}
    store.close()
    with contextlib.closing(raw(store)) as conn:  # as a file of schema 2 or 3, from before the migrations table
        conn.executescript(
            "DROP TABLE batch_counts; DROP TRIGGER batch_counts_insert; DROP TRIGGER batch_counts_update; DROP TRIGGER batch_counts_delete;"
            f" ALTER TABLE batches DROP COLUMN history_json; DROP TABLE migrations; PRAGMA user_version = {version};"
        )

    reopened = Store(tmp_path / "faice.db")
    for spec in FILTERS:
        filters = Filters(**spec)
        assert reopened.count("batches", filters) == _direct_counts(reopened, filters), spec
    look = raw(reopened)
    for batch_id in ids:
        stored = json.loads(look.execute("SELECT history_json FROM batches WHERE id = ?", (batch_id,)).fetchone()[0])
        assert [(h["state"], h["node"]) for h in stored] == [(h["state"], h["node"]) for h in expected[batch_id]]
        assert all(abs(a["time"] - b["time"]) < 1e-3 for a, b in zip(stored, expected[batch_id], strict=True))  # SQLite writes 15 digits
    reopened.set_state(ids[0], "cancelled", "after the upgrade")
    assert json.loads(look.execute("SELECT history_json FROM batches WHERE id = ?", (ids[0],)).fetchone()[0])[-1]["state"] == "cancelled"
    look.close()


def test_a_version_4_file_gets_the_outdir_column_and_keeps_its_experiments(tmp_path: Path):
    from faice.state.store import Store

    store, ids = _changed_store(tmp_path)
    store.close()
    with contextlib.closing(raw(store)) as conn:
        experiments = [r[0] for r in conn.execute("SELECT id FROM experiments ORDER BY id")]
        conn.executescript("ALTER TABLE experiments DROP COLUMN outdir; DELETE FROM migrations WHERE name = 'experiment_outdir'; PRAGMA user_version = 4;")
    reopened = Store(tmp_path / "faice.db")
    assert "outdir" in reopened.experiment(experiments[0], red=False)
    assert sorted(e["id"] for e in reopened.experiments()) == experiments
    reopened.set_outdir(experiments[0], "/somewhere")
    assert reopened.experiment(experiments[0])["outdir"] == "/somewhere"


def test_the_questions_of_the_worker_and_of_reconciliation(tmp_path: Path):
    from faice.state.store import BatchState, Store

    store = Store(tmp_path / "faice.db")
    exec_id, exec_batches = store.create_experiment(source="x", red={}, argvs=[["a"]] * 2, image="i", engine=None, username="u")
    serve_id, serve_batches = store.create_experiment(source="x", red={}, argvs=[["a"]] * 4, image="i", engine=None, username="u", runner="serve")
    done_id, done_batches = store.create_experiment(source="x", red={}, argvs=[["a"]], image="i", engine=None, username="u")
    store.set_state(done_batches[0], BatchState.SUCCEEDED, "test")
    store.set_state(serve_batches[0], BatchState.SCHEDULED, "test")
    store.set_state(serve_batches[2], BatchState.PROCESSING, "test", node="n")
    store.set_state(serve_batches[3], BatchState.FAILED, "test")

    assert {e.id for e in store.open_experiments()} == {exec_id, serve_id}
    assert [(e.id, e.runner) for e in store.open_experiments(runner="serve")] == [(serve_id, "serve")]
    assert [e.id for e in store.open_experiments(runner="exec")] == [exec_id]
    assert store.running_batch_ids(serve_id) == [serve_batches[0], serve_batches[2]]
    assert [b.id for b in store.queued_batches(serve_id, 10)] == [serve_batches[1]]
    queued = store.queued_batches(exec_id, 1)
    assert [(b.id, b.index, b.attempts) for b in queued] == [(exec_batches[0], 0, 0)]
    with pytest.raises(ValueError):
        store.set_state(exec_batches[0], "finished", "no such state")


def test_a_writer_keeps_sqlites_small_cache_and_a_reader_gets_a_large_one(tmp_path: Path):
    """``faice exec`` opens its store ``read_heavy=False``: each batch thread's connection keeps
    SQLite's default 2 MiB page cache and reads without a memory map, so a run of many batches
    does not grow by a cached copy of the file per thread; ``faice serve`` (the default) caches
    64 MiB and maps the file, for lists and counts of many batches."""
    import threading

    from faice.state.store import Store

    def pragmas(store: Store) -> list[tuple[int, int]]:
        seen = []

        def look() -> None:
            with store._db.transaction() as conn:  # a batch thread's own connection
                seen.append((conn.execute("PRAGMA cache_size").fetchone()[0], conn.execute("PRAGMA mmap_size").fetchone()[0]))

        look()
        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return seen

    assert pragmas(Store(tmp_path / "exec.db", read_heavy=False)) == [(-2000, 0)] * 2
    assert pragmas(Store(tmp_path / "serve.db")) == [(-65536, 268435456)] * 2


def test_faice_exec_opens_its_store_as_a_writer(tmp_path: Path, monkeypatch):
    from faice.state.store import Store
    from tests.conftest import run_inprocess
    from tests.redfiles import shell_red, write

    opened = []
    init = Store.__init__

    def record(self, *args, **kwargs):
        opened.append(kwargs.get("read_heavy", True))
        init(self, *args, **kwargs)

    monkeypatch.setattr(Store, "__init__", record)
    data = shell_red("true")
    data["container"]["settings"]["image"]["url"] = "faice-test-no-such-image:never"
    result = run_inprocess("--db", str(tmp_path / "faice.db"), "exec", str(write(tmp_path / "red.yml", data)), "--disable-pull", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 3, result.stderr  # the image is missing: the store was opened before that was found
    assert opened == [False]


def test_reopen_takes_up_an_ended_experiment_and_only_its_batches_that_did_not_succeed(tmp_path: Path):
    """``faice exec --resume``'s step in the store: the experiment becomes this process's, its
    failed and cancelled batches are registered again ("resumed (run N)", results cleared,
    attempts kept), succeeded ones stay; a batch that has not ended refuses it, naming the owner."""
    import os

    from faice.state.store import BatchState, StillRunning, Store

    store = Store(tmp_path / "faice.db")
    experiment_id, (done, failed, cancelled) = store.create_experiment(source="/red.yml", red={}, argvs=[["a"]] * 3, image="i", engine=None, username="u")
    with raw(store) as conn:
        conn.execute("UPDATE experiments SET pid = 1, host = 'elsewhere' WHERE id = ?", (experiment_id,))
    store.set_state(done, BatchState.PROCESSING, "attempt 1", attempts=1)
    with pytest.raises(StillRunning, match=rf"experiment {experiment_id} is still running \(faice pid 1 on elsewhere\): let it end, or cancel it"):
        store.reopen(experiment_id, "docker")
    store.set_state(done, BatchState.SUCCEEDED, "all outputs found and delivered", exit_code=0, outputs={"o": {"path": "/x"}})
    store.set_state(failed, BatchState.FAILED, "exit code 3", attempts=2, exit_code=3, error="exit code 3", container="c1")
    store.set_state(cancelled, BatchState.CANCELLED, "cancelled", attempts=1)
    assert store.last_experiment("/red.yml") == experiment_id and store.last_experiment("red.yml") is None

    first = store.reopen(experiment_id, "podman")
    assert first.run == 2
    assert [(b.state, b.attempts, b.exit_code, b.error, b.container) for b in first.batches] == [
        (BatchState.SUCCEEDED, 1, 0, None, None), (BatchState.REGISTERED, 2, None, None, None), (BatchState.REGISTERED, 1, None, None, None)]
    assert first.batches[0].outputs == {"o": {"path": "/x"}}
    record = store.experiment(experiment_id, red=False)
    assert (record["pid"], record["host"], record["container_engine"]) == (os.getpid(), os.uname().nodename, "podman")
    assert store.history(cancelled)[-1]["reason"] == "resumed (run 2)" and [h["reason"] for h in store.history(done)][-1] == "all outputs found and delivered"
    with pytest.raises(StillRunning, match=rf"faice pid {os.getpid()}\)"):  # a second resume while this one runs
        store.reopen(experiment_id, "docker")
    store.set_states([failed, cancelled], BatchState.CANCELLED, "cancelled")
    assert store.reopen(experiment_id, "docker").run == 3
    assert [h["reason"] for h in store.history(failed) if h["state"] == BatchState.REGISTERED] == ["submitted", "resumed (run 2)", "resumed (run 3)"]


def test_an_experiment_is_as_old_as_its_last_run_for_prune(tmp_path: Path):
    """A resumed experiment made long ago but run again today is not among those that finished long ago."""
    import time

    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    experiment_id, batch_ids = store.create_experiment(source="x", red={}, argvs=[["true"]], image="i", engine=None, username="u")
    store.set_states(batch_ids, "succeeded", "done")
    now, day = time.time(), 86400
    with contextlib.closing(raw(store)) as conn:
        conn.execute("UPDATE experiments SET created_at = ?", (now - 100 * day,))
    assert store.finished_before(now - 30 * day) == []  # its batches ended today
    with contextlib.closing(raw(store)) as conn:
        conn.execute("UPDATE batches SET updated_at = ?", (now - 50 * day,))
    assert store.finished_before(now - 30 * day) == [experiment_id]


def test_batch_times_start_belongs_to_the_last_attempt(tmp_path: Path):
    """A batch resumed and then cancelled before its new run began has no start: the earlier run's
    would give it a run time spanning both runs."""
    from faice.state.states import BatchState
    from faice.state.store import Store

    store = Store(tmp_path / "faice.db")
    experiment_id, (resumed, ran) = store.create_experiment(source="x", red={}, argvs=[["a"], ["b"]], image="i", engine=None, username="u")
    for batch_id in (resumed, ran):
        store.set_state(batch_id, BatchState.SCHEDULED, "scheduled")
        store.set_state(batch_id, BatchState.PROCESSING, "started")
    store.set_state(resumed, BatchState.FAILED, "exit code 1")
    store.set_state(ran, BatchState.SUCCEEDED, "done")
    store.set_state(resumed, BatchState.REGISTERED, "resumed (run 2)")
    store.set_state(resumed, BatchState.CANCELLED, "cancelled")
    times = store.batch_times(experiment_id)
    assert times[resumed].start is None and times[resumed].first_start is not None and times[resumed].end is not None
    assert times[ran].start is not None and times[ran].start == times[ran].first_start
