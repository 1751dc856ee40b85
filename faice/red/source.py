"""Reading a RED document from a path, standard input or an http(s) URL.

JSON goes through the C ``json`` decoder (the fastest way to load a large batch file); YAML
through :mod:`faice.red.yamlload`. The text is kept so that problems can be located later.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from faice.errors import LoadError
from faice.red.yamlload import INT_MAX, INT_MIN, OUT_OF_RANGE, Location, Path, YamlError, load_yaml, locate

URL_TIMEOUT_SECONDS = 30
TOO_DEEP = "nested too deeply to be a RED document"


@dataclass
class Source:
    """The text of a document and where it came from."""

    name: str
    text: str
    format: str  # "json" or "yaml"

    def locate(self, paths: Iterable[Path]) -> dict[Path, Location]:
        return locate(self.text, paths)


@dataclass
class Document:
    """A loaded RED document: plain data plus what loading did to it."""

    source: Source
    data: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    #: retries per batch requested by the file itself (RED 8 ``retryIfFailed``), if any
    retries: int | None = None


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def local_location(location: str) -> str:
    """A ``file://`` URI as the local path it names (cwltest, and other CWL runners' callers, pass
    the tool and job as such URIs); any other location unchanged."""
    if not location.startswith("file://"):
        return location
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise LoadError(location, "a file:// URI of another host; give a local path")
    return unquote(parts.path)


def display_name(location: str) -> str:
    return "<stdin>" if location == "-" else location


def read_bytes(location: str) -> bytes:
    """Read raw bytes from a path, ``-`` (stdin) or an http(s) URL."""
    name = display_name(location)
    if location == "-":
        return sys.stdin.buffer.read()
    if is_url(location):
        return _fetch(location)
    path = os.path.expanduser(location)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise LoadError(name, "no such file") from None
    except IsADirectoryError:
        raise LoadError(name, "is a directory, not a RED file") from None
    except PermissionError:
        raise LoadError(name, "permission denied") from None
    except OSError as exc:
        raise LoadError(name, f"cannot read: {exc.strerror or exc}") from None


def _fetch(url: str) -> bytes:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "faice", "Accept": "application/yaml, application/json, text/plain, */*"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise LoadError(url, f"cannot fetch: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise LoadError(url, f"cannot fetch: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise LoadError(url, f"cannot fetch: {exc}") from None


def decode(name: str, raw: bytes) -> str:
    """Decode UTF-8 text, rejecting binary data with a reason instead of a traceback."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw[:8192]:
        raise LoadError(name, "is a binary file, not YAML or JSON text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(name, f"is not UTF-8 text (undecodable byte at offset {exc.start})") from None
    if not text.strip():
        raise LoadError(name, "is empty")
    return text


def parse(name: str, text: str) -> tuple[Any, str]:
    """Parse JSON or YAML text; return the data and the format that was read."""
    try:
        return _parse(name, text)
    except RecursionError:
        raise LoadError(name, TOO_DEEP, 1, 1) from None


LONG_NUMBER = re.compile(r"[0-9]{19}")
#: JSON's escapes that matter here, read left to right: an escaped backslash (whatever follows it
#: is text), a surrogate pair, and a surrogate alone (group 1)
ESCAPES = re.compile(r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})")


class _OutOfRange(Exception):
    def __init__(self, digits: str) -> None:
        self.digits = digits


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 19 or not INT_MIN <= int(digits) <= INT_MAX:
        raise _OutOfRange(digits)
    return int(digits)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _check_json_text(name: str, text: str) -> None:
    """What JSON's decoder lets through but nothing after it can take: a lone UTF-16 surrogate
    escape (no UTF-8 for it: the state file and every answer would fail on it)."""
    for match in ESCAPES.finditer(text):
        if match.group(1):
            raise LoadError(name, f"not valid JSON: a lone UTF-16 surrogate {match.group(1)} (no character)", *_position(text, match.start()))


def _parse(name: str, text: str) -> tuple[Any, str]:
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        if "\\u" in text:
            _check_json_text(name, text)
        hooks = {"parse_int": _bounded_int} if LONG_NUMBER.search(text) else {}  # the hook costs time: only where needed
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs, **hooks), "json"
        except _OutOfRange as exc:
            raise LoadError(name, OUT_OF_RANGE, *_position(text, text.find(exc.digits))) from None
        except json.JSONDecodeError as exc:
            json_error = LoadError(name, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno)
        except _DuplicateKey:
            json_error = None
        try:
            return load_yaml(text), "yaml"
        except YamlError as exc:
            if json_error is not None:
                raise json_error from None
            raise LoadError(name, exc.message, exc.line, exc.column) from None
    try:
        return load_yaml(text), "yaml"
    except YamlError as exc:
        raise LoadError(name, exc.message, exc.line, exc.column) from None


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _DuplicateKey()
    return data


def read_source(location: str) -> tuple[Source, Any]:
    """Read and parse a document; return its source and the parsed data (any type)."""
    name = display_name(location)
    text = decode(name, read_bytes(location))
    data, fmt = parse(name, text)
    return Source(name=name, text=text, format=fmt), data


def load_mapping(location: str) -> tuple[Source, dict[str, Any]]:
    """Read a document that must be a mapping at the top level (RED files, CWL job files)."""
    return _mapping(*read_source(location))


def mapping_from_text(name: str, text: str) -> tuple[Source, dict[str, Any]]:
    """``load_mapping`` for text that arrived another way (the body of ``POST /red``)."""
    if not text.strip():
        raise LoadError(name, "is empty")
    data, fmt = parse(name, text)
    return _mapping(Source(name=name, text=text, format=fmt), data)


def as_mapping(source: Source, data: Any) -> tuple[Source, dict[str, Any]]:
    """The data of a document that must be a mapping at the top level, or a located error."""
    return _mapping(source, data)


def _mapping(source: Source, data: Any) -> tuple[Source, dict[str, Any]]:
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value" if data is not None else "empty"
        raise LoadError(source.name, f"must be a mapping of keys to values at the top level, but it is {kind}", 1, 1)
    return source, data
