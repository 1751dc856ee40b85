"""The report's files: written whole under a temporary name beside the target and renamed into
place (a reader never sees half a report), owned by the sudo caller when faice runs under sudo."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from faice.errors import InvalidInput
from faice.runner.batch import give_to_invoking_user


def write_text(target: Path, text: str) -> None:
    """``text`` as ``target`` (UTF-8), replacing what is there; a place that cannot be written is bad input (exit 2)."""
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(partial, 0o666 & ~_umask())
        give_to_invoking_user(Path(partial))
        os.replace(partial, target)
    except OSError as exc:
        Path(partial).unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
