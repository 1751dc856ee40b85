"""``/ui``: a web page over the API, served from files installed with faice (no CDN, no external URL).

The page is static: it signs in with ``POST /login`` and keeps the token in the browser's
``sessionStorage``, so every datum reaches it through the same routes and checks as any client.
Only the files named in :data:`FILES` are served, with a Content-Security-Policy that lets the page
load nothing but its own files and talk to nothing but this server.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.exceptions import HTTPException

__all__ = ["FILES", "PATH", "install"]

PATH = "/ui"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self';"
    " form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated: an upgraded faice's page is never mixed with the old one's scripts
}


def _read(name: str) -> bytes:
    return files("faice.server").joinpath("ui", name).read_bytes()


def install(app: FastAPI) -> None:
    """``GET /ui`` (the page) and ``GET /ui/NAME`` (its files); not in the OpenAPI document: they are no API."""

    @app.get(PATH, include_in_schema=False)
    async def ui_page() -> Response:
        return Response(_read("index.html"), media_type=FILES["index.html"], headers=HEADERS)

    @app.get(PATH + "/{name}", include_in_schema=False)
    async def ui_file(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404)
        return Response(_read(name), media_type=FILES[name], headers=HEADERS)
