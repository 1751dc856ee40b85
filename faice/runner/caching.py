"""The result cache as a batch's run sees it: the batch's key from its plan and inputs.

A key is known before anything is staged when every input can be hashed where it is: a file
or directory on this machine (a file's hash remembered by its path, size, mtime, ctime, inode
and device, so an unchanged file is read once), or a remote one whose RED value gives a
checksum (the content the tool would get, or its batch would fail). Otherwise, and for local
inputs whose value gives a size, checksum or listing that staging checks, the inputs are
staged first and hashed as delivered. A batch with a writable mount is never cached: the tool
may change what it reads. A local input changed while its batch ran makes the result unfit to
store: the inputs on this machine are looked at again when the container has ended.

No secret enters the parts: argv items that carry one, the values of access fields and of the
environment, and the paths of remembered hashes are HMAC fingerprints (faice.cache.results).
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


class Watched(NamedTuple):
    """A local input as it was when its batch was keyed: a file by its stat, a directory by its tree's hash."""

    label: str
    path: Path
    stat: FileStat | None
    sha256: str


class Keyed(NamedTuple):
    """A batch's cache key, the parts it hashes (stored with the batch for ``faice why``) and
    the local inputs to look at again before its result is stored."""

    key: str
    parts: dict[str, Any]
    watched: tuple[Watched, ...] = ()


def file_stat(path: Path | str) -> FileStat:
    info = os.stat(path)
    return FileStat(info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns, info.st_dev)


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
        contents, watched = [], []
        for staged in plan.staged:
            if self._mounted(staged):
                return None
            source = registry.connector(staged.connector.command).local_source(strip_protection(staged.connector.access), self.context)
            if source is not None and _declares_content(plan.values.get(staged.key), staged.index):
                return None  # staging checks a local input against the size, checksum or listing its value gives
            if source is not None:
                try:
                    seen = self.local(_label(staged), source)
                except OSError:
                    return None  # staging says what is wrong with it
                watched.append(seen)
                sha = seen.sha256
            else:
                sha = _declared_checksum(plan.values.get(staged.key), staged.index)
                if sha is None:
                    return None
            contents.append(self._content(staged, sha))
        return self._keyed(plan, contents, watched)

    def after_staging(self, plan: BatchPlan, sources: list[Path]) -> Keyed:
        """The key from the inputs as delivered (``sources``, in the order of ``plan.staged``)."""
        contents, watched = [], []
        for staged, source in zip(plan.staged, sources, strict=True):
            local = None if self._mounted(staged) else registry.connector(staged.connector.command).local_source(
                strip_protection(staged.connector.access), self.context)
            if local is not None:
                seen = self.local(_label(staged), source)
                watched.append(seen)
                sha = seen.sha256
            else:
                sha = tree_sha256(source) if source.is_dir() else file_sha256(source)
            contents.append(self._content(staged, sha))
        return self._keyed(plan, contents, watched)

    def changed(self, keyed: Keyed) -> str | None:
        """The first local input that is not what it was when the batch was keyed (the tool ran on
        something else, or on a mix): its label; None when all are unchanged."""
        for seen in keyed.watched:
            try:
                if seen.stat is not None and file_stat(seen.path) != seen.stat:
                    return seen.label
                if seen.stat is None and tree_sha256(seen.path) != seen.sha256:
                    return seen.label
            except OSError:
                return seen.label
        return None

    def local(self, label: str, path: Path) -> Watched:
        """A local input's hash (a file's remembered while its stat says it is unchanged) and what says so."""
        if path.is_dir():
            return Watched(label, path, None, tree_sha256(path))
        resolved = os.path.realpath(path)
        stat = file_stat(resolved)
        where = self.results.fingerprint(resolved)  # the path may hold a filled variable
        known = self.store.remembered_sha256(where, stat)
        if known is not None:
            return Watched(label, Path(resolved), stat, known)
        sha = file_sha256(resolved)
        if time.time_ns() - stat.mtime_ns > RACY_SECONDS * 1e9 and file_stat(resolved) == stat:
            self.store.remember_sha256(where, stat, sha)
        return Watched(label, Path(resolved), stat, sha)

    def _mounted(self, staged: StagedInput) -> bool:
        return staged.connector.mount and self.mount

    def _content(self, staged: StagedInput, sha: str) -> InputContent:
        access = {k: self.results.fingerprint(v) for k, v in staged.connector.access.items() if not is_protected_key(k)}
        return InputContent(staged.key, staged.index, staged.kind, sha, staged.connector.command, access)

    def _keyed(self, plan: BatchPlan, contents: list[InputContent], watched: list[Watched]) -> Keyed:
        cli = plan.cli
        parts = key_parts(
            image_id=self.image_id,
            # an item that holds a secret is keyed by its fingerprint: "the same but for a secret" is another argv
            argv=[a if self.mask(a) == a else f"fingerprint:{self.results.fingerprint(a)}" for a in plan.argv],
            environment={k: self.results.fingerprint(v) for k, v in {**self.environment, **plan.environment}.items()},
            gpus=self.gpus,
            network=self.network,
            user=self.user,
            inputs=contents,
            outputs=cli.outputs,
            streams={"stdout": cli.stdout, "stderr": cli.stderr, **({"stdin": plan.stdin} if plan.stdin else {})},
            exit_codes=plan.exit_codes,
        )
        return Keyed(batch_key(parts), parts, tuple(watched))


def _label(staged: StagedInput) -> str:
    return staged.key if staged.index is None else f"{staged.key}[{staged.index}]"


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
