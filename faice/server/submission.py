"""``POST /red``: everything ``faice validate`` checks, plus what CC-Agency itself requires.

CC-Agency stops at the first problem; here every problem is collected so that one answer lists
them all. The accepted experiment keeps its filled data (credentials included) only in this
object, in memory; what is stored is redacted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from faice.errors import InvalidInput, LoadError
from faice.red.load import load_text
from faice.red.model import Experiment, job_sections
from faice.red.prepare import Prepared, ValidationFailed, prepare
from faice.red.problems import LocatedProblem, Problem
from faice.red.secrets import Masker
from faice.red.source import TOO_DEEP
from faice.red.variables import variable_uses
from faice.runner.plan import BatchPlan, plan
from faice.server.webhooks import WebhookProblem, check_urls

BODY_NAME = "request body"
INVALID = "Given RED data is invalid. Consider using the FAICE commandline tools for local validation."
LOCAL_CONNECTOR = "red-connector-local"


class Rejected(InvalidInput):
    """A refused document: a message, and the located problems when there is one (answered 400)."""

    def __init__(self, message: str, problems: list[LocatedProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "problems": [p.to_json() for p in self.problems]}


@dataclass
class Submission:
    """An accepted RED document, planned, with how the caller asked it to run."""

    prepared: Prepared
    plans: list[BatchPlan]
    retries: int
    connector_validation: bool
    #: webhook URLs (the body's ``notify``, a faice extension: faice.server.webhooks)
    notify: list[str] = field(default_factory=list)

    @property
    def experiment(self) -> Experiment:
        return self.prepared.experiment

    @property
    def masker(self) -> Masker:
        return self.prepared.masker


def accept(body: bytes | bytearray, *, admin: bool, disable_retry: bool = False, disable_connector_validation: bool = False, max_batches: int = 100_000) -> Submission:
    """Validate a ``POST /red`` body; raise :class:`Rejected` listing every problem."""
    try:
        return _accept(body, admin, disable_retry, disable_connector_validation, max_batches)
    except RecursionError:
        raise Rejected(f"Did not send RED data as JSON: {TOO_DEEP}") from None


#: Values a body may hold, counted as it arrives: a parsed value costs about 50 bytes, so 30
#: million of them in a 60 MiB body ("0,0,0,...") would take 1.5 GB. RED documents spend 10 bytes
#: and more on a value (names, quotes, nesting); one value per 4 bytes beyond a first 200,000 is
#: refused, long before such a body is read whole, let alone parsed.
MIN_VALUES = 200_000
BYTES_PER_VALUE = 4
#: bodies parsed at once: each may take a few hundred MiB while it is
PARSING = threading.BoundedSemaphore(2)


class ValueCounter:
    """Counts a body's values as its chunks arrive (JSON's separators; a YAML body's line breaks
    too) and refuses it the moment they are more than its size can hold for a RED document."""

    def __init__(self) -> None:
        self.values = 0
        self.bytes = 0
        self.json: bool | None = None

    def add(self, chunk: bytes) -> None:
        if self.json is None and chunk.strip():
            self.json = chunk.lstrip()[:1] in (b"{", b"[")
        self.bytes += len(chunk)
        self.values += chunk.count(b",") + chunk.count(b":") + (0 if self.json else chunk.count(b"\n") + chunk.count(b"\r"))
        if self.values > MIN_VALUES + self.bytes // BYTES_PER_VALUE:
            raise Rejected(f"the RED data holds more than {self.values:,} values in {self.bytes:,} bytes (no RED document is that dense: "
                           f"{MIN_VALUES:,} and one per {BYTES_PER_VALUE} bytes at most); the rest of it was not read")


def _accept(body: bytes | bytearray, admin: bool, disable_retry: bool, disable_connector_validation: bool, max_batches: int) -> Submission:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("Did not send RED data as JSON: the body is not UTF-8 text.") from None
    with PARSING:
        return _parse_and_check(text, admin, disable_retry, disable_connector_validation, max_batches)


def _parse_and_check(text: str, admin: bool, disable_retry: bool, disable_connector_validation: bool, max_batches: int) -> Submission:
    try:
        doc = load_text(BODY_NAME, text)
    except LoadError as exc:  # located too: a client shows a YAML or JSON syntax error at its line and column
        raise Rejected(f"Did not send RED data as JSON: {exc}", [LocatedProblem.of_load_error(exc)]) from None
    if not doc.data:
        raise Rejected("Did not send RED data as JSON.")
    try:
        notify = check_urls(doc.data.pop("notify", None), public_only=not admin)  # not RED's: taken out before validation
    except WebhookProblem as exc:
        raise Rejected(str(exc)) from None
    batches = doc.data.get("batches")
    if isinstance(batches, list) and len(batches) > max_batches:
        raise Rejected(f"{len(batches)} batches are more than this server takes in one experiment ({max_batches}; faice serve --max-batches)")
    try:
        prepared = prepare(doc, connectors_required=True, local=True, connector_policy=None if admin else non_admin_connector,
                           more_problems=lambda data: agency_problems(data) + ([] if admin else image_problems(data)), drop_agency_access=True)
    except ValidationFailed as exc:
        raise Rejected(INVALID, exc.problems) from None
    retries = 0 if disable_retry else (doc.retries if doc.retries is not None else 1)
    return Submission(prepared, plan(prepared.experiment, prepared.masker), retries, not disable_connector_validation, notify)


def agency_problems(data: dict[str, Any]) -> list[Problem]:
    """CC-Agency's own requirements."""
    problems = []
    uses = variable_uses(data)
    for use in uses:
        problems.append(Problem(use.path, f"{{{{{use.name}}}}} is a variable: fill it in before submitting (faice exec and faice submit ask for variables)"))
    sections = job_sections(data)
    for path, _inputs, outputs in sections:
        if outputs is None:
            where = "every batch" if path else "RED data"
            problems.append(Problem(path, f"CC-Agency requires outputs to be defined in {where} (outputs: {{}} is allowed)"))
    container = data.get("container")
    settings = container.get("settings") if isinstance(container, dict) else None
    if isinstance(settings, dict) and "ram" not in settings:
        problems.append(Problem(("container", "settings"), "CC-Agency requires 'ram' (MiB) in the container settings"))
    execution = data.get("execution")
    if isinstance(execution, dict) and execution.get("engine") not in (None, "ccagency"):
        problems.append(Problem(("execution", "engine"), f'faice serve runs the "ccagency" execution engine, not "{execution.get("engine")}" (or leave execution out)'))
    return problems


def image_problems(data: dict[str, Any]) -> list[Problem]:
    """A non-admin's image may not come from a registry on this machine or a private network:
    Docker's daemon would contact it for them (and its answer would reach them in the error)."""
    from faice.connectors.network import REFUSED, private_host
    from faice.runner.docker_engine import registry_host

    container = data.get("container")
    settings = container.get("settings") if isinstance(container, dict) else None
    image = settings.get("image") if isinstance(settings, dict) else None
    url = image.get("url") if isinstance(image, dict) else None
    host = registry_host(url) if isinstance(url, str) else None
    if host is not None and private_host(host):
        return [Problem(("container", "settings", "image", "url"), f"the image's registry {host}: {REFUSED}")]
    return []


def non_admin_connector(command: str) -> str | None:
    """Why a non-admin may not use ``command``: it would act on the server's machine as its user.

    ``red-connector-local`` reads and writes the server's files; a Connector CLI program found on
    ``PATH`` is any program there, run on the host. Plugins (entry points) are the safe set.
    """
    from faice.connectors import registry

    if command == LOCAL_CONNECTOR:
        return f"{LOCAL_CONNECTOR} reads and writes files of the machine faice serve runs on: only admins may use it"
    if registry.plugin(command) is None:
        return f'"{command}" is not a faice connector plugin: only admins may use Connector CLI programs through faice serve'
    return None
