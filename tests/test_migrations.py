"""State files of every earlier schema version open with today's code, keep their data, and
record the migration steps; a fresh file gets every step; opening twice changes nothing."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from faice.state.migrations import MIGRATIONS, Migration, migrate
from faice.state.store import BatchState, Store
from faice.state.users import Users

DATA = Path(__file__).parent / "data" / "state"
VERSIONS = sorted(p.stem.removeprefix("schema") for p in DATA.glob("schema*.sql"))
KNOWN = json.loads((DATA / "tokens.json").read_text())
#: the tables (and their columns) each version wrote, compared row by row after the upgrade
TABLES = {"experiments": "id", "batches": "id", "history": "id", "users": "name", "tokens": "hash"}


def _file(tmp_path: Path, version: str) -> Path:
    """The state file that version's faice wrote (from its committed dump)."""
    db = tmp_path / f"schema{version}.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript((DATA / f"schema{version}.sql").read_text())
    return db


def _rows(db: Path) -> dict[str, dict[str, dict]]:
    """Every row of the tables in ``TABLES`` that exist, by key."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {table: {r[key]: dict(r) for r in conn.execute(f"SELECT * FROM {table}")} for table, key in TABLES.items() if table in present}  # noqa: S608


def _schema(db: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def _applied(db: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT name, applied_at FROM migrations ORDER BY rowid").fetchall()


def test_there_are_files_of_every_earlier_version():
    assert VERSIONS == ["1", "2", "3", "3a", "4", "5"]


@pytest.mark.parametrize("version", VERSIONS)
def test_an_earlier_file_opens_keeps_its_data_and_records_its_migrations(tmp_path: Path, version: str):
    db = _file(tmp_path, version)
    before = _rows(db)
    assert before["batches"] and before["history"] and before["experiments"]
    store = Store(db)

    after = _rows(db)
    for table, rows in before.items():  # every row and every old column kept as it was
        assert set(after[table]) == set(rows), table
        for key, row in rows.items():
            assert {column: after[table][key][column] for column in row} == row, (table, key)
    assert [name for name, _ in _applied(db)] == [m.name for m in MIGRATIONS]

    # the store reads what the old version wrote
    experiments = {e["id"]: e for e in store.experiments()}
    assert sorted(e["source"] for e in experiments.values()) == ["one.red.yml", "two.red.yml"]
    one = next(e for e in experiments.values() if e["source"] == "one.red.yml")
    states = [b.state for b in store.batches(one["id"])]
    assert states == [BatchState.SUCCEEDED, BatchState.FAILED, BatchState.CANCELLED]
    failed = store.batches(one["id"])[1]
    assert (failed.exit_code, failed.error, failed.attempts, failed.node) == (2, "it failed", 2, "n1")
    assert [h["state"] for h in store.history(failed.id)] == ["registered", "scheduled", "processing", "failed"]
    assert store.batch(store.batches(one["id"])[0].id).outputs == {"out": {"class": "File", "size": 3}}
    from faice.state.listing import Filters

    listed = store.rows("batches", Filters(experiment_id=failed.experiment_id), ascending=True)
    assert [h["state"] for h in json.loads(listed[1]["history_json"])] == ["registered", "scheduled", "processing", "failed"]  # history_json backfilled
    assert store.count("batches", Filters(state="processing")) == 1  # batch_counts counted the old batches
    assert {e.id for e in store.open_experiments()} == {e["id"] for e in experiments.values() if e["source"] == "two.red.yml"}

    users = Users(store)
    if version != "1":  # faice users came with schema 2
        assert [(u.name, u.is_admin) for u in users.all()] == [("alice", True), ("bob", False)]
        assert users.verify_password("bob", KNOWN["password"]).name == "bob"
        for name, token in KNOWN["tokens"][version].items():
            assert users.verify_token(token).name == name

    # and can be written to afterwards
    users.add("carol", "long enough")
    assert users.verify_password("carol", "long enough") is not None
    experiment_id, batch_ids = store.create_experiment(source="new", red={}, argvs=[["x"]], image="i", engine=None, username="carol", runner="serve")
    assert store.set_state(batch_ids[0], BatchState.SCHEDULED, "test", node="n3")
    store.set_outdir(one["id"], "/somewhere")
    assert store.experiment(one["id"])["outdir"] == "/somewhere"
    assert store.count("batches", Filters(node="n3")) == 1
    assert store.set_states(store.batch_ids(one["id"]), BatchState.FAILED, "test") == 2  # the cancelled batch stays cancelled
    store.close()

    # opening again changes nothing
    schema, applied, rows = _schema(db), _applied(db), _rows(db)
    Store(db).close()
    assert (_schema(db), _applied(db), _rows(db)) == (schema, applied, rows)


def test_a_fresh_file_gets_every_migration_and_the_schema_an_upgraded_one_has(tmp_path: Path):
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert [name for name, _ in _applied(fresh)] == [m.name for m in MIGRATIONS]
    upgraded = _file(tmp_path, "5")
    Store(upgraded).close()

    def columns(db: Path) -> dict[str, set[str]]:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}

    def indexes(db: Path) -> set[str]:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL")}

    assert columns(fresh) == columns(upgraded)
    assert indexes(fresh) == indexes(upgraded)


def test_each_step_runs_once_in_its_own_transaction(tmp_path: Path):
    """A failing step rolls back alone: the steps before it stay recorded, and it runs again next time."""
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    ran = []

    def one(c: sqlite3.Connection) -> None:
        ran.append("one")
        c.execute("CREATE TABLE a (x)")

    def broken(c: sqlite3.Connection) -> None:
        ran.append("broken")
        c.execute("CREATE TABLE b (x)")
        raise RuntimeError("step failed")

    steps = [Migration("one", one), Migration("two", broken)]
    with pytest.raises(RuntimeError):
        migrate(conn, steps)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "a" in tables and "b" not in tables
    assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == ["one"]

    steps[1] = Migration("two", lambda c: c.execute("CREATE TABLE b (x)") and None)
    assert migrate(conn, steps) == ["two"]
    assert migrate(conn, steps) == []
    assert ran == ["one", "broken"]
    conn.close()
