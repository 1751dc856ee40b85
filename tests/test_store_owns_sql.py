"""Only the store's modules (faice/state/) hold SQL or touch its connection and lock."""

from __future__ import annotations

import re
from pathlib import Path

import faice

ROOT = Path(faice.__file__).parent
#: SQL statements as faice writes them, and reaching into a store's internals
SQL = re.compile(r"\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX|TRIGGER)|ALTER\s+TABLE|DROP\s+TABLE|PRAGMA\s+\w+)")
INTERNALS = re.compile(r"\bstore\._|\bstore\.conn\b|\bimport sqlite_utils\b|\bsqlite3\.connect\b|\bfaice\.state\.(database|migrations)\b")


def offending(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if SQL.search(line) or INTERNALS.search(line)]


def test_no_module_outside_the_store_holds_sql_or_its_connection():
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.parent == ROOT / "state":
            continue
        if lines := offending(path.read_text()):
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}


def test_the_scan_finds_what_it_looks_for():
    assert offending('rows = self.store.conn.execute("SELECT id FROM batches WHERE x = ?")')
    assert offending("with store._lock:")
    assert offending('conn.execute("UPDATE batches SET state = ?")')
    assert offending("from faice.state.database import Database")
    assert not offending("batches = store.batches(experiment_id)  # select the open ones")
    assert not offending('raise InvalidInput("Select an experiment to update")')
