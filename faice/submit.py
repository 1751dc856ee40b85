"""``faice submit``: send a prepared RED file to a CC-Agency (or ``faice serve``) and follow its batches.

The body is the RED 9 data after variables are filled, without ``execution.settings.access``:
the agency's URL and credentials travel only in the request line and the Authorization header.
requests and rich are imported where they are used, so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from faice.errors import EnvironmentUnusable, FaiceError, InvalidInput
from faice.host import is_loopback
from faice.red.secrets import Masker
from faice.state.states import FINAL_STATES, BatchState
from faice.state.users import DEVICE_COOKIE
from faice.view import LiveTable, LiveView

USER_ENV = "FAICE_AGENCY_USER"
PASSWORD_ENV = "FAICE_AGENCY_PASSWORD"
#: how long a request may take to connect and to answer (seconds)
TIMEOUT = (10, 60)
#: polls in a row that may fail to reach the agency while waiting before giving up
POLL_ATTEMPTS = 10

Ask = Callable[[str, bool], str]
Mask = Callable[[str], str]


@dataclass(frozen=True)
class Credentials:
    """A CC-Agency login."""

    username: str
    password: str


def _access(data: Mapping[str, Any]) -> dict[str, Any]:
    execution = data.get("execution")
    settings = execution.get("settings") if isinstance(execution, dict) else None
    access = settings.get("access") if isinstance(settings, dict) else None
    return access if isinstance(access, dict) else {}


def request_body(data: Mapping[str, Any]) -> dict[str, Any]:
    """The RED data to send: a copy without ``execution.settings.access`` and RED 8's ``retryIfFailed``.

    ``faice exec`` runs a file whatever its execution engine says; likewise a file written for
    ``ccfaice`` is sent with engine ``ccagency`` (an agency refuses any other engine), keeping
    ``batchConcurrencyLimit``.
    """
    body = copy.deepcopy(dict(data))
    execution = body.get("execution")
    if not isinstance(execution, dict):
        return body
    settings = execution.get("settings") if isinstance(execution.get("settings"), dict) else {}
    settings.pop("access", None)
    settings.pop("retryIfFailed", None)
    if execution.get("engine") != "ccagency":
        settings = {k: v for k, v in settings.items() if k == "batchConcurrencyLimit"}
        execution["engine"] = "ccagency"
    execution["settings"] = settings
    return body


def query_params(*, retries: int | None, disable_retry: bool, disable_connector_validation: bool) -> dict[str, str]:
    """``disableRetry`` and ``disableConnectorValidation`` as 0/1, like upstream faice.

    ``retries`` is what the file asked for (RED 8 ``retryIfFailed``: false → 0, true → 1; None for
    RED 9): an agency retries a failed batch once unless told not to, so 0 means ``disableRetry=1``.
    """
    no_retry = disable_retry or retries == 0
    return {"disableRetry": "1" if no_retry else "0", "disableConnectorValidation": "1" if disable_connector_validation else "0"}


def agency_url(data: Mapping[str, Any], override: str | None, mask: Mask = str) -> str:
    """``--url``, else ``execution.settings.access.url``, as written (a trailing slash is the client's business)."""
    url = override or _access(data).get("url")
    if not url:
        raise InvalidInput("no agency URL: give --url URL, or set execution.settings.access.url in the RED file")
    url = str(url).strip()
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(mask(f'the agency URL must start with http:// or https://, got "{url}"'))
    return url


def credentials(data: Mapping[str, Any], environ: Mapping[str, str], ask: Ask | None) -> Credentials:
    """``access.auth`` of the RED file, else FAICE_AGENCY_USER/FAICE_AGENCY_PASSWORD, else ``ask`` (a terminal)."""
    auth = _access(data).get("auth")
    if isinstance(auth, dict):
        username = auth.get("username", auth.get("_username"))
        password = auth.get("password", auth.get("_password"))
        if username is not None and password is not None:
            return Credentials(str(username), str(password))
    username = environ.get(USER_ENV) or None
    password = environ.get(PASSWORD_ENV) or None
    if username is None or password is None:
        if ask is None:
            missing = " and ".join(name for name, value in ((USER_ENV, username), (PASSWORD_ENV, password)) if value is None)
            raise InvalidInput(f"no credentials for the agency: set execution.settings.access.auth in the RED file (with {{{{variables}}}}), or {missing}, or run on a terminal (without --non-interactive) to be asked")
        username = username or ask("agency username", False)
        password = password or ask("agency password", True)
    return Credentials(username, password)


def batch_count(data: Mapping[str, Any]) -> int:
    batches = data.get("batches")
    return len(batches) if isinstance(batches, list) else 1


def _reason(exc: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused") of a requests exception chain."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, TimeoutError):
            return "timed out"
        linked = (*current.args, getattr(current, "reason", None), current.__cause__, current.__context__)
        todo.extend(item for item in linked if isinstance(item, BaseException))
    return type(exc).__name__


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_path(path: str) -> tuple[Any, ...]:
    """``batches[1].inputs.x`` (faice's own notation) → ``("batches", 1, "inputs", "x")``."""
    parts: list[Any] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return tuple(parts)


def problem_lines(body: Any, source: Any = None) -> list[str]:
    """What an agency's 400 says, one line each.

    Upstream CC-Agency answers a JSON string; ``faice serve`` answers ``{"message", "problems":
    [{"path", "line", "column", "message"}]}``. Positions in the body the agency received mean
    nothing to the user, so with ``source`` (the user's file) each problem is located there.
    """
    if isinstance(body, str):
        return [line for line in body.splitlines() if line.strip()] or ["(no message)"]
    if not isinstance(body, dict):
        return [_excerpt(json.dumps(body))] if body is not None else ["(no message)"]
    message = body.get("message") or body.get("detail") or body.get("msg")
    lines = [str(message)] if isinstance(message, str) and message else []
    problems = body.get("problems") if isinstance(body.get("problems"), list) else []
    located = source.locate({_parse_path(str(p.get("path") or "")) for p in problems if isinstance(p, dict)}) if source is not None and problems else {}
    for problem in problems:
        if not isinstance(problem, dict):
            continue
        path = str(problem.get("path") or "")
        where = located.get(_parse_path(path))
        if where is not None:
            prefix = f"{source.name}:{where.line}:{where.column}: "
        elif problem.get("line") is not None:
            prefix = f"line {problem.get('line')}, column {problem.get('column')}: "
        else:
            prefix = ""
        lines.append(f"{prefix}{path + ': ' if path else ''}{problem.get('message', '')}")
    return lines or [_excerpt(json.dumps(body))]


class DeviceCookies:
    """The device cookie ``faice serve`` gives a client that signed in, kept between runs (in
    faice's data directory, readable only by you) so that guesses at your password from elsewhere
    never lock ``faice submit`` out. It proves nothing by itself: the password is still sent."""

    def __init__(self, url: str, username: str) -> None:
        from faice.state.store import data_dir

        self.path = data_dir() / "agency-devices.json"
        self.key = hashlib.sha256(f"{url}\0{username}".encode()).hexdigest()

    def _all(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> str | None:
        value = self._all().get(self.key)
        return value if isinstance(value, str) else None

    def save(self, value: str) -> None:
        data = {**self._all(), self.key: value}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
        except OSError:
            pass  # not kept: the next run signs in as a new device


class AgencyClient:
    """The few CC-Agency calls faice needs, over one session with HTTP Basic auth."""

    def __init__(self, url: str, creds: Credentials, mask: Mask, source: Any = None) -> None:
        import requests

        self.url = url.rstrip("/")
        #: the URL for messages: masked as written, so that a URL filled from {{variables}} stays hidden
        self.shown_url = mask(url).rstrip("/")
        self.creds = creds
        self.mask = mask
        self.source = source
        self.session = requests.Session()
        self.session.auth = (creds.username, creds.password)
        self.session.headers["User-Agent"] = "faice"
        self.devices = DeviceCookies(self.url, creds.username)
        known = self.devices.load()
        if known:
            self.session.cookies.set(DEVICE_COOKIE, known)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        try:
            response = self.session.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise EnvironmentUnusable(self.mask(f"cannot reach the agency at {self.shown_url}: {_reason(exc)}")) from None
        if DEVICE_COOKIE in response.cookies:
            self.devices.save(response.cookies[DEVICE_COOKIE])
        return response

    def _check(self, response: Any) -> Any:
        """The JSON of a 200 answer; 401 and 400 are the user's to fix (exit 2), anything else exit 1."""
        body = _json(response)
        if response.status_code == 200:
            return body
        if response.status_code == 401:
            said = problem_lines(body)[0] if isinstance(body, (str, dict)) else ""
            raise InvalidInput(self.mask(f"the agency refused the credentials for {self.creds.username}" + (f" ({said})" if said else "")))
        if response.status_code == 400:
            lines = problem_lines(body if body is not None else response.text, self.source)
            raise InvalidInput(self.mask("\n  ".join(["the agency rejected the request: " + lines[0], *lines[1:]])))
        raise FaiceError(self.mask(f"the agency answered {response.status_code} {response.reason or ''}".rstrip() + f": {_excerpt(response.text) or '(empty body)'}"))

    def submit(self, body: dict[str, Any], params: Mapping[str, str]) -> str:
        """POST /red; the new experiment's id."""
        answer = self._check(self._request("POST", "/red", params=dict(params), json=body))
        experiment_id = answer.get("experimentId") if isinstance(answer, dict) else None
        if not isinstance(experiment_id, str):
            raise FaiceError(self.mask(f"the agency accepted the RED file but sent no experimentId: {_excerpt(json.dumps(answer))}"))
        return experiment_id

    def failure(self, batch_id: str) -> str | None:
        """Why a batch failed, as the agency says it: faice serve's ``error``, else CC-Agency's last
        ``debugInfo`` lines; None when it says nothing (or cannot be asked)."""
        try:
            document = self._check(self._request("GET", f"/batches/{batch_id}"))
        except FaiceError:
            return None
        if not isinstance(document, dict):
            return None
        if isinstance(document.get("error"), str) and document["error"]:
            return document["error"]
        for entry in reversed(document.get("history") or []):
            info = entry.get("debugInfo") if isinstance(entry, dict) else None
            if info:
                lines = [str(line).strip() for line in (info if isinstance(info, list) else [info]) if str(line).strip()]
                return " | ".join(lines[-3:]) or None
        return None

    def stream(self, path: str, params: Mapping[str, str], last_id: int | None) -> Any:
        """An open streamed answer of GET ``path`` (server-sent events), resuming after ``last_id``."""
        from faice.watch import NoEventStream

        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": str(last_id)} if last_id is not None else {})}
        response = self._request("GET", path, params=dict(params), headers=headers, stream=True)
        if response.status_code == 404:
            response.close()
            raise NoEventStream(f"{self.shown_url} has no event stream (GET {path}: a faice serve extension)")
        if response.status_code != 200:
            with response:
                self._check(response)
        return response

    def kind_of(self, object_id: str) -> tuple[str, dict[str, Any]]:
        """Whether an id is an experiment's or a batch's the user may see ("experiment" or
        "batch"), with its document."""
        for kind, path in (("experiment", "/experiments/"), ("batch", "/batches/")):
            response = self._request("GET", path + object_id)
            if response.status_code != 404:
                document = self._check(response)
                return kind, document if isinstance(document, dict) else {}
        raise InvalidInput(f"{self.shown_url} has no experiment or batch {object_id} that {self.creds.username} may see")

    def batches(self, experiment_id: str) -> list[dict[str, Any]]:
        """GET /batches of one experiment, oldest first (filtered here too: upstream's tests do the same)."""
        answer = self._check(self._request("GET", "/batches", params={"experimentId": experiment_id, "ascending": "1"}))
        if not isinstance(answer, list):
            raise FaiceError(self.mask(f"the agency sent no list of batches: {_excerpt(json.dumps(answer))}"))
        return [b for b in answer if isinstance(b, dict) and b.get("experimentId", experiment_id) == experiment_id]


@dataclass(frozen=True)
class RemoteBatch:
    """A batch of the submitted experiment as the agency lists it."""

    index: int
    batch_id: str
    state: str

    def to_json(self) -> dict[str, Any]:
        return {"batchId": self.batch_id, "index": self.index, "state": self.state}


def batch_states(listed: list[dict[str, Any]]) -> list[RemoteBatch]:
    states = [RemoteBatch(int(b.get("batchesListIndex") or 0), str(b.get("_id") or b.get("batchId") or ""), str(b.get("state") or "")) for b in listed]
    return sorted(states, key=lambda s: s.index)


def outcome(states: list[RemoteBatch]) -> str:
    """The experiment's state: failed if any batch failed, else cancelled if any was, else succeeded."""
    kinds = {s.state for s in states}
    return BatchState.FAILED if BatchState.FAILED in kinds else BatchState.CANCELLED if BatchState.CANCELLED in kinds else BatchState.SUCCEEDED


class Display(LiveView):
    """Batch states on stderr while waiting: a live table on a terminal, a line per change otherwise."""

    def __init__(self, experiment_id: str, total: int, live: bool) -> None:
        self.experiment_id = experiment_id
        self.total = total
        self.started = time.monotonic()
        self.states: list[RemoteBatch] = []
        self._shown: dict[int, str] = {}
        self._table = LiveTable(self._render, live)

    def update(self, states: list[RemoteBatch]) -> None:
        self.states = states
        if self._table.shown:
            return
        for s in states:
            if self._shown.get(s.index) != s.state and s.state != BatchState.REGISTERED:
                sys.stderr.write(f"batch {s.index}: {s.state}\n")
                sys.stderr.flush()
            self._shown[s.index] = s.state

    def _render(self) -> tuple[str, list[str], list[list[str]]]:
        states = self.states
        count = {kind: sum(1 for s in states if s.state == kind) for kind in (*FINAL_STATES, BatchState.PROCESSING)}
        waiting = self.total - sum(count.values())
        title = (f"experiment {self.experiment_id}: {count['succeeded']}/{self.total} succeeded, {count['failed']} failed, "
                 f"{count['processing']} running, {waiting} waiting — {time.monotonic() - self.started:.0f} s")
        return title, ["batch", "id", "state"], [[str(s.index), s.batch_id, s.state] for s in states if s.state != BatchState.SUCCEEDED]


def wait(client: AgencyClient, experiment_id: str, total: int, poll: float, display: Display) -> list[RemoteBatch]:
    """Follow the experiment's events until every batch has ended (faice serve); poll an agency
    without an event stream."""
    from faice.watch import NoEventStream

    try:
        return follow_events(client, experiment_id, total, display)
    except NoEventStream:
        return poll_batches(client, experiment_id, total, poll, display)


def follow_events(client: AgencyClient, experiment_id: str, total: int, display: Display) -> list[RemoteBatch]:
    """Batch states from ``GET /events`` (subscribed before the first list, so no change is
    missed); the list once more when the experiment has ended, for the final states."""
    from faice.events import BATCH, EXPERIMENT
    from faice.watch import remote_events

    with contextlib.closing(remote_events(client, {"experimentId": experiment_id})) as events:
        first = next(events)  # the stream opens with where the experiment stands: subscribed from here on
        states = {s.index: s for s in batch_states(client.batches(experiment_id))}
        display.update(sorted(states.values(), key=lambda s: s.index))
        for event in itertools.chain([first], events):
            if event.kind == BATCH and isinstance(event.data.get("index"), int):
                states[event.data["index"]] = RemoteBatch(event.data["index"], str(event.batch_id), str(event.data.get("state")))
                display.update(sorted(states.values(), key=lambda s: s.index))
            elif event.kind == EXPERIMENT and event.data.get("finished"):
                final = batch_states(client.batches(experiment_id))
                if len(final) >= total and all(s.state in FINAL_STATES for s in final):
                    display.update(final)
                    return final
    raise FaiceError("the event stream ended")  # remote_events is endless: not reached


def poll_batches(client: AgencyClient, experiment_id: str, total: int, poll: float, display: Display) -> list[RemoteBatch]:
    """Poll until every batch of the experiment is in a final state; a few failed polls in a row are tolerated."""
    failures = 0
    while True:
        try:
            states = batch_states(client.batches(experiment_id))
            failures = 0
        except EnvironmentUnusable:
            failures += 1
            if failures >= POLL_ATTEMPTS:
                raise
            states = display.states
        display.update(states)
        if len(states) >= total and all(s.state in FINAL_STATES for s in states):
            return states
        time.sleep(poll)


def _interrupted_message(url: str, experiment_id: str, states: list[RemoteBatch]) -> str:
    running = [s for s in states if s.state not in FINAL_STATES]
    ids = ", ".join(s.batch_id for s in running[:3]) + (", ..." if len(running) > 3 else "")
    which = f"{len(running)} unfinished batch{'es' if len(running) != 1 else ''} ({ids})" if running else "its batches"
    return (f"faice: stopped waiting; experiment {experiment_id} keeps running on the agency with {which}.\n"
            f"  cancel a batch: DELETE {url}/batches/BATCH_ID (on a local faice serve: faice cancel {experiment_id})")


def submit(
    prepared: Any,
    *,
    url: str | None,
    wait_for_batches: bool,
    poll: float,
    as_json: bool,
    disable_retry: bool,
    disable_connector_validation: bool,
    ask: Ask | None,
    environ: Mapping[str, str] = os.environ,
    notify: list[str] | None = None,
) -> str:
    """Send the experiment, print its id, and with ``wait_for_batches`` follow it.

    Returns how it ended: "submitted" (not followed), the experiment's state (succeeded, failed
    or cancelled), or "interrupted" (Ctrl-C or SIGTERM while sending or following).

    Ctrl-C (or SIGTERM) at any moment after the request went out says what became of the
    experiment: Typer would otherwise turn the interrupt into a silent exit 130.
    """
    from faice.signals import on_stop

    data = prepared.experiment.raw
    target = agency_url(data, url, prepared.masker)
    creds = credentials(data, environ, ask)
    extra = Masker([creds.password])

    def mask(text: str) -> str:
        return extra(prepared.masker(text))

    host = urlsplit(target).hostname or ""
    if target.startswith("http://") and not is_loopback(host):
        sys.stderr.write(mask(f"faice: warning: the password for {target} crosses the network unencrypted (http://); use https:// if the agency offers it\n"))
    client = AgencyClient(target, creds, mask, prepared.doc.source)
    params = query_params(retries=prepared.doc.retries, disable_retry=disable_retry, disable_connector_validation=disable_connector_validation)
    total = batch_count(data)
    experiment_id: str | None = None
    display: Display | None = None
    with on_stop():
        try:
            body = request_body(data)
            if notify:
                body["notify"] = list(notify)  # a faice serve extension (an agency without it refuses the field)
            experiment_id = client.submit(body, params)
            if not wait_for_batches:
                print(json.dumps({"experimentId": experiment_id}) if as_json else f"experimentId: {experiment_id}", flush=True)
                return "submitted"
            display = Display(experiment_id, total, live=not as_json and sys.stderr.isatty())
            if not as_json:
                print(f"experimentId: {experiment_id}", flush=True)
            with display:
                states = wait(client, experiment_id, total, poll, display)
        except KeyboardInterrupt:
            if experiment_id is None:
                sys.stderr.write(mask(f"faice: interrupted while sending; the agency may have registered the experiment anyway (GET {client.shown_url}/experiments)\n"))
                return "interrupted"
            seen = display.states if display is not None else []
            sys.stderr.write(mask(_interrupted_message(client.shown_url, experiment_id, seen)) + "\n")
            if as_json:
                print(json.dumps({"experimentId": experiment_id, "state": "interrupted", "batches": [s.to_json() for s in seen]}, indent=2))
            return "interrupted"
        state = outcome(states)
        _print_result(experiment_id, state, states, as_json)
        failed = [s for s in states if s.state == BatchState.FAILED]
        if failed and not as_json:
            where = f"GET {client.shown_url}/batches/{failed[0].batch_id} (and .../stderr)"
            why = client.failure(failed[0].batch_id)
            sys.stderr.write(mask(f"batch {failed[0].index} failed: {why} (more: {where})\n" if why else f"why batch {failed[0].index} failed: {where}\n"))
        return state


def _print_result(experiment_id: str, state: str, states: list[RemoteBatch], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"experimentId": experiment_id, "state": state, "batches": [s.to_json() for s in states]}, indent=2))
        return
    from faice.view import print_table

    print_table(["batch", "id", "state"], [[str(s.index), s.batch_id, s.state] for s in states], title=f"experiment {experiment_id}: {state}")
