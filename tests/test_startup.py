"""What ``faice`` pays for at every start: a one-batch ``faice exec`` is start-up bound
(benchmarks/exec.sh), so what it imports and builds before its container starts is kept small."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redfiles import write


def test_every_dataclass_has_a_docstring():
    """A dataclass without one pays for ``inspect.signature`` when it is created, to make one: a
    tenth of a millisecond each at every start of faice (and the reader deserves a line anyway)."""
    import dataclasses
    import importlib
    import pkgutil

    import faice

    missing = []
    for info in pkgutil.walk_packages(faice.__path__, "faice."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == info.name:
                if (value.__doc__ or "").startswith(f"{value.__name__}("):
                    missing.append(f"{info.name}.{value.__name__}")
    assert missing == []


def test_running_a_valid_file_imports_no_validator_library_and_no_openssl(tmp_path: Path):
    """A fresh interpreter prepares a valid RED file and imports all that ``faice exec`` runs it
    with: the compiled schema validator runs without fastjsonschema (or jsonschema, which only
    explains invalid files), and nothing starts OpenSSL (hashlib) for a run without File outputs."""
    red = write(tmp_path / "red.yml", {
        "redVersion": "9",
        "cli": {"cwlVersion": "v1.0", "class": "CommandLineTool", "baseCommand": "true",
                "inputs": {"n": {"type": "int", "inputBinding": {"position": 0}}}, "outputs": {}},
        "inputs": {"n": 0},
        "container": {"engine": "docker", "settings": {"image": {"url": "faice-test-busybox:latest"}, "ram": 256}},
        "execution": {"engine": "ccfaice", "settings": {}},
    })
    code = (
        "import sys; from faice.cli import command; command(['exec']); "
        "import faice.runner.execute, faice.runner.exec_options, faice.runner.docker_engine, faice.runner.dockerapi, faice.view; "
        "from faice.red.prepare import prepare; prepare(sys.argv[1], connectors_required=True, local=True); "
        "print(' '.join(sorted(m for m in ('fastjsonschema', 'jsonschema', '_hashlib', 'hashlib', 'tempfile', 'decimal') if m in sys.modules)))"
    )
    for _ in range(2):  # the first may compile the validator (with fastjsonschema) into the cache
        result = subprocess.run([sys.executable, "-c", code, str(red)], capture_output=True, text=True, timeout=60, check=True,
                                env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.stdout.split() == []


def test_a_work_directory_is_made_only_when_an_input_needs_one(tmp_path: Path, monkeypatch):
    import tempfile

    from faice.runner.batch import WorkDir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    unused = WorkDir("faice-unused-")
    unused.remove()
    assert list(tmp_path.iterdir()) == []
    used = WorkDir("faice-used-")
    (used.path / "inputs").mkdir()
    assert used.path == used.path and used.path.parent == tmp_path and used.path.name.startswith("faice-used-")
    used.remove()
    assert list(tmp_path.iterdir()) == []


def test_the_faice_process_ends_quickly_but_loses_nothing():
    """``faice.cli.main`` skips the interpreter's teardown when it ends the process, yet what was
    registered to run at exit runs, buffered output arrives, and a thread that is not a daemon is
    waited for."""
    # the thread outlives main (2 s, however slowly a loaded machine starts faice) and writes to
    # stderr, so that stdout's order does not depend on that timing; it finishes before "at exit"
    code = (
        "import atexit, sys, threading, time; from faice.cli import main; "
        "atexit.register(lambda: (print('at exit', flush=False), print('at exit', file=sys.stderr))); "
        "sys.stdout.write('buffered '); "
        "threading.Thread(target=lambda: (time.sleep(2), print('thread done', file=sys.stderr))).start() if sys.argv[1] == 'thread' else None; "
        "sys.argv = ['faice', '--version']; main()"
    )
    for case, errors in (("plain", ["at exit"]), ("thread", ["thread done", "at exit"])):
        result = subprocess.run([sys.executable, "-c", code, case], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        lines = [line.rsplit(" ", 1)[0] if line.startswith("buffered faice") else line for line in result.stdout.splitlines()]
        assert lines == ["buffered faice", "at exit"], result.stdout
        assert result.stderr.splitlines() == errors


@pytest.mark.parametrize("header", ["", "from fastjsonschema import JsonSchemaDefinitionException\n", "import fastjsonschema\n"])
def test_the_compiled_validators_run_with_faices_stand_ins_or_as_generated(tmp_path: Path, monkeypatch, header: str):
    """The validators compiled from faice's schemas run without fastjsonschema; code that another
    fastjsonschema generates differently runs as generated, and still tells valid from invalid."""
    import fastjsonschema

    from faice.red import schema

    generate = fastjsonschema.compile_to_code
    monkeypatch.setattr(fastjsonschema, "compile_to_code", lambda definition: header + generate(definition))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    schema.fast_validator.cache_clear()
    try:
        settings = {"image": {"url": "x:1"}, "ram": 256}
        assert schema.is_valid("red-engine-container-docker", settings)
        assert not schema.is_valid("red-engine-container-docker", {**settings, "ram": "much"})
        assert not schema.is_valid("red-engine-container-docker", {**settings, "ram": 1.5, "extra": True})
    finally:
        schema.fast_validator.cache_clear()


def test_the_faice_process_keeps_its_exit_code_and_reports_what_it_could_not_write(tmp_path: Path):
    """The quick end keeps the command's exit code, copes with a standard stream it was started
    without, and leaves a stream that cannot be flushed (a full disk) to Python, which says so
    and exits 120, as before."""
    code = ("import atexit, sys; from faice.cli import main; "
            "atexit.register(lambda: sys.stdout.write('late')) if sys.argv[1] == 'late' else None; "
            "sys.argv = ['faice', 'validate', sys.argv[2]]; main()")
    missing = str(tmp_path / "missing.yml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout block-buffered, as a program's is
    plain = subprocess.run([sys.executable, "-c", code, "no", missing], capture_output=True, text=True, timeout=30, env=env)
    assert (plain.returncode, plain.stdout) == (2, "") and "missing.yml" in plain.stderr
    closed = subprocess.run(["sh", "-c", 'exec "$0" -c "$1" no "$2" >&-', sys.executable, code, missing], capture_output=True, text=True, timeout=30, env=env)
    assert closed.returncode == 2, closed.stderr
    with open("/dev/full", "w") as full:
        late = subprocess.run([sys.executable, "-c", code, "late", missing], stdout=full, stderr=subprocess.PIPE, text=True, timeout=30, env=env)
    assert late.returncode == 120 and "No space left on device" in late.stderr


def test_the_state_file_alone_holds_every_run_when_faice_ends(tmp_path: Path):
    """The connections are closed at exit, so the write-ahead log is folded into the file and gone."""
    db = tmp_path / "faice.db"
    code = "import sys; from faice.cli import main; sys.argv = ['faice', '--db', sys.argv[1], 'list']; main()"
    result = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert db.exists() and not (tmp_path / "faice.db-wal").exists()
