"""``faice watch``: experiment and batch state changes as they happen, read from the local state
file or from a ``faice serve`` (``GET /events``); ``faice submit --wait`` follows its experiment
with the same reader.

Both sources give the same events (faice.events): the local one reads the history the store
gains, a poll every tenth of a second, as the server's publisher does; the remote one reads the
server's stream and, when it breaks off (the server dropped a slow reader, restarted, or the
network failed), connects again with the last id it saw, so nothing is missed.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from faice.errors import EnvironmentUnusable, FaiceError, InvalidInput
from faice.events import BATCH, EXPERIMENT, OVERFLOW, Decoder, Event, experiment_event, page_events
from faice.state.events import EventFilter
from faice.state.states import FINAL_STATES, BatchState

#: seconds between two looks at the local state file
POLL = 0.1
PAGE = 1000
#: connection attempts in a row that may fail before the remote reader gives up, and the pause between them
RECONNECTS = 10
RECONNECT_PAUSE = 1.0


class NoEventStream(FaiceError):
    """The agency has no ``GET /events`` (CC-Agency itself, or a faice serve before it had one)."""


def local_events(store: Any, wanted: EventFilter, *, poll: float = POLL, after: int | None = None) -> Iterator[Event]:
    """The events of the state file from now on (or after the id ``after``), endless; with an
    experiment wanted, where it stands comes first."""
    cursor = store.last_event_id() if after is None else after
    if wanted.experiment_id is not None:
        yield from (experiment_event(counts) for counts in store.experiment_counts([wanted.experiment_id]))
    while True:
        page = store.events_page(cursor, PAGE, wanted)
        yield from page_events(page)
        if page.rows:
            cursor = page.rows[-1].id
        if len(page.rows) < PAGE:
            time.sleep(poll)


def remote_events(client: Any, params: dict[str, str], *, pause: float = RECONNECT_PAUSE) -> Iterator[Event]:
    """The events of ``GET /events`` with ``params``, endless: reconnects with ``Last-Event-ID``
    after a break; raises NoEventStream when the server has none, EnvironmentUnusable when it
    cannot be reached RECONNECTS times in a row."""
    import requests

    decoder = Decoder()
    failures = 0
    while True:
        try:
            response = client.stream("/events", params, decoder.last_id)
        except EnvironmentUnusable:
            failures += 1
            if failures >= RECONNECTS:
                raise
            time.sleep(pause)
            continue
        failures = 0
        decoder.reset()  # a new connection: nothing half-read carries over
        try:
            for chunk in response.iter_content(chunk_size=None):
                for event in decoder.feed(chunk.decode("utf-8", errors="replace")):
                    if event.kind == OVERFLOW:
                        break
                    yield event
        except (OSError, requests.RequestException):
            pass  # broken off (requests' ChunkedEncodingError and kin): connect again below
        finally:
            response.close()
        time.sleep(min(pause, 0.2))


def experiment_outcome(batches: dict[str, int]) -> str:
    """failed if a batch failed, else cancelled if one was, else succeeded (as faice submit says)."""
    if batches.get(BatchState.FAILED):
        return BatchState.FAILED
    return BatchState.CANCELLED if batches.get(BatchState.CANCELLED) else BatchState.SUCCEEDED


def ended(event: Event, wanted: EventFilter) -> str | None:
    """The outcome when ``event`` says the watched experiment or batch ended, else None."""
    if wanted.batch_id is not None:
        final = event.kind == BATCH and event.batch_id == wanted.batch_id and event.data.get("state") in FINAL_STATES
        return str(event.data["state"]) if final else None
    if wanted.experiment_id is not None and event.kind == EXPERIMENT and event.experiment_id == wanted.experiment_id and event.data.get("finished"):
        return experiment_outcome(event.data.get("batches") or {})
    return None


def describe(event: Event) -> str:
    """One line for a person: when, what, and where it stands."""
    data = event.data
    if event.kind == BATCH:
        when = time.strftime("%H:%M:%S", time.localtime(float(data.get("time") or time.time())))
        return f"{when}  batch {data.get('index')} {data.get('batchId')} of {data.get('experimentId')}: {data.get('state')}"
    batches = data.get("batches") or {}
    total = sum(batches.values())
    parts = ", ".join(f"{n} {state}" for state, n in batches.items() if n)
    tail = " — finished" if data.get("finished") else ""
    return f"{time.strftime('%H:%M:%S')}  experiment {data.get('experimentId')}: {total} batch{'es' if total != 1 else ''} ({parts or 'none'}){tail}"


def as_json(event: Event) -> str:
    return json.dumps({"event": event.kind, **({"id": event.id} if event.id is not None else {}), **event.data})


def watch(events: Iterator[Event], wanted: EventFilter, out: IO[str] = sys.stdout, *, json_lines: bool = False,
          on_event: Callable[[Event], None] | None = None) -> str | None:
    """Print each event until the watched experiment or batch ends (its outcome), or for ever
    when neither is watched (Ctrl-C ends it)."""
    last_experiment: dict[str, Any] = {}
    for event in events:
        if on_event is not None:
            on_event(event)
        if event.kind == EXPERIMENT:  # a page repeats an experiment's counts that did not change: shown once
            shown = (event.data.get("batches"), event.data.get("finished"))
            if last_experiment.get(event.experiment_id or "") == shown:
                outcome = ended(event, wanted)
                if outcome is not None:
                    return outcome
                continue
            last_experiment[event.experiment_id or ""] = shown
        out.write((as_json(event) if json_lines else describe(event)) + "\n")
        out.flush()
        outcome = ended(event, wanted)
        if outcome is not None:
            return outcome
    return None


def watch_local(store: Any, target: str | None, out: IO[str] = sys.stdout, *, json_lines: bool = False) -> str | None:
    """``faice watch [ID]`` on the state file: the outcome of the experiment or batch watched."""
    wanted = EventFilter()
    if target is not None:
        kind, object_id = store.resolve_id(target)
        if kind == "batch":
            row = store.batch(object_id)
            if row.state in FINAL_STATES:
                return _already(out, object_id, row.state, json_lines)
            wanted = EventFilter(batch_id=object_id, experiment_id=row.experiment_id)
        else:
            wanted = EventFilter(experiment_id=object_id)
    return watch(local_events(store, wanted), wanted, out, json_lines=json_lines)


def watch_remote(client: Any, target: str | None, out: IO[str] = sys.stdout, *, json_lines: bool = False) -> str | None:
    """``faice watch --url URL [ID]``: the same, from a faice serve's ``GET /events``."""
    params: dict[str, str] = {}
    wanted = EventFilter()
    if target is not None:
        object_id = target.strip().lower()
        if len(object_id) != 24 or any(c not in "0123456789abcdef" for c in object_id):
            raise InvalidInput(f'"{target}" is not an experiment or batch id (24 hex digits: with --url, give the whole id)')
        kind, document = client.kind_of(object_id)
        if kind == "batch":
            if document.get("state") in FINAL_STATES:
                return _already(out, object_id, str(document["state"]), json_lines)
            params, wanted = {"batchId": object_id}, EventFilter(batch_id=object_id)
        else:
            params, wanted = {"experimentId": object_id}, EventFilter(experiment_id=object_id)
    with contextlib.closing(remote_events(client, params)) as events:
        return watch(events, wanted, out, json_lines=json_lines)


def _already(out: IO[str], batch_id: str, state: str, json_lines: bool) -> str:
    """A watched batch that had ended before the watch began: said, and its outcome."""
    out.write((json.dumps({"event": BATCH, "batchId": batch_id, "state": state}) if json_lines else f"batch {batch_id} has ended: {state}") + "\n")
    return state
