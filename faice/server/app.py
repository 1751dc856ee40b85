"""CC-Agency's REST API (9.3, plus 8.x ``GET /token``) over the state file, as a FastAPI app.

Paths, query parameters, status codes and JSON shapes are CC-Agency's (see README "faice
serve" for the documented differences). The routes are in :mod:`faice.server.routes`, what they
share in :mod:`faice.server.dependencies`, every error's answer in :mod:`faice.server.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from faice import __version__
from faice.server import docs, errors, webui
from faice.server.auth import Authenticator
from faice.server.events import Hub
from faice.server.nodes import Node
from faice.server.openapi import described
from faice.server.routes import ROUTERS
from faice.server.settings import Settings
from faice.server.webhooks import UserSecrets, Webhooks
from faice.server.worker import Worker
from faice.state.store import Store
from faice.state.users import Users

__all__ = ["Settings", "create_app"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    publisher = asyncio.create_task(app.state.hub.run())
    app.state.webhooks.start()
    try:
        yield
    finally:
        publisher.cancel()
        await run_in_threadpool(app.state.worker.stop)  # before uvicorn returns: nothing is left running
        await run_in_threadpool(app.state.webhooks.close)  # after the worker: its cancellations are notified too


def create_app(store: Store, worker: Worker, settings: Settings | None = None) -> FastAPI:
    """The app over ``store``, which the worker shares (each thread has its own connection).

    Whatever may wait for SQLite's write lock (registering, cancelling, tokens, long lists) runs
    in a thread, so that the event loop goes on answering while a big experiment is inserted.
    """
    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # docs.install: Swagger UI from the installed files, no CDN
        redoc_url=None,  # ReDoc loads from a CDN, and PyPI has no copy of it to serve
        title="faice serve: the CC-Agency REST API on this machine",
        version=__version__,
        description="CC-Agency 9.3's routes, query parameters and JSON shapes (and 8.x GET /token), "
        "served from faice's state file; batches run in local Docker containers. "
        "Protected routes take HTTP Basic credentials or `Authorization: Bearer <access_token>` from POST /login.",
    )
    users = Users(store)
    app.state.store, app.state.worker, app.state.settings = store, worker, settings or Settings()
    app.state.users, app.state.auth, app.state.node = users, Authenticator(users), Node(worker.node)
    app.state.hub = Hub(store, app.state.settings.event_buffer)
    app.state.webhooks = Webhooks(store, UserSecrets(store.path, users))
    errors.install(app)
    docs.install(app)
    webui.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: described(app)  # type: ignore[method-assign]
    return app
