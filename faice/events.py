"""Experiment and batch state changes as events: built from the store's history, written and read
as server-sent events (``GET /events``), shown by ``faice watch`` and ``faice submit --wait``.

A ``batch`` event is one history entry (its id the entry's); a batch's registration is left out,
its experiment's event says it. After the batch events of a page of history comes one
``experiment`` event per experiment they touched and left settled (no later change of it in the
file when the page was read), with its counts read in the same snapshot and the page's last id:
so ``finished`` comes after an experiment's last batch event, a client that resumes after an id
has missed nothing, and one that resumes before it gets the page again (events may repeat, never
go missing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from faice.state.events import EventPage, EventRow, ExperimentCounts
from faice.state.states import FINAL_STATES, BatchState

BATCH = "batch"
EXPERIMENT = "experiment"
#: sent before the server drops a client that fell too far behind: reconnect with Last-Event-ID
OVERFLOW = "overflow"


@dataclass(frozen=True)
class Event:
    """One server-sent event: its kind (the SSE ``event:``), JSON data, and id (None: none sent)."""

    kind: str
    data: dict[str, Any]
    id: int | None = None

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()

    @property
    def experiment_id(self) -> str | None:
        return self.data.get("experimentId")

    @property
    def batch_id(self) -> str | None:
        return self.data.get("batchId")


def finished(batches: dict[str, int]) -> bool:
    """Whether every batch of an experiment has ended (one with no batches has not)."""
    return sum(batches.values()) > 0 and all(n == 0 for state, n in batches.items() if state not in FINAL_STATES)


def batch_event(row: EventRow) -> Event:
    return Event(BATCH, {"batchId": row.batch_id, "experimentId": row.experiment_id, "index": row.index, "state": row.state,
                         "time": row.time, "node": row.node, "username": row.username}, row.id)


def experiment_event(counts: ExperimentCounts, event_id: int | None = None) -> Event:
    return Event(EXPERIMENT, {"experimentId": counts.experiment_id, "username": counts.username, "batches": counts.batches,
                              "finished": finished(counts.batches)}, event_id)


def page_events(page: EventPage) -> list[Event]:
    """The events of one page of history (oldest first), in the order they are sent: its batch
    events, then an experiment event for each experiment the page leaves settled, with the page's
    last id (faice.state.events.EventTables.events_page)."""
    if not page.rows:
        return []
    events = [batch_event(row) for row in page.rows if row.state != BatchState.REGISTERED]
    return events + [experiment_event(counts, page.rows[-1].id) for counts in page.counts]


#: seconds after which a reader of new history queries the file even though its marker looks unchanged
#: (file times are coarse: two commits within one tick may leave size and time as they were)
QUERY_EVERY = 1.0


class Changes:
    """When a reader of the store's history should query it again: the file's write marker
    (``write_marker``: two stat calls) changed, QUERY_EVERY passed, or it asked for ``again``
    (its last page was full). The event stream's publisher and the webhooks' dispatcher share it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._marker: tuple[int, ...] | None = None
        self._queried = 0.0

    def due(self) -> bool:
        seen, now = self.store.write_marker(), time.monotonic()
        if seen == self._marker and now - self._queried < QUERY_EVERY:
            return False
        self._marker, self._queried = seen, now
        return True

    def again(self) -> None:
        """The next ``due`` says yes: there is more to read at once."""
        self._marker = None


class Decoder:
    """Server-sent events from a stream's text, fed as it arrives (the SSE format: fields, blank line
    ends an event, ``:`` starts a comment); events of unknown kinds and undecodable data are skipped."""

    def __init__(self) -> None:
        self._buffer = ""
        self._fields: dict[str, str] = {}
        self.last_id: int | None = None

    def reset(self) -> None:
        """Forget a half-read event (a new connection begins), keeping the last id."""
        self._buffer = ""
        self._fields = {}

    def feed(self, text: str) -> Iterator[Event]:
        self._buffer += text
        *lines, self._buffer = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for line in lines:
            if not line:
                yield from self._dispatch()
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._fields["data"] = self._fields["data"] + "\n" + value if "data" in self._fields else value
            elif name in ("event", "id"):
                self._fields[name] = value

    def _dispatch(self) -> Iterator[Event]:
        fields, self._fields = self._fields, {}
        event_id = None
        if fields.get("id", "").isdigit():
            event_id = self.last_id = int(fields["id"])
        kind = fields.get("event", "message")
        if kind == OVERFLOW:
            yield Event(OVERFLOW, {}, event_id)
            return
        try:
            data = json.loads(fields.get("data", ""))
        except ValueError:
            return
        if isinstance(data, dict) and kind in (BATCH, EXPERIMENT):
            yield Event(kind, data, event_id)
