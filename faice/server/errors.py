"""Every error's HTTP answer, in one place: the status of each error class (:data:`STATUSES`) and
the body CC-Agency gives it. Routes and dependencies raise; nothing else translates.

A 400 about a parameter is CC-Agency's JSON string ``"400 Bad Request: ..."``; a refused document
(``POST /red``) lists every problem; every other error is ``{"msg", "status"}`` (CC-Agency answers
HTML there). A full disk (SQLite's or the file system's) is a 507: nothing was recorded.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faice.errors import FaiceError, InvalidInput
from faice.server.auth import REALM, Unauthorized
from faice.server.submission import Rejected
from faice.state.store import disk_full


class ApiError(FaiceError):
    """An answer other than 200 that only the HTTP layer gives; its class says the status."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(ApiError):
    """A path or query parameter CC-Agency refuses."""


class NotFound(ApiError):
    """No such object, or not the caller's (the two are not told apart)."""

    def __init__(self, message: str = "Could not find Object.") -> None:
        super().__init__(message)


class TooLarge(ApiError):
    """A request body beyond the server's limit."""


class NoRoom(ApiError):
    """The state file's disk is full."""


class Refused(ApiError):
    """Something the caller may see but the server will not serve (an output leading out of its
    experiment's outputs, a link a tool planted)."""


class Changed(ApiError):
    """An output is no longer what was recorded (another size, no longer a file)."""


class Gone(ApiError):
    """An output that was recorded is no longer there."""


class Unsatisfiable(ApiError):
    """A byte range beyond the end of the file; answered with ``Content-Range: bytes */SIZE``."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}


#: the status of each error class (and of its subclasses); an error not here is a 500
STATUSES: dict[type[Exception], int] = {
    BadParameter: 400,
    Rejected: 400,
    InvalidInput: 400,
    Unauthorized: 401,
    Refused: 403,
    NotFound: 404,
    Changed: 409,
    Gone: 410,
    TooLarge: 413,
    Unsatisfiable: 416,
    NoRoom: 507,
}


def status_of(exc: BaseException) -> int | None:
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return None


def body_of(exc: BaseException, status: int) -> Any:
    if isinstance(exc, BadParameter):
        return f"400 Bad Request: {exc.message}"
    message = str(exc)
    if isinstance(exc, InvalidInput):  # a refused document: the message and every located problem
        return {"message": message, "problems": [p.to_json() for p in getattr(exc, "problems", [])], "msg": message, "status": status}
    return {"msg": message, "status": status}


def no_room(exc: BaseException) -> NoRoom | None:
    if isinstance(exc, (sqlite3.OperationalError, OSError)) and disk_full(exc):
        return NoRoom(f"the server's disk is full ({exc}); nothing was recorded: try again when there is room")
    return None


def scripted(request: Request) -> bool:
    """A page's script (``X-Requested-With: XMLHttpRequest``, as /ui sends): its 401 comes without
    the Basic realm, which would make a browser open its own password dialog instead of answering
    the script (the convention of other frameworks too)."""
    return request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"


async def answer_error(request: Request, exc: Exception) -> JSONResponse:
    error = no_room(exc) or exc
    status = status_of(error)
    if status is None:
        raise exc  # a bug: the server's own 500
    headers = ({} if scripted(request) else {"WWW-Authenticate": REALM}) if isinstance(error, Unauthorized) else getattr(error, "headers", None)
    return JSONResponse(body_of(error, status), status_code=status, headers=headers)


async def answer_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (no such route, a method not allowed) in the same shape."""
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # every route of the path says what it allows, not only the first one matched
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request))}
    return JSONResponse({"msg": str(exc.detail), "status": exc.status_code}, status_code=exc.status_code, headers=headers)


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods some route of the request's path answers."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in _routes(app.routes):
        match, _scope = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _routes(routes: list[Any]) -> list[Any]:
    """Every route, those of included routers too (newer FastAPI keeps a router as one entry)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        found += _routes(included.routes) if included is not None else [route]
    return found


def install(app: FastAPI) -> None:
    """Answer every error through :data:`STATUSES`."""
    for cls in (FaiceError, sqlite3.OperationalError, OSError):
        app.add_exception_handler(cls, answer_error)
    app.add_exception_handler(StarletteHTTPException, answer_http)  # type: ignore[arg-type]
