"""Planning: from a validated experiment to what each batch will run, before anything runs.

A plan fixes every input's path inside the container and the exact argv, so ``--dry-run``
shows precisely what ``faice exec`` would start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faice.connectors import registry
from faice.red.cmdline import build_argv
from faice.red.model import Connector, Experiment
from faice.red.paths import complete_file_value
from faice.red.secrets import strip_protection


@dataclass(frozen=True)
class StagedInput:
    """One File or Directory a connector must deliver before the batch starts."""

    key: str
    index: int | None
    kind: str
    connector: Connector
    container_path: str
    listing: list[Any] | None = None


@dataclass
class BatchPlan:
    index: int
    image: str
    argv: list[str]
    values: dict[str, Any]
    staged: list[StagedInput]


def _default_basename(connector: dict[str, Any]) -> str | None:
    plugin = registry.plugin(connector.get("command", ""))
    if plugin is None:
        return None
    return plugin.default_basename(strip_protection(connector.get("access") or {}))


def _complete(key: str, value: Any, index: int | None, staged: list[StagedInput]) -> Any:
    if not isinstance(value, dict):
        return value
    connector = value.get("connector") or {}
    completed = complete_file_value(key, value, index, _default_basename(connector))
    staged.append(StagedInput(key, index, value["class"], Connector.from_data(connector), completed["path"], value.get("listing")))
    return completed


def plan_batch(experiment: Experiment, index: int) -> BatchPlan:
    batch = experiment.batches[index]
    staged: list[StagedInput] = []
    values: dict[str, Any] = {}
    for key, value in batch.inputs.items():
        if isinstance(value, list):
            values[key] = [_complete(key, item, i, staged) for i, item in enumerate(value)]
        else:
            values[key] = _complete(key, value, None, staged)
    return BatchPlan(index, experiment.container.image, build_argv(experiment.cli, values), values, staged)


def plan(experiment: Experiment) -> list[BatchPlan]:
    return [plan_batch(experiment, i) for i in range(len(experiment.batches))]
