"""load → validate → fill variables → model: what every command that runs a RED file needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from faice.errors import InvalidInput
from faice.red.load import check, load
from faice.red.model import Experiment, experiment_from_data
from faice.red.problems import LocatedProblem, locate_problems
from faice.red.secrets import Masker, secret_values
from faice.red.source import Document
from faice.red.validate import validate_data
from faice.red.variables import Prompt, fill, resolve, variable_uses


class ValidationFailed(InvalidInput):
    """A document with errors; each located problem is printed on its own line."""

    def __init__(self, problems: list[LocatedProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")


@dataclass
class Prepared:
    doc: Document
    experiment: Experiment
    masker: Masker
    warnings: list[LocatedProblem] = field(default_factory=list)


def prepare(
    location: str,
    *,
    variables: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    connectors_required: bool = False,
    local: bool = False,
) -> Prepared:
    """Load and validate ``location``, fill its variables and build the experiment.

    With ``connectors_required`` a connector that cannot be resolved here is an error, not a
    warning (``faice exec`` needs every one of them). ``local`` (``faice exec``): a CC-Agency's
    URL and login (``execution.settings.access``) are not needed, neither their variables nor
    their values.
    """
    doc = load(location)
    errors, warnings = check(doc, connectors_required=connectors_required, for_agency=not local)
    if errors:
        raise ValidationFailed(errors)
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
