"""Side-by-side measurements of faice on CWL documents against cwltool, on the same files.

Called by benchmarks/cwl.sh, which finds faice, cwltool and a scratch directory; see there.
Standard library only; running, checking and reporting the commands is benchlib.py's. faice's
cache of cwltool's schemas is kept in the scratch directory (XDG_CACHE_HOME), filled by the
warm-up round, and emptied before every run of the cold case.

Exit status: 0 every target met, 1 a target missed, 2 a command failed or the set-up is broken.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # benchlib sits next to this file; python -P or PYTHONSAFEPATH leave it out
    sys.path.insert(0, HERE)
from benchlib import BenchError, Command, Ratio, capture, commands_table, machine, measure, program, ratios_table, report_targets  # noqa: E402

TOOL = "grepwrap-v1_0.cwl"
GRAPH = "graph-main.cwl"


def fmt_cmd(c: Command) -> str:
    return f"{c.wall:.2f} s, {c.rss_mib:.0f} MiB"


def validate_cases(faice: str, cwltool: str, data: Path, cache: Path) -> list[tuple[str, list[Command]]]:
    """faice validate against cwltool --validate, warm; and faice with no schema cache."""
    cases = []
    for name in (TOOL, GRAPH):
        path = str(data / name)
        cases.append((f"validate {name}", [
            Command("faice", f"faice validate {name}", [faice, "validate", path], expect=r": valid CWL v1\.\d \w+; faice exec runs it"),
            Command("cwltool", f"cwltool --validate {name}", [cwltool, "--validate", path], expect=r"is valid CWL"),
        ]))
    cold = Command("faice-cold", f"faice validate {TOOL}, no schema cache", [faice, "validate", str(data / TOOL)], expect=r": valid CWL",
                   before=lambda run: shutil.rmtree(cache, ignore_errors=True))
    cases.append((f"validate {TOOL}, cold", [cold]))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faice", required=True)
    ap.add_argument("--cwltool", required=True)
    ap.add_argument("--data", required=True, type=Path, help="tests/data/cwl of this checkout")
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (emptied by the caller)")
    ap.add_argument("--runs-small", type=int, default=5)
    ap.add_argument("--runs-big", type=int, default=3, help="(unused until the exec cases come)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before each case")
    args = ap.parse_args()

    work: Path = args.work.resolve()
    cache = work / "cache"
    os.environ["XDG_CACHE_HOME"] = str(cache)  # faice's schema cache: the benchmark's own
    try:
        faice, cwltool = program(args.faice), program(args.cwltool)
        versions = {"faice": capture([faice, "--version"], work), "cwltool": capture([cwltool, "--version"], work).split()[-1]}
        print("== faice on CWL documents, against cwltool")
        print(f"faice     {faice} ({versions['faice']})")
        print(f"cwltool   {cwltool} ({versions['cwltool']})")
        print(f"machine   {machine()}")
        print(f"runs      {args.runs_small} per case (+{args.warmup} warm-up); medians")
        print(flush=True)
        cases = validate_cases(faice, cwltool, args.data.resolve(), cache)
        for case, commands in cases:
            measure(case.split()[1].split(".")[0], commands, args.runs_small, args.warmup, work)
    except BenchError as exc:
        print(f"\ncwl_bench: BENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 2

    print()
    print(commands_table(cases))
    (tool_f, tool_c), (graph_f, graph_c), (cold,) = (commands for _, commands in cases)
    ratios = [
        Ratio(f"validate {TOOL}: faice / cwltool --validate, time", tool_f, tool_c, "time", 0.5),
        Ratio(f"validate {GRAPH}: faice / cwltool --validate, time", graph_f, graph_c, "time", 0.5),
        Ratio(f"validate {TOOL}: faice / cwltool --validate, peak RSS", tool_f, tool_c, "memory"),
        Ratio(f"validate {TOOL}, no schema cache: faice / cwltool --validate, time", cold, tool_c, "time"),
    ]
    print()
    print(ratios_table(ratios))
    print()
    print("== summary (for README.md)")
    print()
    print(f"Measured by `benchmarks/cwl.sh` on {platform.system()} {platform.machine()} ({os.cpu_count()} CPUs, Python {platform.python_version()}),")
    print(f"median of {args.runs_small} runs; wall time and peak RSS of the whole process.")
    print()
    print("| case | faice | cwltool | faice / cwltool (time) | target |")
    print("|---|---|---|---|---|")
    print(f"| `validate {TOOL}` | {fmt_cmd(tool_f)} | {fmt_cmd(tool_c)} | {ratios[0].value:.2f} | <= 0.5 {ratios[0].verdict} |")
    print(f"| `validate {GRAPH}` | {fmt_cmd(graph_f)} | {fmt_cmd(graph_c)} | {ratios[1].value:.2f} | <= 0.5 {ratios[1].verdict} |")
    print(f"| `validate {TOOL}`, no schema cache | {fmt_cmd(cold)} | | {ratios[3].value:.2f} | |")
    return report_targets(ratios, "cwl_bench")


if __name__ == "__main__":
    sys.exit(main())
