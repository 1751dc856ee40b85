"""Conversions: one RED file per batch, the ``cli`` as a CWL tool, and a CWL job file."""

from __future__ import annotations

import os
from typing import Any

from faice.red.model import job_sections


def batch_documents(data: dict[str, Any], source_dir: str | None = None, target_dir: str | None = None) -> list[dict[str, Any]]:
    """Each batch as a RED file of its own (the single-job form); a file without batches is one.

    With both directories, relative ``red-connector-local`` paths (relative to the file they
    were in) are rewritten to be relative to where the new files go, so each runs on its own.
    """
    common = {k: v for k, v in data.items() if k not in ("batches", "inputs", "outputs", "cloud")}
    documents = []
    for _, inputs, outputs in job_sections(data):
        doc = {k: v for k, v in common.items() if k in ("redVersion", "cli")}
        doc["inputs"] = inputs if isinstance(inputs, dict) else {}
        if outputs:
            doc["outputs"] = outputs
        doc.update((k, v) for k, v in common.items() if k not in doc)
        if source_dir is not None and target_dir is not None:
            doc["inputs"], doc["outputs"] = (_rebased(doc.get(part) or {}, source_dir, target_dir) for part in ("inputs", "outputs"))
            if not doc["outputs"] and not outputs:
                del doc["outputs"]
        documents.append(doc)
    return documents


def _rebased(node: Any, source_dir: str, target_dir: str) -> Any:
    """A copy with relative local connector paths made relative to ``target_dir``."""
    if isinstance(node, list):
        return [_rebased(v, source_dir, target_dir) for v in node]
    if not isinstance(node, dict):
        return node
    connector = node.get("connector")
    if isinstance(connector, dict) and connector.get("command") == "red-connector-local" and isinstance(connector.get("access"), dict):
        path = connector["access"].get("path")
        if isinstance(path, str) and path and not os.path.isabs(path) and not path.startswith("~") and "{{" not in path:
            moved = os.path.relpath(os.path.join(source_dir, path), target_dir)
            return {**node, "connector": {**connector, "access": {**connector["access"], "path": moved}}}
        return node
    return {k: _rebased(v, source_dir, target_dir) for k, v in node.items()}


def cwl_tool(data: dict[str, Any]) -> dict[str, Any]:
    """The ``cli`` as a standalone CWL v1.0 CommandLineTool, running in the RED file's image."""
    tool = dict(data["cli"])
    image = ((data.get("container") or {}).get("settings") or {}).get("image", {}).get("url")
    if image:
        tool["requirements"] = {"DockerRequirement": {"dockerPull": image}}
    return tool


def cwl_job(data: dict[str, Any], batch: int, base_dir: str) -> tuple[dict[str, Any], list[str]]:
    """A CWL job for one batch: inputs that need no connector, and local files by path.

    Returns the job and the keys left out (inputs behind a connector cwltool cannot use).
    """
    sections = job_sections(data)
    if not 0 <= batch < len(sections):
        raise IndexError(f"batch {batch} does not exist (the file has {len(sections)})")
    inputs = sections[batch][1] or {}
    job: dict[str, Any] = {}
    skipped: list[str] = []
    for key, value in inputs.items():
        converted = _cwl_value(value, base_dir)
        if converted is None:
            skipped.append(key)
        else:
            job[key] = converted
    return job, skipped


def _cwl_value(value: Any, base_dir: str) -> Any:
    if isinstance(value, list):
        items = [_cwl_value(v, base_dir) for v in value]
        return None if any(i is None for i in items) else items
    if isinstance(value, dict):
        connector = value.get("connector") or {}
        path = (connector.get("access") or {}).get("path")
        if connector.get("command") != "red-connector-local" or not isinstance(path, str):
            return None
        converted = {"class": value["class"], "path": os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))}
        if value.get("basename"):
            converted["basename"] = value["basename"]
        return converted
    return value
