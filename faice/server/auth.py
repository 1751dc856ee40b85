"""Who is calling: HTTP Basic (password or a CC-Agency 8.x token) or a Bearer token.

A password check costs a deliberately slow scrypt hash, so a verified password is remembered
for a few minutes, keyed by a per-process HMAC of the credentials and valid only while the
stored hash is unchanged (``faice users passwd`` or ``remove`` end it at once). Failed logins
are throttled per user *and client*, unknown names included, with one message for every failure,
so the answers do not reveal which user names exist. A client is its address, or the device
cookie it got when it signed in: guesses from other addresses never lock that device out, and
guesses from all addresses together stay bounded per user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from faice.errors import FaiceError
from faice.state.users import DEVICE, FAILURE_WINDOW_SECONDS, User, Users

CACHE_SECONDS = 300
CACHE_SIZE = 4096
REALM = 'Basic realm="Please fill in username and password"'


class Unauthorized(FaiceError):
    """No, wrong or expired credentials (answered 401 with the realm: faice.server.errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """An Authorization header's scheme, user name and password or token."""

    scheme: str  # "basic" or "bearer"
    name: str
    secret: str


def parse_header(header: str | None) -> Credentials | None:
    """The credentials of an Authorization header; None when there is none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials("bearer", "", value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        name, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return Credentials("basic", name, password)
    raise Unauthorized("unsupported Authorization scheme: use Basic or Bearer")


class Authenticator:
    def __init__(self, users: Users) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[bytes, User, float]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def bearer(self, token: str, kind: str = "access") -> User:
        user, expired = self.users.check_token(token, kind)
        if user is None:
            raise Unauthorized("Token has expired" if expired else "invalid or unknown token")
        return user

    def known_device(self, name: str, device: str | None) -> str | None:
        """How throttling names a device cookie of this user's (None: no such cookie)."""
        if device:
            user = self.users.verify_token(device, "device")
            if user is not None and user.name == name:
                return DEVICE + hashlib.sha256(device.encode()).hexdigest()[:16]
        return None

    def client(self, name: str, address: str, device: str | None) -> str:
        """Who tries a password, for throttling: the device when its cookie belongs to this user, else the address."""
        return self.known_device(name, device) or address

    def basic(self, name: str, password: str, client: str, *, tokens: bool = True, slow: bool = True) -> User | None:
        """A user by name and password (or, with ``tokens``, a ``GET /token`` token as password).

        ``client`` is what :meth:`client` says. Without ``slow``, None means the answer needs the
        slow hash (call again in a thread).
        """
        held_back = self.users.blocked(name, client)
        if held_back:
            raise Unauthorized(held_back)
        if tokens:
            user = self.users.verify_token(password, "password")
            if user is not None and user.name == name:
                return user
        stored = self.users.password_hash(name)
        key = hmac.new(self._key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        remembered = self._remembered(key, stored)
        if remembered is not None:
            return remembered
        if not slow:
            return None
        # One slow check at a time per user and client: parallel guesses wait their turn (and
        # are counted), parallel right passwords cost one hash and then find it remembered.
        with self._checking(name, client):
            remembered = self._remembered(key, stored)  # a parallel request may have just checked it
            if remembered is not None:
                return remembered
            attempt = self.users.reserve_attempt(name, client)
            if attempt is None:
                raise Unauthorized(self.users.blocked(name, client) or f"too many failed logins; wait {FAILURE_WINDOW_SECONDS} s")
            try:
                user = self.users.verify_password(name, password)
            except BaseException:
                self.users.release_attempt(attempt)  # not a failed login: the check itself broke
                raise
            if user is None:
                raise Unauthorized("invalid user name or password")  # the reserved attempt stays: a failure
            self.users.release_attempt(attempt)
            if stored is not None:
                if len(self._verified) >= CACHE_SIZE:
                    self._verified.clear()
                self._verified[key] = (stored, user, time.monotonic() + CACHE_SECONDS)
            return user

    def _remembered(self, key: bytes, stored: bytes | None) -> User | None:
        """The user of a password verified lately, while the stored hash is still the same."""
        cached = self._verified.get(key)
        if stored is not None and cached is not None and hmac.compare_digest(cached[0], stored) and cached[2] > time.monotonic():
            return cached[1]
        return None

    def _checking(self, name: str, client: str) -> threading.Lock:
        with self._locks_lock:
            if len(self._locks) >= CACHE_SIZE:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault((name, client), threading.Lock())

    def lasting(self, header: str | None, user: User) -> Callable[[], bool]:
        """Whether credentials that were accepted still hold, asked again and again by an answer
        that lasts (an event stream): the same user (not removed, nor created again under the name)
        and, for a password, the same stored hash; for a Bearer token, the token not revoked (it
        expiring while the answer goes on does not end it)."""
        credentials = parse_header(header)
        stored = self.users.password_hash(user.name)

        def holds() -> bool:
            now = self.users.get(user.name)
            if now is None or now.created_at != user.created_at:
                return False
            if credentials is not None and credentials.scheme == "bearer":
                found, expired = self.users.check_token(credentials.secret)
                return found is not None or expired
            return self.users.password_hash(user.name) == stored

        return holds

    def authenticate(self, header: str | None, address: str, device: str | None = None, *, slow: bool = True) -> User | None:
        """The caller; without ``slow``, None when only the slow password hash can tell."""
        credentials = parse_header(header)
        if credentials is None:
            raise Unauthorized("Unauthorized: send HTTP Basic credentials or a Bearer token")
        if credentials.scheme == "bearer":
            return self.bearer(credentials.secret)
        return self.basic(credentials.name, credentials.secret, self.client(credentials.name, address, device), slow=slow)
