"""What routes share, as FastAPI dependencies: the store, worker and settings that ``create_app``
keeps on ``app.state``, the calling user, paging, and the caller's own experiments and batches.

Tests override them with ``app.dependency_overrides``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from faice.server.auth import Authenticator, Unauthorized, parse_header
from faice.server.errors import BadParameter, NotFound, Refused
from faice.state.store import BatchRow, Store
from faice.state.users import DEVICE_COOKIE, DEVICE_SECONDS, User

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
MAX_INTEGER = 2**63 - 1  # SQLite's integers
SMALL_PAGE = 1000
NOT_AN_ID = "Not a valid BSON ObjectId."

# --- what create_app keeps ----------------------------------------------------------------------


def _kept(name: str) -> Callable[[Request], Awaitable[Any]]:
    async def kept(request: Request) -> Any:
        return getattr(request.app.state, name)

    kept.__name__ = f"get_{name}"
    return kept


get_store = _kept("store")
get_worker = _kept("worker")
get_settings = _kept("settings")
get_users = _kept("users")
get_auth = _kept("auth")
get_node = _kept("node")


# --- parameters ----------------------------------------------------------------------------------


def str_to_bool(value: str | None) -> bool:
    """CC-Agency's flag parsing: true, yes, y (any case) or a non-zero integer."""
    if value is None:
        return False
    if value.strip().lower() in ("true", "yes", "y"):
        return True
    try:
        return int(value) != 0
    except ValueError:
        return False


def object_id(value: str, message: str = NOT_AN_ID) -> str:
    if not OBJECT_ID.match(value):
        raise BadParameter(message)
    return value.lower()


def integer(name: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(f"{name} must be an integer.") from None
    if number < minimum:
        raise BadParameter(f"{name} cannot be lower than {minimum}.")
    if number > MAX_INTEGER:
        raise BadParameter(f"{name} cannot be greater than {MAX_INTEGER}.")
    return number


@dataclass(frozen=True)
class Page:
    """The paging parameters of a list route, checked as CC-Agency documents them."""

    skip: int
    limit: int | None
    ascending: bool

    @classmethod
    def parse(cls, skip: str | None, limit: str | None, ascending: str | None) -> Page:
        return cls(integer("skip", skip, 0) or 0, integer("limit", limit, 1), str_to_bool(ascending))


async def paging(
    skip: str | None = Query(None, description="integer >= 0"),
    limit: str | None = Query(None, description="integer >= 1 (default: all)"),
    ascending: str | None = Query(None, description="true: oldest first"),
) -> Page:
    return Page.parse(skip, limit, ascending)


async def off_loop(page: Page, answer: Callable[[], Response]) -> Response:
    """A page of up to 1,000 is answered at once; a longer list (CC-Agency has no default
    limit) is built in a thread, so that it does not hold up every other request."""
    return answer() if page.limit is not None and page.limit <= SMALL_PAGE else await run_in_threadpool(answer)


# --- who calls -----------------------------------------------------------------------------------


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def remember_device(request: Request, response: Response, user: User, auth: Authenticator) -> None:
    """A client that just proved the password gets a device cookie: failed guesses from
    elsewhere never lock it out (OWASP's device cookies). Called only after a password check
    (not a token, not a password remembered from earlier), so a token cannot mint cookies."""
    if auth.known_device(user.name, request.cookies.get(DEVICE_COOKIE)):
        return
    try:
        token, _expires = auth.users.issue_token(user.name, DEVICE_SECONDS, "device")
    except (sqlite3.OperationalError, OSError):
        return  # no room to remember the device (a full disk): the request itself goes on
    response.set_cookie(DEVICE_COOKIE, token, max_age=int(DEVICE_SECONDS), httponly=True, samesite="strict", secure=request.url.scheme == "https")


async def caller(request: Request, response: Response, auth: Authenticator = Depends(get_auth)) -> User:
    """The authenticated user; a password hash runs in a thread (scrypt is slow on purpose)."""
    header, client, device = request.headers.get("authorization"), client_of(request), request.cookies.get(DEVICE_COOKIE)
    user = auth.authenticate(header, client, device, slow=False)  # tokens and remembered passwords: no thread hop
    if user is None:
        user = await run_in_threadpool(auth.authenticate, header, client, device)
        assert user is not None
        remember_device(request, response, user, auth)  # the password was checked just now
    return user


async def password_caller(request: Request, response: Response, auth: Authenticator = Depends(get_auth)) -> User:
    """Basic credentials with the real password (``/token`` and ``/login`` never take a token)."""
    credentials = parse_header(request.headers.get("authorization"))
    if credentials is None or credentials.scheme != "basic":
        raise Unauthorized("send HTTP Basic credentials (user name and password)")
    client = auth.client(credentials.name, client_of(request), request.cookies.get(DEVICE_COOKIE))
    user = await run_in_threadpool(auth.basic, credentials.name, credentials.secret, client, tokens=False)
    assert user is not None
    remember_device(request, response, user, auth)
    return user


async def require_admin(user: User = Depends(caller)) -> User:
    """The caller, who must be an admin (403 for anyone else)."""
    if not user.is_admin:
        raise Refused("Only admins may see this.")
    return user


def owner(user: User) -> str | None:
    """Whose rows the caller may see: None for an admin (everyone's)."""
    return None if user.is_admin else user.name


# --- the caller's own objects --------------------------------------------------------------------


def _own_batch(store: Store, batch_id: str, user: User, message: str, missing: str) -> BatchRow:
    row = store.batch(object_id(batch_id, message))
    if row is None or (not user.is_admin and row.username != user.name):
        raise NotFound(missing)
    return row


async def own_batch(batch_id: str, user: User = Depends(caller), store: Store = Depends(get_store)) -> BatchRow:
    """The batch of the path, if it is the caller's (or the caller is an admin)."""
    return _own_batch(store, batch_id, user, NOT_AN_ID, "Could not find Object.")


async def own_batch_stream(batch_id: str, user: User = Depends(caller), store: Store = Depends(get_store)) -> BatchRow:
    """:func:`own_batch` in the words of CC-Agency's stdout/stderr route."""
    return _own_batch(store, batch_id, user, "Not a valid batch ID.", f'Could not find batch with id "{batch_id}".')


async def own_experiment(experiment_id: str, user: User = Depends(caller), store: Store = Depends(get_store)) -> dict[str, Any]:
    """The experiment of the path, if it is the caller's (or the caller is an admin)."""
    record = store.experiment(object_id(experiment_id))
    if record is None or (not user.is_admin and record["username"] != user.name):
        raise NotFound()
    return record
