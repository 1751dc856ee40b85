"""Users, tokens and throttling for faice serve (the store side; the HTTP side comes with serve)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from faice.state.store import Store
from faice.state.users import FAILURE_WINDOW_SECONDS, MAX_FAILURES, UserError, Users


@pytest.fixture
def users(tmp_path: Path) -> Users:
    return Users(Store(tmp_path / "faice.db"))


def test_passwords_are_salted_hashes(users: Users, tmp_path: Path):
    users.add("alice", "correct horse", admin=True)
    users.add("bob", "correct horse")
    assert users.verify_password("alice", "correct horse").is_admin is True
    assert users.verify_password("bob", "correct horse").is_admin is False
    assert users.verify_password("alice", "wrong horse") is None
    assert users.verify_password("nobody", "correct horse") is None
    raw = (tmp_path / "faice.db").read_bytes()
    assert b"correct horse" not in raw
    alice, bob = users.store.user("alice"), users.store.user("bob")
    assert alice.hash != bob.hash and alice.salt != bob.salt and len(alice.salt) == 16


def test_user_rules(users: Users):
    users.add("alice", "long enough")
    for name, password, message in [("alice", "long enough", "exists already"), ("bad name", "long enough", "must be 1-64"), ("carol", "short", "at least 8")]:
        with pytest.raises(UserError, match=message):
            users.add(name, password)
    with pytest.raises(UserError, match="no user"):
        users.remove("nobody")


def test_tokens_are_stored_hashed_expire_and_end_with_the_password(users: Users, tmp_path: Path):
    users.add("alice", "correct horse")
    token, expires = users.issue_token("alice")
    assert expires > time.time() and users.verify_token(token).name == "alice"
    assert token.encode() not in (tmp_path / "faice.db").read_bytes()
    short, _ = users.issue_token("alice", seconds=-1)
    assert users.verify_token(short) is None
    users.set_password("alice", "another horse")
    assert users.verify_token(token) is None


def test_throttling_is_per_user_and_client(users: Users, monkeypatch):
    for _ in range(MAX_FAILURES):
        users.reserve_attempt("alice", "10.0.0.66")  # a check counted as failed
    assert users.blocked("alice", "10.0.0.66")
    assert not users.blocked("alice", "127.0.0.1")  # the real alice, elsewhere, is not locked out
    later = time.time() + FAILURE_WINDOW_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert not users.blocked("alice", "10.0.0.66")


def test_users_command_reads_passwords_only_from_stdin_or_a_prompt(tmp_path: Path, faice):
    db = str(tmp_path / "faice.db")
    added = faice("--db", db, "users", "add", "alice", "--admin", "--password-stdin", input="s3cret-pass\n")
    assert added.returncode == 0 and added.stdout.strip() == "added admin user alice"
    assert faice("--db", db, "users", "add", "bob").returncode == 2  # no terminal, no --password-stdin
    assert json.loads(faice("--db", db, "users", "list", "--json").stdout)[0] | {"createdAt": 0} == {"name": "alice", "isAdmin": True, "createdAt": 0}
    assert faice("--db", db, "users", "passwd", "alice", "--password-stdin", input="new-s3cret\n").returncode == 0
    assert Users(Store(tmp_path / "faice.db")).verify_password("alice", "new-s3cret") is not None
    assert faice("--db", db, "users", "remove", "alice").returncode == 0
    assert json.loads(faice("--db", db, "users", "list", "--json").stdout) == []


def test_parallel_right_passwords_are_never_refused_and_cost_one_hash(tmp_path):
    """Counting checks before they run must not turn a burst of correct logins into a lock-out."""
    import threading

    from faice.server.auth import Authenticator, Unauthorized
    from faice.state.store import Store
    from faice.state.users import Users

    users = Users(Store(tmp_path / "faice.db"))
    users.add("alice", "alice-password-1")
    hashes = []
    original = users.verify_password
    users.verify_password = lambda name, password: hashes.append(name) or original(name, password)  # type: ignore[method-assign]
    auth = Authenticator(users)
    answers: list[str] = []

    def login() -> None:
        try:
            answers.append(auth.basic("alice", "alice-password-1", "127.0.0.1").name)
        except Unauthorized as exc:
            answers.append(exc.message)

    threads = [threading.Thread(target=login) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["alice"] * 12
    assert len(hashes) == 1
    assert not users.blocked("alice", "127.0.0.1")
