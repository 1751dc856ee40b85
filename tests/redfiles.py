"""Building RED documents for tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from faice.red.dump import dumps

TEST_IMAGE = "faice-test-busybox:latest"

GREPWRAP_CLI: dict[str, Any] = {
    "cwlVersion": "v1.0",
    "class": "CommandLineTool",
    "baseCommand": "grepwrap",
    "inputs": {
        "query_term": {"type": "string", "inputBinding": {"position": 0}},
        "text_file": {"type": "File", "inputBinding": {"position": 1}},
        "after_context": {"type": "int?", "inputBinding": {"prefix": "-A"}},
        "before_context": {"type": "int?", "inputBinding": {"prefix": "-B"}},
    },
    "outputs": {"out_file": {"type": "File", "outputBinding": {"glob": "out.txt"}}},
}


def local_file(path: str = "in.txt", **extra: Any) -> dict[str, Any]:
    return {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": path}}, **extra}


def http_file(url: str = "http://127.0.0.1:9/in.txt", **access: Any) -> dict[str, Any]:
    return {"class": "File", "connector": {"command": "red-connector-http", "access": {"url": url, **access}}}


def grepwrap(**top: Any) -> dict[str, Any]:
    """A valid RED 9 grepwrap document; keyword arguments replace top-level keys."""
    data: dict[str, Any] = {
        "redVersion": "9",
        "cli": copy.deepcopy(GREPWRAP_CLI),
        "inputs": {"query_term": "QU", "text_file": local_file(), "before_context": 1},
        "container": {"engine": "docker", "settings": {"image": {"url": "faice-test-busybox:latest"}, "ram": 256}},
        "execution": {"engine": "ccfaice", "settings": {}},
    }
    data.update(top)
    return data


def batches(inputs_list: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    data = grepwrap(**top)
    del data["inputs"]
    data["batches"] = [{"inputs": inputs} for inputs in inputs_list]
    return data


def write(path: Path, data: Any, fmt: str = "yaml") -> Path:
    path.write_text(dumps(data, fmt) if fmt in ("yaml", "json") else json.dumps(data), encoding="utf-8")
    return path


def shell_red(script: str, inputs: dict[str, Any] | None = None, cli_inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None, **extra_cli: Any) -> dict[str, Any]:
    """A RED file whose tool is ``sh -c SCRIPT sh ARGS...`` in the offline test image."""
    cli: dict[str, Any] = {
        "cwlVersion": "v1.0",
        "class": "CommandLineTool",
        "baseCommand": ["sh", "-c", script, "sh"],
        "inputs": cli_inputs or {},
        "outputs": outputs or {},
        **extra_cli,
    }
    return {
        "redVersion": "9",
        "cli": cli,
        "inputs": inputs or {},
        "container": {"engine": "docker", "settings": {"image": {"url": TEST_IMAGE}, "ram": 256}},
    }


def as_batches(data: dict[str, Any], inputs_list: list[dict[str, Any]]) -> dict[str, Any]:
    data = dict(data)
    del data["inputs"]
    data["batches"] = [{"inputs": i} for i in inputs_list]
    return data
