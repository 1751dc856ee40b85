#!/usr/bin/env bash
# Load benchmark of `faice serve` (the CC-Agency REST API) over a state file of 100,000 batches.
#
#   benchmarks/serve.sh
#
# In one run:
#   1. seeds a throwaway state file with the Store API: 10 experiments x 10,000 batches (faice exec
#      records: runner "exec", the benchmark's own pid, which is alive while the server runs, so
#      neither the server's reconcile nor its worker touches them), states set with SQL (60 %
#      succeeded, 20 % failed, 10 % cancelled, 5 % registered, 5 % processing) with a history
#      entry for every state change (~390,000 history rows);
#   2. the floor: the SQL of each route (faice/state/listing.py rows(), or a plain COUNT(*)) answered
#      by Python's sqlite3 on the same file, one client;
#   3. starts the real server (`faice --db DB serve --host 127.0.0.1 --port 0 --jobs 2`), logs in
#      (POST /login -> Bearer token) and measures HTTP Basic auth once (cold: scrypt; warm: cached);
#   4. per route, 1 client and then 16 concurrent clients (closed loop, one keep-alive connection
#      each, every client its own process: no GIL shared between clients), N requests each
#      (default 3,000 with 16 clients): client-side wall time per request, p50/p90/p99/max,
#      requests/s, and the server process's CPU time per request (from /proc/PID/stat);
#        GET /batches?limit=100                  GET /batches/count
#        GET /batches?limit=100&state=succeeded  GET /batches/count?state=failed
#        GET /batches?experimentId=X&limit=100   GET /experiments/count
#   4b. the filtered routes again, 16 clients, while another process commits 100 times a second
#      (informative: shown against the targets, not judged);
#   5. POST /red of a 10,000-batch RED document (JSON, ?disableRetry=1, batchConcurrencyLimit 1),
#      each followed at once by DELETE /experiments/ID (so at most a few `true` containers run),
#      median of BENCH_RUNS_BIG runs;
#   6. stops the server with SIGTERM and checks that the seeded batches were not changed, that
#      the POSTed experiments have no open batch left and that no container of theirs remains.
# then a table, the ratios to the floor and PASS/FAIL against the targets.
#
# Targets (16 clients): p99 < 50 ms for each GET /batches list, p99 < 20 ms for each count;
#                       POST /red of 10,000 batches < 3 s (median).
#
# Only the local offline image faice-test-busybox:latest is used (nothing is pulled); it is built
# with scripts/build-images.py when it is missing. The load generator is the standard library
# (raw HTTP/1.1 over keep-alive sockets; fork). It runs on the same machine as the server.
#
# Settings:
#   FAICE=...             faice under test         (default: .venv/bin/faice of this checkout)
#   DOCKER=...            docker CLI               (default: docker on PATH)
#   BENCH_CLIENTS         concurrent clients (default 16)
#   BENCH_REQUESTS        requests per route with all clients (default 3000); 1 client: a fifteenth
#                         (at least 100); a route stops early after 20 s (1 client: 3 s)
#   BENCH_BATCHES         seeded batches (default 100000, in BENCH_EXPERIMENTS experiments, default 10)
#   BENCH_POST_BATCHES    batches of the POSTed RED document (default 10000)
#   BENCH_RUNS_BIG        POST /red runs (default 3); BENCH_RUNS_SMALL: POST /login runs (default 5)
#   BENCH_KEEP=1          keep the scratch directory (state file, server log) and print its path
#
# Exit status: 0 every target met, 1 a target missed, 2 a request failed, a check did not hold or
# the set-up is broken. Scratch files live in a mktemp directory that is removed on exit.
set -euo pipefail

bench_name=serve.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
image="faice-test-busybox:latest"

bench_faice_and_python

bench_docker_image "$image"

for var in BENCH_CLIENTS BENCH_REQUESTS BENCH_BATCHES BENCH_EXPERIMENTS BENCH_POST_BATCHES; do
	value=${!var:-1}
	[[ $value =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, not '$value'"
done

if [[ ${BENCH_KEEP:-} == 1 ]]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/faice-serve-bench.XXXXXX")
	echo "serve.sh: keeping $work" >&2
	trap 'exit 130' INT
	trap 'exit 143' TERM
else
	bench_workdir faice-serve-bench.XXXXXX
fi

bench_run "$here/serve_bench.py" \
	--faice "$faice" \
	--docker "$docker" \
	--image "$image" \
	--work "$work" \
	--clients "${BENCH_CLIENTS:-16}" \
	--requests "${BENCH_REQUESTS:-3000}" \
	--batches "${BENCH_BATCHES:-100000}" \
	--experiments "${BENCH_EXPERIMENTS:-10}" \
	--post-batches "${BENCH_POST_BATCHES:-10000}"
