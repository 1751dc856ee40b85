"""Where a batch's File and Directory inputs come from, recorded when it is registered.

The stored RED data masks every access value (a local path and a URL among them), so this is
what lets ``faice export`` name each input by reference later: a local input's absolute path as a
``file://`` URI, a remote one's URL without user, password, query or fragment (any of them may
carry a credential), an ssh input as ``sftp://HOST[:PORT]/PATH``. Only unprotected access fields
are read, and the result is masked like everything else faice keeps; a connector whose access
names no location records none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def input_sources(staged: Iterable[Any], base_dir: Path, mask: Callable[[str], str]) -> list[dict[str, Any]]:
    """One batch's staged inputs (faice.runner.plan.StagedInput) as plain data:
    ``{key, index, class, connector, uri}``, ``uri`` None where the access names no location."""
    return [{"key": s.key, "index": s.index, "class": s.kind, "connector": s.connector.command,
             "uri": _masked(_location(s.connector.command, s.connector.access, base_dir, mask), mask)} for s in staged]


#: the access fields a location is made of
LOCATION_FIELDS = ("path", "url", "host", "port", "filePath", "dirPath")


def _location(command: str, access: dict[str, Any], base_dir: Path, mask: Callable[[str], str]) -> str | None:
    """``location``, made of the masked fields when one holds a secret: making a URI rewrites a
    value (percent-encoding, a lower-cased host, a resolved link) past what masking it after can find."""
    if not any(isinstance(v := access.get(k), str) and mask(v) != v for k in LOCATION_FIELDS):
        return location(command, access, base_dir)
    masked = {**access, **{k: mask(v) for k in LOCATION_FIELDS if isinstance(v := access.get(k), str)}}
    return location(command, masked, base_dir, resolve=False)


def location(command: str, access: dict[str, Any], base_dir: Path, resolve: bool = True) -> str | None:
    """The URI an input is read from, from its connector's unprotected access fields (a local
    path made absolute, with links resolved when ``resolve``)."""
    path, url, host = (access.get(k) for k in ("path", "url", "host"))
    if command == "red-connector-local" and isinstance(path, str) and path:
        joined = base_dir / os.path.expanduser(path)
        return (joined.resolve() if resolve else Path(os.path.abspath(joined))).as_uri()
    if isinstance(url, str) and url:
        return without_credentials(url)
    remote = access.get("filePath") or access.get("dirPath")
    if isinstance(host, str) and host and isinstance(remote, str) and remote:
        port = access.get("port")
        return f"sftp://{host}{f':{port}' if isinstance(port, int | str) and str(port) else ''}/{remote.lstrip('/')}"
    return None


def without_credentials(url: str) -> str | None:
    """``url`` without user and password, query and fragment; None when it does not parse."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, netloc + (f":{port}" if port else ""), parts.path, "", ""))


def _masked(uri: str | None, mask: Callable[[str], str]) -> str | None:
    return None if uri is None else mask(uri)
