"""A local input's hash is remembered by path, size, mtime, ctime, inode and device: read once
while it is unchanged; never with the path itself in the state file (it may hold a filled variable)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from faice.cache.results import ResultCache
from faice.connectors.base import Context
from faice.red.secrets import Masker
from faice.runner import caching
from faice.runner.caching import BatchCache
from faice.state.store import Store


@pytest.fixture
def keys(tmp_path: Path) -> BatchCache:
    store = Store(tmp_path / "faice.db")
    return BatchCache(ResultCache(store), store, "sha256:" + "0" * 64, None, Masker(), Context(base_dir=tmp_path),  # type: ignore[arg-type]
                      environment={}, gpus=None, network=None, user="1:1", mount=True)


def test_an_unchanged_file_is_read_once_and_a_changed_one_again(keys: BatchCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    reads: list[str] = []
    real = caching.file_sha256
    monkeypatch.setattr(caching, "file_sha256", lambda path: reads.append(str(path)) or real(path))
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * 1000)
    old = time.time() - 60
    os.utime(data, (old, old))
    expected = hashlib.sha256(b"a" * 1000).hexdigest()
    assert keys.local("f", data).sha256 == expected
    assert keys.local("f", data).sha256 == expected and keys.local("f", tmp_path / "." / "data.bin").sha256 == expected
    assert len(reads) == 1

    data.write_bytes(b"b" * 1000)  # the same size: the mtime tells
    os.utime(data, (old + 1, old + 1))
    assert keys.local("f", data).sha256 == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 2

    data.write_bytes(b"c" * 1000)  # a write that puts the mtime back (cp -p, rsync -t --inplace): the ctime tells
    os.utime(data, (old + 1, old + 1))
    assert keys.local("f", data).sha256 == hashlib.sha256(b"c" * 1000).hexdigest() and len(reads) == 3
    data.write_bytes(b"b" * 1000)
    os.utime(data, (old + 1, old + 1))

    moved = tmp_path / "moved.bin"
    data.rename(moved)
    (tmp_path / "data.bin").write_bytes(b"b" * 1000)  # another inode under the old name
    os.utime(tmp_path / "data.bin", (old + 1, old + 1))
    assert keys.local("f", tmp_path / "data.bin").sha256 == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 4


def test_a_file_changed_within_the_last_seconds_is_hashed_every_time(keys: BatchCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Racily clean: a write within the mtime's resolution after hashing would go unnoticed."""
    reads: list[str] = []
    real = caching.file_sha256
    monkeypatch.setattr(caching, "file_sha256", lambda path: reads.append(str(path)) or real(path))
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("now")
    keys.local("f", fresh)
    keys.local("f", fresh)
    assert len(reads) == 2
    assert keys.store.remembered_sha256(keys.results.fingerprint(str(fresh)), caching.file_stat(fresh)) is None


def test_the_state_file_holds_no_path_of_a_remembered_file(keys: BatchCache, tmp_path: Path):
    secret = tmp_path / "s3cr3t-sample-name.txt"
    secret.write_text("data")
    old = time.time() - 60
    os.utime(secret, (old, old))
    keys.local("f", secret)
    assert keys.store.remembered_sha256(keys.results.fingerprint(str(secret)), caching.file_stat(secret)) is not None
    keys.store.close()
    assert b"s3cr3t-sample-name" not in (tmp_path / "faice.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("faice.db-*"))


def test_a_batch_never_reads_the_cache_secret_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two batches make the secret at once: the second must not read the first's before it is
    written (an empty key fingerprints everything differently: found as a flaky miss)."""
    import threading

    store = Store(tmp_path / "faice.db")
    one, other = ResultCache(store), ResultCache(store)
    real_fdopen, paused, go = os.fdopen, threading.Event(), threading.Event()

    def slow_fdopen(fd: int, *args: object, **kwargs: object) -> object:
        if threading.current_thread().name == "first":  # made its file, not written it yet
            paused.set()
            go.wait(10)
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", slow_fdopen)
    seen: list[str] = []
    first = threading.Thread(name="first", target=lambda: seen.append(one.fingerprint("a value")))
    first.start()
    assert paused.wait(10)
    seen.append(other.fingerprint("a value"))
    go.set()
    first.join(10)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert not list(one.root.glob("secret.tmp-*"))
