"""``red-connector-http`` and ``red-connector-http-archive``: the upstream access fields.

Access: ``url`` (required), ``method`` (GET/PUT/POST in any case; default GET to receive, POST
to send), ``auth`` (``username``, ``password``, ``method`` Basic or Digest),
``disableSSLVerification``. The archive variant receives a directory by downloading one
archive (``archiveFormat``: zip, tar, gztar, bztar, xztar) and unpacking it.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from faice.connectors.archive import ArchiveConnector
from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind, check_fields
from faice.connectors.network import PRIVATE, REFUSED, check_peer, is_public

METHODS = ("get", "put", "post")


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
    elif any(c == "\\" or c.isspace() or ord(c) < 32 for c in access["url"]):
        problems.append('access "url" must not contain backslashes, spaces or control characters (percent-encode them)')
    if "method" in access and access["method"].lower() not in METHODS:
        problems.append('access "method" must be GET, PUT or POST')
    if "auth" in access:
        auth = access["auth"]
        problems += check_fields(auth, {"username": str, "password": str}, {"method": str}, label="auth:")
        if isinstance(auth.get("method"), str) and auth["method"].lower() not in ("basic", "digest"):
            problems.append('auth "method" must be Basic or Digest')
    return problems


def _url_basename(access: dict[str, Any]) -> str | None:
    url = access.get("url")
    if not isinstance(url, str) or "{{" in url:
        return None
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name or None


def _public_url(url: str) -> str:
    """The URL without user:password@ and without the query (which may carry tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _request(access: dict[str, Any], method: str, context: Context, url: str | None = None, data: Any = None) -> Any:
    """One streamed request with the access's auth and TLS settings; errors name the status."""
    import requests

    url = url or access["url"]
    auth = None
    if "auth" in access:
        kind = str(access["auth"].get("method", "basic")).lower()
        cls = requests.auth.HTTPDigestAuth if kind == "digest" else requests.auth.HTTPBasicAuth
        auth = cls(access["auth"]["username"], access["auth"]["password"])
    session = requests.Session()
    if context.public_network_only:
        _check_public(url, method)
        session.trust_env = False  # no .netrc of the server's user, no proxies of its environment
        adapter = public_only_adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    try:
        response = session.request(method, url, auth=auth, data=data, stream=True, verify=not access.get("disableSSLVerification", False),
                                   timeout=(10, context.timeout), allow_redirects=not context.public_network_only)
    except requests.exceptions.SSLError:
        raise ConnectorError(f"{method} {_public_url(url)}: TLS verification failed (disableSSLVerification: true skips it)") from None
    except requests.exceptions.ConnectionError as exc:
        if PRIVATE in str(exc):
            raise ConnectorError(f"{method} {_public_url(url)}: {REFUSED}") from None
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        raise ConnectorError(f"{method} {_public_url(url)}: {reason}") from None
    except requests.exceptions.Timeout:
        raise ConnectorError(f"{method} {_public_url(url)}: timed out") from None
    except (requests.exceptions.RequestException, ValueError) as exc:
        # Never str(exc): requests puts the whole URL, query and credentials included, in it.
        raise ConnectorError(f"{method} {_public_url(url)}: {type(exc).__name__}") from None
    if response.status_code >= 400 or (context.public_network_only and response.is_redirect):
        response.close()
        raise ConnectorError(f"{method} {_public_url(url)}: HTTP {response.status_code} {response.reason}"
                             + (" (redirects are not followed for this user)" if response.is_redirect else ""))
    return response


def public_only_adapter() -> Any:
    """A requests adapter whose connections refuse, right after connecting and before sending
    anything, a peer that is not on the public internet: the address actually connected to is
    checked, whatever the URL parser or a second DNS answer made of the host."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Checked:
        def _new_conn(self) -> Any:
            sock = super()._new_conn()  # type: ignore[misc]
            check_peer(sock)
            return sock

    class Http(Checked, HTTPConnection):
        pass

    class Https(Checked, HTTPSConnection):
        pass

    class HttpPool(HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(HTTPSConnectionPool):
        ConnectionCls = Https

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": HttpPool, "https": HttpsPool}

    return Adapter()


def _check_public(url: str, method: str) -> None:
    """Refuse at once a host that resolves to this machine or a private or link-local network
    (the clear message; the adapter above is the guarantee)."""
    import socket

    parts = urlsplit(url)
    try:
        found = socket.getaddrinfo(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ConnectorError(f"{method} {_public_url(url)}: cannot resolve the host") from None
    for *_rest, address in found:
        if not is_public(address[0]):
            raise ConnectorError(f"{method} {_public_url(url)}: {REFUSED}")


def _download(access: dict[str, Any], destination: Path, context: Context, url: str | None = None) -> None:
    import requests

    method = str(access.get("method", "GET")).upper()
    with _request(access, method, context, url) as response, open(destination, "wb") as out:
        try:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
        except requests.exceptions.RequestException as exc:
            raise ConnectorError(f"{method} {_public_url(url or access['url'])}: the transfer broke off ({type(exc).__name__})") from None


def _join(url: str, *names: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "".join("/" + quote(n) for n in names)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


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

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        _download(access, destination, context)

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        if listing is None:
            raise ConnectorError(f"{self.name} needs a listing to receive a directory")
        self._fetch_listing(access, destination, listing, context, ())

    def _fetch_listing(self, access: dict[str, Any], destination: Path, listing: list[Any], context: Context, names: tuple[str, ...]) -> None:
        for entry in listing:
            here = names + (entry["basename"],)
            if entry["class"] == "Directory":
                (destination / entry["basename"]).mkdir(exist_ok=True)
                self._fetch_listing(access, destination / entry["basename"], entry.get("listing") or [], context, here)
            else:
                _download(access, destination / entry["basename"], context, _join(access["url"], *here))

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        method = str(access.get("method", "POST")).upper()
        with open(source, "rb") as body:
            _request(access, method, context, data=body).close()


class HttpArchiveConnector(ArchiveConnector):
    name = "red-connector-http-archive"

    def access_problems(self, access: Any, extra: dict[str, Any]) -> list[str]:
        return _http_problems(access, extra)

    def fetch(self, access: dict[str, Any], archive: Path, context: Context) -> str:
        _download(access, archive, context)
        return _public_url(access["url"])
