"""The CWL output object of a job, in cwltool's shape, so that scripts written around cwltool
(and cwltest) read faice's the same way.

Keys in cwltool's order: a File is ``location``, ``basename``, ``class``, ``checksum``, ``size``,
``path``; a Directory ``location``, ``basename``, ``class``, ``listing``, ``path``, its entries
``class``, ``location``, ``basename``, then ``listing`` or ``size`` and ``checksum``, then
``path``. Outputs are sorted by id; an optional output that was not found is ``null``. Listings
are sorted by name (cwltool's follow the directory's order, which is no order at all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faice.runner.outputs import sha1_of
from faice.state.cleanup import MARKER


def output_object(outputs: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """The output object of one job from the outputs faice found (``{class, path, size,
    checksum}`` per key, as recorded); ``keys``: the tool's output ids."""
    return {key: _value(outputs.get(key)) for key in sorted(keys)}


def _value(value: Any) -> Any:
    """A found output as cwltool gives it: a File or Directory object, a list of them (an array
    output), or null."""
    if isinstance(value, list):
        return [_value(item) for item in value]
    path = value.get("path") if isinstance(value, Mapping) else None
    if not path:
        return None
    if value.get("class") == "Directory":
        return directory_object(Path(os.path.abspath(path)))
    return file_object(Path(os.path.abspath(path)), value.get("checksum"), value.get("size"))


def file_object(path: Path, checksum: str | None = None, size: int | None = None) -> dict[str, Any]:
    return {"location": path.as_uri(), "basename": path.name, "class": "File",
            "checksum": checksum or sha1_of(path), "size": path.stat().st_size if size is None else size, "path": str(path)}


def directory_object(path: Path) -> dict[str, Any]:
    return {"location": path.as_uri(), "basename": path.name, "class": "Directory", "listing": _listing(path), "path": str(path)}


def _listing(path: Path) -> list[dict[str, Any]]:
    entries = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name == MARKER:  # faice's own, in the output directory (a glob of "." lists it)
            continue
        if entry.is_dir():
            entries.append({"class": "Directory", "location": entry.as_uri(), "basename": entry.name, "listing": _listing(entry), "path": str(entry)})
        elif entry.is_file():
            entries.append({"class": "File", "location": entry.as_uri(), "basename": entry.name, "size": entry.stat().st_size,
                            "checksum": sha1_of(entry), "path": str(entry)})
    return entries

