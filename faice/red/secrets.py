"""Protected keys and secret values: what must never be stored, logged or shown.

A key is protected when it is ``password`` or ``privateKey`` or starts with ``_``; everything
below it is secret. Everything below an ``auth`` key, and every value filled into a
``{{variable}}``, is treated as secret as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "********"
PROTECTED_NAMES = frozenset({"password", "privateKey"})
CREDENTIAL_BLOCKS = frozenset({"access", "auth"})


def is_protected_key(key: Any) -> bool:
    return isinstance(key, str) and (key in PROTECTED_NAMES or key.startswith("_"))


def secret_values(data: Any, filled: Iterable[str] = ()) -> set[str]:
    """Strings that must be masked: values under protected keys or ``auth``, and filled variables."""
    found = {v for v in filled if isinstance(v, str) and v}

    def collect(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                collect(value, secret or is_protected_key(key) or key == "auth")
        elif isinstance(node, list):
            for item in node:
                collect(item, secret)
        elif secret and node is not None and not isinstance(node, bool):
            text = str(node)
            if text:
                found.add(text)

    collect(data, False)
    return found


def strip_protection(data: Any) -> Any:
    """A copy with the leading ``_`` removed from protected keys, as connectors expect them."""
    if isinstance(data, dict):
        return {(k[1:] if isinstance(k, str) and k.startswith("_") else k): strip_protection(v) for k, v in data.items()}
    if isinstance(data, list):
        return [strip_protection(v) for v in data]
    return data


#: Shorter values are not masked: replacing every "run" or "x" would garble all output and, by
#: where the stars appear, give the value away anyway.
MIN_MASKED_LENGTH = 4


class Masker:
    """Replaces every secret value in a text by ``********`` (longest first, regex-safe)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= MIN_MASKED_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)


def redact(data: Any, secret: bool = False, mask: Callable[[str], str] | None = None) -> Any:
    """A copy safe to store or show: every value inside access/auth blocks and protected keys
    masked; with ``mask`` (a :class:`Masker`), secret values elsewhere too, in the same copy (a
    large document is copied once, not twice)."""
    if isinstance(data, dict):
        return {k: redact(v, secret or k in CREDENTIAL_BLOCKS or is_protected_key(k), mask) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v, secret, mask) for v in data]
    if secret and data is not None:
        return MASK
    return mask(data) if mask is not None and isinstance(data, str) else data
