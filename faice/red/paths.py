"""Where inputs and outputs live inside the container, and CWL File/Directory attributes.

Layout: the working directory and output directory is ``/cc/outputs``; an input ``KEY`` is at
``/cc/inputs/KEY/BASENAME`` (array items at ``/cc/inputs/KEY/INDEX/BASENAME``). Without a
``basename`` in the RED file, the connector's natural name is used (the last part of a URL or
path), and the input key as the last resort.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

INPUTS_ROOT = "/cc/inputs"
OUTPUTS_DIR = "/cc/outputs"

_REFERENCE = re.compile(r"\$\(inputs\.([A-Za-z0-9_-]+)((?:\.[A-Za-z_]+|\[\"[A-Za-z_]+\"\]|\['[A-Za-z_]+'\]|\[[0-9]+\])*)\)")
_SELECTOR = re.compile(r"\.([A-Za-z_]+)|\[\"([A-Za-z_]+)\"\]|\['([A-Za-z_]+)'\]|\[([0-9]+)\]")


def container_dir(key: str, index: int | None = None) -> str:
    return f"{INPUTS_ROOT}/{key}" if index is None else f"{INPUTS_ROOT}/{key}/{index}"


def complete_file_value(key: str, value: Mapping[str, Any], index: int | None, default_basename: str | None) -> dict[str, Any]:
    """The value with CWL's ``basename``, ``nameroot``, ``nameext``, ``dirname`` and ``path``."""
    completed = dict(value)
    basename = value.get("basename") or default_basename or key
    dirname = value.get("dirname") or container_dir(key, index)
    completed["basename"] = basename
    completed["dirname"] = dirname
    completed["path"] = posixpath.join(dirname, basename)
    if value.get("class") == "File":
        root, ext = posixpath.splitext(basename)
        completed["nameroot"], completed["nameext"] = root, ext
    return completed


def resolve_references(text: str, values: Mapping[str, Any]) -> str:
    """Replace ``$(inputs.KEY...)`` references (in output globs) by the batch's values."""

    def replace(match: re.Match[str]) -> str:
        value: Any = values.get(match.group(1))
        for sel in _SELECTOR.finditer(match.group(2) or ""):
            name = sel.group(1) or sel.group(2) or sel.group(3)
            if name is not None:
                value = value.get(name) if isinstance(value, dict) else None
            else:
                position = int(sel.group(4))
                value = value[position] if isinstance(value, list) and position < len(value) else None
        if value is None:
            raise ValueError(f"{match.group(0)} has no value in this batch")
        return str(value)

    return _REFERENCE.sub(replace, text)
