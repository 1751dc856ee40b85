"""Load a RED document of a supported version, migrating RED 8 to RED 9 in memory."""

from __future__ import annotations

from typing import Any

from faice.errors import LoadError
from faice.red.problems import LocatedProblem, locate_problems
from faice.red.source import TOO_DEEP, Document, Source, as_mapping, load_mapping, mapping_from_text
from faice.red.validate import ConnectorPolicy, validate_data


def load(location: str) -> Document:
    """Read ``location`` (path, ``-`` or URL); RED 8 comes back migrated, with a notice."""
    return _document(*load_mapping(location))


def load_text(name: str, text: str) -> Document:
    """``load`` for a document's text (``POST /red``), located problems naming ``name``."""
    return _document(*mapping_from_text(name, text))


def document(source: Source, data: Any) -> Document:
    """``load`` for a document already read (``read_source``): it must be a mapping."""
    return _document(*as_mapping(source, data))


def _document(source: Source, data: dict[str, Any]) -> Document:
    doc = Document(source=source, data=data)
    version = data.get("redVersion")
    if version == "8":
        _migrate_8_to_9(doc)
    elif version is not None and version != "9":
        where = source.locate([("redVersion",)])[("redVersion",)]
        hint = ' (quote it: redVersion: "9")' if version in (8, 9) else ""
        raise LoadError(
            source.name,
            f'redVersion: {_show(version)} is not supported; faice reads RED "9", and RED "8" migrated in memory{hint}',
            where.line,
            where.column,
        )
    return doc


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _migrate_8_to_9(doc: Document) -> None:
    """RED 8 → 9: the version, and ``retryIfFailed`` becomes a retry count."""
    data = doc.data
    data["redVersion"] = "9"
    changes = ['redVersion "8" → "9"']
    execution = data.get("execution")
    settings = execution.get("settings") if isinstance(execution, dict) else None
    if isinstance(settings, dict) and "retryIfFailed" in settings:
        retry = settings.pop("retryIfFailed")
        doc.retries = 1 if retry is True else 0
        changes.append(f"execution.settings.retryIfFailed: {str(retry).lower()} → {doc.retries} retr{'y' if doc.retries == 1 else 'ies'} per batch")
    cli = data.get("cli")
    if isinstance(cli, dict) and cli.get("cwlVersion") in (1.0, 1, "1.0"):
        cli["cwlVersion"] = "v1.0"
        changes.append('cli.cwlVersion → "v1.0"')
    doc.notices.append(f"{doc.source.name}: notice: migrated RED 8 to RED 9 in memory ({'; '.join(changes)})")


def check(doc: Document, *, check_connectors: bool = True, connectors_required: bool = False,
          connector_policy: ConnectorPolicy | None = None, for_agency: bool = False) -> tuple[list[LocatedProblem], list[LocatedProblem]]:
    """Validate a loaded document: (errors, warnings), located and sorted by position."""
    try:
        problems = validate_data(doc.data, check_connectors=check_connectors, connectors_required=connectors_required, connector_policy=connector_policy,
                                 for_agency=for_agency)
        located = locate_problems(doc.source, problems)
    except RecursionError:
        return [LocatedProblem(doc.source.name, 1, 1, "", TOO_DEEP, "error")], []
    errors = [p for p in located if p.severity == "error"]
    warnings = [p for p in located if p.severity == "warning"]
    return errors, warnings
