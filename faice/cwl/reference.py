"""Validation of a CWL document by cwltool, the CWL reference runner, used as a library.

The steps are those of ``cwltool --validate``: fetch, resolve every reference and validate against
the schema of the document's version (schema-salad), update to cwltool's internal version, and
build the process objects (a Workflow's steps are checked against the tools they run). Only
JavaScript syntax checks are left out: they need node.js and only ever warn. So the verdict is
cwltool's own; faice adds a faster start (:mod:`faice.cwl.schemacache`) and one line per problem.

Among the choices measured: cwl-utils' generated parsers load a tool in a third of the time but
accept what cwltool refuses (a type or requirement class that does not exist, a Workflow whose
steps miss inputs) and fail on a malformed ``$graph`` with a TypeError; schema-salad alone is
cwltool's first half, with the same cost of loading the schemas.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit


class Finding(NamedTuple):
    """One problem that cwltool reported, where it reported it (line and column 1-based, 0 if unknown)."""

    file: str
    line: int
    column: int
    message: str
    severity: str  # "error" or "warning"


#: "file:LINE:COL: message", how schema-salad prefixes each line of what it logs
_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<message>.*)$")


def validate(uri: str, text: str, version: Any) -> list[Finding]:
    """cwltool's problems with the document at ``uri`` whose text is ``text`` (given, so that
    cwltool checks what faice read: standard input, a URL fetched once).

    ``version`` is the document's ``cwlVersion``, to have its schema ready before cwltool asks.
    """
    with _collector_paused():
        from cwltool import update

        from faice.cwl.schemacache import preload

        versions = ["v1.0", update.INTERNAL_VERSION]
        if isinstance(version, str) and version in update.ALLUPDATES and version not in versions:
            versions.append(version)
        preload(versions)
        with _captured_warnings() as warnings:
            errors = _errors(uri, text)
        return errors + warnings


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading the schemas makes some 200,000 objects that live until faice ends: the cyclic
    collector's passes over them would cost a fifth of the whole validation."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _errors(uri: str, text: str) -> list[Finding]:
    from cwltool.context import LoadingContext
    from cwltool.errors import GraphTargetMissingException
    from cwltool.load_tool import default_loader, fetch_document, make_tool, resolve_and_validate_document
    from cwltool.workflow import default_make_tool
    from schema_salad.exceptions import SchemaSaladException

    context = LoadingContext({"disable_js_validation": True})
    context.loader = default_loader(context.fetcher_constructor)
    context.loader.cache[uri] = text
    context.construct_tool_object = default_make_tool
    try:
        context, workflowobj, resolved = fetch_document(uri, context)
        context, resolved = resolve_and_validate_document(context, workflowobj, resolved)
        try:
            make_tool(resolved, context)
        except GraphTargetMissingException:
            for entry in workflowobj["$graph"]:  # no #main: cwltool --validate checks every process
                make_tool(entry["id"], context)
    except SchemaSaladException as exc:
        return _leaves(exc, uri)
    except Exception as exc:  # noqa: BLE001 - cwltool's other failures (WorkflowException, a KeyError, ...) are its verdict too
        if isinstance(exc, (KeyError, TypeError, AttributeError, IndexError)):
            return [Finding(uri, 0, 0, f"cwltool cannot load it: {type(exc).__name__}: {exc}", "error")]
        return _located_lines(str(exc) or type(exc).__name__, uri, "error")
    return []


def _located_lines(text: str, uri: str, severity: str) -> list[Finding]:
    """Findings from text whose lines may start with schema-salad's "file:LINE:COL: " (an
    exception's text, a logged warning): one per located line, the lines after it appended."""
    found: list[Finding] = []
    current: Finding | None = None
    for raw in text.splitlines():
        match = _LOCATED.match(raw.strip())
        part = re.sub(r"^(Warning:\s*)+", "", (match.group("message") if match else raw).strip())
        if match:
            if current is not None:
                found.append(current)
            current = Finding(match.group("file"), int(match.group("line")), int(match.group("column")), part, severity)
        elif current is not None:
            current = current._replace(message=f"{current.message} {part}".strip())
        elif part:
            current = Finding(uri, 0, 0, part, severity)
    if current is not None and current.message:
        found.append(current)
    return found


def _leaves(exc: Any, uri: str) -> list[Finding]:
    """One finding per tip of schema-salad's tree of reasons (its ``to_one_line_messages``)."""
    findings = []
    seen = set()
    for leaf in exc.leaves() or [exc]:
        severity = "warning" if leaf.is_warning else "error"
        text = leaf.detailed_message or leaf.message
        if leaf.start:
            found = [Finding(leaf.file or uri, leaf.start[0], leaf.start[1], " ".join(text.split()), severity)]
        else:  # a message that carries its own "file:LINE:COL: " (a Workflow's step checks)
            found = _located_lines(text, leaf.file or uri, severity)
        for finding in found:
            if finding not in seen:
                seen.add(finding)
                findings.append(finding)
    return findings


@contextmanager
def _captured_warnings() -> Iterator[list[Finding]]:
    """What cwltool and schema-salad log as warnings while validating, as findings."""
    found: list[Finding] = []
    handler = _Collect(found)
    loggers = [logging.getLogger(name) for name in ("cwltool", "salad")]
    saved = [(lg.handlers, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]  # cwltool's own handler would print them as well
        lg.setLevel(logging.WARNING)
        lg.propagate = False
    try:
        yield found
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers, lg.level, lg.propagate = handlers, level, propagate


class _Collect(logging.Handler):
    """Keeps each warning record as findings."""

    def __init__(self, found: list[Finding]) -> None:
        super().__init__(logging.WARNING)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        self.found.extend(_located_lines(record.getMessage(), "", "warning"))


def file_uri(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


def local_name(uri_or_name: str) -> str:
    """A file URI as a path (how faice names files); anything else as it is."""
    if uri_or_name.startswith("file://"):
        return unquote(urlsplit(uri_or_name).path)
    return uri_or_name
