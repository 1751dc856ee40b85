"""Answers streamed from open files: exactly the bytes they had when the answer began, each chunk
read in a thread, the file closed as soon as the answer ends or the client goes away."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator
from typing import BinaryIO

log = logging.getLogger(__name__)

#: bytes read at a time
CHUNK = 256 * 1024


class CutShort(Exception):
    """A file shrank while it was being sent: the answer is broken off, never padded or finished."""


def send(handle: BinaryIO, start: int, length: int) -> Generator[bytes, None, None]:
    """Exactly ``length`` bytes of ``handle`` from ``start`` (which it closes at the end); a file
    that shrank meanwhile breaks the answer off."""
    with handle:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                log.warning("a file shrank while it was sent: the answer was broken off")
                raise CutShort("the file shrank while it was sent")
            left -= len(data)
            yield data


async def closing(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """A streamed answer's chunks, each made in a thread; the generator is closed when the answer
    ends, also when the client went away, so its files close at once (left to the garbage
    collector, an aborted download's file stayed open until the next collection)."""
    import anyio

    end = object()
    try:
        while (chunk := await anyio.to_thread.run_sync(next, chunks, end)) is not end:  # waits for a next() under way: then closing is safe
            yield chunk  # type: ignore[misc]
    finally:
        chunks.close()
