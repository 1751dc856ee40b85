"""YAML loading built on ruamel.yaml's event stream (libyaml's C parser via ruamel.yaml.clib).

Composing a node graph first (what ruamel and PyYAML loaders do) costs several times the
memory of the resulting data on large batch files. Building plain dicts and lists straight
from parser events keeps the peak close to the size of the data itself. The same event walk,
run again only when there is something to report, maps document paths to line and column.

Scalars resolve by the YAML 1.2 core schema (what ruamel.yaml, and so upstream faice, uses):
``yes``/``on`` stay strings, ``True``/``true`` are booleans, ``010`` is the integer 10.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError, YAMLError

Path = tuple[Any, ...]

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

_TAG = "tag:yaml.org,2002:"


class YamlError(ValueError):
    """A document that is not well-formed YAML, located at a 1-based line and column."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def resolve_plain(value: str) -> Any:
    """Resolve an untagged plain scalar by the YAML 1.2 core schema."""
    if not value or value[0] in "~nNtTfF0123456789+-.":
        if _NULL.match(value):
            return None
        if value in _BOOL:
            return _BOOL[value]
        if _INT10.match(value):
            return int(value)
        if _INT8.match(value):
            return int(value[2:], 8)
        if _INT16.match(value):
            return int(value[2:], 16)
        if _FLOAT.match(value):
            return float(value)
        if _INF.match(value):
            return -math.inf if value[0] == "-" else math.inf
        if _NAN.match(value):
            return math.nan
    return value


def _tagged(tag: str, value: str, event: Any) -> Any:
    name = tag[len(_TAG):] if tag.startswith(_TAG) else None
    if name == "str":
        return value
    if name in ("int", "float", "bool", "null"):
        resolved = resolve_plain(value)
        expected = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}[name]
        if isinstance(resolved, expected) and not (name == "int" and isinstance(resolved, bool)):
            return float(resolved) if name == "float" else resolved
        raise YamlError(f"cannot read {value!r} as !!{name}", *_mark(event))
    raise YamlError(f"unsupported YAML tag {tag!r}", *_mark(event))


#: Integers beyond 64 bits mean nothing in a RED file, and nothing downstream (SQLite, Docker) takes them.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
OUT_OF_RANGE = "a number outside the 64-bit integer range"


def _scalar(event: ev.ScalarEvent) -> Any:
    try:
        if event.tag and event.tag != "!":
            value = _tagged(event.tag, event.value, event)
        else:
            value = resolve_plain(event.value) if event.implicit[0] else event.value
    except ValueError as exc:  # more digits than Python converts (4300)
        if isinstance(exc, YamlError):
            raise
        raise YamlError(OUT_OF_RANGE, *_mark(event)) from None
    if type(value) is int and not INT_MIN <= value <= INT_MAX:
        raise YamlError(OUT_OF_RANGE, *_mark(event))
    return value


def _events(text: str) -> Iterator[Any]:
    """Yield parser events, mapping parser errors to a located YamlError.

    libyaml's C parser is YAML 1.1's: it refuses some YAML 1.2 that ruamel's own parser (and
    cwltool, and upstream faice) read, such as ``{image: busybox:latest}`` (a colon inside a flow
    mapping's plain scalar). Only then is the text parsed again by the pure parser, which goes on
    after the events already given."""
    given = 0
    try:
        for event in YAML(typ="safe").parse(text):
            given += 1
            yield event
        return
    except YAMLError as exc:
        first = exc
    try:
        for n, event in enumerate(YAML(typ="safe", pure=True).parse(text)):
            if n >= given:
                yield event
        return
    except YAMLError as second:
        if _position(second) > _position(first):  # libyaml stopped at what is YAML 1.2: the real error is further on
            first = second
    try:
        raise first
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(f"not valid YAML: {exc.problem or exc.context}", line, column) from None
    except YAMLError as exc:
        raise YamlError(f"not valid YAML: {str(exc).splitlines()[0]}") from None


def _position(exc: YAMLError) -> tuple[int, int]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return (mark.line, mark.column) if mark else (-1, -1)


class _Mapping:
    __slots__ = ("data", "key", "has_key", "merges", "key_event")

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.key: Any = None
        self.has_key = False
        self.merges: list[dict[Any, Any]] | None = None
        self.key_event: Any = None


_COLLECTION_ENDS = (ev.AliasEvent, ev.MappingEndEvent, ev.SequenceEndEvent)

#: Aliases share their anchor's data, but everything that walks, stores or writes the document
#: meets it once per alias: what aliases add is bounded (as hardened YAML loaders do), counting a
#: node as 1 and a string as its length too, so nine lines of nested aliases (a "billion laughs")
#: or one long string aliased thousands of times are refused at once instead of hanging.
EXPANSION_BASE = 1_000_000
EXPANSION_PER_CHARACTER = 10


def load_yaml(text: str) -> Any:
    """Load the single document in ``text`` into plain dicts, lists and scalars.

    Raises YamlError for an alias to a collection that contains it (the data would be a cycle),
    and when what aliases add (nodes, and the length of their strings) comes to more than
    ``EXPANSION_BASE`` plus ``EXPANSION_PER_CHARACTER`` for each character of the text.
    """
    stack: list[Any] = []
    anchors: dict[str, Any] = {}
    root: Any = None
    documents = 0
    # Expanded node counts: one per open collection, and per anchor (a scalar's is 1).
    sizes: list[int] = []
    anchor_sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    expanded = 0
    limit = EXPANSION_BASE + EXPANSION_PER_CHARACTER * len(text)
    Scalar, MapStart, MapEnd = ev.ScalarEvent, ev.MappingStartEvent, ev.MappingEndEvent
    SeqStart, SeqEnd, Alias = ev.SequenceStartEvent, ev.SequenceEndEvent, ev.AliasEvent

    def add(value: Any, event: Any) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        elif not top.has_key:
            if isinstance(value, (dict, list)):
                raise YamlError("mapping keys must be scalars", *_mark(event))
            top.key, top.has_key, top.key_event = value, True, event
        else:
            key = top.key
            top.has_key = False
            if key == "<<" and isinstance(event, _COLLECTION_ENDS):
                _merge_source(top, value, event)
            elif key in top.data:
                raise YamlError(f"duplicate key {key!r}", *_mark(top.key_event))
            else:
                top.data[key] = value

    anchor_of: list[str | None] = []

    def counted(size: int) -> None:
        if sizes:
            sizes[-1] += size

    def opened(event: Any) -> None:
        sizes.append(1)
        anchor_of.append(event.anchor)
        if event.anchor:
            open_anchors.add(event.anchor)

    def closed() -> None:
        size, anchor = sizes.pop(), anchor_of.pop()
        if anchor:
            anchor_sizes[anchor] = size
            open_anchors.discard(anchor)
        counted(size)

    for event in _events(text):
        kind = type(event)
        if kind is Scalar:
            value = _scalar(event)
            weight = 1 + (len(value) if isinstance(value, str) else 0)
            if event.anchor:
                anchors[event.anchor] = value
                anchor_sizes[event.anchor] = weight
            counted(weight)
            add(value, event)
        elif kind is MapStart:
            frame = _Mapping()
            if event.anchor:
                anchors[event.anchor] = frame.data
            opened(event)
            stack.append(frame)
        elif kind is MapEnd:
            frame = stack.pop()
            if frame.merges:
                for source in frame.merges:
                    for key, value in source.items():
                        frame.data.setdefault(key, value)
            closed()
            add(frame.data, event)
        elif kind is SeqStart:
            seq: list[Any] = []
            if event.anchor:
                anchors[event.anchor] = seq
            opened(event)
            stack.append(seq)
        elif kind is SeqEnd:
            closed()
            add(stack.pop(), event)
        elif kind is Alias:
            if event.anchor not in anchors:
                raise YamlError(f"unknown alias *{event.anchor}", *_mark(event))
            if event.anchor in open_anchors:
                raise YamlError(f"alias *{event.anchor} refers to a collection that contains it (the data would never end)", *_mark(event))
            size = anchor_sizes[event.anchor]
            expanded += size
            if expanded > limit:
                raise YamlError(f"aliases expand the document to more than {limit:,} nodes and characters, {EXPANSION_PER_CHARACTER} times its size "
                                "(a YAML alias bomb?); write the data out instead", *_mark(event))
            counted(size)
            add(anchors[event.anchor], event)
        elif kind is ev.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise YamlError("more than one YAML document in the file; a RED file is one document", *_mark(event))
    return root


def _merge_source(frame: _Mapping, value: Any, event: Any) -> None:
    sources = value if isinstance(value, list) else [value]
    if not all(isinstance(s, dict) for s in sources):
        raise YamlError("a merge key '<<' needs a mapping or a list of mappings", *_mark(event))
    frame.merges = (frame.merges or []) + sources


class Location(NamedTuple):
    """A 1-based line and column in a file."""

    line: int
    column: int


def _entries(text: str) -> Iterator[tuple[Path, Any]]:
    """Every node of the YAML text with its path, in document order: a mapping entry at its key,
    any other node at its start. Stops quietly where the text stops being YAML."""
    path: list[Any] = []
    # One frame per open collection: [kind, next index or pending key, expecting key?]
    frames: list[list[Any]] = []
    try:
        for event in _events(text):
            if isinstance(event, (ev.StreamStartEvent, ev.DocumentStartEvent, ev.DocumentEndEvent, ev.StreamEndEvent)):
                continue
            if isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                frames.pop()
                if path and frames:
                    path.pop()
                    _advance(frames[-1])
                continue
            if frames:
                frame = frames[-1]
                if frame[0] == "map" and frame[2]:
                    # A mapping key: remember it, and locate the entry at the key.
                    key = _scalar(event) if isinstance(event, ev.ScalarEvent) else None
                    frame[1], frame[2] = key, False
                    path.append(key)
                    yield tuple(path), event
                    path.pop()
                    continue
                path.append(frame[1])
            yield tuple(path), event
            if isinstance(event, ev.MappingStartEvent):
                frames.append(["map", None, True])
            elif isinstance(event, ev.SequenceStartEvent):
                frames.append(["seq", 0, False])
            elif frames:
                path.pop()
                _advance(frames[-1])
    except YamlError:
        return


def locate(text: str, paths: Iterable[Path]) -> dict[Path, Location]:
    """Find line and column of each path (its key for mapping entries), or of its nearest ancestor.

    Paths use str keys and int list indices, as the loaded data does.
    """
    wanted = set(paths)
    prefixes: set[Path] = set()
    for path in wanted:
        for i in range(len(path) + 1):
            prefixes.add(path[:i])
    found: dict[Path, Location] = {}
    for here, event in _entries(text):
        if here in prefixes and here not in found:
            found[here] = Location(*_mark(event))
    result: dict[Path, Location] = {}
    for wanted_path in wanted:
        for i in range(len(wanted_path), -1, -1):
            if wanted_path[:i] in found:
                result[wanted_path] = found[wanted_path[:i]]
                break
        else:
            result[wanted_path] = Location(1, 1)
    return result


def node_positions(text: str) -> dict[Location, list[Path]]:
    """The paths of what starts at each line and column, shallowest first: a mapping entry at its
    key, any other node where it starts (a list item's mapping and its first key start at the
    same place). ``locate`` the other way round, for tools that report positions only (cwltool)."""
    positions: dict[Location, list[Path]] = {}
    for here, event in _entries(text):
        paths = positions.setdefault(Location(*_mark(event)), [])
        if here not in paths:
            paths.append(here)
    return positions


def _advance(frame: list[Any]) -> None:
    if frame[0] == "map":
        frame[2] = True
    else:
        frame[1] += 1
