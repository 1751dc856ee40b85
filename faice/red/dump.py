"""Writing documents as JSON or YAML (keys in document order, YAML 1.2 like the reader)."""

from __future__ import annotations

import io
import json
from typing import Any

FORMATS = ("yaml", "json")


def dumps(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt in ("yaml", "yml"):
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe")
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
        yaml.allow_unicode = True
        stream = io.StringIO()
        yaml.dump(data, stream)
        return stream.getvalue()
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def extension(fmt: str) -> str:
    return "json" if fmt == "json" else "yml"
