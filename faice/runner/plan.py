"""Planning: from a validated experiment to what each batch will run, before anything runs.

A plan fixes every input's path inside the container and the exact argv, so ``--dry-run``
shows precisely what ``faice exec`` would start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from faice.connectors import registry
from faice.red.cmdline import build_argv
from faice.red.model import Cli, Connector, Experiment
from faice.red.paths import complete_file_value
from faice.red.secrets import Masker, strip_protection


class StagedInput(NamedTuple):
    """One File or Directory a connector must deliver before the batch starts."""

    key: str
    index: int | None
    kind: str
    connector: Connector
    container_path: str
    listing: list[Any] | None = None


class ExitCodes(NamedTuple):
    """CWL's exit-code lists: which codes are a success, a failure worth another try, a failure
    for good. Empty lists: 0 is a success, anything else a failure (a RED file's rule)."""

    success: tuple[int, ...] = ()
    temporary_fail: tuple[int, ...] = ()
    permanent_fail: tuple[int, ...] = ()

    def judge(self, code: int) -> str:
        """``success``, ``temporaryFail`` or ``permanentFail``, in cwltool's order of the lists."""
        if code in self.success:
            return "success"
        if code in self.temporary_fail:
            return "temporaryFail"
        if code in self.permanent_fail:
            return "permanentFail"
        return "success" if code == 0 else "permanentFail"

    def retryable(self, code: int) -> bool:
        """Whether a failure with this code is worth another try (``--retries``): any, without
        lists (a RED file's rule); with them, only what they make a temporary failure."""
        return self.judge(code) == "temporaryFail" if any(self) else True


@dataclass
class BatchPlan:
    """What one batch runs: image, argv, input values, the inputs to stage, and the tool's
    description the run reads after the container ends (the outputs to find, the files its
    streams go to): the RED file's cli here; a planner of another format (faice.cwl.plan) gives
    its own, and what a RED file cannot say: the tool's environment, its stdin, its cores."""

    index: int
    image: str
    argv: list[str]
    values: dict[str, Any]
    staged: list[StagedInput]
    cli: Cli
    #: the container's memory limit (MiB), also what the scheduler reserves for it
    ram_mib: int | None = None
    #: CPUs the container may use (CWL ResourceRequirement coresMin); None: no limit
    cores: float | None = None
    #: variables the tool defines for itself (CWL EnvVarRequirement): they win over --preserve-environment
    environment: dict[str, str] = field(default_factory=dict)
    #: the container path of the staged input whose content is the tool's standard input
    stdin: str | None = None
    #: which exit codes are a success (CWL successCodes and the fail lists)
    exit_codes: ExitCodes = ExitCodes()


def _default_basename(connector: dict[str, Any], mask: Masker | None) -> str | None:
    """The connector's natural file name, unless it would carry a secret into the container."""
    plugin = registry.plugin(connector.get("command", ""))
    if plugin is None:
        return None
    name = plugin.default_basename(strip_protection(connector.get("access") or {}))
    return None if name and mask is not None and mask(name) != name else name


def _complete(key: str, value: Any, index: int | None, staged: list[StagedInput], mask: Masker | None) -> Any:
    if not isinstance(value, dict):
        return value
    connector = value.get("connector") or {}
    completed = complete_file_value(key, value, index, _default_basename(connector, mask))
    staged.append(StagedInput(key, index, value["class"], Connector.from_data(connector), completed["path"], value.get("listing")))
    return completed


def plan_batch(experiment: Experiment, index: int, mask: Masker | None = None) -> BatchPlan:
    batch = experiment.batches[index]
    staged: list[StagedInput] = []
    values: dict[str, Any] = {}
    for key, value in batch.inputs.items():
        if isinstance(value, list):
            values[key] = [_complete(key, item, i, staged, mask) for i, item in enumerate(value)]
        else:
            values[key] = _complete(key, value, None, staged, mask)
    return BatchPlan(index, experiment.container.image, build_argv(experiment.cli, values), values, staged, experiment.cli, experiment.container.ram)


def plan(experiment: Experiment, mask: Masker | None = None) -> list[BatchPlan]:
    """Every batch's plan; with ``mask``, no default file name may contain a secret."""
    return [plan_batch(experiment, i, mask) for i in range(len(experiment.batches))]
