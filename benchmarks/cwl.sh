#!/usr/bin/env bash
# faice on CWL documents against cwltool, the CWL reference runner, on the same files.
#
#   benchmarks/cwl.sh
#
# In one run, each command as a fresh process, wall time and peak RSS, medians of 5 runs (after
# one warm-up, which also fills faice's cache of cwltool's schemas):
#   1. validate a tool: tests/data/cwl/grepwrap-v1_0.cwl (grepwrap of the RED guides, with a
#      DockerRequirement)          faice validate  vs  cwltool --validate
#   2. validate a $graph: tests/data/cwl/graph-main.cwl (two tools, #main)
#                                  faice validate  vs  cwltool --validate
#   3. faice validate of the tool with no schema cache (the first CWL document of its version),
#      for information
# then a table, the ratios with PASS/FAIL against the targets, and a summary block for README.md.
# The cases of faice exec tool.cwl job.yml (issue 12, later parts) go beside these.
#
# Target: faice validate / cwltool --validate, time <= 0.5 (both documents).
#
#   FAICE=...    faice under test (default: .venv/bin/faice of this checkout)
#   CWLTOOL=...  cwltool          (default: .venv/bin/cwltool, else cwltool on PATH)
#   BENCH_RUNS_SMALL   runs per case (default 5)
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed or the set-up
# is broken. Scratch files (faice's schema cache among them) live in a mktemp directory that is
# removed on exit.
set -euo pipefail

bench_name=cwl.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

bench_faice_and_python
bench_cwltool
bench_workdir faice-bench-cwl.XXXXXX

bench_run "$here/cwl_bench.py" \
	--faice "$faice" \
	--cwltool "$cwltool" \
	--data "$root/tests/data/cwl" \
	--work "$work"
