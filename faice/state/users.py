"""Users, API tokens and failed-login throttling for ``faice serve``, in the same SQLite file.

Passwords are stored as scrypt hashes with a per-user random salt; tokens are random and stored
only as their SHA-256 (a stolen state file yields no usable token), each with an expiry.
Throttling counts failures per *user and client address*: an attacker elsewhere cannot lock a
user out by failing on purpose (upstream CC-Agency throttled per user name alone).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from faice.errors import InvalidInput
from faice.state.accounts import FailureCounts, UserRecord
from faice.state.store import Store

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
TOKEN_SECONDS = 12 * 3600
MAX_FAILURES = 5  # per user and client (address, or a device that signed in before)
USER_MAX_FAILURES = 20  # per user from all addresses together: any number of source addresses gets no more
FAILURE_WINDOW_SECONDS = 60
DEVICE_SECONDS = 30 * 86400
MAX_DEVICES = 20  # device cookies kept per user
DEVICE = "device:"  # how a device that signed in before is named where an address would be
#: the cookie faice serve gives a client that signed in with a password, and faice submit keeps
DEVICE_COOKIE = "faice_device"
_DUMMY_SALT = b"faice-dummy-salt"


class UserError(InvalidInput, ValueError):
    pass


@dataclass(frozen=True)
class User:
    """A user of ``faice serve``, without the password hash."""

    name: str
    is_admin: bool
    created_at: float


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)  # type: ignore[arg-type]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
        raise UserError(f'user name "{name}" must be 1-64 letters, digits, ".", "_" or "-"')


class Users:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, password: str, *, admin: bool = False) -> User:
        check_name(name)
        _check_password(password)
        salt = secrets.token_bytes(16)
        record = UserRecord(name, _hash(password, salt), salt, admin, time.time())
        if not self.store.add_user(record):
            raise UserError(f'user "{name}" exists already')
        return _user(record)

    def set_password(self, name: str, password: str) -> None:
        """A new password; it ends the user's sessions."""
        _check_password(password)
        salt = secrets.token_bytes(16)
        if not self.store.set_user_password(name, _hash(password, salt), salt):
            raise UserError(f'no user "{name}"')

    def remove(self, name: str) -> None:
        """Remove a user. What they submitted stays (admins still see it), under a name no new user
        can take (``NAME#removed-TIME``): a user created later with the same name does not inherit
        it. Runs of ``faice exec`` belong to the local login, not to an API user, and stay."""
        if not self.store.remove_user(name, f"{name}#removed-{int(time.time())}"):
            raise UserError(f'no user "{name}"')

    def all(self) -> list[User]:
        return [_user(r) for r in self.store.users()]

    def get(self, name: str) -> User | None:
        record = self.store.user(name)
        return _user(record) if record else None

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when the password is right; the same work is done for unknown names."""
        record = self.store.user(name)
        if record is None:
            _hash(password, _DUMMY_SALT)
            return None
        if not hmac.compare_digest(_hash(password, record.salt), record.hash):
            return None
        return _user(record)

    # --- tokens -------------------------------------------------------------------------------

    def issue_token(self, name: str, seconds: float = TOKEN_SECONDS, kind: str = "access") -> tuple[str, float]:
        """A new random token for ``name`` and its expiry time; only its hash is stored.

        Kinds: ``access`` (Bearer), ``refresh`` (only for a new access token), ``password``
        (CC-Agency 8.x ``GET /token``: used in place of the password in Basic auth), ``device``
        (the cookie of a client that signed in: throttling never locks it out; a client that
        never keeps its cookie gets a new one each sign-in, so only the newest few are kept).
        """
        token = secrets.token_hex(24) if kind == "password" else secrets.token_urlsafe(32)
        now = time.time()
        expires = now + seconds
        self.store.add_token(_token_hash(token), name, expires, now, kind, keep=MAX_DEVICES if kind == "device" else None)
        return token, expires

    def verify_token(self, token: str, kind: str = "access") -> User | None:
        user, _expired = self.check_token(token, kind)
        return user

    def check_token(self, token: str, kind: str = "access") -> tuple[User | None, bool]:
        """(the token's user, False), or (None, whether it exists but has expired)."""
        found = self.store.token_user(_token_hash(token), kind)
        if found is None:
            return None, False
        record, expires_at = found
        if expires_at <= time.time():
            return None, True
        return _user(record), False

    def password_hash(self, name: str) -> bytes | None:
        """The stored hash (a cache of verified passwords is valid only while it is unchanged)."""
        record = self.store.user(name)
        return record.hash if record else None

    # --- throttling ---------------------------------------------------------------------------

    def blocked(self, name: str, client: str) -> str | None:
        """Why this user may not try a password from this client now (None: they may).

        A client is an address, or a device that signed in before (``device:...``). Failures
        are counted per client, and those from addresses also for the user as a whole: guesses
        from any number of addresses stay bounded, while a device that signed in before is
        never held back by them.
        """
        return _too_many(self.store.login_failures(name, client, time.time() - FAILURE_WINDOW_SECONDS, DEVICE), client)

    def reserve_attempt(self, name: str, client: str) -> int | None:
        """Count a password check as failed *before* it runs; None when it may not run.

        Checked and recorded in one transaction, so parallel guesses cannot all pass the check
        while the slow hash runs; :meth:`release_attempt` takes a successful one back.
        """
        now = time.time()
        return self.store.reserve_login_attempt(name, client, now, now - FAILURE_WINDOW_SECONDS, DEVICE, lambda counts: _too_many(counts, client) is None)

    def release_attempt(self, attempt: int) -> None:
        self.store.release_login_attempt(attempt)


def _user(record: UserRecord) -> User:
    return User(record.name, record.is_admin, record.created_at)


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters")


def _too_many(counts: FailureCounts, client: str) -> str | None:
    if counts.from_client >= MAX_FAILURES:
        return f"too many failed logins from {'this device' if client.startswith(DEVICE) else 'your address'}; wait {FAILURE_WINDOW_SECONDS} s"
    if client.startswith(DEVICE):
        return None
    if counts.from_addresses >= USER_MAX_FAILURES:
        return f"too many failed logins for this user; wait {FAILURE_WINDOW_SECONDS} s (a device that signed in before is not held back)"
    return None
