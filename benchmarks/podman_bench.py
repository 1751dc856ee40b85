"""`faice exec` under podman (FAICE_ENGINE=podman) against plain `podman run --rm`, its floor.

Called by benchmarks/exec.sh after the Docker measurements, in the same run; see there. The same
RED files as exec_bench.py (`true N` batches), measured the same way (benchlib.py: each command a
fresh process, interleaved rounds, medians, a failed command voids the benchmark):
  1. BATCHES batches: faice exec --jobs J  vs  xargs -P J: podman run --rm IMAGE true N
  2. one batch of `true`: faice exec  vs  one podman run --rm IMAGE true 0
Podman's API service is a standing process like dockerd: one untimed faice exec starts it (or
finds it) before anything is measured, so no round pays for its start.

Targets: Docker's (exec_bench.py), against podman's own floor.

Exit status: 0 every target met, 1 a target missed, 2 a command failed or the set-up is broken.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from benchlib import BenchError, Command, Ratio, capture, commands_table, machine, measure, no_containers_left, program, ratios_table, report_targets  # noqa: E402
from exec_bench import MANY_LIMIT, ONE_LIMIT, faice_result, make_true_batches  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faice", required=True)
    ap.add_argument("--podman", required=True)
    ap.add_argument("--image", required=True, help="an image in podman's store (nothing is pulled)")
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--runs-small", type=int, default=5)
    ap.add_argument("--runs-big", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()

    os.environ["FAICE_ENGINE"] = "podman"  # every faice below runs on podman; podman itself ignores it
    work: Path = args.work.resolve()
    logs, db = work / "logs", work / "state" / "faice.db"
    many, one = work / f"true-{args.batches}-batches.yml", work / "true-1-batch.yml"
    ids = work / "ids.txt"
    jobs = str(args.jobs)
    try:
        args.faice, args.podman = program(args.faice), program(args.podman)
        logs.mkdir(parents=True)
        make_true_batches(many, args.image, args.batches)
        make_true_batches(one, args.image, 1)
        ids.write_text("".join(f"{i}\n" for i in range(args.batches)), encoding="utf-8")
        version = capture([args.podman, "version", "--format", "{{.Client.Version}}"], work)
        started = subprocess.run([args.faice, "--db", str(db), "exec", str(one), "--json", "--outdir", str(work / "out-start")], cwd=work, capture_output=True, text=True)
        if started.returncode != 0:
            raise BenchError(f"the first faice exec under podman (untimed, it starts podman's service) failed: {started.stderr.strip()}")
        faice_result(started.stdout, 1)

        print("== faice exec benchmark under podman (FAICE_ENGINE=podman)")
        print(f"podman    {args.podman} ({version}), its API service started or found by faice; image {args.image} (local, never pulled)")
        print(f"machine   {machine()}; parallelism {args.jobs}")
        print(f"runs      {args.runs_big} for {args.batches} batches (no warm-up), {args.runs_small} for the single batch (+{args.warmup} warm-up); medians")
        print(flush=True)

        many_f = Command("podman-faice-many", f"FAICE_ENGINE=podman faice exec --jobs {jobs} ({args.batches} batches)",
                         [args.faice, "--db", str(db), "exec", str(many), "--json", "--outdir", str(work / "out-many-{run}"), "--jobs", jobs],
                         check=lambda out, run: faice_result(out, args.batches) and None)
        many_p = Command("podman-many", f"xargs -P {jobs}: podman run --rm {args.image} true N (x{args.batches})",
                         ["xargs", "-a", str(ids), "-P", jobs, "-n", "1", args.podman, "run", "--rm", args.image, "true"])
        measure("podman-many", [many_f, many_p], args.runs_big, 0, work, logs)
        one_f = Command("podman-faice-one", "FAICE_ENGINE=podman faice exec (1 batch of true)",
                        [args.faice, "--db", str(db), "exec", str(one), "--json", "--outdir", str(work / "out-one-{run}")],
                        check=lambda out, run: faice_result(out, 1) and None)
        one_p = Command("podman-one", f"podman run --rm {args.image} true 0", [args.podman, "run", "--rm", args.image, "true", "0"])
        measure("podman-one", [one_f, one_p], args.runs_small, args.warmup, work, logs)

        no_containers_left(args.podman, work)
    except BenchError as exc:
        print(f"\npodman_bench: BENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 2

    print()
    print(commands_table([(f"{args.batches} batches of true", [many_f, many_p]), ("1 batch of true", [one_f, one_p])]))
    ratios = [Ratio(f"podman, {args.batches} batches: faice / podman run --rm, time", many_f, many_p, limit=MANY_LIMIT),
              Ratio("podman, 1 batch of true: faice / podman run --rm, time", one_f, one_p, limit=ONE_LIMIT)]
    print()
    print(ratios_table(ratios))
    print()
    print("== summary under podman (for README.md)")
    print()
    print(f"Measured by `benchmarks/exec.sh` on {platform.system()} {platform.machine()} ({os.cpu_count()} CPUs, podman {version}, rootful: {os.geteuid() == 0}),")
    print(f"median of {args.runs_big} runs for {args.batches} batches and {args.runs_small} for one batch, {args.jobs} in parallel.")
    print()
    print("| case | FAICE_ENGINE=podman faice exec | floor: `podman run --rm` | faice / floor |")
    print("|---|---|---|---|")
    print(f"| {args.batches} batches of `true` | {many_f.wall:.2f} s ({many_f.wall / args.batches:.2f} s/batch) | {many_p.wall:.2f} s | {ratios[0].value:.2f} |")
    print(f"| 1 batch of `true` | {one_f.wall:.2f} s | {one_p.wall:.2f} s | {ratios[1].value:.2f} |")
    print()
    print(f"faice's peak RSS under podman: {many_f.rss_mib:.1f} MiB for {args.batches} batches, {one_f.rss_mib:.1f} MiB for one batch.")
    return report_targets(ratios, "podman_bench")


if __name__ == "__main__":
    sys.exit(main())
