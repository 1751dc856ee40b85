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
from typing import Any

from faice.errors import InvalidInput
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
        if len(password) < 8:
            raise UserError("a password needs at least 8 characters")
        salt = secrets.token_bytes(16)
        now = time.time()
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f'user "{name}" exists already')
            conn.execute("INSERT INTO users (name, hash, salt, is_admin, created_at) VALUES (?,?,?,?,?)", (name, _hash(password, salt), salt, int(admin), now))
        return User(name, admin, now)

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 8:
            raise UserError("a password needs at least 8 characters")
        salt = secrets.token_bytes(16)
        with self.store.transaction() as conn:
            changed = conn.execute("UPDATE users SET hash = ?, salt = ? WHERE name = ?", (_hash(password, salt), salt, name)).rowcount
            if not changed:
                raise UserError(f'no user "{name}"')
            conn.execute("DELETE FROM tokens WHERE username = ?", (name,))  # a new password ends old sessions

    def remove(self, name: str) -> None:
        """Remove a user. What they submitted stays (admins still see it), under a name no new user
        can take (``NAME#removed-TIME``): a user created later with the same name does not inherit
        it. Runs of ``faice exec`` belong to the local login, not to an API user, and stay."""
        with self.store.transaction() as conn:
            if not conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                raise UserError(f'no user "{name}"')
            conn.execute("DELETE FROM tokens WHERE username = ?", (name,))
            former = f"{name}#removed-{int(time.time())}"
            submitted = "SELECT id FROM experiments WHERE username = ? AND runner = 'serve'"
            conn.execute(f"UPDATE batches SET username = ? WHERE username = ? AND experiment_id IN ({submitted})", (former, name, name))  # noqa: S608
            conn.execute("UPDATE experiments SET username = ? WHERE username = ? AND runner = 'serve'", (former, name))

    def all(self) -> list[User]:
        with self.store._lock:
            rows = self.store.conn.execute("SELECT name, is_admin, created_at FROM users ORDER BY name").fetchall()
        return [User(r["name"], bool(r["is_admin"]), r["created_at"]) for r in rows]

    def get(self, name: str) -> User | None:
        return next((u for u in self.all() if u.name == name), None)

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when the password is right; the same work is done for unknown names."""
        with self.store._lock:
            row = self.store.conn.execute("SELECT name, hash, salt, is_admin, created_at FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            _hash(password, _DUMMY_SALT)
            return None
        if not hmac.compare_digest(_hash(password, row["salt"]), row["hash"]):
            return None
        return User(row["name"], bool(row["is_admin"]), row["created_at"])

    # --- tokens -------------------------------------------------------------------------------

    def issue_token(self, name: str, seconds: float = TOKEN_SECONDS, kind: str = "access") -> tuple[str, float]:
        """A new random token for ``name`` and its expiry time; only its hash is stored.

        Kinds: ``access`` (Bearer), ``refresh`` (only for a new access token), ``password``
        (CC-Agency 8.x ``GET /token``: used in place of the password in Basic auth), ``device``
        (the cookie of a client that signed in: throttling never locks it out).
        """
        token = secrets.token_hex(24) if kind == "password" else secrets.token_urlsafe(32)
        now = time.time()
        expires = now + seconds
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 3600,))
            conn.execute("INSERT INTO tokens (hash, username, expires_at, created_at, kind) VALUES (?,?,?,?,?)", (_token_hash(token), name, expires, now, kind))
            if kind == "device":  # a client that never keeps its cookie gets a new one each sign-in: keep the newest few
                conn.execute("DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE username = ? AND kind = 'device' ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                             (name, MAX_DEVICES))
        return token, expires

    def verify_token(self, token: str, kind: str = "access") -> User | None:
        user, _expired = self.check_token(token, kind)
        return user

    def check_token(self, token: str, kind: str = "access") -> tuple[User | None, bool]:
        """(the token's user, False), or (None, whether it exists but has expired)."""
        with self.store._lock:
            row = self.store.conn.execute(
                "SELECT u.name, u.is_admin, u.created_at, t.expires_at FROM tokens t JOIN users u ON u.name = t.username WHERE t.hash = ? AND COALESCE(t.kind, 'access') = ?",
                (_token_hash(token), kind),
            ).fetchone()
        if row is None:
            return None, False
        if row["expires_at"] <= time.time():
            return None, True
        return User(row["name"], bool(row["is_admin"]), row["created_at"]), False

    def password_hash(self, name: str) -> bytes | None:
        """The stored hash (a cache of verified passwords is valid only while it is unchanged)."""
        with self.store._lock:
            row = self.store.conn.execute("SELECT hash FROM users WHERE name = ?", (name,)).fetchone()
        return row["hash"] if row else None

    # --- throttling ---------------------------------------------------------------------------

    def blocked(self, name: str, client: str) -> str | None:
        """Why this user may not try a password from this client now (None: they may).

        A client is an address, or a device that signed in before (``device:...``). Failures
        are counted per client, and those from addresses also for the user as a whole: guesses
        from any number of addresses stay bounded, while a device that signed in before is
        never held back by them.
        """
        since = time.time() - FAILURE_WINDOW_SECONDS
        with self.store._lock:
            return _too_many(self.store.conn, name, client, since)

    def reserve_attempt(self, name: str, client: str) -> int | None:
        """Count a password check as failed *before* it runs; None when it may not run.

        Checked and recorded in one transaction, so parallel guesses cannot all pass the check
        while the slow hash runs; :meth:`release_attempt` takes a successful one back.
        """
        now = time.time()
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE time < ?", (now - FAILURE_WINDOW_SECONDS,))
            if _too_many(conn, name, client, now - FAILURE_WINDOW_SECONDS):
                return None
            return conn.execute("INSERT INTO login_failures (username, client, time) VALUES (?,?,?)", (name, client, now)).lastrowid

    def release_attempt(self, attempt: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE id = ?", (attempt,))


def _too_many(conn: Any, name: str, client: str, since: float) -> str | None:
    count = conn.execute("SELECT COUNT(*) FROM login_failures WHERE username = ? AND client = ? AND time > ?", (name, client, since)).fetchone()[0]
    if count >= MAX_FAILURES:
        return f"too many failed logins from {'this device' if client.startswith(DEVICE) else 'your address'}; wait {FAILURE_WINDOW_SECONDS} s"
    if client.startswith(DEVICE):
        return None
    everywhere = conn.execute("SELECT COUNT(*) FROM login_failures WHERE username = ? AND client NOT LIKE ? AND time > ?", (name, DEVICE + "%", since)).fetchone()[0]
    if everywhere >= USER_MAX_FAILURES:
        return f"too many failed logins for this user; wait {FAILURE_WINDOW_SECONDS} s (a device that signed in before is not held back)"
    return None
