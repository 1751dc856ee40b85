"""A local input's hash is remembered by path, size, mtime and inode: read once while it is unchanged."""

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
    assert keys.local_sha256(data) == expected
    assert keys.local_sha256(data) == expected and keys.local_sha256(tmp_path / "." / "data.bin") == expected
    assert len(reads) == 1

    data.write_bytes(b"b" * 1000)  # the same size: the mtime tells
    os.utime(data, (old + 1, old + 1))
    assert keys.local_sha256(data) == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 2

    moved = tmp_path / "moved.bin"
    data.rename(moved)
    (tmp_path / "data.bin").write_bytes(b"b" * 1000)  # another inode under the old name
    os.utime(tmp_path / "data.bin", (old + 1, old + 1))
    assert keys.local_sha256(tmp_path / "data.bin") == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 3


def test_a_file_changed_within_the_last_seconds_is_hashed_every_time(keys: BatchCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Racily clean: a write within the mtime's resolution after hashing would go unnoticed."""
    reads: list[str] = []
    real = caching.file_sha256
    monkeypatch.setattr(caching, "file_sha256", lambda path: reads.append(str(path)) or real(path))
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("now")
    keys.local_sha256(fresh)
    keys.local_sha256(fresh)
    assert len(reads) == 2
    assert keys.store.remembered_sha256(str(fresh), caching.FileStat(3, fresh.stat().st_mtime_ns, fresh.stat().st_ino)) is None
