"""``GET /events``: one publisher reads the history the store gains (from this server's worker or
any other process on the state file) and hands each event to the streams that want it.

Each stream has a bounded buffer: a client too slow to take what it is given is dropped, with a
last ``overflow`` event if it still takes one, and resumes with ``Last-Event-ID``; the publisher
never waits for a client. A resumed stream first reads what it missed from the store, at its own
pace, then takes the publisher's events from the id it had when it subscribed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
from starlette.responses import Response

from faice.events import BATCH, OVERFLOW, QUERY_EVERY, Changes, Event, experiment_event, page_events
from faice.state.events import EventFilter
from faice.state.store import Store

log = logging.getLogger(__name__)

#: how often the publisher looks whether the state file changed (seconds): well under the 100 ms an
#: event may take; it reads the history when it did, and once a second in any case
POLL = 0.025
#: history rows read at a time
PAGE = 1000
#: events handed to the streams between two chances for them to send
HANDFUL = 100
#: events a client may be behind before it is dropped
BUFFER = 1000
#: idle seconds between heartbeats (an SSE comment), so that proxies and clients see the stream alive
HEARTBEAT = 15.0
#: seconds a dropped client is given to take its overflow event before its connection is closed
STALL = 2.0
#: how often an idle stream looks whether the server is stopping
TICK = 0.5
#: how often a stream asks whether its caller's credentials still hold
RECHECK = 5.0
RETRY = b"retry: 1000\n\n"


class Subscriber:
    """One stream's filter and buffer; fed by the publisher, drained by its stream."""

    def __init__(self, wanted: EventFilter, start: int, limit: int) -> None:
        self.wanted = wanted
        #: the last id the publisher had handed out when this stream subscribed
        self.start = start
        self.limit = limit
        #: encoded events with their ids, oldest first
        self.pending: deque[tuple[int | None, bytes]] = deque()
        self.wake = asyncio.Event()
        self.overflowed_at: float | None = None

    def accepts(self, event: Event) -> bool:
        wanted = self.wanted
        if wanted.owner is not None and event.data.get("username") != wanted.owner:
            return False
        if wanted.experiment_id is not None and event.experiment_id != wanted.experiment_id:
            return False
        return wanted.batch_id is None or event.kind != BATCH or event.batch_id == wanted.batch_id

    def offer(self, event_id: int | None, data: bytes) -> None:
        if self.overflowed_at is not None:
            return
        if len(self.pending) >= self.limit:
            self.overflowed_at = time.monotonic()
            self.pending.clear()
        else:
            self.pending.append((event_id, data))
        self.wake.set()


class Hub:
    """The publisher and its subscribers (on the event loop; the store is read in threads)."""

    def __init__(self, store: Store, buffer: int = BUFFER) -> None:
        self.store = store
        self.buffer = buffer
        self.subscribers: set[Subscriber] = set()
        self.cursor = store.last_event_id()
        self.dropped = 0
        #: set while anyone listens: without listeners the publisher looks only once a second
        self._listened = asyncio.Event()

    def subscribe(self, wanted: EventFilter) -> Subscriber:
        subscriber = Subscriber(wanted, self.cursor, self.buffer)
        self.subscribers.add(subscriber)
        self._listened.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self._listened.clear()
        if subscriber.overflowed_at is not None:
            self.dropped += 1

    async def run(self) -> None:
        """Publish until cancelled (the app's lifespan ends it)."""
        changes = Changes(self.store)
        while True:
            if not self._listened.is_set():
                with anyio.move_on_after(QUERY_EVERY):
                    await self._listened.wait()
            if not changes.due():
                await asyncio.sleep(POLL)
                continue
            try:
                page = await anyio.to_thread.run_sync(self.store.events_page, self.cursor, PAGE)
            except Exception:  # a locked or busy file: try again, the stream must not die with it
                log.exception("events: reading the state file failed")
                await asyncio.sleep(1)
                continue
            if page.rows:
                self.cursor = page.rows[-1].id
                await self.publish(page_events(page))
            if len(page.rows) == PAGE:
                changes.again()
            else:
                await asyncio.sleep(POLL)

    async def publish(self, events: list[Event]) -> None:
        """Hand the events out, letting the streams take each handful before the next: a burst (a
        cancelled experiment) overflows only a client that does not keep up."""
        for start in range(0, len(events), HANDFUL):
            for event in events[start:start + HANDFUL]:
                data = event.encode()
                for subscriber in self.subscribers:
                    if subscriber.accepts(event):
                        subscriber.offer(event.id, data)
            await asyncio.sleep(0)


class EventStream(Response):
    """The ``text/event-stream`` answer of one reader; its own ASGI call, so that a stalled or
    gone client can be dropped while a write to it waits.

    A resuming reader first catches up from the store, a page at a time at its own pace, and
    subscribes only then: a long way behind, it would overflow its buffer while catching up."""

    def __init__(self, hub: Hub, wanted: EventFilter, *, resume_after: int | None, heartbeat: float, stopping: Callable[[], bool],
                 holds: Callable[[], bool] = lambda: True) -> None:
        """``holds``: whether the caller's credentials still hold (asked every RECHECK seconds: a
        removed user, a new password or a revoked token ends the stream)."""
        super().__init__(media_type="text/event-stream; charset=utf-8", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.hub, self.wanted, self.subscriber = hub, wanted, None
        self.resume_after, self.heartbeat, self.stopping, self.holds = resume_after, heartbeat, stopping, holds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(name, value) for name, value in self.raw_headers if name != b"content-length"]  # a cookie the caller got is kept
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async with anyio.create_task_group() as group:
                group.start_soon(self._until_disconnected, receive, group.cancel_scope)
                group.start_soon(self._until_stalled, group.cancel_scope)
                await self._stream(send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except OSError:
            pass  # the client went away in the middle of a write
        finally:
            if self.subscriber is not None:
                self.hub.unsubscribe(self.subscriber)
                if self.subscriber.overflowed_at is not None:
                    log.warning("events: dropped a client that fell %d events behind", self.subscriber.limit)

    async def _stream(self, send: Any) -> None:
        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await write(RETRY)
        sent = -1
        if self.resume_after is not None:
            sent = await self._replay(write, self.resume_after, None)
        subscriber = self.subscriber = self.hub.subscribe(self.wanted)
        if self.resume_after is not None and sent < subscriber.start:  # what came between the catching up and the subscribing
            sent = await self._replay(write, sent, subscriber.start)
        await write(f"id: {max(sent, subscriber.start)}\n\n".encode())  # a client that breaks off before its first event resumes from here
        if self.wanted.experiment_id is not None:  # where the experiment stands now, before what changes next
            for counts in await anyio.to_thread.run_sync(self.hub.store.experiment_counts, [self.wanted.experiment_id]):
                await write(experiment_event(counts).encode())
        idle = checked = time.monotonic()
        while not self.stopping():
            if time.monotonic() - checked >= RECHECK:
                if not await anyio.to_thread.run_sync(self.holds):
                    return
                checked = time.monotonic()
            if subscriber.pending:
                chunk = b"".join(data for event_id, data in subscriber.pending if event_id is None or event_id > sent)  # not twice
                subscriber.pending.clear()
                if chunk:
                    await write(chunk)
                    idle = time.monotonic()
            if subscriber.overflowed_at is not None:
                await write(Event(OVERFLOW, {}).encode())
                return
            subscriber.wake.clear()
            if subscriber.pending:
                continue
            with anyio.move_on_after(TICK):
                await subscriber.wake.wait()
            if not subscriber.pending and time.monotonic() - idle >= self.heartbeat:
                await write(b": keep-alive\n\n")
                idle = time.monotonic()

    async def _replay(self, write: Callable[[bytes], Any], after: int, upto: int | None) -> int:
        """The events after ``after`` (up to ``upto``) read from the store, a page at a time; the
        last id sent."""
        while True:
            page = await anyio.to_thread.run_sync(self.hub.store.events_page, after, PAGE, self.wanted, upto)
            if not page.rows:
                return after
            await write(b"".join(event.encode() for event in page_events(page)))
            after = page.rows[-1].id
            if len(page.rows) < PAGE:
                return after

    async def _until_disconnected(self, receive: Any, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _until_stalled(self, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(TICK / 2)
            overflowed = self.subscriber.overflowed_at if self.subscriber is not None else None
            if overflowed is not None and time.monotonic() - overflowed > STALL:
                scope.cancel()
                return
