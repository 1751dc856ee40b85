"""A batch's cache key: the hash of everything that decides what the batch makes, and of nothing else.

In the key: the cache format; the image's ID, not its tag (a tag retagged to another image is
another image: the peers that key on the tag serve the old image's results); the argv; what the
container shows the tool besides its inputs (the environment passed in, the GPUs asked for, the
network mode, the user it runs as); every input's content hash with its connector's name and
access fields; the tool's output declarations and the files its streams go to. Not in it: memory and time limits (they decide
whether a batch ends, not what it makes), faice's ids and labels, and secrets: the values of
access fields and of the environment arrive as fingerprints (faice.cache.results), protected
keys left out, so the key parts can be stored and compared (``faice why``), never read.

The key is the SHA-256 of the parts as canonical JSON (sorted keys, no spaces), so it does not
depend on the order a file lists its inputs or outputs in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from faice.red.model import CliOutput

#: changes whenever what goes into a key changes: every earlier entry is then a miss
FORMAT = 1


class InputContent(NamedTuple):
    """One staged input as the key sees it: where it goes, what it holds, who fetched it from where."""

    key: str
    index: int | None  # the item of an array input, else None
    kind: str  # File or Directory
    sha256: str  # of the content (a directory: of its tree)
    connector: str
    access: Mapping[str, Any]  # redacted and masked: never a secret


def key_parts(*, image_id: str, argv: Iterable[str], environment: Mapping[str, str], gpus: Any, network: str | None, user: str,
              inputs: Iterable[InputContent], outputs: Iterable[CliOutput], streams: Mapping[str, str | None] | None = None,
              exit_codes: Iterable[Iterable[int]] = ()) -> dict[str, Any]:
    """The parts of a batch's key, as plain JSON data (stored beside the entry for ``faice why``)."""
    return {
        "format": FORMAT,
        "image": image_id,
        "argv": list(argv),
        "environment": dict(environment),
        "gpus": gpus,
        "network": network,
        "user": user,
        "inputs": sorted(({"key": i.key, "index": i.index, "kind": i.kind, "sha256": i.sha256, "connector": i.connector, "access": dict(i.access)}
                          for i in inputs), key=lambda i: (i["key"], -1 if i["index"] is None else i["index"])),
        "outputs": sorted(({"key": o.key, "type": o.type, "optional": o.optional, "glob": o.glob,
                            **({"array": o.array, "globs": list(o.globs)} if o.array or o.globs else {})} for o in outputs), key=lambda o: o["key"]),
        "streams": dict(streams or {}),  # the files cli.stdout and cli.stderr name
        **({"exitCodes": [list(c) for c in exit_codes]} if any(exit_codes) else {}),  # CWL's successCodes and fail lists
    }


def canonical(parts: Mapping[str, Any]) -> bytes:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def batch_key(parts: Mapping[str, Any]) -> str:
    """The key of a batch with these parts: 64 hex characters."""
    return hashlib.sha256(canonical(parts)).hexdigest()


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two batches' key parts, a phrase each, in the order of the parts:
    ``faice why``'s answer to "why did this batch not hit the cache"."""
    found = []
    for part in dict.fromkeys([*old, *new]):  # key_parts' order
        if part == "inputs":
            found += _input_differences(old.get("inputs") or [], new.get("inputs") or [])
        elif part == "argv" and isinstance(old.get(part), list) and isinstance(new.get(part), list) and len(old[part]) == len(new[part]):
            found += [f"argv[{i}]: {_shown(a)} -> {_shown(b)}" for i, (a, b) in enumerate(zip(old[part], new[part], strict=True)) if a != b]
        elif part == "environment":
            found += [f"environment {change}" for change in _fingerprint_changes(old.get(part) or {}, new.get(part) or {})]
        elif old.get(part) != new.get(part):
            found.append(f"{part}: {_shown(old.get(part))} -> {_shown(new.get(part))}")
    return found


def _label(entry: Mapping[str, Any]) -> str:
    return entry["key"] if entry.get("index") is None else f"{entry['key']}[{entry['index']}]"


def _input_differences(old: list[Mapping[str, Any]], new: list[Mapping[str, Any]]) -> list[str]:
    before, after = {_label(i): i for i in old}, {_label(i): i for i in new}
    found = []
    for label in sorted(set(before) | set(after)):
        if label not in before or label not in after:
            found.append(f"input {label}: {'added' if label in after else 'removed'}")
            continue
        changes = _fingerprint_changes(before[label].get("access") or {}, after[label].get("access") or {})
        found += [f"input {label}: access {change}" for change in changes]
        for field in ("kind", "sha256", "connector"):
            if before[label].get(field) != after[label].get(field):
                if field == "sha256":  # a hash's first twelve digits tell two contents apart for a reader
                    found.append(f"input {label}: content {str(before[label].get(field))[:12]} -> {str(after[label].get(field))[:12]}")
                else:
                    found.append(f"input {label}: {field} {_shown(before[label].get(field))} -> {_shown(after[label].get(field))}")
    return found


def _fingerprint_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Which names of a mapping of fingerprints (environment variables, access fields) were
    added, removed or changed: their values are not to be read."""
    return [f"{name} {'added' if name not in old else 'removed' if name not in new else 'changed'}"
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
