"""Typed model of a validated RED document.

Validation works on the raw data (it must cope with anything); everything after it works on
these records, built only from data that passed validation: immutable parts as NamedTuples (a
frozen dataclass costs six generated methods at every start of faice), the experiment and its
batches as dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

SCALAR_TYPES = ("string", "int", "long", "float", "double", "boolean")
FILE_TYPES = ("File", "Directory")
BASE_TYPES = FILE_TYPES + SCALAR_TYPES
OUTPUT_TYPES = ("File", "Directory", "stdout", "stderr")


class CwlType(NamedTuple):
    """An input type of the RED-CWL subset: ``T``, ``T[]``, ``T?`` or ``T[]?``."""

    name: str
    array: bool = False
    optional: bool = False

    @classmethod
    def parse(cls, text: Any) -> CwlType | None:
        if not isinstance(text, str):
            return None
        optional = text.endswith("?")
        core = text[:-1] if optional else text
        array = core.endswith("[]")
        name = core[:-2] if array else core
        return cls(name, array, optional) if name in BASE_TYPES else None

    @property
    def is_file_like(self) -> bool:
        return self.name in FILE_TYPES

    def __str__(self) -> str:
        return self.name + ("[]" if self.array else "") + ("?" if self.optional else "")


class InputBinding(NamedTuple):
    """Where and how a CWL input appears on the command line."""

    position: int = 0
    prefix: str | None = None
    separate: bool = True
    item_separator: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> InputBinding:
        return cls(
            position=data.get("position", 0),
            prefix=data.get("prefix"),
            separate=data.get("separate", True),
            item_separator=data.get("itemSeparator"),
        )


class CliInput(NamedTuple):
    """One input of the tool: its key, CWL type and command-line binding."""

    key: str
    type: CwlType
    binding: InputBinding


class CliOutput(NamedTuple):
    """One output of the tool: a File or Directory found by glob, or its stdout or stderr."""

    key: str
    type: str  # File, Directory, stdout or stderr
    optional: bool = False
    glob: str | None = None
    #: a CWL array output (``File[]``, ``Directory[]``): every match, none is an empty list
    array: bool = False
    #: a CWL output's patterns, evaluated already (their matches in order); a RED output has its one ``glob``
    globs: tuple[str, ...] = ()


class Cli(NamedTuple):
    """The CWL CommandLineTool of a RED file: what faice needs to build the command line and find outputs."""

    base_command: tuple[str, ...]
    inputs: tuple[CliInput, ...]
    outputs: tuple[CliOutput, ...]
    stdout: str | None = None
    stderr: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Cli:
        base = data.get("baseCommand")
        base_command = () if base is None else (base,) if isinstance(base, str) else tuple(base)
        inputs = []
        for key, spec in (data.get("inputs") or {}).items():
            cwl_type = CwlType.parse(spec.get("type"))
            if cwl_type is None:
                raise ValueError(f"cli.inputs.{key}: unknown type {spec.get('type')!r}")
            inputs.append(CliInput(key, cwl_type, InputBinding.from_data(spec.get("inputBinding") or {})))
        outputs = []
        for key, spec in (data.get("outputs") or {}).items():
            text = spec["type"]
            optional = text.endswith("?")
            glob = (spec.get("outputBinding") or {}).get("glob")
            outputs.append(CliOutput(key, text.rstrip("?"), optional, glob))
        return cls(tuple(base_command), tuple(inputs), tuple(outputs), data.get("stdout"), data.get("stderr"))


class Connector(NamedTuple):
    """A connector block: the command that moves the data and its access data (variables filled)."""

    command: str
    access: dict[str, Any]
    mount: bool = False

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Connector:
        return cls(data["command"], data.get("access") or {}, bool(data.get("mount", False)))


class Engine(NamedTuple):
    """A container or execution engine block: its name and settings."""

    engine: str
    settings: dict[str, Any]

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> Engine | None:
        return None if data is None else cls(data["engine"], data.get("settings") or {})


class ContainerSettings(NamedTuple):
    """The docker container engine's settings: image, registry login, memory limit and GPUs."""

    image: str
    image_auth: dict[str, Any] | None = None
    ram: int | None = None  # MiB
    gpus: dict[str, Any] | None = None

    @classmethod
    def from_engine(cls, engine: Engine) -> ContainerSettings:
        image = engine.settings["image"]
        return cls(image["url"], image.get("auth"), engine.settings.get("ram"), engine.settings.get("gpus"))


@dataclass
class BatchJob:
    """One batch: the job inputs and outputs exactly as the file gives them."""

    index: int
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Experiment:
    """A validated RED document, ready to plan."""

    cli: Cli
    container: ContainerSettings
    execution: Engine | None
    batches: list[BatchJob]
    retries: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def batch_concurrency_limit(self) -> int | None:
        if self.execution is None:
            return None
        return self.execution.settings.get("batchConcurrencyLimit")


def job_sections(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any, Any]]:
    """(path, inputs, outputs) of every batch, for either form of a RED file."""
    if "batches" in data:
        batches = data["batches"] if isinstance(data["batches"], list) else []
        return [
            (("batches", i), b.get("inputs"), b.get("outputs")) if isinstance(b, dict) else (("batches", i), None, None)
            for i, b in enumerate(batches)
        ]
    return [((), data.get("inputs"), data.get("outputs"))]


def experiment_from_data(data: dict[str, Any], retries: int | None = None) -> Experiment:
    """Build the model from data that passed validation."""
    container = Engine.from_data(data["container"])
    assert container is not None
    batches = [
        BatchJob(i, inputs or {}, outputs or {})
        for i, (_, inputs, outputs) in enumerate(job_sections(data))
    ]
    return Experiment(
        cli=Cli.from_data(data["cli"]),
        container=ContainerSettings.from_engine(container),
        execution=Engine.from_data(data.get("execution")),
        batches=batches,
        retries=retries,
        raw=data,
    )
