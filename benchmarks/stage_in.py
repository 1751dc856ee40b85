"""Stage in every input of a RED file exactly as `faice exec` does, and nothing else.

    python benchmarks/stage_in.py RED_FILE --jobs N --work DIR

What `faice exec` runs before a batch's container starts: the RED file is prepared (loaded,
validated, variables filled from FAICE_VAR_*), planned, and each batch's inputs are received by
the runner's own stage-in (``BatchRunner._stage_in``: the connectors, the shared SSH connections,
the checks of what arrived), up to N batches at once as the scheduler runs them. No Docker, no
state file. The inputs stay in DIR (an existing, empty directory; removing them is the caller's
part, outside the time measured, as for the peers' files). Prints the inputs and bytes staged;
exits 1 when a batch's stage-in fails.
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("red")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()

    from faice.red.prepare import prepare
    from faice.runner.batch import BatchRunner, RunOptions
    from faice.runner.mounts import Mounted
    from faice.runner.plan import plan

    prepared = prepare(args.red)
    plans = plan(prepared.experiment, prepared.masker)
    work = args.work
    options = RunOptions(outdir=work / "out", jobs=args.jobs)
    runner = BatchRunner(None, prepared.experiment, options, prepared.masker, Path(args.red).resolve().parent, "bench", "bench",  # type: ignore[arg-type]
                         work / "logs", threading.Event(), lambda _batch: False)

    def stage(index: int) -> int:
        batch_work = work / f"batch-{index}"
        batch_work.mkdir()
        mounted = Mounted("bench", str(index))
        try:
            mounts = runner._stage_in(plans[index], str(index), batch_work, mounted)
            return sum(sum(f.stat().st_size for f in m.source.rglob("*") if f.is_file()) if m.source.is_dir() else m.source.stat().st_size for m in mounts)
        finally:
            mounted.release()

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            sizes = list(pool.map(stage, range(len(plans))))
    except Exception as exc:  # noqa: BLE001 - reported as the benchmark's failure
        print(f"stage_in: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"staged {sum(len(p.staged) for p in plans)} inputs of {len(plans)} batches, {sum(sizes)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
