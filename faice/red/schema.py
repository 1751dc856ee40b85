"""faice's JSON Schemas for RED 9, and structural validation against them.

Two engines validate against the same published schema: a validator compiled by
fastjsonschema answers "valid?" quickly (100,000 batches in well under a second, where
jsonschema needs about twenty), and jsonschema is only asked for the full list of located,
readable problems when the answer is no. Compiled code is cached under the user's cache
directory so that small files do not pay for compilation.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import re
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from faice.errors import InvalidInput
from faice.red.problems import Problem

SCHEMA_DIR = FsPath(__file__).with_name("schemas")
SCHEMA_NAMES = ("red", "red-engine-container-docker", "red-engine-execution-ccfaice", "red-engine-execution-ccagency")


def schema_names() -> list[str]:
    return list(SCHEMA_NAMES)


@cache
def schema_text(name: str) -> str:
    if name not in SCHEMA_NAMES:
        raise InvalidInput(f'unknown schema "{name}"; known schemas: {", ".join(SCHEMA_NAMES)} (see "faice schema list")')
    return (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    return json.loads(schema_text(name))


def _cache_dir() -> FsPath:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return FsPath(base) / "faice" / "schemas"


class _Invalid(ValueError):
    """What the compiled validators raise: fastjsonschema's exceptions are replaced by this one, so
    that running them does not import fastjsonschema (some 5 ms of a one-batch ``faice exec``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)


class _NoDecimal:
    """Stands in for decimal.Decimal in the compiled validators' number checks: faice's loaders
    make int and float, never Decimal, and importing decimal costs a millisecond at start-up."""


#: what the compiled code imports, and faice passes in instead
_IMPORTS = re.compile(r"^(from fastjsonschema import JsonSchemaValueException(, JsonSchemaValuesException)?|from decimal import Decimal)$", re.MULTILINE)
#: changes the cache key whenever faice changes what it does to the generated code
_GENERATION = "3"


@cache
def fast_validator(name: str) -> Callable[[Any], Any]:
    """A compiled ``validate(data)`` that raises on the first problem, cached on disk as bytecode."""
    text = schema_text(name)
    key = f"{_GENERATION}\0{_fastjsonschema_stamp()}\0{sys.implementation.cache_tag}\0{text}".encode()
    path = _cache_dir() / f"{name}-{zlib.crc32(key):08x}{len(key):x}.bytecode"
    try:
        code = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        import fastjsonschema

        generated = fastjsonschema.compile_to_code(json.loads(text))
        source = _IMPORTS.sub("", generated)
        if re.search(r"^(from|import) fastjsonschema|\bDecimal\(", source, re.MULTILINE):
            source = generated  # code faice does not know how to run without them: run it as generated
        entry = re.search(r"^def (\w+)\(", source, re.MULTILINE)
        if entry is None:
            raise RuntimeError(f"fastjsonschema generated no validator for schema {name}") from None
        code = compile(f"{source}\n\nvalidate = {entry.group(1)}\n", f"<faice schema {name}>", "exec")
        _store(path, marshal.dumps(code))
    namespace: dict[str, Any] = {"__name__": f"faice_schema_{name.replace('-', '_')}",
                                 "JsonSchemaValueException": _Invalid, "JsonSchemaValuesException": _Invalid, "Decimal": _NoDecimal}
    exec(code, namespace)  # noqa: S102 - code generated from faice's own schema
    return namespace["validate"]


def _fastjsonschema_stamp() -> str:
    """Identifies the installed fastjsonschema without importing it (the cache key changes with it)."""
    spec = importlib.util.find_spec("fastjsonschema")
    origin = spec.origin if spec and spec.origin else ""
    try:
        return f"{origin}:{os.stat(origin).st_mtime_ns}"
    except OSError:
        return origin


def _store(path: FsPath, data: bytes) -> None:
    """Write atomically; a cache that cannot be written is only slower, never an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass


def is_valid(name: str, data: Any) -> bool:
    try:
        fast_validator(name)(data)
    except ValueError:  # _Invalid, or fastjsonschema's own where its code runs as generated
        return False
    return True


def schema_problems(name: str, data: Any, base: tuple[Any, ...] = ()) -> list[Problem]:
    """Every structural problem of ``data`` against schema ``name``, paths prefixed by ``base``."""
    if is_valid(name, data):
        return []
    import jsonschema

    schema = load_schema(name)
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for error in validator.iter_errors(data):
        for path, message in _explain(error, (data, schema)):
            full = base + path
            if full and message.startswith("unknown key") and (full[:-1], full[-1]) in ELSEWHERE:
                message = f'unknown key "{full[-1]}"{ELSEWHERE[(full[:-1], full[-1])]}'
            problems.append(Problem(full, message))
    return problems


#: Keys people put where another engine takes them: what to do instead of a list of allowed keys.
ELSEWHERE = {
    (("execution", "settings"), "batchConcurrencyLimit"): "; it belongs to execution engine ccagency (a cluster's limit): locally, faice exec --jobs N sets how many batches run at once",
    (("execution", "settings"), "retryIfFailed"): "; it belongs to execution engine ccagency in RED 8: locally, faice exec --retries N retries failed batches",
}


def _explain(error: Any, root: tuple[Any, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Turn a jsonschema error into (path, message) pairs a person can act on."""
    path = tuple(error.absolute_path)
    validator = error.validator
    hide = hides_values(path)
    if validator in ("anyOf", "oneOf") and error.context:
        return _explain_alternatives(error, path, root)
    if validator == "additionalProperties":
        extras = _extra_keys(error)
        if extras:
            allowed = sorted(error.schema.get("properties", {}))
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            if error.schema.get("patternProperties"):
                return [(path + (key,), f'key "{key}" may only use letters, digits, "_" and "-"') for key in extras]
            return [(path + (key,), f'unknown key "{key}"{hint}') for key in extras]
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        if path == () and missing == "inputs":
            return [(path, 'the jobs are missing: "inputs" (and "outputs") for one batch, or "batches" for several')]
        return [(path, f'"{missing}" is required here')]
    if validator is None and error.message.startswith("False schema"):
        # jsonschema does not say which property a false schema rejected: find it.
        schema_path = list(error.schema_path)
        parent = _walk(root[0], path)
        if schema_path[-1:] == ["properties"] and isinstance(parent, dict):
            rejected = _walk(root[1], schema_path)
            keys = [k for k, v in rejected.items() if v is False and k in parent and parent[k] is error.instance] if isinstance(rejected, dict) else []
            path = path + tuple(keys[:1])
        if schema_path[:1] == ["then"]:
            return [(path, 'not allowed together with "batches": each batch has its own inputs and outputs')]
        return [(path, "not allowed here")]
    if validator == "const":
        return [(path, f"must be {json.dumps(error.validator_value)}, not {_show(error.instance, hide)}")]
    if validator == "enum":
        choices = ", ".join(json.dumps(v) for v in error.validator_value)
        return [(path, f"must be one of {choices}, not {_show(error.instance, hide)}")]
    if validator == "type":
        return [(path, f"must be {_type_name(error.validator_value)}, not {_kind(error.instance, hide)}")]
    if validator == "minimum":
        return [(path, f"must be at least {error.validator_value}, not {_show(error.instance, hide)}")]
    if validator == "minItems":
        return [(path, "must not be empty")]
    if validator == "minLength":
        return [(path, "must not be an empty string")]
    return [(path, "does not match the schema" if hide else error.message)]


def hides_values(path: tuple[Any, ...]) -> bool:
    """Values under access/auth blocks or protected keys are credentials: never echo them."""
    from faice.red.secrets import is_protected_key

    return any(isinstance(p, str) and (p in ("access", "auth") or is_protected_key(p)) for p in path)


def _explain_alternatives(error: Any, path: tuple[Any, ...], root: tuple[Any, Any]) -> list[tuple[tuple[Any, ...], str]]:
    instance = error.instance
    if instance is None:
        return [(path, "null is not allowed here (leave out optional keys instead)")]
    # A value that names its class is explained by the alternatives for that class alone.
    if isinstance(instance, dict) and isinstance(instance.get("class"), str):
        own = _branches_for_class(error, path)
        if own:
            return [item for e in own for item in _explain(e, root)]
    # Otherwise show the alternative that got deepest into the value.
    from jsonschema.exceptions import best_match

    best = best_match(error.context)
    if best is not None and (best.validator not in ("type",) or len(best.absolute_path) > len(path)):
        return _explain(best, root)
    kinds = sorted({_type_name(e.validator_value) for e in error.context if e.validator == "type"})
    expected = " or ".join(kinds) if kinds else "one of the allowed forms"
    return [(path, f"must be {expected}, not {_kind(instance, hides_values(path))}")]


def _walk(node: Any, parts: Any) -> Any:
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _branches_for_class(error: Any, path: tuple[Any, ...]) -> list[Any]:
    """Errors of the alternatives that accept the value's type and its ``class``."""
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    chosen = []
    for errors in branches.values():
        wrong_type = any(e.validator == "type" and tuple(e.absolute_path) == path for e in errors)
        wrong_class = any(e.validator in ("const", "enum") and tuple(e.absolute_path) == path + ("class",) for e in errors)
        if not wrong_type and not wrong_class:
            chosen.extend(errors)
    return chosen


def _extra_keys(error: Any) -> list[str]:
    schema = error.schema
    props = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [k for k in error.instance if k not in props and not any(re.search(p, str(k)) for p in patterns)]


def _type_name(value: Any) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false", "null": "null"}
    if isinstance(value, list):
        return " or ".join(names.get(v, v) for v in value)
    return names.get(value, str(value))


def _kind(instance: Any, hide: bool = False) -> str:
    if instance is None:
        return "null"
    if hide and not isinstance(instance, (list, dict)):
        return f"a value of type {type(instance).__name__}"
    if isinstance(instance, bool):
        return f"the boolean {json.dumps(instance)}"
    if isinstance(instance, int):
        return f"the integer {instance}"
    if isinstance(instance, float):
        return f"the number {instance}"
    if isinstance(instance, str):
        return f"the string {_show(instance)}"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "a mapping"
    return type(instance).__name__


def _show(value: Any, hide: bool = False) -> str:
    if hide:
        return _kind(value, True)
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
