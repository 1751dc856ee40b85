"""What the benchmark helpers (validate_bench.py, exec_bench.py) share: running and checking the
measured commands, and the report. Standard library only.

Every measured command runs as its own process; its wall time is taken around it and its peak
resident set size comes from os.wait4 (the child's own rusage, ru_maxrss in KiB on Linux). The
commands of one case are interleaved round by round (A B C, A B C, ...) so that drift of the
machine hits all of them alike; the figures are medians over the rounds. A command that fails
raises BenchError: it never turns into a ratio.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(Exception):
    """A command failed, a check did not hold or an input could not be prepared: the benchmark is void."""


# --------------------------------------------------------------------------- running

Check = Callable[[str, int], None]  # (output, run number) -> raise BenchError when wrong


@dataclass
class Command:
    key: str  # short name, used in ratios and log names
    label: str  # what the table shows
    argv: list[str]  # "{run}" in an argument is replaced by the run number
    expect: str | None = None  # regex that must occur in the command's output
    check: Check | None = None  # looks at the output (and files) after a successful exit
    before: Callable[[int], None] | None = None  # untimed preparation of a run (e.g. an empty output dir)
    scale: float = 1.0  # wall times are multiplied by this (fewer runs scaled up to the batch count)
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss_mib(self) -> float:
        return statistics.median(self.rss_kib) / 1024


def program(name: str) -> str:
    """An absolute path for a program (the commands run in the scratch directory)."""
    found = os.path.abspath(name) if os.sep in name else shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise BenchError(f"{name}: not an executable program")
    return found


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join("    | " + line for line in text.splitlines()[-lines:])


def run_checked(cmd: Command, run: int, cwd: Path, out_log: Path, err_log: Path | None = None) -> tuple[float, int]:
    """Run a command once; return (wall seconds, peak RSS KiB). Raise BenchError unless it succeeded.

    Its stdout goes to out_log and its stderr to err_log, or to out_log as well when err_log is None;
    cmd.expect and cmd.check look at what out_log holds.
    """
    argv = [a.replace("{run}", str(run)) for a in cmd.argv]
    if cmd.before:
        cmd.before(run)
    err_file = err_log.open("wb") if err_log else contextlib.nullcontext(subprocess.STDOUT)
    with out_log.open("wb") as out, err_file as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            raise BenchError(f"cannot start {argv[0]}: {exc}") from exc
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    output = out_log.read_text(encoding="utf-8", errors="replace")
    why = f"exit status {code}" if code != 0 else None
    if why is None and cmd.expect is not None and not re.search(cmd.expect, output):
        why = f"exit status 0 but its output lacks /{cmd.expect}/"
    if why is None and cmd.check is not None:
        try:
            cmd.check(output, run)
        except BenchError as exc:
            why = f"exit status 0, but {exc}"
    if why is not None:
        shown = f"\n{_tail(output)}"
        if err_log:
            shown = f"\n  stdout:{shown}\n  stderr:\n{_tail(err_log.read_text(encoding='utf-8', errors='replace'))}"
        raise BenchError(f"command failed ({why}), run in {cwd}:\n    $ {subprocess.list2cmdline(argv)}{shown}")
    return wall * cmd.scale, usage.ru_maxrss


def measure(case: str, commands: list[Command], runs: int, warmup: int, work: Path, logs: Path | None = None) -> None:
    """Run each command warmup + runs times, interleaved; keep the timed rounds.

    With logs, each run keeps its own logs/KEY-RUN.stdout and .stderr; without, a command's output
    (stdout and stderr together) goes to work/CASE-KEY.log, overwritten by each run.
    """
    for round_no in range(warmup + runs):
        timed = round_no >= warmup
        for cmd in commands:
            if logs is None:
                wall, rss = run_checked(cmd, round_no, work, work / f"{case}-{cmd.key}.log")
            else:
                wall, rss = run_checked(cmd, round_no, work, logs / f"{cmd.key}-{round_no}.stdout", logs / f"{cmd.key}-{round_no}.stderr")
            if timed:
                cmd.walls.append(wall)
                cmd.rss_kib.append(rss)
        tag = f"round {round_no - warmup + 1}/{runs}" if timed else f"warm-up {round_no + 1}/{warmup}"
        done = "  ".join(f"{c.key} {c.walls[-1]:.2f}s" if timed else c.key for c in commands)
        print(f"  [{case}] {tag}: {done}", file=sys.stderr, flush=True)


def capture(argv: list[str], cwd: Path) -> str:
    """Output of a short unmeasured command, which must succeed."""
    try:
        proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as exc:
        raise BenchError(f"cannot start {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise BenchError(f"command failed (exit status {proc.returncode}):\n    $ {subprocess.list2cmdline(argv)}\n{proc.stdout}{proc.stderr}")
    return (proc.stdout + proc.stderr).strip()


def tool_versions(faice: str, cwltool: str | None, docker: str, cwd: Path) -> dict[str, str]:
    """The versions the reports name: faice's, cwltool's (when it is measured) and the Docker engine's."""
    return {
        "faice": capture([faice, "--version"], cwd),
        **({"cwltool": capture([cwltool, "--version"], cwd).split()[-1]} if cwltool else {}),
        "docker": capture([docker, "version", "--format", "{{.Server.Version}}"], cwd),
    }


#: the experiments this benchmark's faice runs made (from their output): only their containers
#: count as left behind, not those of another faice on a shared machine (a test run's, still running)
MEASURED: set[str] = set()


def faice_containers(docker: str, work: Path) -> set[str]:
    """Ids of the containers, running or not, labelled with an experiment in MEASURED."""
    listed = capture([docker, "ps", "-a", "--no-trunc", "--filter", "label=faice.experiment", "--format", "{{.ID}} {{.Labels}}"], work)
    return {line.split()[0] for line in listed.splitlines() if any(experiment in line for experiment in MEASURED)}


def no_containers_left(engine: str, work: Path) -> None:
    """Raise BenchError when a container of this benchmark's experiments is still there (engine:
    the docker or podman CLI; podman's ps takes docker's arguments)."""
    left, name = faice_containers(engine, work), os.path.basename(engine)
    if left:
        shown = " ".join(sorted(c[:12] for c in left))
        raise BenchError(f"{len(left)} {name} container(s) labelled faice.experiment left behind by this benchmark: {shown} (remove with: {name} rm -f {shown})")
    print(f"  [check] no {name} container labelled faice.experiment left behind", file=sys.stderr)


# --------------------------------------------------------------------------- report


def machine() -> str:
    """'Linux x86_64, 8 CPUs, Python 3.12.3'"""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


@dataclass
class Ratio:
    name: str
    num: Command
    den: Command
    metric: str = "time"  # "time" or "memory"
    limit: float | None = None  # target: ratio <= limit
    strict: bool = False  # target: ratio < limit

    @property
    def value(self) -> float:
        if self.metric == "time":
            return self.num.wall / self.den.wall
        return self.num.rss_mib / self.den.rss_mib

    @property
    def target(self) -> str:
        return "-" if self.limit is None else f"{'<' if self.strict else '<='} {self.limit:g}"

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "info"
        ok = self.value < self.limit if self.strict else self.value <= self.limit
        return "PASS" if ok else "FAIL"


def table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def commands_table(cases: list[tuple[str, list[Command]]]) -> str:
    """One row per measured command: runs, wall time median/min/max, peak RSS median."""
    rows = [["case", "command", "runs", "wall s median", "min", "max", "peak RSS MiB median"]]
    for case, cmds in cases:
        for c in cmds:
            rows.append([case, c.label, str(len(c.walls)), f"{c.wall:.3f}", f"{min(c.walls):.3f}", f"{max(c.walls):.3f}", f"{c.rss_mib:.1f}"])
    return table(rows, right={2, 3, 4, 5, 6})


def ratios_table(ratios: list[Ratio]) -> str:
    rows = [["ratio", "value", "target", "result"]]
    rows += [[r.name, f"{r.value:.3f}", r.target, r.verdict] for r in ratios]
    return table(rows, right={1})


def report_targets(ratios: list[Ratio], prog: str) -> int:
    """Print the targets with their verdicts and the last line; return the exit status (0 all met, 1 not)."""
    print()
    print("Targets:")
    for r in ratios:
        if r.limit is not None:
            print(f"- {r.name} {r.target}: {r.value:.2f} {r.verdict}")
    print()
    failed = [r for r in ratios if r.verdict == "FAIL"]
    if failed:
        print(f"{prog}: {len(failed)} target(s) missed: " + "; ".join(r.name for r in failed), file=sys.stderr)
        return 1
    print("All targets met.")
    return 0


def report_verdicts(verdicts: list[tuple[str, str, bool]], prog: str, began: float) -> int:
    """report_targets for targets that are not ratios: (name, value shown, met) each, and the time
    since began (perf_counter); returns the exit status (0 all met, 1 not)."""
    print()
    print("Targets:")
    for name, value, ok in verdicts:
        print(f"- {name}: {value} {'PASS' if ok else 'FAIL'}")
    print(f"(whole benchmark: {time.perf_counter() - began:.0f} s)")
    print()
    failed = [name for name, _value, ok in verdicts if not ok]
    if failed:
        print(f"{prog}: {len(failed)} target(s) missed: " + "; ".join(failed), file=sys.stderr)
        return 1
    print("All targets met.")
    return 0
