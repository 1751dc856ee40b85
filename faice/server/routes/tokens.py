"""Tokens: CC-Agency 8.x's ``GET /token`` (a temporary password) and 9.x's ``/login`` and ``/refreshtoken``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from faice.server.auth import Authenticator, Unauthorized, parse_header
from faice.server.dependencies import get_auth, get_settings, get_users, password_caller
from faice.server.settings import Settings
from faice.state.users import User, Users

router = APIRouter()


@router.get("/token", summary="CC-Agency 8.x: a temporary password (use it instead of the password in Basic auth)")
async def token(user: User = Depends(password_caller), users: Users = Depends(get_users), settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    value, _expires = await run_in_threadpool(users.issue_token, user.name, settings.password_token_seconds, "password")
    return {"token": value, "validForSeconds": int(settings.password_token_seconds)}


@router.post("/login", summary="An access token (Bearer) and a refresh token, for Basic credentials")
async def login(user: User = Depends(password_caller), users: Users = Depends(get_users), settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    access, _ = await run_in_threadpool(users.issue_token, user.name, settings.access_seconds, "access")
    refresh, _ = await run_in_threadpool(users.issue_token, user.name, settings.refresh_seconds, "refresh")
    return {"access_token": access, "refresh_token": refresh, "username": user.name}


@router.post("/refreshtoken", summary="A new access token, for `Authorization: Bearer <refresh_token>`")
async def refresh_token(request: Request, auth: Authenticator = Depends(get_auth), users: Users = Depends(get_users),
                        settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    credentials = parse_header(request.headers.get("authorization"))
    if credentials is None or credentials.scheme != "bearer":
        raise Unauthorized("Missing Authorization Header: send the refresh token as a Bearer token")
    user = auth.bearer(credentials.secret, "refresh")
    access, _ = await run_in_threadpool(users.issue_token, user.name, settings.access_seconds, "access")
    return {"access_token": access}
