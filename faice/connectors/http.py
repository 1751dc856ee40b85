"""``red-connector-http`` and ``red-connector-http-archive``: the upstream access fields.

Access: ``url`` (required), ``method`` (GET/PUT/POST in any case; default GET to receive, POST
to send), ``auth`` (``username``, ``password``, ``method`` Basic or Digest),
``disableSSLVerification``. The archive variant receives a directory by downloading one
archive (``archiveFormat``: zip, tar, gztar, bztar, xztar) and unpacking it.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

from faice.connectors.base import Connector, Direction, Kind, check_fields

METHODS = ("get", "put", "post")
ARCHIVE_FORMATS = ("zip", "tar", "gztar", "bztar", "xztar")


def _http_problems(access: Any, extra: dict[str, Any] | None = None) -> list[str]:
    problems = check_fields(
        access,
        {"url": str, **(extra or {})},
        {"method": str, "auth": dict, "disableSSLVerification": bool},
    )
    if problems:
        return problems
    if urlsplit(access["url"]).scheme not in ("http", "https") and "{{" not in access["url"]:
        problems.append('access "url" must be an http:// or https:// URL')
    if "method" in access and access["method"].lower() not in METHODS:
        problems.append('access "method" must be GET, PUT or POST')
    if "auth" in access:
        auth = access["auth"]
        problems += [f"auth: {p[len('access '):]}" for p in check_fields(auth, {"username": str, "password": str}, {"method": str})]
        if isinstance(auth.get("method"), str) and auth["method"].lower() not in ("basic", "digest"):
            problems.append('auth "method" must be Basic or Digest')
    return problems


def _url_basename(access: dict[str, Any]) -> str | None:
    url = access.get("url")
    if not isinstance(url, str) or "{{" in url:
        return None
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name or None


class HttpConnector(Connector):
    name = "red-connector-http"

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        problems = _http_problems(access)
        if kind == "Directory" and direction == "send":
            problems.append(f"{self.name} cannot send directories")
        elif kind == "Directory" and listing is None:
            problems.append(f"{self.name} receives a directory file by file: the input needs a listing")
        return problems

    def default_basename(self, access: dict[str, Any]) -> str | None:
        return _url_basename(access)


class HttpArchiveConnector(Connector):
    name = "red-connector-http-archive"

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        if direction != "receive" or kind != "Directory":
            return [f"{self.name} can only receive directories"]
        problems = _http_problems(access, {"archiveFormat": str})
        if not problems and access["archiveFormat"] not in ARCHIVE_FORMATS:
            problems.append(f'access "archiveFormat" must be one of {", ".join(ARCHIVE_FORMATS)}')
        return problems
