"""``faice validate`` of a CWL document: cwltool's verdict in faice's located form, then faice's own.

The document is read once, by faice (paths, ``-``, URLs; located errors for what is not YAML or
JSON); cwltool validates that text. Its problems come as positions: each gets the path of what
starts there, so that it prints as ``FILE:LINE:COL: path: message`` like every faice problem.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from faice.cwl.support import Unsupported, unsupported
from faice.red.problems import LocatedProblem, format_path
from faice.red.source import Source, is_url
from faice.red.yamlload import Location, node_positions


class Notice(NamedTuple):
    """A feature outside what faice does, placed in its file."""

    problem: LocatedProblem
    feature: str
    level: str

    def to_json(self) -> dict[str, Any]:
        return {**self.problem.to_json(), "feature": self.feature, "level": self.level}


class CwlReport(NamedTuple):
    """What ``faice validate`` found in a CWL document."""

    file: str
    version: Any
    kind: Any
    errors: list[LocatedProblem]
    warnings: list[LocatedProblem]
    notices: list[Notice]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def runs(self) -> bool | None:
        """Whether faice exec runs it (None for an invalid document)."""
        return None if self.errors else not any(n.level == "run" for n in self.notices)

    @property
    def embeddable(self) -> bool | None:
        """Whether a RED file can hold it (None for an invalid document)."""
        return None if self.errors else not any(n.level in ("run", "embed") for n in self.notices)

    def summary(self) -> str:
        """The one line printed for a valid document."""
        what = f"valid CWL {self.version} {self.kind if isinstance(self.kind, str) else 'document'}"
        counted = f" ({len(self.notices)} notice{'s' if len(self.notices) != 1 else ''} above)" if self.notices else ""
        if not self.runs:
            return f"{self.file}: {what}; faice exec cannot run it, cwltool can{counted}"
        if not self.embeddable:
            return f"{self.file}: {what}; faice exec runs it, a RED file cannot hold it{counted}"
        return f"{self.file}: {what}; faice exec runs it and a RED file can hold it{counted}"

    def refusals(self, *levels: str) -> list[LocatedProblem]:
        """The notices of these levels, as the errors of a command that cannot go on with them."""
        return [n.problem._replace(severity="error") for n in self.notices if n.level in levels]

    def remarks(self, *refused: str) -> list[LocatedProblem]:
        """What a command that goes on should still say: cwltool's warnings, the other notices."""
        return self.warnings + [n.problem for n in self.notices if n.level not in refused]

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "valid": self.valid, "cwlVersion": self.version, "class": self.kind,
                "errors": [e.to_json() for e in self.errors], "warnings": [w.to_json() for w in self.warnings],
                "runs": self.runs, "embeddable": self.embeddable, "unsupported": [n.to_json() for n in self.notices]}


def check(location: str, source: Source, data: dict[str, Any]) -> CwlReport:
    """Validate a CWL document by cwltool and, when valid, list what faice does not do of it."""
    from faice.cwl.reference import validate

    process = data
    graph = data.get("$graph")
    if isinstance(graph, list) and graph and isinstance(graph[0], dict):
        process = next((p for p in graph if isinstance(p, dict) and str(p.get("id", "")).lstrip("#") == "main"), graph[0])
    version = data.get("cwlVersion")
    kind = process.get("class")
    own = _graph_problems(source, data)
    if own:
        return CwlReport(source.name, version, kind, own, [], [])
    uri = _uri(location)
    found = validate(uri, source.text, version)
    positions = node_positions(source.text)
    errors, warnings = [], []
    for finding in found:
        located = _located(finding, source, uri, positions)
        (errors if finding.severity == "error" else warnings).append(located)
    notices = [] if errors else _notices(source, unsupported(data))
    return CwlReport(source.name, version, kind, _sorted(errors), _sorted(warnings), notices)


def check_valid(location: str, source: Source, data: dict[str, Any]) -> CwlReport:
    """:func:`check`, raising :class:`faice.red.prepare.ValidationFailed` for an invalid document."""
    from faice.red.prepare import ValidationFailed

    report = check(location, source, data)
    if report.errors:
        raise ValidationFailed(report.errors)
    return report


def _graph_problems(source: Source, data: dict[str, Any]) -> list[LocatedProblem]:
    """What cwltool fails on with a bare KeyError or TypeError instead of a located message."""
    if "$graph" not in data:
        return []
    graph = data["$graph"]
    paths: list[tuple[tuple[Any, ...], str]] = []
    if not isinstance(graph, list) or not graph:
        paths.append((("$graph",), "must be a list of processes (mappings with an id and a class)"))
    else:
        for i, process in enumerate(graph):
            if not isinstance(process, dict):
                paths.append((("$graph", i), "must be a process: a mapping with an id and a class"))
            elif "id" not in process:
                paths.append((("$graph", i), "a process in a $graph needs an id (the one to run: main)"))
    where = source.locate([p for p, _ in paths])
    return [LocatedProblem(source.name, where[p].line, where[p].column, format_path(p), message, "error") for p, message in paths]


def _uri(location: str) -> str:
    from faice.cwl.reference import file_uri

    if is_url(location):
        return location
    return file_uri("stdin.cwl" if location == "-" else os.path.expanduser(location))


def _located(finding: Any, source: Source, uri: str, positions: dict[Location, list[tuple[Any, ...]]]) -> LocatedProblem:
    from faice.cwl.reference import local_name

    ours = not finding.file or finding.file == uri or os.path.abspath(local_name(finding.file)) == local_name(uri)
    message = finding.message.replace(uri, source.name)
    directory = uri.rsplit("/", 1)[0] + "/"
    message = message.replace(directory, "")
    line, column = (finding.line, finding.column) if finding.line > 0 else (1, 1)
    if not ours:
        return LocatedProblem(local_name(finding.file), line, column, "", message, finding.severity)
    path = _path_at(positions, Location(line, column), whole=_MISSING.search(message) is not None) if finding.line > 0 else ()
    return LocatedProblem(source.name, line, column, format_path(path), message, finding.severity)


#: messages about an object as a whole, placed where it starts (as is its first key)
_MISSING = re.compile(r"^missing\b|missing required", re.IGNORECASE)


def _path_at(positions: dict[Location, list[tuple[Any, ...]]], where: Location, *, whole: bool) -> tuple[Any, ...]:
    """The path of what starts at ``where`` (the deepest: schema-salad places a field's problem at
    its key; the object itself when a field is missing), else of what starts last before it."""
    if where not in positions:
        before = [p for p in positions if p <= where]
        if not before:
            return ()
        where = max(before)
    return positions[where][0 if whole else -1]


def _notices(source: Source, items: list[Unsupported]) -> list[Notice]:
    where = source.locate([item.path for item in items]) if items else {}
    notices = [Notice(LocatedProblem(source.name, where[i.path].line, where[i.path].column, format_path(i.path), i.message, "notice"), i.feature, i.level)
               for i in items]
    return sorted(notices, key=lambda n: (n.problem.line, n.problem.column))


def _sorted(problems: list[LocatedProblem]) -> list[LocatedProblem]:
    return sorted(problems, key=lambda p: (p.file != problems[0].file, p.line, p.column)) if problems else problems
