#!/usr/bin/env bash
# Side-by-side benchmark of `faice exec --cache` hits against an uncached `faice exec` and
# cwltool's cache (`cwltool --cachedir`), in one run; see benchmarks/cache_bench.py for the cases
# and checks.
#
#   benchmarks/cache.sh
#
# Targets (issue 11): 100 batches, all cached: faice exec --cache <= 1.0 s in total and <= 0.05x
#          the uncached run; one cached batch <= 0.2x cwltool's cache hit on the same tool.
#
# Only the local offline image faice-test-busybox:latest is used (built with
# scripts/build-images.py when missing, never pulled). faice runs with a throwaway --db (its cache
# beside it) in a mktemp directory that is removed on exit, as is cwltool's cache.
#
# Settings: FAICE, CWLTOOL, DOCKER (the programs), BENCH_JOBS (default nproc), BENCH_BATCHES
# (default 100), BENCH_RUNS_SMALL / BENCH_RUNS_BIG (default 5 / 3).
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed or a check did
# not hold.
set -euo pipefail
unset FAICE_CACHE FAICE_CACHE_DIR  # the benchmark's own cache, beside its throwaway --db

bench_name=cache.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
image="faice-test-busybox:latest"

bench_faice_and_python
bench_cwltool
bench_docker_image "$image"
bench_jobs
bench_workdir faice-cache-bench.XXXXXX

bench_run "$here/cache_bench.py" \
	--faice "$faice" \
	--cwltool "$cwltool" \
	--docker "$docker" \
	--image "$image" \
	--jobs "$jobs" \
	--work "$work" \
	--batches "${BENCH_BATCHES:-100}"
