#!/usr/bin/env bash
# Latency of following a running batch's output (issue 13): `faice logs ID --follow` and
# `faice serve`'s GET /batches/ID/stdout?follow=true.
#
#   benchmarks/live.sh
#
# In one run:
#   1. starts `faice serve` on loopback (127.0.0.1, a free port) over a throwaway state file and
#      logs in (an admin user, Bearer token);
#   2. `faice exec` of one batch in faice-test-busybox:latest whose tool prints `line N` every
#      0.2 s, BENCH_LINES times (default 100: about 20 s);
#   3. while it runs, the helper watches the batch's LOGS/<batch>.stdout.partial (every 5 ms) and
#      notes when each line is complete there, and two followers of the batch run at once:
#      `faice logs BATCH --follow` (a subprocess, its stdout a pipe) and a streaming HTTP client of
#      GET /batches/BATCH/stdout?follow=true; a line's delay is its arrival at the follower minus
#      its appearance in the file;
#   4. checks that every line reached the file and both followers, that faice exec, the CLI
#      follower and the server (SIGTERM) exit with status 0 and that no container is left;
# then p50/p95/p99/max of the delay per face and PASS/FAIL against the target.
#
# Target: a printed line reaches a --follow client within 0.5 s (p99), CLI and API each.
#
# Only the local offline image faice-test-busybox:latest is used (nothing is pulled); it is built
# with scripts/build-images.py when it is missing.
#
# Settings:
#   FAICE=...      faice under test  (default: .venv/bin/faice of this checkout)
#   DOCKER=...     docker CLI        (default: docker on PATH)
#   BENCH_LINES    lines the tool prints, one every 0.2 s (default 100, at least 10)
#
# Exit status: 0 every target met, 1 a target missed, 2 the run failed, a check did not hold or
# the set-up is broken. Scratch files live in a mktemp directory that is removed on exit.
set -euo pipefail

bench_name=live.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
image="faice-test-busybox:latest"

bench_faice_and_python

bench_docker_image "$image"

lines=${BENCH_LINES:-100}
if ! [[ $lines =~ ^[1-9][0-9]*$ ]] || ((lines < 10)); then
	die "BENCH_LINES must be an integer of at least 10, not '$lines'"
fi

bench_workdir faice-live-bench.XXXXXX

"$py" "$here/ui_bench.py" --faice "$faice" --docker "$docker" --work "$work/ui" || exit $? # /ui's first table pages at 100,000 batches (issue 13)
bench_run "$here/live_bench.py" \
	--faice "$faice" \
	--docker "$docker" \
	--image "$image" \
	--work "$work" \
	--lines "$lines"
