"""``faice serve``'s ``/docs`` works offline: Swagger UI's files come from the server itself, no CDN."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests import serve_fixture
from tests.serve_fixture import Server, error_object

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)

KINDS = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


class Assets(HTMLParser):
    """The URLs a page loads: ``<script src>`` and ``<link href>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def test_docs_load_only_files_the_server_serves(server: Server) -> None:
    page = server.get("/docs", user=None)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"cdn|jsdelivr|unpkg", page.text, re.IGNORECASE), page.text
    assert "/openapi.json" in page.text
    parser = Assets()
    parser.feed(page.text)
    assert {url.rsplit(".", 1)[-1] for url in parser.urls} == {"js", "css", "png"}, parser.urls
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//") and "://" not in url, url
        asset = server.get(url, user=None)
        assert asset.status_code == 200, (url, asset.text[:200])
        assert asset.headers["content-type"].startswith(KINDS["." + url.rsplit(".", 1)[-1]]), (url, asset.headers)
        assert len(asset.content) > (10_000 if url.endswith((".js", ".css")) else 100), url
    bundle = server.get(next(url for url in parser.urls if url.endswith(".js")), user=None).text
    assert "SwaggerUIBundle" in bundle


def test_swagger_ui_licence_is_served_and_nothing_else_of_the_package(server: Server) -> None:
    licence = server.get("/static/swagger-ui/LICENSE", user=None)
    assert licence.status_code == 200 and "Apache License" in licence.text
    error_object(server.get("/static/swagger-ui/swagger-editor-bundle.js", user=None), 404)
    error_object(server.get("/static/swagger-ui/..%2Fcore.py", user=None), 404)


def test_the_oauth2_redirect_page_is_inline_and_redoc_is_off(server: Server) -> None:
    redirect = server.get("/docs/oauth2-redirect", user=None)
    assert redirect.status_code == 200 and "<script" in redirect.text and "src=" not in redirect.text
    error_object(server.get("/redoc", user=None), 404)
    paths = server.get("/openapi.json", user=None).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/static"))]
