"""``/webhooks/secret``: the key a user checks the signatures of their webhooks with (a faice extension)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from faice.server.dependencies import caller
from faice.server.errors import NotFound
from faice.server.webhooks import SIGNATURE_HEADER
from faice.state.users import User

router = APIRouter()


@router.get("/webhooks/secret", summary="faice extension: your webhook secret (the key of the X-Faice-Signature-256 HMAC)")
async def webhook_secret(request: Request, user: User = Depends(caller)) -> dict[str, str]:
    secret = await run_in_threadpool(request.app.state.webhooks.secret_of, user.name)
    if secret is None:
        raise NotFound()
    return {"secret": secret, "header": SIGNATURE_HEADER, "algorithm": "HMAC-SHA256 of the request body, hex, after sha256="}
