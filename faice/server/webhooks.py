"""Webhooks (a faice extension): an experiment submitted with ``"notify": [URL, ...]`` gets a
signed POST at each URL for every event of it that ``GET /events`` would carry.

One dispatcher thread reads the store's history, as the event stream's publisher does, and hands
each event of an experiment with webhooks to a queue per URL; one sender thread per URL posts them
in order, each tried again with back-off while the receiver fails, so a slow or dead receiver
delays only its own deliveries, never the worker or another receiver. The URLs live only in this
process's memory, as the credentials of a POSTed RED file do (a webhook URL often is one): they
are forgotten when the experiment ends, and a restarted server sends no more for it.

A body is signed with HMAC-SHA256 under the submitting user's secret (``GET /webhooks/secret``),
derived from a key kept beside the state file (readable only by its owner) and the user's name
and creation time: a user created again under the same name gets another secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from faice import __version__
from faice.connectors.network import REFUSED, private_host
from faice.errors import EnvironmentUnusable
from faice.events import EXPERIMENT, QUERY_EVERY, Changes, Event, page_events
from faice.state.events import EventFilter
from faice.state.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Faice-Signature-256"
#: seconds between the tries of one delivery: 7 tries over about a minute
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: seconds a receiver may take to connect and to answer
TIMEOUT = (5.0, 10.0)
#: events waiting for one URL; beyond that the oldest are dropped (and logged)
QUEUE_LIMIT = 10_000
#: seconds between two looks at the state file
POLL = 0.1
PAGE = 1000
MAX_URLS = 5
#: webhook URLs a non-admin may have in use at once (each has a sender thread while it has events)
MAX_USER_URLS = 20
#: seconds a stopping server gives the last events (its cancellations) to reach their receivers
DRAIN_SECONDS = 3.0


class WebhookProblem(ValueError):
    """A notify list that cannot be used (one reason, for the submitter)."""


def check_urls(value: Any, public_only: bool) -> list[str]:
    """The URLs of a ``notify`` field: a list of up to MAX_URLS http(s) URLs; for a non-admin only
    hosts on the public internet (the http connector's rule)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise WebhookProblem("notify must be a list of URLs")
    if len(value) > MAX_URLS:
        raise WebhookProblem(f"notify names {len(value)} URLs; at most {MAX_URLS}")
    for url in value:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            raise WebhookProblem("a notify URL is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise WebhookProblem(f"notify URL {shown(url)} must be an http:// or https:// URL with a host")
        if public_only and private_host(host):
            raise WebhookProblem(f"notify URL {shown(url)}: {REFUSED}")
    return list(dict.fromkeys(value))


def shown(url: str) -> str:
    """A webhook URL as messages and logs may show it: scheme and host only (its path and query
    are often its secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "/…" if parts.path.strip("/") or parts.query else "", "", ""))


KEY_BYTES = 32


class BadKey(EnvironmentUnusable):
    """The webhook key file holds no usable key (truncated, edited): never signed with."""


def signing_key(db_path: Path) -> bytes:
    """The server's webhook key, beside the state file: made once (written to a private temporary
    file, then linked into place, so no reader ever sees half of it), 32 bytes or refused."""
    path = db_path.with_name(db_path.name + ".webhook-key")
    if not path.exists():
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # made by another process meanwhile: that one counts
        finally:
            os.unlink(temporary)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise BadKey(f"{path} holds no webhook key ({KEY_BYTES} bytes in hex): remove it to make a new one (every user's secret changes)")
    return key


def user_secret(key: bytes, username: str, created_at: float) -> str:
    return hmac.new(key, f"webhook\0{username}\0{created_at!r}".encode(), hashlib.sha256).hexdigest()


class UserSecrets:
    """Each user's webhook secret (None for a user that no longer exists)."""

    def __init__(self, db_path: Path, users: Any) -> None:
        self.users = users
        self._key = signing_key(db_path)  # a damaged key file stops faice serve at its start, not a delivery later

    def __call__(self, username: str) -> str | None:
        user = self.users.get(username)
        return None if user is None else user_secret(self._key, user.name, user.created_at)


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(event: Event) -> bytes:
    return json.dumps({"event": event.kind, "id": event.id, **event.data}, separators=(",", ":")).encode()


@dataclass
class Subscription:
    """An experiment's webhooks: whose they are (the signing secret) and where they go."""

    username: str
    urls: list[str]
    public_only: bool


@dataclass
class Destination:
    """One URL's queue and its sender thread (started when the first event comes, gone when idle)."""

    url: str
    public_only: bool
    queue: deque[tuple[str, bytes, str, int | None]] = field(default_factory=deque)
    thread: threading.Thread | None = None


class Webhooks:
    """The dispatcher and the senders of one ``faice serve``."""

    def __init__(self, store: Store, secret_of: Callable[[str], str | None], backoff: tuple[float, ...] = BACKOFF) -> None:
        self.store = store
        self.secret_of = secret_of
        self.backoff = backoff
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._catch_up: list[str] = []
        self._destinations: dict[str, Destination] = {}
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._cursor = store.last_event_id()
        self._thread = threading.Thread(target=self._dispatch, name="faice-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, seconds: float = DRAIN_SECONDS) -> None:
        """Stop once what the history holds now is handed out and sent (the stopping worker's
        cancellations too: call this after it), or ``seconds`` have passed; log what was not sent."""
        deadline = time.monotonic() + seconds
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(seconds)
        while time.monotonic() < deadline and self._sending():
            time.sleep(0.05)
        self._stop.set()
        with self._lock:
            left = sum(len(destination.queue) for destination in self._destinations.values())
        if left:
            log.warning("webhooks: %d deliveries not sent: faice serve stopped", left)

    def _sending(self) -> bool:
        with self._lock:
            return bool(self._destinations)

    def check_room(self, username: str, urls: list[str]) -> None:
        """Refuse (WebhookProblem) more than MAX_USER_URLS URLs in use by one user at once."""
        with self._lock:
            used = {url for subscription in self._subscriptions.values() if subscription.username == username for url in subscription.urls}
        if len(used | set(urls)) > MAX_USER_URLS:
            raise WebhookProblem(f"{len(used | set(urls))} webhook URLs would be in use by {username}: at most {MAX_USER_URLS} at once"
                                 " (an experiment's end frees its URLs)")

    def add(self, experiment_id: str, username: str, urls: list[str], public_only: bool) -> None:
        """Notify ``urls`` of the experiment's events, from its registration on."""
        if not urls:
            return
        with self._lock:
            self._subscriptions[experiment_id] = Subscription(username, urls, public_only)
            self._catch_up.append(experiment_id)
        self._wake.set()

    # --- the dispatcher ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand out new events, looking at the history when the state file changed (as the event
        stream's publisher does), or a catch-up is due, or a second has passed; when closing, all
        there is, then end."""
        changes = Changes(self.store)
        while not self._stop.is_set():
            if self._closing.is_set():
                while self._dispatch_once():
                    pass
                return
            more = False
            if changes.due() or self._catch_up:
                try:
                    more = self._dispatch_once()
                except Exception:  # a locked or busy file: the next look tries again
                    log.exception("webhooks: reading the state file failed")
            if more:
                changes.again()
            else:
                with self._lock:
                    idle = not self._subscriptions
                self._wake.wait(QUERY_EVERY if idle else POLL)  # add() wakes it
                self._wake.clear()

    def _dispatch_once(self) -> bool:
        with self._lock:
            catch_up, self._catch_up = self._catch_up, []
        for experiment_id in catch_up:  # what it had before the dispatcher knew of its webhooks
            after = 0
            while (page := self.store.events_page(after, PAGE, EventFilter(experiment_id=experiment_id), upto=self._cursor)).rows:
                self._hand_out(page_events(page))
                after = page.rows[-1].id
        page = self.store.events_page(self._cursor, PAGE)
        if not page.rows:
            return False
        with self._lock:
            wanted = set(self._subscriptions)
        self._hand_out([event for event in page_events(page) if event.experiment_id in wanted])
        self._cursor = page.rows[-1].id
        return len(page.rows) == PAGE

    def _hand_out(self, events: list[Event]) -> None:
        for event in events:
            with self._lock:
                subscription = self._subscriptions.get(event.experiment_id or "")
                if subscription is None:
                    continue
                if event.kind == EXPERIMENT and event.data.get("finished"):
                    del self._subscriptions[event.experiment_id or ""]  # its last event: the URLs are forgotten after it
            secret = self.secret_of(subscription.username)
            if secret is None:  # the user was removed
                continue
            body = body_of(event)
            for url in subscription.urls:
                self._enqueue(url, subscription.public_only, (event.kind, body, signature(secret, body), event.id))

    def _enqueue(self, url: str, public_only: bool, delivery: tuple[str, bytes, str, int | None]) -> None:
        key = f"{int(public_only)} {url}"
        with self._lock:
            destination = self._destinations.get(key)
            if destination is None:
                destination = self._destinations[key] = Destination(url, public_only)
            if len(destination.queue) >= QUEUE_LIMIT:
                destination.queue.popleft()
                log.warning("webhooks: %s is %d events behind: the oldest was dropped", shown(url), QUEUE_LIMIT)
            destination.queue.append(delivery)
            if destination.thread is None:
                destination.thread = threading.Thread(target=self._send_all, args=(key, destination), name="faice-webhook", daemon=True)
                destination.thread.start()

    # --- the senders ------------------------------------------------------------------------------

    def _send_all(self, key: str, destination: Destination) -> None:
        session = _session(destination.public_only)
        try:
            while not self._stop.is_set():
                with self._lock:
                    if not destination.queue:
                        destination.thread = None
                        del self._destinations[key]
                        return
                    delivery = destination.queue[0]
                self._deliver(session, destination.url, delivery)
                with self._lock:
                    destination.queue.popleft()
        finally:
            session.close()

    def _deliver(self, session: Any, url: str, delivery: tuple[str, bytes, str, int | None]) -> None:
        """POST one event, tried again after each pause of the back-off while the receiver fails."""
        import requests

        kind, body, signed, event_id = delivery
        headers = {"Content-Type": "application/json", "User-Agent": f"faice/{__version__}", "X-Faice-Event": kind, SIGNATURE_HEADER: signed,
                   **({"X-Faice-Event-Id": str(event_id)} if event_id is not None else {})}
        for attempt, pause in enumerate((*self.backoff, None), start=1):
            try:
                response = session.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
                response.close()
                if response.status_code < 300:
                    return
                why = f"HTTP {response.status_code}"
                if 300 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.warning("webhooks: %s answered %s: event %s not delivered", shown(url), why, event_id)
                    return
            except requests.RequestException as exc:
                why = "this user may not reach it" if "private network" in str(exc) else type(exc).__name__
            if pause is None or self._stop.wait(pause):
                log.warning("webhooks: %s: event %s not delivered after %d tries (%s)", shown(url), event_id, attempt, why)
                return


def _session(public_only: bool) -> Any:
    """A requests session; for a non-admin's URL one whose connections refuse a peer off the
    public internet (checked on the address connected to), without the server user's proxies."""
    import requests

    from faice.connectors.http import public_only_adapter

    session = requests.Session()
    if public_only:
        session.trust_env = False
        adapter = public_only_adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session

