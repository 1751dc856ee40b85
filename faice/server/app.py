"""CC-Agency's REST API (9.3, plus 8.x ``GET /token``) over the state file, as a FastAPI app.

Paths, query parameters, status codes and JSON shapes are CC-Agency's (see README "faice
serve" for the documented differences). Errors other than a parameter's 400 are JSON objects
``{"msg", "status"}`` (CC-Agency answers HTML there); a 400 about a parameter is CC-Agency's
JSON string ``"400 Bad Request: ..."``; ``POST /red`` answers 400 with every problem.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from faice import __version__
from faice.errors import FaiceError
from faice.host import cpu_count, memory_mib
from faice.red.schema import load_schema
from faice.runner import lifecycle
from faice.server import documents
from faice.server.auth import REALM, Authenticator, Unauthorized, parse_header
from faice.server.nodes import Node
from faice.server.submission import Rejected, Submission, ValueCounter, accept
from faice.server.worker import Active, Worker
from faice.state import queries
from faice.state.store import STATES, Store, disk_full, log_path
from faice.state.users import DEVICE_COOKIE, DEVICE_SECONDS, User, Users

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
MAX_BODY_BYTES = 64 * 1024 * 1024  # a 100,000-batch RED file is about 5 MiB
SMALL_PAGE = 1000
MAX_INTEGER = 2**63 - 1  # SQLite's integers


@dataclass
class Settings:
    access_seconds: float = 900.0
    refresh_seconds: float = 12 * 3600.0
    password_token_seconds: float = 86400.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_batches: int = 100_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.headers = headers


def bad_request(message: str) -> ApiError:
    """CC-Agency's 400: the body is a JSON *string*."""
    return ApiError(400, message, body=f"400 Bad Request: {message}")


def not_found(message: str = "Could not find Object.") -> ApiError:
    return ApiError(404, message)


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


def object_id(value: str, message: str = "Not a valid BSON ObjectId.") -> str:
    if not OBJECT_ID.match(value):
        raise bad_request(message)
    return value.lower()


def integer(name: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer.") from None
    if number < minimum:
        raise bad_request(f"{name} cannot be lower than {minimum}.")
    if number > MAX_INTEGER:
        raise bad_request(f"{name} cannot be greater than {MAX_INTEGER}.")
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


def create_app(store: Store, worker: Worker, settings: Settings | None = None) -> FastAPI:
    """The app over ``store``, which the worker shares (each thread has its own connection).

    Whatever may wait for SQLite's write lock (registering, cancelling, tokens, long lists) runs
    in a thread, so that the event loop goes on answering while a big experiment is inserted.
    """
    settings = settings or Settings()
    users = Users(store)
    auth = Authenticator(users)
    node = Node(worker.node)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(worker.stop)  # before uvicorn returns: nothing is left running

    app = FastAPI(
        lifespan=lifespan,
        title="faice serve: the CC-Agency REST API on this machine",
        version=__version__,
        description="CC-Agency 9.3's routes, query parameters and JSON shapes (and 8.x GET /token), "
        "served from faice's state file; batches run in local Docker containers. "
        "Protected routes take HTTP Basic credentials or `Authorization: Bearer <access_token>` from POST /login.",
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        body = exc.body if exc.body is not None else {"msg": exc.message, "status": exc.status}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(sqlite3.OperationalError)
    @app.exception_handler(OSError)
    async def no_room(request: Request, exc: Exception) -> JSONResponse:
        if disk_full(exc):
            return JSONResponse({"msg": f"the server's disk is full ({exc}); nothing was recorded: try again when there is room", "status": 507}, status_code=507)
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every route of the path says what it allows, not only the first one matched
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        return JSONResponse({"msg": str(exc.detail), "status": exc.status_code}, status_code=exc.status_code, headers=headers)

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def unauthorized(exc: Unauthorized) -> ApiError:
        return ApiError(401, exc.message, headers={"WWW-Authenticate": REALM})

    def remember_device(request: Request, response: Response, user: User) -> None:
        """A client that just proved the password gets a device cookie: failed guesses from
        elsewhere never lock it out (OWASP's device cookies). Called only after a password check
        (not a token, not a password remembered from earlier), so a token cannot mint cookies."""
        if auth.known_device(user.name, request.cookies.get(DEVICE_COOKIE)):
            return
        try:
            token, _expires = users.issue_token(user.name, DEVICE_SECONDS, "device")
        except (sqlite3.OperationalError, OSError):
            return  # no room to remember the device (a full disk): the request itself goes on
        response.set_cookie(DEVICE_COOKIE, token, max_age=int(DEVICE_SECONDS), httponly=True, samesite="strict", secure=request.url.scheme == "https")

    async def caller(request: Request, response: Response) -> User:
        """The authenticated user; a password hash runs in a thread (scrypt is slow on purpose)."""
        header, client, device = request.headers.get("authorization"), client_of(request), request.cookies.get(DEVICE_COOKIE)
        try:
            user = auth.authenticate(header, client, device, slow=False)  # tokens and remembered passwords: no thread hop
            if user is None:
                user = await run_in_threadpool(auth.authenticate, header, client, device)
                assert user is not None
                remember_device(request, response, user)  # the password was checked just now
        except Unauthorized as exc:
            raise unauthorized(exc) from None
        return user

    async def password_caller(request: Request, response: Response) -> User:
        """Basic credentials with the real password (``/token`` and ``/login`` never take a token)."""
        try:
            credentials = parse_header(request.headers.get("authorization"))
            if credentials is None or credentials.scheme != "basic":
                raise Unauthorized("send HTTP Basic credentials (user name and password)")
            client = auth.client(credentials.name, client_of(request), request.cookies.get(DEVICE_COOKIE))
            user = await run_in_threadpool(auth.basic, credentials.name, credentials.secret, client, tokens=False)
        except Unauthorized as exc:
            raise unauthorized(exc) from None
        assert user is not None
        remember_device(request, response, user)
        return user

    def owner(user: User) -> str | None:
        return None if user.is_admin else user.name

    def own_batch(batch_id: str, user: User, message: str = "Not a valid BSON ObjectId.") -> Any:
        row = store.batch(object_id(batch_id, message))
        if row is None or (not user.is_admin and row.username != user.name):
            raise not_found(f'Could not find batch with id "{batch_id}".' if message == "Not a valid batch ID." else "Could not find Object.")
        return row

    def own_experiment(experiment_id: str, user: User) -> dict[str, Any]:
        record = store.experiment(object_id(experiment_id))
        if record is None or (not user.is_admin and record["username"] != user.name):
            raise not_found()
        return record

    def batch_document(row: Any) -> dict[str, Any]:
        record = store.experiment(row.experiment_id) or {"red": {}}
        return documents.batch(row, store.history(row.id), record["red"])

    def listing(total: int, body: list[dict[str, Any]]) -> JSONResponse:
        """A bare JSON array like CC-Agency's, and the number of all matches in X-Total-Count."""
        return JSONResponse(body, headers={"X-Total-Count": str(total)})

    async def off_loop(page: Page, answer: Callable[[], Response]) -> Response:
        """A page of up to 1,000 is answered at once; a longer list (CC-Agency has no default
        limit) is built in a thread, so that it does not hold up every other request."""
        return answer() if page.limit is not None and page.limit <= SMALL_PAGE else await run_in_threadpool(answer)

    # --- public -------------------------------------------------------------------------------

    @app.get("/", summary="Hello World (a health check; no authentication)")
    async def hello() -> dict[str, str]:
        return {"Hello": "World"}

    @app.get("/schema/red", summary="The RED 9 JSON Schema faice validates against")
    async def schema_red() -> dict[str, Any]:
        return load_schema("red")

    @app.get("/schema/engines/container", summary="The settings schema of each container engine")
    async def schema_container() -> dict[str, Any]:
        return {"docker": load_schema("red-engine-container-docker")}

    # --- tokens -------------------------------------------------------------------------------

    @app.get("/token", summary="CC-Agency 8.x: a temporary password (use it instead of the password in Basic auth)")
    async def token(user: User = Depends(password_caller)) -> dict[str, Any]:
        value, _expires = await run_in_threadpool(users.issue_token, user.name, settings.password_token_seconds, "password")
        return {"token": value, "validForSeconds": int(settings.password_token_seconds)}

    @app.post("/login", summary="An access token (Bearer) and a refresh token, for Basic credentials")
    async def login(user: User = Depends(password_caller)) -> dict[str, Any]:
        access, _ = await run_in_threadpool(users.issue_token, user.name, settings.access_seconds, "access")
        refresh, _ = await run_in_threadpool(users.issue_token, user.name, settings.refresh_seconds, "refresh")
        return {"access_token": access, "refresh_token": refresh, "username": user.name}

    @app.post("/refreshtoken", summary="A new access token, for `Authorization: Bearer <refresh_token>`")
    async def refresh_token(request: Request) -> dict[str, Any]:
        try:
            credentials = parse_header(request.headers.get("authorization"))
            if credentials is None or credentials.scheme != "bearer":
                raise Unauthorized("Missing Authorization Header: send the refresh token as a Bearer token")
            user = auth.bearer(credentials.secret, "refresh")
        except Unauthorized as exc:
            raise unauthorized(exc) from None
        access, _ = await run_in_threadpool(users.issue_token, user.name, settings.access_seconds, "access")
        return {"access_token": access}

    # --- protected ----------------------------------------------------------------------------

    @app.get("/version", summary="The CC-Agency API version served (and faice's own)")
    async def version(user: User = Depends(caller)) -> dict[str, str]:
        return {"agencyVersion": documents.AGENCY_API_VERSION, "coreVersion": documents.AGENCY_API_VERSION, "faiceVersion": __version__}

    @app.post(
        "/red",
        summary="Register a RED experiment; its batches run here",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "description": "A RED document (GET /schema/red)"}}}}},
    )
    async def post_red(
        request: Request,
        disableRetry: str | None = Query(None, description="true/1: a failed batch is not tried again (default: one retry)"),
        disableConnectorValidation: str | None = Query(None, description="true/1: skip the connectors' own *-validate checks"),
        user: User = Depends(caller),
    ) -> dict[str, str]:
        too_big = ApiError(413, f"the RED data is larger than {settings.max_body_bytes} bytes")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            raise too_big
        body = bytearray()
        values = ValueCounter()
        try:
            async for chunk in request.stream():  # counted as it arrives: a chunked body has no length
                body += chunk
                if len(body) > settings.max_body_bytes:
                    raise too_big
                values.add(chunk)  # millions of values are refused before they are all read, let alone parsed
            submission = await run_in_threadpool(accept, body, admin=user.is_admin, disable_retry=str_to_bool(disableRetry),
                                                 disable_connector_validation=str_to_bool(disableConnectorValidation), max_batches=settings.max_batches)
            experiment_id = await run_in_threadpool(register, submission, user)
        except Rejected as exc:
            raise ApiError(400, exc.message, body={**exc.to_json(), "msg": exc.message, "status": 400}) from None
        return {"experimentId": experiment_id}

    def register(submission: Submission, user: User) -> str:
        from faice.runner.execute import check_connectors

        try:
            check_connectors(submission.plans, submission.prepared, remote_validation=submission.connector_validation, mount=worker.mount,  # type: ignore[arg-type]
                             base_dir=Path.cwd())  # where the worker finds an admin's local inputs
        except FaiceError as exc:
            raise Rejected(str(exc)) from None
        experiment_id, _ids = lifecycle.register(store, submission.prepared, submission.plans, runner="serve", username=user.name, retries=submission.retries,
                                                 connector_validation=submission.connector_validation, container_engine=worker.options.engine, source="POST /red")
        worker.add(Active(experiment_id, submission.experiment, submission.masker, submission.retries, submission.connector_validation, user.name, admin=user.is_admin))
        return experiment_id

    @app.get("/experiments/count", summary="Count experiments (non-admins: their own)")
    async def experiments_count(username: str | None = Query(None), user: User = Depends(caller)) -> dict[str, int]:
        return {"count": queries.count(store, "experiments", queries.Filters(owner=owner(user), username=username))}

    @app.get("/experiments", summary="List experiments, newest first (non-admins: their own)")
    async def experiments_list(
        skip: str | None = Query(None, description="integer >= 0"),
        limit: str | None = Query(None, description="integer >= 1 (default: all)"),
        ascending: str | None = Query(None, description="true: oldest first"),
        username: str | None = Query(None),
        user: User = Depends(caller),
    ) -> JSONResponse:
        filters = queries.Filters(owner=owner(user), username=username)
        page = Page.parse(skip, limit, ascending)

        def answer() -> JSONResponse:
            rows = queries.rows(store, "experiments", filters, skip=page.skip, limit=page.limit, ascending=page.ascending)
            return listing(queries.count(store, "experiments", filters), [documents.list_experiment(r) for r in rows])

        return await off_loop(page, answer)

    @app.get("/experiments/{experiment_id}", summary="The full experiment (credentials never included)")
    async def experiment_get(experiment_id: str, user: User = Depends(caller)) -> dict[str, Any]:
        record = own_experiment(experiment_id, user)
        return documents.experiment(record, json.loads(record.get("settings") or "{}"))

    @app.delete("/experiments/{experiment_id}", summary="faice extension: cancel every unfinished batch of an experiment")
    async def experiment_cancel(experiment_id: str, user: User = Depends(caller)) -> dict[str, Any]:
        record = own_experiment(experiment_id, user)
        cancelled = await run_in_threadpool(cancel, record["id"], user)
        return {"experimentId": record["id"], "cancelled": cancelled}

    def cancel(target: str, user: User) -> int:
        return lifecycle.cancel(store, target, f"cancelled through the API by {user.name}", worker.engine_for, strict=False)

    def batch_filters(user: User, username: str | None, node: str | None, state: str | None, experiment_id: str | None) -> queries.Filters:
        if state is not None and state not in STATES:
            raise bad_request(f"Given state is not valid. Must be one of {[str(s) for s in STATES]}.")
        if experiment_id is not None:
            experiment_id = object_id(experiment_id, "Experiment is not a valid BSON ObjectId.")
        return queries.Filters(owner=owner(user), username=username, node=node, state=state, experiment_id=experiment_id)

    @app.get("/batches/count", summary="Count batches (non-admins: their own)")
    async def batches_count(
        username: str | None = Query(None), node: str | None = Query(None),
        state: str | None = Query(None, description=", ".join(STATES)), experimentId: str | None = Query(None),
        user: User = Depends(caller),
    ) -> dict[str, int]:
        return {"count": queries.count(store, "batches", batch_filters(user, username, node, state, experimentId))}

    @app.get("/batches", summary="List batches, newest first (non-admins: their own)", response_class=Response)
    async def batches_list(
        skip: str | None = Query(None, description="integer >= 0"),
        limit: str | None = Query(None, description="integer >= 1 (default: all)"),
        ascending: str | None = Query(None, description="true: oldest first"),
        username: str | None = Query(None), node: str | None = Query(None),
        state: str | None = Query(None, description=", ".join(STATES)), experimentId: str | None = Query(None),
        user: User = Depends(caller),
    ) -> Response:
        filters = batch_filters(user, username, node, state, experimentId)
        page = Page.parse(skip, limit, ascending)

        def answer() -> Response:
            rows = queries.rows(store, "batches", filters, skip=page.skip, limit=page.limit, ascending=page.ascending)
            total = queries.count(store, "batches", filters)
            return Response(documents.list_batches_json(rows), media_type="application/json", headers={"X-Total-Count": str(total)})

        return await off_loop(page, answer)

    @app.get("/batches/{batch_id}", summary="The full batch with its history")
    async def batch_get(batch_id: str, user: User = Depends(caller)) -> dict[str, Any]:
        return batch_document(own_batch(batch_id, user))

    @app.delete("/batches/{batch_id}", summary="Cancel a batch (its container is killed at once); answers the batch")
    async def batch_cancel(batch_id: str, user: User = Depends(caller)) -> JSONResponse:
        row = own_batch(batch_id, user)
        changed = await run_in_threadpool(cancel, row.id, user)
        return JSONResponse(batch_document(store.batch(row.id)), headers={"X-Faice-Cancelled": "true" if changed else "false"})

    @app.get("/batches/{batch_id}/{filename}", summary="What the batch's process wrote to stdout or stderr (text/plain)", response_class=Response)
    async def batch_stream(batch_id: str, filename: str, user: User = Depends(caller)) -> Response:
        row = own_batch(batch_id, user, "Not a valid batch ID.")
        if filename not in ("stdout", "stderr"):
            raise bad_request(f'Could not transfer "{filename}". Use "stdout" or "stderr" as filename.')
        path = log_path(store.path, row.id, filename)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except OSError:
            raise not_found(f'Could not find "{filename}" of batch "{row.id}"') from None
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            """Exactly the bytes there were when the answer began (a retry may rewrite the file)."""
            with handle:
                left = size
                while left > 0:
                    data = handle.read(min(65536, left))
                    if not data:
                        return
                    left -= len(data)
                    yield data

        return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8", headers={"Content-Length": str(size)})

    @app.get("/nodes", summary="This machine as CC-Agency's one node: cpus, ram (MiB), gpus, running batches")
    async def nodes(user: User = Depends(caller)) -> list[dict[str, Any]]:
        current = [b for b in queries.open_batches(store) if user.is_admin or b["username"] == user.name]
        return [node.document(cpu_count(), memory_mib(), current, await run_in_threadpool(worker.docker_problem))]

    app.openapi = lambda: described(app)  # type: ignore[method-assign]
    return app


PUBLIC = {"/", "/schema/red", "/schema/engines/container"}
ERRORS = {400: "Bad request: an invalid id, query parameter or RED document", 401: "Unauthorized: no, wrong or expired credentials",
          404: "Not found (or not yours)", 413: "The RED data is larger than the server takes"}


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods some route of the request's path answers."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.routes:
        match, _scope = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def described(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of what the server really answers: 400 (never FastAPI's 422) where
    a request carries parameters or a body, 401 on protected routes, 404 for ids, 413 for POST /red."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error = {"content": {"application/json": {"schema": {"type": "object", "properties": {"msg": {"type": "string"}, "status": {"type": "integer"}}}}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = set()
            if path not in PUBLIC:
                codes.add(401)
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(400)
            if "{" in path:
                codes.add(404)
            if (method, path) == ("post", "/red"):
                codes.add(413)
            for code in sorted(codes):
                responses[str(code)] = {"description": ERRORS[code], **({} if code == 400 else error)}
            if code_400 := responses.get("400"):
                code_400["content"] = {"application/json": {"schema": {}}}  # CC-Agency's message string, or faice's problem list
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
