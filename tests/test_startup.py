"""What ``faice`` pays for at every start: a one-batch ``faice exec`` is start-up bound
(benchmarks/exec.sh), so what it imports and builds before its container starts is kept small."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    code = (
        "import atexit, sys, threading, time; from faice.cli import main; "
        "atexit.register(lambda: print('at exit', flush=False)); "
        "sys.stdout.write('buffered '); "
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start() if sys.argv[1] == 'thread' else None; "
        "sys.argv = ['faice', '--version']; main()"
    )
    for case, expected in (("plain", ["buffered faice", "at exit"]), ("thread", ["buffered faice", "thread done", "at exit"])):
        result = subprocess.run([sys.executable, "-c", code, case], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        lines = [line.rsplit(" ", 1)[0] if line.startswith("buffered faice") else line for line in result.stdout.splitlines()]
        assert lines == expected, result.stdout
