"""The state file shared by several processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_many_processes_can_create_the_same_new_state_file(tmp_path: Path):
    for round_ in range(3):
        db = tmp_path / f"round{round_}" / "faice.db"
        code = f"from faice.state.store import Store; Store({str(db)!r}).create_experiment(source='x', red={{}}, argvs=[['a']], image='i', engine=None, username='u')"
        processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [p.communicate(timeout=60)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 6, errors
        from faice.state.store import Store

        assert len(Store(db).experiments()) == 6
