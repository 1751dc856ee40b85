"""The result cache as a batch's run sees it: the batch's key from its plan and inputs.

A key is known before anything is staged when every input can be hashed where it is: a file
or directory on this machine (a file's hash remembered by path, size, mtime and inode, so an
unchanged file is read once), or a remote one whose RED value gives a checksum (the content the
tool would get, or its batch would fail). Otherwise, and for local inputs whose value gives a
size, checksum or listing that staging checks, the inputs are staged first and hashed as delivered. A batch with a
writable mount is never cached: the tool may change what it reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from faice.cache.content import file_sha256, tree_sha256
from faice.cache.key import InputContent, batch_key, key_parts
from faice.cache.results import ResultCache
from faice.connectors import registry
from faice.connectors.base import Context
from faice.red.model import Experiment
from faice.red.secrets import Masker, is_protected_key, strip_protection
from faice.runner.plan import BatchPlan, StagedInput
from faice.state.cache_tables import FileStat
from faice.state.store import Store

#: a file changed less than this long ago may change again within its mtime's resolution: its hash is not remembered
RACY_SECONDS = 2.0


class Keyed(NamedTuple):
    """A batch's cache key and the parts it hashes (stored with the batch for ``faice why``)."""

    key: str
    parts: dict[str, Any]


class BatchCache:
    """One experiment's batches' keys; shared by the run's threads."""

    def __init__(self, results: ResultCache, store: Store, image_id: str, experiment: Experiment, masker: Masker, context: Context, *,
                 environment: dict[str, str], gpus: Any, network: str | None, user: str, mount: bool) -> None:
        self.results = results
        self.store = store
        self.image_id = image_id
        self.experiment = experiment
        self.mask = masker
        self.context = context
        self.environment = environment
        self.gpus = gpus
        self.network = network
        self.user = user
        self.mount = mount

    def cacheable(self, plan: BatchPlan) -> bool:
        return not any(self._mounted(s) and strip_protection(s.connector.access).get("writable") is True for s in plan.staged)

    def before_staging(self, plan: BatchPlan) -> Keyed | None:
        """The key when every input can be hashed without staging it, else None."""
        contents = []
        for staged in plan.staged:
            if self._mounted(staged):
                return None
            source = registry.connector(staged.connector.command).local_source(strip_protection(staged.connector.access), self.context)
            if source is not None and _declares_content(plan.values.get(staged.key), staged.index):
                return None  # staging checks a local input against the size, checksum or listing its value gives
            if source is not None:
                sha = self.local_sha256(source)
            else:
                sha = _declared_checksum(plan.values.get(staged.key), staged.index)
                if sha is None:
                    return None
            contents.append(self._content(staged, sha))
        return self._keyed(plan, contents)

    def after_staging(self, plan: BatchPlan, sources: list[Path]) -> Keyed:
        """The key from the inputs as delivered (``sources``, in the order of ``plan.staged``)."""
        contents = []
        for staged, source in zip(plan.staged, sources, strict=True):
            local = None if self._mounted(staged) else registry.connector(staged.connector.command).local_source(
                strip_protection(staged.connector.access), self.context)
            sha = self.local_sha256(source) if local is not None else (tree_sha256(source) if source.is_dir() else file_sha256(source))
            contents.append(self._content(staged, sha))
        return self._keyed(plan, contents)

    def local_sha256(self, path: Path) -> str:
        """A local input's hash: a file's remembered while it keeps its size, mtime and inode."""
        if path.is_dir():
            return tree_sha256(path)
        resolved = os.path.realpath(path)
        info = os.stat(resolved)
        stat = FileStat(info.st_size, info.st_mtime_ns, info.st_ino)
        known = self.store.remembered_sha256(resolved, stat)
        if known is not None:
            return known
        sha = file_sha256(resolved)
        if time.time_ns() - info.st_mtime_ns > RACY_SECONDS * 1e9 and os.stat(resolved).st_mtime_ns == info.st_mtime_ns:
            self.store.remember_sha256(resolved, stat, sha)
        return sha

    def _mounted(self, staged: StagedInput) -> bool:
        return staged.connector.mount and self.mount

    def _content(self, staged: StagedInput, sha: str) -> InputContent:
        access = {k: self.results.fingerprint(self.mask(v) if isinstance(v, str) else v)
                  for k, v in staged.connector.access.items() if not is_protected_key(k)}
        return InputContent(staged.key, staged.index, staged.kind, sha, staged.connector.command, access)

    def _keyed(self, plan: BatchPlan, contents: list[InputContent]) -> Keyed:
        cli = self.experiment.cli
        parts = key_parts(
            image_id=self.image_id,
            argv=[self.mask(a) for a in plan.argv],
            environment={k: self.results.fingerprint(v) for k, v in self.environment.items()},
            gpus=self.gpus,
            network=self.network,
            user=self.user,
            inputs=contents,
            outputs=cli.outputs,
            streams={"stdout": cli.stdout, "stderr": cli.stderr},
        )
        return Keyed(batch_key(parts), parts)


def _item(value: Any, index: int | None) -> Any:
    return value[index] if isinstance(value, list) and index is not None else value


def _declares_content(value: Any, index: int | None) -> bool:
    value = _item(value, index)
    return isinstance(value, dict) and any(k in value for k in ("checksum", "size", "listing"))


def _declared_checksum(value: Any, index: int | None) -> str | None:
    """The checksum a RED file gives for an input (``sha1$...``): staging fails unless the delivered content has it."""
    value = _item(value, index)
    checksum = value.get("checksum") if isinstance(value, dict) else None
    return checksum if isinstance(checksum, str) and "$" in checksum else None
