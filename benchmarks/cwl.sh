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
#   4. one job of a small tool (wc -l on a 3-line File, DockerRequirement dockerPull of the
#      offline image faice-test-busybox:latest, its stdout a File output):
#                                  faice exec wc.cwl job.yml  vs  cwltool wc.cwl job.yml (with
#                                  Docker: cwltool finds the local image by docker image inspect
#                                  and pulls nothing)
#   5. a job file holding a list of 100 (BENCH_CWL_JOBS) such jobs, each on a file of its own:
#      faice exec wc.cwl jobs.yml --jobs J   (J = nproc, or BENCH_JOBS; medians of 3 runs, no warm-up)
#                              vs  the floor: `docker run --rm -v FILE:/in.txt:ro IMAGE wc -l /in.txt`
#                                  once per job via xargs -P J
# then a table, the ratios with PASS/FAIL against the targets, and a summary block for README.md.
# Checked on every run: each command exits 0; faice's and cwltool's stdout is the output object
# (a list of 100 for the job list) whose lines.txt counts its input's lines; no container of the
# measured experiments is left at the end.
#
# Targets: faice validate / cwltool --validate, time <= 0.5 (both documents); faice exec /
# cwltool, one job, time <= 0.4; faice exec / the floor, 100 jobs, time <= 1.1.
#
#   FAICE=...    faice under test (default: .venv/bin/faice of this checkout)
#   CWLTOOL=...  cwltool          (default: .venv/bin/cwltool, else cwltool on PATH)
#   DOCKER=...   docker CLI       (default: docker on PATH)
#   BENCH_JOBS         parallelism of the job list case (default: nproc)
#   BENCH_CWL_JOBS     jobs in the job list (default 100)
#   BENCH_RUNS_SMALL / BENCH_RUNS_BIG   runs per case (default 5 / 3, the job list case the latter)
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed or the set-up
# is broken. Scratch files (faice's schema cache among them) live in a mktemp directory that is
# removed on exit.
set -euo pipefail

bench_name=cwl.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

image="faice-test-busybox:latest"

bench_faice_and_python
bench_cwltool
bench_docker_image "$image"
bench_jobs
bench_workdir faice-bench-cwl.XXXXXX

bench_run "$here/cwl_bench.py" \
	--faice "$faice" \
	--cwltool "$cwltool" \
	--docker "$docker" \
	--image "$image" \
	--jobs "$jobs" \
	--jobs-count "${BENCH_CWL_JOBS:-100}" \
	--data "$root/tests/data/cwl" \
	--work "$work"
