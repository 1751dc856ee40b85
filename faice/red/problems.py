"""Problems found in a document, and how they are located and printed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from faice.errors import LoadError
from faice.red.yamlload import Path

Severity = Literal["error", "warning", "notice"]


class Problem(NamedTuple):
    """One thing wrong with a document, at a path of keys and list indices."""

    path: Path
    message: str
    severity: Severity = "error"


class LocatedProblem(NamedTuple):
    """A problem placed in its file (line and column of its key), ready to print or send as JSON."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        label = f"{self.severity}: " if self.severity != "error" else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}: {path}{label}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column, "message": self.message}

    @classmethod
    def of_load_error(cls, exc: LoadError) -> LocatedProblem:
        """A document that could not be read at all, as the one problem of its file (at 1:1 when
        the parser could not say where)."""
        return cls(exc.name, exc.line or 1, exc.column or 1, "", exc.message, "error")


def format_path(path: Path) -> str:
    """Render ``("batches", 3, "inputs", "x")`` as ``batches[3].inputs.x``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate_problems(source: Any, problems: Iterable[Problem]) -> list[LocatedProblem]:
    """Attach file, line and column to each problem (one pass over the text for all of them)."""
    problems = list(problems)
    if not problems:
        return []
    locations = source.locate({p.path for p in problems})
    located = []
    for problem in problems:
        loc = locations[problem.path]
        located.append(LocatedProblem(source.name, loc.line, loc.column, format_path(problem.path), problem.message, problem.severity))
    located.sort(key=lambda p: (p.line, p.column))
    return located
