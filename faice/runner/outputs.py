"""Finding a batch's outputs after the run, by the RED rules.

A glob is relative to the output directory, not recursive, and must match exactly one file (or
directory); no match is an error for a required output and ``null`` for an optional one. Every
File output gets its size and sha1 checksum.
"""

from __future__ import annotations

import glob as globbing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from faice.red.model import Cli, CliOutput
from faice.red.paths import OUTPUTS_DIR, resolve_references


class OutputError(Exception):
    pass


class FoundOutput(NamedTuple):
    """An output found after the tool ran: its file (if any), size and checksum; an array output
    (CWL) has no file of its own but ``items``, one found output per match."""

    key: str
    cls: str  # File, Directory, stdout, stderr
    path: Path | None
    size: int | None = None
    checksum: str | None = None
    items: tuple[FoundOutput, ...] | None = None

    def to_json(self, outdir: Path) -> Any:
        if self.items is not None:
            return [item.to_json(outdir) for item in self.items]
        return {"class": self.cls, "path": str(self.path) if self.path else None, "size": self.size, "checksum": self.checksum}


def each_recorded(outputs: dict[str, Any]) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """A batch's recorded outputs one by one, in the record's order: (key, the index in an array
    output (CWL ``File[]``) or None, the found output as :meth:`FoundOutput.to_json` wrote it)."""
    for key, value in outputs.items():
        for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            if isinstance(item, dict):
                yield key, index, item


def stream_file_name(cli: Cli, stream: str) -> str | None:
    """The file a stdout/stderr stream is written to: cli.stdout/stderr, or named after its output."""
    named = cli.stdout if stream == "stdout" else cli.stderr
    if named:
        return named
    key = next((o.key for o in cli.outputs if o.type == stream), None)
    return f"{key}.{stream}" if key else None


def sha1_of(path: Path) -> str:
    """A file's RED checksum, ``sha1$`` and its SHA-1."""
    from faice.cache.content import file_digest  # here: hashlib (OpenSSL) is some 3 ms that a run without File outputs need not pay

    return f"sha1${file_digest(path, 'sha1')}"


def find_output(output: CliOutput, cli: Cli, outdir: Path, values: dict[str, Any]) -> FoundOutput:
    if output.type in ("stdout", "stderr"):
        name = stream_file_name(cli, output.type)
        path = outdir / name if name else None
        if path is None or not path.is_file() or path.is_symlink() or not _inside(outdir, path):
            raise OutputError(f'output "{output.key}": the {output.type} file was not written')
        return FoundOutput(output.key, output.type, path, path.stat().st_size, sha1_of(path))
    if output.globs:
        patterns = list(output.globs)
    else:
        try:
            patterns = [resolve_references(output.glob or "", values)]
        except ValueError as exc:
            raise OutputError(f'output "{output.key}": {exc}') from None
    want_dir = output.type == "Directory"
    matches: list[str] = []
    for pattern in patterns:
        if pattern.rstrip("/") in (".", "") and output.globs:  # CWL's glob "." (or $(runtime.outdir)): the output directory itself
            matches += ["."] if want_dir else []
            continue
        globbed = globbing.glob(pattern, root_dir=outdir)
        matched = sorted(m for m in globbed if (outdir / m).is_dir() == want_dir and _inside(outdir, outdir / m))
        leaving = sorted(m for m in globbed if not _inside(outdir, outdir / m))
        if leaving and not matched:
            raise OutputError(f'output "{output.key}": glob "{pattern}" matched {leaving[0]}, a link that leads out of the output directory (never taken)')
        matches += matched  # each pattern's matches in turn, as cwltool lists them (a file two patterns match: twice)
    shown_glob = " ".join(patterns)
    if output.array:
        return FoundOutput(output.key, output.type, None, items=tuple(_found(output, outdir if m == "." else outdir / m) for m in matches))
    if not matches:
        if output.optional:
            return FoundOutput(output.key, output.type, None)
        raise OutputError(f'required output "{output.key}": glob "{shown_glob}" matched no {"directory" if want_dir else "file"} in {OUTPUTS_DIR}')
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise OutputError(f'output "{output.key}": glob "{shown_glob}" matched {len(matches)} entries ({shown}); it must match exactly one')
    return _found(output, outdir if matches[0] == "." else outdir / matches[0])


def _found(output: CliOutput, path: Path) -> FoundOutput:
    if output.type == "Directory":
        return FoundOutput(output.key, output.type, path, tree_size(path))
    return FoundOutput(output.key, output.type, path, path.stat().st_size, sha1_of(path))


def _inside(root: Path, path: Path) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def tree_size(path: Path) -> int:
    """A Directory output's size: its files' (links followed), as recorded and as the API checks it."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def find_outputs(cli: Cli, outdir: Path, values: dict[str, Any]) -> tuple[dict[str, FoundOutput], list[str]]:
    """Every declared output; problems are collected, not raised, so all of them are reported."""
    found: dict[str, FoundOutput] = {}
    problems: list[str] = []
    for output in cli.outputs:
        try:
            found[output.key] = find_output(output, cli, outdir, values)
        except OutputError as exc:
            problems.append(str(exc))
    return found, problems
