"""The store's tables of faice serve's accounts: users, API token hashes and failed logins.

The rules (hashing, token kinds, how many failures are too many) are faice/state/users.py's;
this is only their rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from faice.state.database import Database


class UserRecord(NamedTuple):
    """A user's row with its password hash and salt: faice/state/users.py hands out :class:`User` instead."""

    name: str
    hash: bytes
    salt: bytes
    is_admin: bool
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UserRecord:
        return cls(row["name"], row["hash"], row["salt"], bool(row["is_admin"]), row["created_at"])


class FailureCounts(NamedTuple):
    """Failed logins of one user since some time: from one client, and from every address."""

    from_client: int
    from_addresses: int


_USER = "SELECT name, hash, salt, is_admin, created_at FROM users"


class AccountTables:
    """The account methods of :class:`faice.state.store.Store`."""

    _db: Database

    def add_user(self, user: UserRecord) -> bool:
        """Add a user; False when the name is taken."""
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                return False
            conn.execute("INSERT INTO users (name, hash, salt, is_admin, created_at) VALUES (?,?,?,?,?)",
                         (user.name, user.hash, user.salt, int(user.is_admin), user.created_at))
        return True

    def set_user_password(self, name: str, hash_: bytes, salt: bytes) -> bool:
        """Store a new password hash and end the user's sessions (their tokens); False for an unknown user."""
        with self._db.transaction() as conn:
            if not conn.execute("UPDATE users SET hash = ?, salt = ? WHERE name = ?", (hash_, salt, name)).rowcount:
                return False
            conn.execute("DELETE FROM tokens WHERE username = ?", (name,))
        return True

    def remove_user(self, name: str, former: str) -> bool:
        """Remove a user and their tokens; what they submitted to faice serve goes under ``former``.
        False for an unknown user."""
        with self._db.transaction() as conn:
            if not conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                return False
            conn.execute("DELETE FROM tokens WHERE username = ?", (name,))
            submitted = "SELECT id FROM experiments WHERE username = ? AND runner = 'serve'"
            conn.execute(f"UPDATE batches SET username = ? WHERE username = ? AND experiment_id IN ({submitted})", (former, name, name))  # noqa: S608
            conn.execute("UPDATE experiments SET username = ? WHERE username = ? AND runner = 'serve'", (former, name))
        return True

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._db.connection() as conn:
            return [UserRecord.from_row(r) for r in conn.execute(f"{_USER} ORDER BY name")]  # noqa: S608

    def user(self, name: str) -> UserRecord | None:
        with self._db.connection() as conn:
            row = conn.execute(f"{_USER} WHERE name = ?", (name,)).fetchone()  # noqa: S608
        return UserRecord.from_row(row) if row else None

    def add_token(self, hash_: str, username: str, expires_at: float, created_at: float, kind: str, keep: int | None = None) -> None:
        """Store a token's hash; tokens expired an hour ago go, and with ``keep``, all but the
        user's newest ``keep`` tokens of this kind."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (created_at - 3600,))
            conn.execute("INSERT INTO tokens (hash, username, expires_at, created_at, kind) VALUES (?,?,?,?,?)", (hash_, username, expires_at, created_at, kind))
            if keep is not None:
                conn.execute("DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE username = ? AND kind = ? ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                             (username, kind, keep))

    def token_user(self, hash_: str, kind: str) -> tuple[UserRecord, float] | None:
        """The user of a token of this kind (tokens from before kinds are access tokens) and when it expires."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT u.name, u.hash, u.salt, u.is_admin, u.created_at, t.expires_at FROM tokens t JOIN users u ON u.name = t.username"
                " WHERE t.hash = ? AND COALESCE(t.kind, 'access') = ?", (hash_, kind)).fetchone()
        return (UserRecord.from_row(row), row["expires_at"]) if row else None

    def login_failures(self, name: str, client: str, since: float, device_prefix: str) -> FailureCounts:
        """How often ``name`` failed since ``since`` from ``client``, and from all clients that are
        addresses (not names starting with ``device_prefix``)."""
        with self._db.connection() as conn:
            return _failures(conn, name, client, since, device_prefix)

    def reserve_login_attempt(self, name: str, client: str, now: float, since: float, device_prefix: str,
                              allowed: Callable[[FailureCounts], bool]) -> int | None:
        """Record a failed login *before* the password is checked, when ``allowed`` says the counts
        permit one; its id (for :meth:`release_login_attempt`) or None. Checked and recorded in one
        transaction, so that parallel guesses cannot all pass the check. Failures before ``since`` go."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE time < ?", (since,))
            if not allowed(_failures(conn, name, client, since, device_prefix)):
                return None
            return conn.execute("INSERT INTO login_failures (username, client, time) VALUES (?,?,?)", (name, client, now)).lastrowid

    def release_login_attempt(self, attempt: int) -> None:
        """Take back a reserved failure (the password was right)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE id = ?", (attempt,))


def _failures(conn: sqlite3.Connection, name: str, client: str, since: float, device_prefix: str) -> FailureCounts:
    from_client = conn.execute("SELECT COUNT(*) FROM login_failures WHERE username = ? AND client = ? AND time > ?", (name, client, since)).fetchone()[0]
    everywhere = conn.execute("SELECT COUNT(*) FROM login_failures WHERE username = ? AND client NOT LIKE ? AND time > ?",
                              (name, device_prefix + "%", since)).fetchone()[0]
    return FailureCounts(from_client, everywhere)
