"""Following a batch's captured output while it runs (``faice logs --follow``, ``?follow=true``).

The runner writes a running attempt's output to ``LOGS/<batch>.stdout.partial`` as it comes and
renames it to ``<batch>.stdout`` when the attempt ends; the next attempt of a retried batch writes
a new ``.partial`` (and its rename replaces the file). A :class:`LogFollower` reads those files
without any engine: the exact bytes, from every attempt it sees begin, each part labelled with its
attempt, until the batch is in a final state and the last bytes are read. It is a state machine
polled by its caller (a loop with a sleep in the CLI, an async loop in the server), so that no
call blocks for long and the store is only read, one short query a poll.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import IO

from faice.state.states import FINAL_STATES, BatchState
from faice.state.store import BatchRow, Store, log_path

#: seconds between two looks at a followed batch and its file
POLL = 0.15
#: bytes read from a file in one poll at most (a fast tool is followed in steps, never in one read)
CHUNK = 1 << 20
#: seconds a batch recorded as ended (say, cancelled from elsewhere) may keep writing its ``.partial``
#: before the follower ends with what is there (a process killed while it ran leaves one behind)
FINAL_GRACE = 5.0
#: how often a follower asks whether the faice process running the batch is still alive (seconds)
LIVENESS = 2.0


@dataclass(frozen=True)
class Part:
    """Bytes of one attempt's output (``data``), or the start of an attempt (``data`` is None)."""

    attempt: int
    data: bytes | None = None


def attempt_marker(attempt: int) -> bytes:
    """The line that says a new attempt's output begins (the CLI writes it to stderr, the API in the stream)."""
    return f"--- attempt {attempt} ---\n".encode()


class LogFollower:
    """What a batch writes to ``stream`` (stdout or stderr), poll by poll."""

    def __init__(self, store: Store, batch_id: str, stream: str) -> None:
        self.store, self.batch_id = store, batch_id
        self.final = log_path(store.path, batch_id, stream)
        self.partial = self.final.with_name(f"{self.final.name}.partial")
        self._handle: IO[bytes] | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read now
        self._read: tuple[int, int] | None = None  # that of the last attempt read to its end
        self._ended_at: float | None = None  # when the batch was first seen ended
        self._alive_at = time.monotonic()  # when the run's process was last known to be alive
        self.attempt: int | None = None  # the attempt read now (or last)
        self.done = False
        self.behind = False  # the last poll stopped at CHUNK bytes: poll again at once

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def poll(self) -> list[Part]:
        """What is new since the last poll; ``done`` is set once the batch ended and all is read."""
        if self.done:
            return []
        row = self.store.batch(self.batch_id)  # first: a final state read here means its files were renamed before
        parts: list[Part] = []
        ended = row is None or row.state in FINAL_STATES or self._runner_gone(row)
        if ended and self._ended_at is None:
            self._ended_at = time.monotonic()
        budget = CHUNK
        while budget > 0:
            if self._handle is None and not self._adopt(row, parts, ended):
                break
            assert self._handle is not None
            data = self._handle.read(budget)
            if data:
                parts.append(Part(self.attempt or 0, data))
                budget -= len(data)
                continue
            if not self._writer_done(ended):
                break
            rest = self._handle.read()  # written between the read above and the rename
            if rest:
                parts.append(Part(self.attempt or 0, rest))
            self._read = self._identity
            self.close()
        self.behind = budget <= 0
        if ended and self._handle is None and not self.behind:
            self.done = True
        return parts

    def _runner_gone(self, row: BatchRow) -> bool:
        """Whether the faice process running the batch died without recording its end (SIGKILL):
        then it never ends in the store until another faice command settles it. Asked every
        ``LIVENESS`` seconds, not at every poll."""
        now = time.monotonic()
        if now - self._alive_at < LIVENESS:
            return False
        self._alive_at = now
        from faice.host import process_alive

        owner = self.store.experiment(row.experiment_id, red=False)
        return owner is not None and not process_alive(owner.get("pid"), owner.get("host"))

    def _writer_done(self, ended: bool) -> bool:
        """Whether the attempt whose file is open wrote its last byte: its ``.partial`` was renamed
        (or replaced by the next attempt's); the writer closes the file before it renames it."""
        try:
            if _identity(os.stat(self.partial)) != self._identity:
                return True
        except OSError:
            return True
        return ended and self._ended_at is not None and time.monotonic() - self._ended_at > FINAL_GRACE

    def _adopt(self, row: BatchRow | None, parts: list[Part], ended: bool) -> bool:
        """Open the file of an attempt not read yet: a running one's ``.partial``, else (the batch
        is not running an attempt now) the last attempt's final file."""
        handle = _open(self.partial)
        attempt = None
        if handle is not None:
            current = self.store.batch(self.batch_id)  # after the open: the attempt that file belongs to at the latest
            attempt = current.attempts if current is not None else None
        elif ended or (row is not None and row.state != BatchState.PROCESSING):
            # between attempts (or after the last): the final file is the last attempt's; while
            # processing without a .partial it may be the previous one's, so that waits a poll
            handle = _open(self.final)
            attempt = row.attempts if row is not None else None
        if handle is None:
            return False
        identity = _identity(os.fstat(handle.fileno()))
        if identity == self._read:
            handle.close()
            return False
        self._handle, self._identity = handle, identity
        attempt = max(attempt or 1, 1)
        if self.attempt is None or attempt != self.attempt:
            parts.append(Part(attempt))
        self.attempt = attempt
        return True


def _open(path: os.PathLike[str]) -> IO[bytes] | None:
    try:
        return open(path, "rb")  # noqa: SIM115 - the follower closes it
    except OSError:
        return None


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino
