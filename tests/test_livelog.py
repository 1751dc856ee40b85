"""The follower of ``faice logs --follow`` step by step, as the runner writes and renames the files
of each attempt and records its states (no container: test_live_logs.py follows real ones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faice.state import livelog
from faice.state.livelog import LogFollower, Part
from faice.state.states import BatchState
from faice.state.store import Store, log_path


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Store, str]:
    store = Store(tmp_path / "faice.db")
    _, [batch_id] = store.create_experiment(source="x", red={}, argvs=[["a"]], image="i", engine=None, username="u")
    log_path(store.path, batch_id, "stdout").parent.mkdir(parents=True, exist_ok=True)
    return store, batch_id


def paths(store: Store, batch_id: str) -> tuple[Path, Path]:
    final = log_path(store.path, batch_id, "stdout")
    return final.with_name(final.name + ".partial"), final


def start_attempt(store: Store, batch_id: str, attempt: int) -> None:
    store.set_state(batch_id, BatchState.PROCESSING, f"attempt {attempt}", attempts=attempt)


def test_each_attempt_is_followed_from_its_start_to_the_batchs_end(batch: tuple[Store, str]) -> None:
    store, batch_id = batch
    partial, final = paths(store, batch_id)
    follower = LogFollower(store, batch_id, "stdout")
    assert follower.poll() == [] and not follower.done  # registered: nothing yet
    start_attempt(store, batch_id, 1)
    assert follower.poll() == [] and not follower.done  # processing, the container not started
    with open(partial, "wb") as out:
        out.write(b"a")
        out.flush()
        assert follower.poll() == [Part(1), Part(1, b"a")]
        out.write(b"b\n")
        out.flush()
        assert follower.poll() == [Part(1, b"b\n")]
        out.write(b"last")
    os.replace(partial, final)
    store.set_state(batch_id, BatchState.REGISTERED, "attempt 1 failed; retrying")
    assert follower.poll() == [Part(1, b"last")] and not follower.done  # what came before the rename
    assert follower.poll() == []  # the final file is the attempt just read, not a new one
    start_attempt(store, batch_id, 2)
    with open(partial, "wb") as out:
        out.write(b"again\n")
    assert follower.poll() == [Part(2), Part(2, b"again\n")]
    os.replace(partial, final)
    store.set_state(batch_id, BatchState.FAILED, "attempt 2 failed")
    assert follower.poll() == [] and follower.done
    follower.close()


def test_joined_between_attempts_it_begins_with_the_last_attempts_file(batch: tuple[Store, str]) -> None:
    store, batch_id = batch
    _, final = paths(store, batch_id)
    start_attempt(store, batch_id, 1)
    final.write_bytes(b"first\n")
    follower = LogFollower(store, batch_id, "stdout")
    assert follower.poll() == []  # processing without a .partial: that file may be the previous attempt's
    store.set_state(batch_id, BatchState.REGISTERED, "attempt 1 failed; retrying")
    assert follower.poll() == [Part(1), Part(1, b"first\n")] and not follower.done
    store.set_state(batch_id, BatchState.CANCELLED, "cancelled")
    assert follower.poll() == [] and follower.done


def test_a_partial_file_nobody_renames_ends_the_follow_after_a_grace(batch: tuple[Store, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, batch_id = batch
    partial, _ = paths(store, batch_id)
    start_attempt(store, batch_id, 1)
    partial.write_bytes(b"cut")
    store.set_state(batch_id, BatchState.CANCELLED, "cancelled by faice cancel")  # recorded before the runner renamed
    follower = LogFollower(store, batch_id, "stdout")
    assert follower.poll() == [Part(1), Part(1, b"cut")] and not follower.done
    monkeypatch.setattr(livelog, "FINAL_GRACE", 0.0)
    assert follower.poll() == [] and follower.done


def test_large_output_is_handed_out_in_steps(batch: tuple[Store, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, batch_id = batch
    _, final = paths(store, batch_id)
    monkeypatch.setattr(livelog, "CHUNK", 4)
    start_attempt(store, batch_id, 1)
    final.write_bytes(b"0123456789")
    store.set_state(batch_id, BatchState.SUCCEEDED, "done")
    follower = LogFollower(store, batch_id, "stdout")
    got = follower.poll()
    assert got == [Part(1), Part(1, b"0123")] and follower.behind and not follower.done
    assert follower.poll() == [Part(1, b"4567")]
    assert follower.poll() == [Part(1, b"89")] and follower.done


def test_a_follower_ends_when_the_run_died_without_recording_its_end(batch: tuple[Store, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL of the faice running the batch: it stays "processing" in the store and its .partial
    is never renamed; the follower sees the process gone and ends with what was written."""
    import sqlite3
    import subprocess

    store, batch_id = batch
    partial, _ = paths(store, batch_id)
    monkeypatch.setattr(livelog, "LIVENESS", 0.0)
    monkeypatch.setattr(livelog, "FINAL_GRACE", 0.0)
    start_attempt(store, batch_id, 1)
    partial.write_bytes(b"half")
    follower = LogFollower(store, batch_id, "stdout")
    assert follower.poll() == [Part(1), Part(1, b"half")] and not follower.done  # this test's process runs it: alive
    gone = subprocess.Popen(["true"])
    gone.wait()
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE experiments SET pid = ?", (gone.pid,))
    follower.poll()
    assert follower.poll() == [] and follower.done
    follower.close()
