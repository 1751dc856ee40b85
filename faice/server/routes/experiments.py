"""``POST /red`` and ``/experiments``: register, count, list, read and cancel experiments."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from faice.server import actions, documents
from faice.server.dependencies import Page, caller, get_settings, get_store, get_worker, off_loop, own_experiment, owner, paging, str_to_bool
from faice.server.errors import TooLarge
from faice.server.settings import Settings
from faice.server.submission import ValueCounter, accept
from faice.server.worker import Worker
from faice.state.listing import Filters
from faice.state.store import Store
from faice.state.users import User

router = APIRouter()
RED_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "description": (
    "A RED document (GET /schema/red); faice extension: a top-level \"notify\": [URL, ...] (up to 5) gets a signed POST per state"
    " change of the experiment (GET /webhooks/secret)")}}}}}


@router.post("/red", summary="Register a RED experiment; its batches run here", openapi_extra=RED_BODY)
async def post_red(
    request: Request,
    disableRetry: str | None = Query(None, description="true/1: a failed batch is not tried again (default: one retry)"),
    disableConnectorValidation: str | None = Query(None, description="true/1: skip the connectors' own *-validate checks"),
    user: User = Depends(caller), store: Store = Depends(get_store), worker: Worker = Depends(get_worker), settings: Settings = Depends(get_settings),
) -> dict[str, str]:
    too_big = TooLarge(f"the RED data is larger than {settings.max_body_bytes} bytes")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise too_big
    body = bytearray()
    values = ValueCounter()
    async for chunk in request.stream():  # counted as it arrives: a chunked body has no length
        body += chunk
        if len(body) > settings.max_body_bytes:
            raise too_big
        values.add(chunk)  # millions of values are refused before they are all read, let alone parsed
    submission = await run_in_threadpool(accept, body, admin=user.is_admin, disable_retry=str_to_bool(disableRetry),
                                         disable_connector_validation=str_to_bool(disableConnectorValidation), max_batches=settings.max_batches)
    experiment_id = await run_in_threadpool(actions.register, store, worker, submission, user, request.app.state.webhooks)
    return {"experimentId": experiment_id}


@router.get("/experiments/count", summary="Count experiments (non-admins: their own)")
async def experiments_count(username: str | None = Query(None), user: User = Depends(caller), store: Store = Depends(get_store)) -> dict[str, int]:
    return {"count": store.count("experiments", Filters(owner=owner(user), username=username))}


@router.get("/experiments", summary="List experiments, newest first (non-admins: their own)")
async def experiments_list(
    user: User = Depends(caller), page: Page = Depends(paging), username: str | None = Query(None), store: Store = Depends(get_store),
) -> Response:
    filters = Filters(owner=owner(user), username=username)

    def answer() -> JSONResponse:
        rows = store.rows("experiments", filters, skip=page.skip, limit=page.limit, ascending=page.ascending)
        # a bare JSON array like CC-Agency's, and the number of all matches in X-Total-Count
        return JSONResponse([documents.list_experiment(r) for r in rows], headers={"X-Total-Count": str(store.count("experiments", filters))})

    return await off_loop(page, answer)


@router.get("/experiments/{experiment_id}", summary="The full experiment (credentials never included)")
async def experiment_get(record: dict[str, Any] = Depends(own_experiment), store: Store = Depends(get_store)) -> dict[str, Any]:
    counts = store.experiment_counts([record["id"]])
    return documents.experiment(record, json.loads(record.get("settings") or "{}"), counts[0].batches if counts else None)


@router.delete("/experiments/{experiment_id}", summary="faice extension: cancel every unfinished batch of an experiment")
async def experiment_cancel(user: User = Depends(caller), record: dict[str, Any] = Depends(own_experiment), store: Store = Depends(get_store),
                            worker: Worker = Depends(get_worker)) -> dict[str, Any]:
    cancelled = await run_in_threadpool(actions.cancel, store, worker, record["id"], user)
    return {"experimentId": record["id"], "cancelled": cancelled}
