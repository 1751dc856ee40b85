"""Directories mounted for one batch attempt: where they go, and that they always go away again.

Mount points live in a private directory of their own (``faice-mnt-EXPERIMENT-BATCH-*`` in the
temporary directory), never inside the batch's work directory: that one is deleted recursively,
and a recursive delete through a writable mount would delete the remote files. After the attempt
(succeeded, failed, timed out or cancelled) each mount is unmounted by its connector, checked,
and detached by faice when it is still there; mount points are removed with rmdir only. A run
killed with SIGKILL leaves its mounts behind: the next faice command finds them by their names
(:func:`remove_leftovers`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from faice.connectors import fuse
from faice.connectors.base import Connector, ConnectorError

PREFIX = "faice-mnt-"


class Mounted:
    def __init__(self, experiment_id: str, batch_id: str) -> None:
        self.prefix = f"{PREFIX}{experiment_id}-{batch_id}-"
        self.root: Path | None = None
        self.mounts: list[tuple[Connector, Path]] = []

    def mountpoint(self, label: str) -> Path:
        """A new, empty directory to mount an input at."""
        if self.root is None:
            import tempfile  # here: most batches mount nothing, and tempfile is a millisecond at start-up

            self.root = Path(tempfile.mkdtemp(prefix=self.prefix))
        path = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", label)
        path.mkdir()
        return path

    def add(self, connector: Connector, path: Path) -> None:
        self.mounts.append((connector, path))

    def release(self) -> list[str]:
        """Unmount everything (last mounted first); what could not be unmounted, said."""
        problems = []
        for connector, path in reversed(self.mounts):
            try:
                connector.umount_dir(path)
            except ConnectorError:
                pass  # faice detaches it below; only a mount that stays is a problem
            left = fuse.unmount(path)
            if left:
                problems.append(left)
        self.mounts.clear()
        if self.root is not None:
            _remove_empty(self.root)
        return problems


def _remove_empty(root: Path) -> None:
    """rmdir the mount points and their directory: a mount that stayed keeps its directory."""
    for child in root.iterdir() if root.is_dir() else []:
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        root.rmdir()
    except OSError:
        pass


def remove_leftovers(experiment_id: str) -> list[str]:
    """Unmount what a dead run of the experiment left mounted, and remove its mount directories."""
    marker = f"{PREFIX}{experiment_id}-"
    problems = [problem for path in fuse.leftovers(marker) if (problem := fuse.unmount(path))]
    import tempfile

    for root in Path(tempfile.gettempdir()).glob(marker + "*"):
        if os.path.isdir(root) and not os.path.islink(root):
            _remove_empty(root)
    return problems
