"""Removing experiments that are over: their records, the logs captured beside the state file, and
their outputs (``faice rm``, ``faice prune``), and what they take on disk (``faice list``/``show``).

An exec run's outputs are removed only where its marker file names the experiment: a directory
that a later run took over, or that someone put elsewhere, is never touched. faice serve's outputs
(``outputs/EXPERIMENT_ID`` beside the state file) are faice's own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faice.errors import InvalidInput
from faice.state.store import Store, logs_dir, outputs_dir

#: the file faice leaves in every output directory it makes, naming the experiment
MARKER = ".faice-outputs"
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` in seconds."""
    found = DURATION.match(text.strip())
    if not found:
        raise InvalidInput(f'"{text}" is not a duration: a number and s, m, h, d or w (like 30d)')
    return float(found.group(1)) * SECONDS[found.group(2)]


@dataclass
class Footprint:
    """What an experiment has on disk."""

    experiment_id: str
    logs: list[str] = field(default_factory=list)
    outputs: Path | None = None
    log_bytes: int = 0
    output_bytes: int = 0

    @property
    def bytes(self) -> int:
        return self.log_bytes + self.output_bytes

    def to_json(self) -> dict[str, Any]:
        return {"experimentId": self.experiment_id, "diskBytes": self.bytes, "logBytes": self.log_bytes, "outputBytes": self.output_bytes,
                "outputs": str(self.outputs) if self.outputs else None}


def _tree_bytes(path: Path) -> int:
    """Bytes of the files below ``path`` (links are counted, never followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def marked_experiment(path: Path) -> str | None:
    """The experiment whose outputs a directory faice made holds (its marker says), if any."""
    try:
        return (path / MARKER).read_text().strip() or None
    except OSError:
        return None


def outputs_of(store: Store, experiment: dict[str, Any]) -> Path | None:
    """The experiment's output set, when it is there and its own."""
    served = outputs_dir(store.path) / experiment["id"]
    if experiment.get("runner") == "serve":
        return served if served.is_dir() else None
    recorded = experiment.get("outdir")
    if recorded and os.path.isdir(recorded) and not os.path.islink(recorded) and marked_experiment(Path(recorded)) == experiment["id"]:
        return Path(recorded)
    return None


def footprint(store: Store, experiment: dict[str, Any]) -> Footprint:
    """What ``experiment`` (a record of the store's, its RED data not needed) takes on disk."""
    found = Footprint(experiment["id"])
    logs = str(logs_dir(store.path))
    for batch_id in store.batch_ids(experiment["id"]):
        for stream in ("stdout", "stderr", "stdout.partial", "stderr.partial"):  # .partial: an attempt's, left by a killed run
            path = os.path.join(logs, f"{batch_id}.{stream}")  # as log_path; os.path: a list of many batches stays fast
            try:
                found.log_bytes += os.stat(path).st_size
                found.logs.append(path)
            except OSError:
                continue
    found.outputs = outputs_of(store, experiment)
    if found.outputs is not None:
        found.output_bytes = _tree_bytes(found.outputs)
    return found


def remove(store: Store, experiment_ids: list[str], dry_run: bool = False) -> list[Footprint]:
    """Remove finished experiments with their logs and outputs; what was (or would be) removed.

    Every id is checked before anything goes: an unknown one, or one still running, removes nothing.
    """
    records = []
    for experiment_id in experiment_ids:
        record = store.experiment(experiment_id, red=False)
        if record is None:
            raise InvalidInput(f'no experiment with id "{experiment_id}" in {store.path}')
        if store.has_open_batches(experiment_id):
            raise InvalidInput(f"experiment {experiment_id} has batches that have not finished: cancel it first (faice cancel {experiment_id})")
        records.append(record)
    removed = []
    for record in records:
        experiment_id = record["id"]
        found = footprint(store, record)
        if not dry_run:
            if found.outputs is not None:
                shutil.rmtree(found.outputs)
            for path in found.logs:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            store.delete_experiment(experiment_id)
        removed.append(found)
    return removed


def prune(store: Store, older_than: float, states: tuple[str, ...] | None = None, dry_run: bool = False) -> list[Footprint]:
    """``remove`` every finished experiment made more than ``older_than`` seconds ago (of those ``states``)."""
    return remove(store, store.finished_before(time.time() - older_than, states), dry_run)
