"""``/docs``: Swagger UI from files installed with faice, so that the page works offline (no CDN).

The files are Swagger UI's own distribution as the pinned ``swagger-ui-py`` package ships them
(Apache-2.0: its LICENSE is served beside them, at ``/static/swagger-ui/LICENSE``). Only the
package's folder is looked up: its Python code (and Jinja2) is never imported. ReDoc has no
offline copy on PyPI, so ``/redoc`` is off (``redoc_url=None``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException

__all__ = ["STATIC", "install", "swagger_ui_folder"]

STATIC = "/static/swagger-ui"
# what /docs loads, and the licence that goes with it; nothing else of the package is served
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}


def swagger_ui_folder() -> Path:
    """The folder of Swagger UI's files in the installed ``swagger_ui`` package (not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faice serve: the package swagger-ui-py (Swagger UI's files for /docs) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: FastAPI, openapi_url: str = "/openapi.json", docs_url: str = "/docs") -> None:
    """``/docs``, its OAuth2 redirect page and Swagger UI's files, on an app made with ``docs_url=None``."""
    folder = swagger_ui_folder()
    oauth2_redirect_url = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI", oauth2_redirect_url=oauth2_redirect_url,
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/favicon-32x32.png")

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(STATIC + "/{name}", include_in_schema=False)
    async def swagger_ui_file(name: str) -> FileResponse:
        if name not in FILES:
            raise HTTPException(404)
        return FileResponse(folder / name, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"})
