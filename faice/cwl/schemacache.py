"""cwltool's CWL schemas, kept on disk between runs.

cwltool loads the schema of a document's version, of the version it updates documents to, and of
v1.0 (for File and Directory) from YAML every time it starts: about a second of pure-Python YAML
parsing, ten times what validating a tool then takes. Loaded once, they are pickled under the
user's cache directory, keyed by the installed cwltool and schema-salad, and put into cwltool's
own in-memory schema cache on later runs (some 0.1 s). A cache that cannot be read or written is
only slower: cwltool then loads the schemas itself, as it always does.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import sys
import zlib
from pathlib import Path
from typing import Any

#: changes the cache key whenever faice changes what it stores
_GENERATION = "1"
#: the key of schema-salad's own metaschema, which every schema is read with
METASCHEMA = "salad-metaschema"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "faice" / "cwl"


def preload(versions: list[str]) -> None:
    """Make cwltool's schemas of ``versions`` (and schema-salad's metaschema) ready in memory:
    from the disk cache where it has them, else loaded by cwltool and then stored there."""
    import schema_salad.schema
    from cwltool import process

    stamp = _stamp()
    if schema_salad.schema.cached_metaschema is None:
        schema_salad.schema.cached_metaschema = _cached(METASCHEMA, stamp, schema_salad.schema.get_metaschema)
    for version in versions:
        if version not in process.SCHEMA_CACHE:
            process.SCHEMA_CACHE[version] = _cached(version, stamp, lambda v=version: process.get_schema(v))


def _cached(name: str, stamp: str, build: Any) -> Any:
    path = cache_dir() / f"{name}-{zlib.crc32(stamp.encode()):08x}.pickle"
    try:
        return pickle.loads(path.read_bytes())  # noqa: S301 - faice's own cache, in the user's own directory
    except Exception:  # noqa: BLE001 - missing, truncated or from another version: build it again
        value = build()
    _store(path, value)
    return value


def _stamp() -> str:
    """Identifies the installed cwltool and schema-salad (and this Python): the cache key."""
    import cwltool
    import schema_salad

    parts = [_GENERATION, sys.implementation.cache_tag or ""]
    for module in (cwltool, schema_salad):
        origin = module.__file__ or ""
        try:
            parts.append(f"{origin}:{os.stat(origin).st_mtime_ns}")
        except OSError:
            parts.append(origin)
    return "\0".join(parts)


def _store(path: Path, value: Any) -> None:
    """Write atomically, readable by the user alone; a cache that cannot be written is only slower."""
    from schema_salad.ref_resolver import NormDict

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # NormDict sets its normalizer in __init__, which pickle's default for dict subclasses skips
    pickler.dispatch_table = {**copyreg.dispatch_table, NormDict: _reduce_normdict}  # type: ignore[dict-item]
    try:
        pickler.dump(value)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass


def _reduce_normdict(value: Any) -> tuple[Any, ...]:
    return type(value), (value.normalize,), None, None, iter(dict(value).items())
