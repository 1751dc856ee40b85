"""CWL parameter references without JavaScript: ``$(inputs.x.path)``, ``$(self[0])``, ``$(runtime.outdir)``.

The rules are cwltool's (cwl_utils ``expression.interpolate`` and ``regex_eval``), not only the
spec's, because faice must build the command line cwltool builds:

* a string is parsed only if it holds ``$(`` or ``${``; then it is stripped of surrounding white
  space, and a string that is exactly one reference keeps the reference's type;
* a reference inside text becomes its JSON (sorted keys, ASCII), a string its plain text;
* backslashes: CWL v1.0 and v1.1 drop a backslash and keep the character after it; v1.2 drops it
  only before ``$(``, ``${`` and another backslash;
* ``.length`` of an array is its length; an index past the end is an error.

Anything else in ``$(...)`` or ``${...}`` is JavaScript: :class:`JavaScriptRequired` names the field,
so the caller can refuse the tool (cwltool runs it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_SYMBOL = r"\w+"
_SEGMENT = rf"""(\.{_SYMBOL}|\['(?:[^']|\\')+'\]|\["(?:[^"]|\\")+"\]|\[[0-9]+\])"""
_SEGMENT_RE = re.compile(_SEGMENT)
_REFERENCE_RE = re.compile(rf"\(({_SYMBOL}){_SEGMENT}*\)$")
_ROOTS = ("inputs", "self", "runtime")
#: CWL versions whose backslash escaping is the old one (cwl_utils ``OLD_ESCAPE_CWL_VERSIONS``)
OLD_ESCAPE_VERSIONS = ("v1.0", "v1.1")


class ExpressionError(ValueError):
    """A CWL expression in ``field`` that faice cannot evaluate; cwltool fails on it too."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class JavaScriptRequired(ExpressionError):
    """``field`` holds JavaScript (``${...}`` or a ``$(...)`` that is not a parameter reference):
    faice does not run it, cwltool does."""


def needs_parsing(text: Any) -> bool:
    """Whether cwltool evaluates ``text`` at all (it returns any other value unchanged)."""
    return isinstance(text, str) and ("$(" in text or "${" in text)


def _scan(text: str) -> tuple[int, int] | None:
    """The next ``$(...)``, ``${...}`` or backslash pair in ``text``, as cwl_utils' scanner finds it."""
    i, start, stack = 0, 0, ["default"]
    while i < len(text):
        c, state = text[i], stack[-1]
        if state == "default":
            if c == "$":
                stack.append("dollar")
            elif c == "\\":
                stack.append("backslash")
        elif state == "backslash":
            stack.pop()
            if stack[-1] == "default":
                return i - 1, i + 1
        elif state == "dollar":
            if c in "({":
                start = i - 1
                stack.append("paren" if c == "(" else "brace")
            else:
                stack.pop()
                i -= 1
        elif state in ("paren", "brace"):
            opening, closing = ("(", ")") if state == "paren" else ("{", "}")
            if c == opening:
                stack.append(state)
            elif c == closing:
                stack.pop()
                if stack[-1] == "dollar":
                    return start, i + 1
            elif c in "'\"":
                stack.append(c)
        elif c == state:  # inside a quoted string
            stack.pop()
        elif c == "\\":
            stack.append("backslash")
        i += 1
    if len(stack) > 1 and not (len(stack) == 2 and stack[1] in ("backslash", "dollar")):
        raise ValueError(f"unfinished expression starting at position {start}: {text[start:]!r}")
    return None


def _resolve(root: str, rest: str, value: Any) -> Any:
    """Follow the segments of ``rest`` (``.key``, ``['key']``, ``[0]``) from ``value``."""
    path = root
    while rest:
        match = _SEGMENT_RE.match(rest)
        assert match is not None  # the whole reference matched _REFERENCE_RE
        segment = match.group(1)
        rest = rest[match.end(1) :]
        key: str | int
        if segment[0] == ".":
            key = segment[1:]
        elif segment[1] in "'\"":
            key = segment[2:-2].replace("\\'", "'").replace('\\"', '"')
        else:
            key = int(segment[1:-1])
        if isinstance(key, str):
            if isinstance(value, list) and key == "length" and not rest:
                return len(value)
            if not isinstance(value, Mapping):
                raise ValueError(f"{path} is a {type(value).__name__}, cannot index on string {key!r}")
            if key not in value:
                raise ValueError(f"{path} does not contain key {key!r}")
        else:
            if not isinstance(value, list):
                raise ValueError(f"{path} is a {type(value).__name__}, cannot index on int {key}")
            if key >= len(value):
                raise ValueError(f"{path} list index {key} out of range")
        value = value[key]
        path += segment
    return value


def _reference(text: str, context: Mapping[str, Any], field: str) -> Any:
    """The value of ``(...)`` (the text after ``$``), or JavaScriptRequired."""
    match = _REFERENCE_RE.match(text)
    if match is None or (match.group(1) not in _ROOTS and text != "(null)"):
        raise JavaScriptRequired(field, f"${text} is JavaScript, not a parameter reference")
    if text == "(null)":
        return None
    try:
        return _resolve(match.group(1), text[match.end(1) : -1], context[match.group(1)])
    except ValueError as error:
        raise ExpressionError(field, f"${text}: {error}") from None


def _leaf(value: Any) -> str:
    """A reference's value inside text: its JSON, a string as itself."""
    text = json.dumps(value, sort_keys=True)
    return json.loads(text) if text.startswith('"') else text


def evaluate(text: Any, context: Mapping[str, Any], field: str, version: str) -> Any:
    """``text`` with its parameter references replaced, cwltool's way (see the module docstring).

    ``context`` maps ``inputs``, ``self`` and ``runtime`` to their values; ``field`` names where
    ``text`` is, for errors; ``version`` is the document's original ``cwlVersion``.
    """
    if not needs_parsing(text):
        return text
    scan = text.strip()
    parts: list[str] = []
    try:
        found = _scan(scan)
    except ValueError as error:
        raise JavaScriptRequired(field, str(error)) from None
    while found:
        begin, end = found
        parts.append(scan[:begin])
        if scan[begin] == "$":
            if scan[begin + 1] == "{":
                raise JavaScriptRequired(field, f"{scan[begin:end]} is a JavaScript expression")
            value = _reference(scan[begin + 1 : end], context, field)
            if begin == 0 and end == len(scan) and len(parts) <= 1:
                return value
            parts.append(_leaf(value))
        elif version in OLD_ESCAPE_VERSIONS:
            parts.append(scan[end - 1])
        else:
            escaped = scan[begin : end + 1]
            if escaped in ("\\$(", "\\${"):
                parts.append(escaped[1:])
                end += 1
            elif escaped[1] == "\\":
                parts.append("\\")
            else:
                parts.append(escaped[:2])
        scan = scan[end:]
        try:
            found = _scan(scan)
        except ValueError as error:
            raise JavaScriptRequired(field, str(error)) from None
    parts.append(scan)
    return "".join(parts)


def javascript(text: Any) -> str | None:
    """The first piece of ``text`` that is JavaScript rather than a parameter reference, or None:
    to refuse a tool before any job reaches the field (cwltool evaluates a field only when used)."""
    if not needs_parsing(text):
        return None
    scan = text.strip()
    while True:
        try:
            found = _scan(scan)
        except ValueError:
            return scan
        if found is None:
            return None
        begin, end = found
        piece = scan[begin:end]
        if piece.startswith("${"):
            return piece
        if piece.startswith("$("):
            match = _REFERENCE_RE.match(piece[1:])
            if match is None or (match.group(1) not in _ROOTS and piece != "$(null)"):
                return piece
        scan = scan[end:]
