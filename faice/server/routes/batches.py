"""``/batches``: count, list, read and cancel batches, and what their process wrote."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from faice.server import actions, documents
from faice.server.dependencies import Page, caller, get_store, get_worker, object_id, off_loop, own_batch, own_batch_stream, owner, paging
from faice.server.errors import BadParameter, NotFound
from faice.server.streaming import closing, send
from faice.server.worker import Worker
from faice.state.listing import Filters
from faice.state.livelog import POLL as FOLLOW_POLL
from faice.state.livelog import LogFollower, attempt_marker
from faice.state.states import FINAL_STATES
from faice.state.store import STATES, BatchRow, Store, log_path
from faice.state.users import User

router = APIRouter()


async def batch_filters(
    user: User = Depends(caller), username: str | None = Query(None), node: str | None = Query(None),
    state: str | None = Query(None, description=", ".join(STATES)), experimentId: str | None = Query(None),
) -> Filters:
    """The list filters, checked as CC-Agency checks them; a non-admin sees only their own."""
    if state is not None and state not in STATES:
        raise BadParameter(f"Given state is not valid. Must be one of {[str(s) for s in STATES]}.")
    experiment_id = None if experimentId is None else object_id(experimentId, "Experiment is not a valid BSON ObjectId.")
    return Filters(owner=owner(user), username=username, node=node, state=state, experiment_id=experiment_id)


def batch_document(store: Store, row: BatchRow) -> dict[str, Any]:
    record = store.experiment(row.experiment_id) or {"red": {}}
    return documents.batch(row, store.history(row.id), record["red"])


@router.get("/batches/count", summary="Count batches (non-admins: their own)")
async def batches_count(filters: Filters = Depends(batch_filters), store: Store = Depends(get_store)) -> dict[str, int]:
    return {"count": store.count("batches", filters)}


@router.get("/batches", summary="List batches, newest first (non-admins: their own)", response_class=Response)
async def batches_list(filters: Filters = Depends(batch_filters), page: Page = Depends(paging), store: Store = Depends(get_store)) -> Response:
    def answer() -> Response:
        rows = store.rows("batches", filters, skip=page.skip, limit=page.limit, ascending=page.ascending)
        total = store.count("batches", filters)
        return Response(documents.list_batches_json(rows), media_type="application/json", headers={"X-Total-Count": str(total)})

    return await off_loop(page, answer)


@router.get("/batches/{batch_id}", summary="The full batch with its history")
async def batch_get(row: BatchRow = Depends(own_batch), store: Store = Depends(get_store)) -> dict[str, Any]:
    return batch_document(store, row)


@router.delete("/batches/{batch_id}", summary="Cancel a batch (its container is killed at once); answers the batch")
async def batch_cancel(user: User = Depends(caller), row: BatchRow = Depends(own_batch), store: Store = Depends(get_store),
                       worker: Worker = Depends(get_worker)) -> JSONResponse:
    changed = await run_in_threadpool(actions.cancel, store, worker, row.id, user) == 1
    current = store.batch(row.id)
    assert current is not None
    return JSONResponse(batch_document(store, current), headers={"X-Faice-Cancelled": "true" if changed else "false"})


FOLLOW_DOC = ("A faice extension: while the batch has not ended, answer chunked with its output as it is written, from every attempt "
              "(an attempt after the first begins with the line '--- attempt N ---'), until the batch ends.")


@router.get("/batches/{batch_id}/{filename}", summary="What the batch's process wrote to stdout or stderr (text/plain)", response_class=Response)
async def batch_stream(request: Request, filename: str, row: BatchRow = Depends(own_batch_stream), store: Store = Depends(get_store),
                       follow: bool = Query(False, description=FOLLOW_DOC)) -> Response:
    if filename not in ("stdout", "stderr"):
        raise BadParameter(f'Could not transfer "{filename}". Use "stdout" or "stderr" as filename.')
    if follow and row.state not in FINAL_STATES:
        return StreamingResponse(followed(request, LogFollower(store, row.id, filename)), media_type="text/plain; charset=utf-8")
    try:
        handle = open(log_path(store.path, row.id, filename), "rb")  # noqa: SIM115 - closed by send()
    except OSError:
        raise NotFound(f'Could not find "{filename}" of batch "{row.id}"') from None
    size = os.fstat(handle.fileno()).st_size  # exactly the bytes there were when the answer began (a retry may rewrite the file)

    return StreamingResponse(closing(send(handle, 0, size)), media_type="text/plain; charset=utf-8", headers={"Content-Length": str(size)})


def _stopping(request: Request) -> bool:
    """Whether faice serve is stopping: a followed log then ends, complete, instead of being cut off
    when the server's grace period is over."""
    stopping = getattr(request.app.state, "stopping", None)
    return bool(stopping and stopping())


async def followed(request: Request, follower: LogFollower) -> AsyncIterator[bytes]:
    """A followed batch's output as it comes (``?follow=true``): the files are polled in a thread,
    the waits are the event loop's; it ends with the batch or when the client went away."""
    last = b"\n"
    try:
        while True:
            for part in await anyio.to_thread.run_sync(follower.poll):
                if part.data is None and part.attempt <= 1:
                    continue
                data = part.data if part.data is not None else (b"" if last == b"\n" else b"\n") + attempt_marker(part.attempt)
                if data:
                    last = data[-1:]
                    yield data
            if follower.done or await request.is_disconnected() or _stopping(request):
                return
            if not follower.behind:
                await anyio.sleep(FOLLOW_POLL)
    finally:
        follower.close()

