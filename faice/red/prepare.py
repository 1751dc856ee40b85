"""load → validate → fill variables → model: what every command that runs a RED file needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faice.errors import InvalidInput
from faice.red.load import check, load
from faice.red.model import Experiment, experiment_from_data
from faice.red.problems import LocatedProblem, Problem, locate_problems
from faice.red.secrets import Masker, redact, secret_values
from faice.red.source import Document
from faice.red.validate import ConnectorPolicy, validate_data
from faice.red.variables import Prompt, fill, resolve, variable_uses


class ValidationFailed(InvalidInput):
    """A document with errors; each located problem is printed on its own line."""

    def __init__(self, problems: list[LocatedProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")


@dataclass
class Prepared:
    """A RED document ready to run, from a file (``faice exec``) or a request (``faice serve``):
    its experiment (variables filled), and what masks its secrets wherever it is shown."""

    doc: Document
    experiment: Experiment
    masker: Masker
    warnings: list[LocatedProblem] = field(default_factory=list)

    def redacted(self) -> tuple[dict[str, Any], bool]:
        """The document as it may be kept (protected values and credentials removed, secrets
        masked), and whether that removed anything: only then can the record alone not run it
        again. Made when asked, not kept: a copy of a large document is memory for nothing."""
        kept = redact(self.doc.data, mask=self.masker)
        return kept, kept != self.doc.data


def prepare(
    source: str | Document,
    *,
    variables: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    connectors_required: bool = False,
    local: bool = False,
    connector_policy: ConnectorPolicy | None = None,
    more_problems: Callable[[dict[str, Any]], list[Problem]] | None = None,
    drop_agency_access: bool = False,
) -> Prepared:
    """Load ``source`` (a location, or a document already loaded), validate it (every problem at
    once, secrets masked), fill its variables and build the experiment.

    With ``connectors_required`` a connector that cannot be resolved here is an error, not a
    warning (``faice exec`` needs every one of them). ``local`` (``faice exec``, ``faice serve``):
    a CC-Agency's URL and login (``execution.settings.access``) are not needed, neither their
    variables nor their values. ``connector_policy`` and ``more_problems`` add a face's own rules
    (``faice serve``: what non-admins may use, CC-Agency's requirements); ``drop_agency_access``
    forgets the agency's own URL and login before anything is kept, as CC-Agency does.
    """
    doc = load(source) if isinstance(source, str) else source
    errors, warnings = check(doc, connectors_required=connectors_required, for_agency=not local, connector_policy=connector_policy)
    if more_problems is not None:
        errors = sorted(errors + locate_problems(doc.source, more_problems(doc.data)), key=lambda p: (p.line, p.column))
    if errors:
        masker = Masker(secret_values(doc.data))
        raise ValidationFailed([_masked(p, masker) for p in errors])
    execution = doc.data.get("execution")
    if drop_agency_access and isinstance(execution, dict) and isinstance(execution.get("settings"), dict):
        execution["settings"].pop("access", None)
    values = resolve(variable_uses(doc.data), variables or {}, prompt=prompt, optional_agency=local)
    data = fill(doc.data, values) if values else doc.data
    masker = Masker(secret_values(data, values.values()))
    if values:
        # Filled credentials can now be checked by the connectors; never echo them.
        refilled = [p for p in validate_data(data, filled=True, for_agency=not local) if p.severity == "error"]
        if refilled:
            located = locate_problems(doc.source, refilled)
            raise ValidationFailed([_masked(p, masker) for p in located])
    return Prepared(doc, experiment_from_data(data, doc.retries), masker, warnings)


def _masked(problem: LocatedProblem, masker: Masker) -> LocatedProblem:
    return LocatedProblem(problem.file, problem.line, problem.column, problem.path, masker(problem.message), problem.severity)
