"""``/events``: experiment and batch state changes as server-sent events (a faice extension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from faice.server.dependencies import MAX_INTEGER, caller, get_store, object_id, owner, require_admin
from faice.server.errors import BadParameter, NotFound
from faice.server.events import HEARTBEAT, EventStream, Hub
from faice.state.events import EventFilter
from faice.state.store import Store
from faice.state.users import User

router = APIRouter()

EVENTS_DOC = """A `text/event-stream` of state changes, as they happen: `event: batch` (batchId, experimentId,
index, state, time, node, username) for every batch state change after its registration, then
`event: experiment` (experimentId, username, batches: a count per state, finished) for each
experiment those changed. Every batch event has an `id:`; send the last one you received back as
`Last-Event-ID` to resume without missing one (events may repeat). With `experimentId` or `batchId`
the stream starts with where that experiment stands. Comments (`: keep-alive`) are heartbeats. A
client that falls `--event-buffer` events behind gets `event: overflow` and is dropped: reconnect
with `Last-Event-ID`. Non-admins see only their own experiments."""


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _heartbeat(value: str | None) -> float:
    if value is None:
        return HEARTBEAT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 300:
        raise BadParameter("heartbeat must be a number of seconds from 1 to 300.")
    return seconds


@router.get("/events", summary="faice extension: experiment and batch state changes (server-sent events)", description=EVENTS_DOC,
            response_class=Response, responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "No such experiment or batch of the caller's"}})
async def events(
    request: Request, user: User = Depends(caller), store: Store = Depends(get_store),
    experimentId: str | None = Query(None, description="only this experiment's events"),
    batchId: str | None = Query(None, description="only this batch's events (and its experiment's)"),
    heartbeat: str | None = Query(None, description=f"seconds between heartbeats while nothing happens (1 to 300, default {HEARTBEAT:g})"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", description="the id of the last event received: resume after it"),
) -> Any:
    wanted = await run_in_threadpool(_wanted, store, user, experimentId, batchId)
    seconds = _heartbeat(heartbeat)
    resume_after = None
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isdigit() or int(text) > MAX_INTEGER:
            raise BadParameter("Last-Event-ID must be the id of an event (an integer).")
        newest = await run_in_threadpool(store.last_event_id)
        resume_after = int(text) if int(text) <= newest else None  # an id this file never gave (another state file): from now on
    hub = _hub(request)
    stopping = getattr(request.app.state, "stopping", None) or (lambda: False)
    holds = request.app.state.auth.lasting(request.headers.get("authorization"), user)
    return EventStream(hub, wanted, resume_after=resume_after, heartbeat=seconds, stopping=stopping, holds=holds)


def _wanted(store: Store, user: User, experiment_id: str | None, batch_id: str | None) -> EventFilter:
    """The stream's filter: the caller's own (for a non-admin), and the experiment or batch asked
    for, which must be one the caller may see."""
    wanted = EventFilter(owner=owner(user))
    if batch_id is not None:
        row = store.batch(object_id(batch_id, "Not a valid batch ID."))
        if row is None or (wanted.owner is not None and row.username != wanted.owner) or (experiment_id and row.experiment_id != experiment_id.lower()):
            raise NotFound(f'Could not find batch with id "{batch_id}".')
        return wanted._replace(batch_id=row.id, experiment_id=row.experiment_id)
    if experiment_id is not None:
        record = store.experiment(object_id(experiment_id, "Experiment is not a valid BSON ObjectId."), red=False)
        if record is None or (wanted.owner is not None and record["username"] != wanted.owner):
            raise NotFound(f'Could not find experiment with id "{experiment_id}".')
        return wanted._replace(experiment_id=record["id"])
    return wanted


@router.get("/events/clients", summary="faice extension (admins): how many event streams are open, and how many were dropped")
async def clients(request: Request, user: User = Depends(require_admin)) -> dict[str, int]:
    hub = _hub(request)
    return {"clients": len(hub.subscribers), "dropped": hub.dropped}
