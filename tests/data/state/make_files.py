"""Write the state files of every earlier schema version as SQL dumps (run once; the dumps are committed).

Each version's own code (``git archive COMMIT faice``) writes a file with a few experiments,
batches, history, users and tokens, as that version did; the dump (with its ``user_version``)
is what tests/test_migrations.py turns back into a file and opens with the current code.

    .venv/bin/python tests/data/state/make_files.py
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
#: the last commit that wrote each schema version (and "3a", the first schema 3, without history_json and batch_counts)
COMMITS = {"1": "f89e771", "2": "d164aaa", "3a": "28a66e9", "3": "40b7a66", "4": "7cfc512", "5": "f46e29f"}
PASSWORD = "correct horse"  # the test users' password (these files are test data)

WRITE = """
import json, sys, time
from faice.state.store import Store
store = Store(sys.argv[1])
newer = "ram" in Store.create_experiment.__code__.co_varnames
extra = {"runner": "serve", "ram": 256, "retries": 1, "settings": {"gpus": 0}} if newer else {}
red = {"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}
one, done = store.create_experiment(source="one.red.yml", red=red, argvs=[["echo", "a"], ["echo", "b"], ["echo", "c"]], image="busybox", engine="docker", username="ann")
two, open_ = store.create_experiment(source="two.red.yml", red=red, argvs=[["true"], ["true"]], image="busybox", engine=None, username="alice", **extra)
for batch in done:
    store.set_state(batch, "scheduled", "test")
    store.set_state(batch, "processing", "test", node="n1", container="c" * 12)
store.set_state(done[0], "succeeded", "exit code 0", exit_code=0, outputs={"out": {"class": "File", "size": 3}})
store.set_state(done[1], "failed", "exit code 2", exit_code=2, error="it failed")
store.set_state(done[2], "cancelled", "cancelled by the test")
store.update(done[1], attempts=2)
store.set_state(open_[1], "scheduled", "test")
store.set_state(open_[1], "processing", "test", node="n2")
tokens = {}
try:
    from faice.state.users import Users
except ImportError:
    pass
else:
    users = Users(store)
    users.add("alice", sys.argv[2], admin=True)
    users.add("bob", sys.argv[2])
    for name in ("alice", "bob"):
        tokens[name] = users.issue_token(name, 100 * 365 * 86400)[0]
print(json.dumps(tokens))
"""


def write(label: str, commit: str, scratch: Path) -> tuple[str, dict[str, str]]:
    """The dump of the file ``commit``'s code writes, and the tokens it issued."""
    code = scratch / commit
    code.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "faice"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    db = scratch / f"{label}.db"
    done = subprocess.run([sys.executable, "-c", WRITE, str(db), PASSWORD], env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"},
                          check=True, capture_output=True, text=True, cwd=scratch)
    with sqlite3.connect(db) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        dump = "\n".join(conn.iterdump())
    return f"-- written by faice at {commit} (schema {version})\nPRAGMA user_version={version};\n{dump}\n", json.loads(done.stdout)


def main() -> None:
    tokens = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, commit in COMMITS.items():
            dump, tokens[label] = write(label, commit, Path(scratch))
            (HERE / f"schema{label}.sql").write_text(dump)
    (HERE / "tokens.json").write_text(json.dumps({"password": PASSWORD, "tokens": tokens}, indent=1) + "\n")


if __name__ == "__main__":
    main()
