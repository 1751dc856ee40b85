#!/usr/bin/env bash
# Side-by-side benchmark of `faice exec` against plain `docker run --rm` (the floor) and cwltool.
#
#   benchmarks/exec.sh
#
# In one run, each command as a fresh process, wall time of the whole command, medians of 3 runs
# for the 100-batch case (no warm-up) and 5 runs (after one warm-up) for each single batch:
#   1. 100 batches of `true N` (a RED file with 100 batches, an int input N at position 0):
#      faice exec --jobs J                          (J = nproc, or BENCH_JOBS)
#                              vs  the floor: `docker run --rm IMAGE true N` 100 times via xargs -P J
#                              vs  cwltool --quiet on the tool of `faice convert cwl` (a
#                                  DockerRequirement for the same image), one job file per batch,
#                                  100 runs via xargs -P J
#   2. one batch with a 1 MB File input (red-connector-local) copied to a File output (glob out.txt):
#      faice exec              vs  one `docker run --rm` with the same bind mounts (the input
#                                  read-only at /cc/inputs/f/in.dat, an output directory at
#                                  /cc/outputs), -w /cc/outputs, --user $(id -u):$(id -g),
#                                  --entrypoint sh -c 'cp "$1" out.txt'
#   3. one batch of `true` (no input): faice exec  vs  one `docker run --rm IMAGE true 0`
# then a table, the ratios with PASS/FAIL against the targets, and a summary block for README.md.
# Then, in the same run, the same under podman (benchmarks/podman_bench.py) where podman is
# installed: FAICE_ENGINE=podman faice exec against `podman run --rm` as its floor, 100 batches of
# `true N` and one batch of `true`, with the same targets.
#
# Targets (issue 10): 100 (or BENCH_BATCHES) batches faice/floor time <= 1.0; one batch of `true`
#          faice/floor time <= 1.3; the 1 MB File batch faice/floor time <= 1.6; faice/cwltool is
#          reported (no target). faice's peak RSS is in the table and the summary (compare a run
#          with BENCH_BATCHES=1000 against the default 100: it should barely grow).
#
# faice runs as users' installs do, from compiled bytecode: PYTHONDONTWRITEBYTECODE (which some
# shells and sandboxes set) is unset and faice's package compiled before anything is measured;
# otherwise every run would compile faice's modules from source, some 50 ms each.
# Checked on every run: faice exits 0 and its JSON says state "succeeded" with every batch
# succeeded; every docker/cwltool run exits 0 (xargs exits non-zero when one does); the output file
# of case 2 equals the input. At the end no container may be left that is labelled with one of the
# benchmark's experiments (another faice's containers on a shared machine do not count).
#
# Only the local offline image faice-test-busybox:latest is used (nothing is pulled); it is built
# with scripts/build-images.py when it is missing. faice runs with a throwaway --db in the scratch
# directory, so the user's faice state is not touched.
#
# Settings:
#   FAICE=...          faice under test            (default: .venv/bin/faice of this checkout)
#   CWLTOOL=...        cwltool                     (default: .venv/bin/cwltool, else cwltool on PATH)
#   DOCKER=...         docker CLI                  (default: docker on PATH)
#   PODMAN=...         podman CLI                  (default: podman on PATH; none: its part is left out)
#   BENCH_JOBS         parallelism of all three in case 1 (default: nproc)
#   BENCH_RUNS_SMALL / BENCH_RUNS_BIG   runs per case (default 5 / 3)
#   BENCH_BATCHES      batches in case 1 (default 100; 1000 shows the per-batch cost and memory
#                      over a long run: BENCH_RUNS_BIG=1 BENCH_CWLTOOL_RUNS=20 BENCH_PODMAN=0 keep
#                      it to some ten minutes)
#   BENCH_PODMAN=0     leave the podman part out
#   BENCH_CWLTOOL_RUNS cwltool runs per round in case 1 (default: as many as batches; fewer are
#                      scaled up linearly to the batch count, and the output says so)
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed or a check did
# not hold (the benchmark aborts at once, printing the command and its output: no ratio is made
# from a failed run) or the set-up is broken. Scratch files live in a mktemp directory that is
# removed on exit.
set -euo pipefail

bench_name=exec.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
image="faice-test-busybox:latest"

bench_faice_and_python
bench_cwltool

bench_docker_image "$image"

bench_jobs

bench_workdir faice-exec-bench.XXXXXX

podman=${PODMAN:-$(command -v podman || true)}
[[ ${BENCH_PODMAN:-1} == 0 ]] && podman=
if [[ -n $podman ]] && ! "$podman" image exists "$image"; then
	echo "$bench_name: $image is not in podman's store; loading it (docker save | podman load)" >&2
	"$docker" save "$image" | "$podman" load >&2 || die "docker save $image | podman load failed"
fi

# the Docker part and then the podman part (each on its own: one that breaks leaves the other's
# figures standing); the worse exit status is the benchmark's
status=0
"$py" "$here/exec_bench.py" \
	--faice "$faice" \
	--cwltool "$cwltool" \
	--docker "$docker" \
	--image "$image" \
	--jobs "$jobs" \
	--work "$work" \
	--batches "${BENCH_BATCHES:-100}" \
	${BENCH_CWLTOOL_RUNS:+--cwltool-runs "$BENCH_CWLTOOL_RUNS"} \
	--runs-small "${BENCH_RUNS_SMALL:-5}" \
	--runs-big "${BENCH_RUNS_BIG:-3}" || status=$?
if [[ ${BENCH_PODMAN:-1} == 0 ]]; then
	echo "$bench_name: BENCH_PODMAN=0: the podman part is left out" >&2
elif [[ -z $podman ]]; then
	echo "$bench_name: podman is not installed: the podman part is left out (make system-deps installs it)" >&2
else
	echo
	mkdir "$work/podman"
	"$py" "$here/podman_bench.py" \
		--faice "$faice" \
		--podman "$podman" \
		--image "$image" \
		--jobs "$jobs" \
		--work "$work/podman" \
		--batches "${BENCH_BATCHES:-100}" \
		--runs-small "${BENCH_RUNS_SMALL:-5}" \
		--runs-big "${BENCH_RUNS_BIG:-3}" || status=$(( $? > status ? $? : status ))
fi
case $status in
0) ;;
1) echo "$bench_name: FAIL: a target was missed (see the ratios above)" >&2 ;;
*) echo "$bench_name: FAIL: the benchmark did not complete (exit status $status)" >&2 ;;
esac
exit "$status"
